//! A guard's measurements over time: requests, failures and p50/p99
//! latency per bucket (100 ms for short guards, a second or more for long
//! ones), so the board can chart what a flip did to callers. Stored by
//! column (`requests: [..]`, `failures: [..]`, ...) to keep the journal
//! record small; at most [`MAX_BUCKETS`] buckets whatever the guard's length.

use super::stats::Sample;
use serde_json::{Value, json};
use std::time::Duration;

/// Upper bound on buckets: a guard watching for an hour still journals a
/// few kilobytes.
pub const MAX_BUCKETS: u64 = 600;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub bucket_ms: u64,
    pub requests: Vec<u64>,
    pub failures: Vec<u64>,
    /// Latency of the bucket's successes (0 when it had none).
    pub p50_ms: Vec<f64>,
    pub p99_ms: Vec<f64>,
}

/// The bucket width for a guard that ran `duration`: 100 ms up to 20 s,
/// whole seconds beyond, widened so there are at most [`MAX_BUCKETS`].
pub fn bucket_width(duration: Duration) -> u64 {
    let ms = duration.as_millis() as u64;
    if ms <= 20_000 {
        return 100;
    }
    let wide = ms.div_ceil(MAX_BUCKETS);
    wide.div_ceil(1000).max(1) * 1000
}

impl Series {
    /// Buckets the samples (any order) by when each request was fired.
    pub fn from_samples(samples: &[Sample], duration: Duration) -> Series {
        let bucket_ms = bucket_width(duration);
        let count = (duration.as_millis() as u64).div_ceil(bucket_ms).max(1) as usize;
        let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); count];
        let mut series = Series {
            bucket_ms,
            requests: vec![0; count],
            failures: vec![0; count],
            ..Series::default()
        };
        for s in samples {
            let i = ((s.start.as_millis() as u64 / bucket_ms) as usize).min(count - 1);
            series.requests[i] += 1;
            if s.ok {
                latencies[i].push(s.latency);
            } else {
                series.failures[i] += 1;
            }
        }
        for mut bucket in latencies {
            bucket.sort();
            series
                .p50_ms
                .push(super::stats::ms(super::stats::percentile(&bucket, 50.0)));
            series
                .p99_ms
                .push(super::stats::ms(super::stats::percentile(&bucket, 99.0)));
        }
        series
    }

    pub fn to_json(&self) -> Value {
        json!({
            "bucket_ms": self.bucket_ms,
            "requests": self.requests,
            "failures": self.failures,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
        })
    }

    /// Reads a journaled series; `None` for guards recorded before series
    /// existed, or a malformed one (the board then shows no chart).
    pub fn from_json(value: &Value) -> Option<Series> {
        let ints = |key: &str| -> Option<Vec<u64>> {
            value
                .get(key)?
                .as_array()?
                .iter()
                .map(Value::as_u64)
                .collect()
        };
        let floats = |key: &str| -> Option<Vec<f64>> {
            value
                .get(key)?
                .as_array()?
                .iter()
                .map(Value::as_f64)
                .collect()
        };
        let series = Series {
            bucket_ms: value.get("bucket_ms")?.as_u64().filter(|b| *b > 0)?,
            requests: ints("requests")?,
            failures: ints("failures")?,
            p50_ms: floats("p50_ms")?,
            p99_ms: floats("p99_ms")?,
        };
        let n = series.requests.len();
        (series.failures.len() == n && series.p50_ms.len() == n && series.p99_ms.len() == n)
            .then_some(series)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(start_ms: u64, ok: bool, latency_ms: u64) -> Sample {
        Sample {
            start: Duration::from_millis(start_ms),
            latency: Duration::from_millis(latency_ms),
            ok,
            kind: None,
            error: None,
            path: None,
        }
    }

    #[test]
    fn samples_fall_into_the_bucket_they_were_fired_in() {
        let samples = [
            sample(0, true, 2),
            sample(50, true, 4),
            sample(120, false, 0),
            sample(299, true, 9),
        ];
        let series = Series::from_samples(&samples, Duration::from_millis(300));
        assert_eq!(series.bucket_ms, 100);
        assert_eq!(series.requests, [2, 1, 1]);
        assert_eq!(series.failures, [0, 1, 0]);
        assert_eq!(series.p50_ms, [2.0, 0.0, 9.0]);
        assert_eq!(series.p99_ms, [4.0, 0.0, 9.0]);
        assert_eq!(Series::from_json(&series.to_json()), Some(series));
    }

    #[test]
    fn long_guards_get_wider_buckets_and_old_records_no_series() {
        assert_eq!(bucket_width(Duration::from_secs(20)), 100);
        assert_eq!(bucket_width(Duration::from_secs(21)), 1000);
        assert_eq!(bucket_width(Duration::from_secs(3600)), 6000);
        let hour = Series::from_samples(&[sample(3_599_999, true, 1)], Duration::from_secs(3600));
        assert_eq!(hour.requests.len() as u64, MAX_BUCKETS);
        assert_eq!(hour.requests[599], 1);
        assert_eq!(Series::from_json(&json!({ "requests": [1] })), None);
    }
}
