//! What a guard measured: every request's start, latency and outcome,
//! summarised as counts, error kinds, latency percentiles and the longest
//! run of consecutive failures (the gap a client would have seen).

use super::ErrorKind;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// The path of an answer that carried no path header: the app's own pods
/// answered, not one of ferry's bridge routes.
pub const DIRECT: &str = "direct";

/// One request fired by a guard.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was fired, from the guard's start.
    pub start: Duration,
    pub latency: Duration,
    pub ok: bool,
    pub kind: Option<ErrorKind>,
    pub error: Option<String>,
    /// The path the answer took (the spec's `path_header`), if it names one.
    pub path: Option<String>,
}

/// A guard fired from a pod through one exec stream (`super::stream`): how
/// that stream fared. A broken stream is the vantage point failing, not the
/// app: it is reported apart from the probes' failures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamReport {
    /// `pods/exec` sessions opened (one, unless a stream broke or ran out).
    pub sessions: u64,
    /// Streams that ended or broke while the guard ran.
    pub breaks: u64,
    /// Longest time without a working stream after one broke (or from the
    /// start, when none ever worked).
    pub longest_gap_ms: u64,
    /// How long a broken stream may stay unreplaced (`max_gap_ms`, else
    /// [`DEFAULT_STREAM_GAP_MS`]).
    pub gap_limit_ms: u64,
    pub last_error: Option<String>,
    /// The vantage cannot run the loop at all (neither curl nor wget).
    pub fatal: Option<String>,
}

/// How long a guard waits for a fresh stream when its `max_gap_ms` says nothing.
pub const DEFAULT_STREAM_GAP_MS: u64 = 2000;

/// A guard's limits: more failures, or a longer failure run, breaks it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub max_failures: u64,
    /// Longest allowed run of consecutive failures; `None` = no limit.
    pub max_gap_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub target: String,
    pub rate: f64,
    pub duration_ms: u64,
    pub requests: u64,
    pub successes: u64,
    pub failures: u64,
    /// Scheduled requests not fired because too many were still in flight.
    pub skipped: u64,
    pub error_kinds: BTreeMap<String, u64>,
    /// Latency of successful requests.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Longest run of consecutive failures: from its first failure to the next
    /// success (or to the end of the guard).
    pub longest_failure_ms: u64,
    pub failure_runs: u64,
    pub last_error: Option<String>,
    /// Successful answers per path (`path_header` values; `direct` when an
    /// answer named none), empty when the spec asked for no path.
    pub paths: BTreeMap<String, u64>,
    /// The path of the last successful answer.
    pub last_path: Option<String>,
    pub limits: Limits,
    /// Set for a guard fired from a pod.
    pub stream: Option<StreamReport>,
    /// The same measurements over time, for the board's charts.
    pub series: super::series::Series,
    /// When (from the guard's start) its body first changed the world: the flip.
    pub flip_ms: Option<u64>,
}

impl Stats {
    /// Counts answers that named no path as `name` (a spec's `unmarked_path`).
    pub fn name_unmarked(&mut self, name: &str) {
        if name == DIRECT {
            return;
        }
        if let Some(n) = self.paths.remove(DIRECT) {
            *self.paths.entry(name.to_owned()).or_insert(0) += n;
        }
        if self.last_path.as_deref() == Some(DIRECT) {
            self.last_path = Some(name.to_owned());
        }
    }

    pub fn from_samples(
        target: String,
        rate: f64,
        limits: Limits,
        samples: &mut [Sample],
        duration: Duration,
        skipped: u64,
        with_paths: bool,
    ) -> Stats {
        samples.sort_by_key(|s| s.start);
        let series = super::series::Series::from_samples(samples, duration);
        let mut latencies: Vec<Duration> =
            samples.iter().filter(|s| s.ok).map(|s| s.latency).collect();
        latencies.sort();
        let mut error_kinds = BTreeMap::new();
        for s in samples.iter().filter(|s| !s.ok) {
            let kind = s.kind.unwrap_or(ErrorKind::Other).as_str().to_owned();
            *error_kinds.entry(kind).or_insert(0) += 1;
        }
        let (longest, runs) = failure_runs(samples, duration);
        let mut paths = BTreeMap::new();
        let mut last_path = None;
        if with_paths {
            for s in samples.iter().filter(|s| s.ok) {
                let path = s.path.clone().unwrap_or_else(|| DIRECT.to_owned());
                *paths.entry(path.clone()).or_insert(0) += 1;
                last_path = Some(path);
            }
        }
        let failures = samples.iter().filter(|s| !s.ok).count() as u64;
        Stats {
            target,
            rate,
            duration_ms: duration.as_millis() as u64,
            requests: samples.len() as u64,
            successes: samples.len() as u64 - failures,
            failures,
            skipped,
            error_kinds,
            p50_ms: ms(percentile(&latencies, 50.0)),
            p99_ms: ms(percentile(&latencies, 99.0)),
            max_ms: ms(latencies.last().copied().unwrap_or_default()),
            longest_failure_ms: longest.as_millis() as u64,
            failure_runs: runs,
            last_error: samples.iter().rev().find_map(|s| s.error.clone()),
            paths,
            last_path,
            limits,
            stream: None,
            series,
            flip_ms: None,
        }
    }

    /// The limits this guard broke, in words; empty when it held.
    pub fn violations(&self) -> Vec<String> {
        let mut broken = Vec::new();
        if self.failures > self.limits.max_failures {
            broken.push(format!(
                "{} failures, at most {} allowed",
                self.failures, self.limits.max_failures
            ));
        }
        if let Some(max) = self.limits.max_gap_ms
            && self.failures > 0
            && self.longest_failure_ms > max
        {
            broken.push(format!(
                "failures lasted {}ms in a row, at most {max}ms allowed",
                self.longest_failure_ms
            ));
        }
        if let Some(stream) = &self.stream {
            if let Some(fatal) = &stream.fatal {
                broken.push(fatal.clone());
            } else if stream.longest_gap_ms > stream.gap_limit_ms {
                broken.push(format!(
                    "the vantage failed, not (necessarily) the app: {}; no fresh stream took over for {}ms, at most {}ms allowed",
                    stream.last_error.as_deref().unwrap_or("the probe stream broke"),
                    stream.longest_gap_ms,
                    stream.gap_limit_ms
                ));
            }
        }
        if self.requests == 0 {
            broken.push("no request completed, so nothing was proven".into());
        }
        // Far fewer requests than the rate asked for (under a tenth: a
        // loaded machine may lag, a hung vantage pod answers nothing): the
        // window was not watched.
        let asked = (self.rate * self.duration_ms as f64 / 1000.0).floor() as u64;
        if self.requests > 0 && asked >= 10 && self.requests * 10 < asked {
            broken.push(format!(
                "only {} requests of the {asked} its rate of {}/s asked for completed, so the window was not watched",
                self.requests, self.rate
            ));
        }
        if self.skipped > 0 {
            broken.push(format!(
                "{} requests were not fired because too many were still in flight",
                self.skipped
            ));
        }
        broken
    }

    /// One line for people: counts, kinds, gap, latency.
    pub fn summary(&self) -> String {
        let kinds = if self.error_kinds.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                self.error_kinds
                    .iter()
                    .map(|(k, n)| format!("{k}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let paths = if self.paths.is_empty() {
            String::new()
        } else {
            format!(
                ", answers via {}",
                self.paths
                    .iter()
                    .map(|(p, n)| format!("{p}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let stream = match &self.stream {
            Some(s) if s.breaks > 0 => format!(
                ", the probe stream from the pod broke {} times (longest gap {}ms)",
                s.breaks, s.longest_gap_ms
            ),
            _ => String::new(),
        };
        format!(
            "{} requests in {}, {} failures{kinds}, longest failure run {}ms, latency p50 {}ms p99 {}ms max {}ms{paths}{stream}",
            self.requests,
            crate::events::format_duration(self.duration_ms),
            self.failures,
            self.longest_failure_ms,
            self.p50_ms,
            self.p99_ms,
            self.max_ms
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "target": self.target,
            "rate": self.rate,
            "duration_ms": self.duration_ms,
            "requests": self.requests,
            "successes": self.successes,
            "failures": self.failures,
            "skipped": self.skipped,
            "error_kinds": self.error_kinds,
            "latency_ms": { "p50": self.p50_ms, "p99": self.p99_ms, "max": self.max_ms },
            "longest_failure_ms": self.longest_failure_ms,
            "failure_runs": self.failure_runs,
            "last_error": self.last_error,
            "paths": self.paths,
            "last_path": self.last_path,
            "limits": { "max_failures": self.limits.max_failures, "max_gap_ms": self.limits.max_gap_ms },
            "stream": self.stream.as_ref().map(|s| json!({
                "sessions": s.sessions,
                "breaks": s.breaks,
                "longest_gap_ms": s.longest_gap_ms,
                "gap_limit_ms": s.gap_limit_ms,
                "last_error": s.last_error,
            })),
            "series": self.series.to_json(),
            "flip_ms": self.flip_ms,
            "ok": self.violations().is_empty(),
            "summary": self.summary(),
        })
    }
}

/// Nearest-rank percentile of sorted values.
pub(super) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds to one decimal, as every figure of a guard is shown.
pub(super) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// (longest run, number of runs) over samples sorted by start.
fn failure_runs(samples: &[Sample], end: Duration) -> (Duration, u64) {
    let mut longest = Duration::ZERO;
    let mut runs = 0;
    let mut run_start: Option<Duration> = None;
    for s in samples {
        match (s.ok, run_start) {
            (false, None) => {
                run_start = Some(s.start);
                runs += 1;
            }
            (true, Some(first)) => {
                longest = longest.max(s.start.saturating_sub(first));
                run_start = None;
            }
            _ => {}
        }
    }
    if let Some(first) = run_start {
        longest = longest.max(end.saturating_sub(first));
    }
    (longest, runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(start_ms: u64, ok: bool, latency_ms: u64) -> Sample {
        Sample {
            start: Duration::from_millis(start_ms),
            latency: Duration::from_millis(latency_ms),
            ok,
            kind: (!ok).then_some(ErrorKind::Refused),
            error: (!ok).then(|| format!("refused at {start_ms}")),
            path: None,
        }
    }

    const LIMITS: Limits = Limits {
        max_failures: 0,
        max_gap_ms: None,
    };

    #[test]
    fn gaps_run_from_first_failure_to_next_success_or_end() {
        let mut samples = vec![
            sample(0, true, 1),
            sample(10, false, 0),
            sample(20, false, 0),
            sample(30, true, 2),
            sample(40, false, 0),
            sample(50, true, 3),
            sample(60, false, 0),
        ];
        samples.reverse(); // completion order need not be start order
        let stats = Stats::from_samples(
            "t".into(),
            100.0,
            LIMITS,
            &mut samples,
            Duration::from_millis(100),
            0,
            false,
        );
        assert_eq!(stats.requests, 7);
        assert_eq!(stats.failures, 4);
        assert_eq!(stats.failure_runs, 3);
        // 10..30 = 20ms, 40..50 = 10ms, 60..end(100) = 40ms
        assert_eq!(stats.longest_failure_ms, 40);
        assert_eq!(stats.error_kinds.get("refused"), Some(&4));
        assert_eq!(stats.last_error.as_deref(), Some("refused at 60"));
        assert_eq!(stats.max_ms, 3.0);
        assert_eq!(stats.p50_ms, 2.0);
        assert_eq!(stats.violations().len(), 1);
    }

    #[test]
    fn percentiles_use_nearest_rank_and_limits_hold_without_failures() {
        let mut samples: Vec<Sample> = (1..=100).map(|i| sample(i, true, i)).collect();
        let limits = Limits {
            max_failures: 0,
            max_gap_ms: Some(0),
        };
        let stats = Stats::from_samples(
            "t".into(),
            10.0,
            limits,
            &mut samples,
            Duration::from_secs(1),
            0,
            false,
        );
        assert_eq!(
            (stats.p50_ms, stats.p99_ms, stats.max_ms),
            (50.0, 99.0, 100.0)
        );
        assert_eq!(stats.longest_failure_ms, 0);
        assert!(stats.violations().is_empty());
        assert_eq!(stats.to_json()["ok"], true);
    }

    #[test]
    fn a_gap_longer_than_allowed_breaks_the_guard() {
        let mut samples = vec![
            sample(0, true, 1),
            sample(10, false, 0),
            sample(300, true, 1),
        ];
        let limits = Limits {
            max_failures: 10,
            max_gap_ms: Some(100),
        };
        let stats = Stats::from_samples(
            "t".into(),
            10.0,
            limits,
            &mut samples,
            Duration::from_millis(310),
            0,
            false,
        );
        let v = stats.violations();
        assert_eq!(v.len(), 1);
        assert!(v[0].contains("290ms in a row"), "{v:?}");
        let none = Stats::from_samples(
            "t".into(),
            10.0,
            limits,
            &mut [],
            Duration::from_secs(1),
            0,
            false,
        );
        assert!(none.violations()[0].contains("no request completed"));
    }

    #[test]
    fn unmarked_answers_can_be_counted_under_another_path() {
        let mut samples: Vec<Sample> =
            [(0, None), (10, Some("new")), (20, Some("old")), (30, None)]
                .into_iter()
                .map(|(at, path)| Sample {
                    path: path.map(str::to_owned),
                    ..sample(at, true, 1)
                })
                .collect();
        let mut stats = Stats::from_samples(
            "t".into(),
            100.0,
            LIMITS,
            &mut samples,
            Duration::from_millis(40),
            0,
            true,
        );
        stats.name_unmarked("old");
        assert_eq!(
            stats
                .paths
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect::<Vec<_>>(),
            [("new", 1), ("old", 3)]
        );
        assert_eq!(stats.last_path.as_deref(), Some("old"));
    }

    #[test]
    fn answers_are_counted_by_path_and_the_last_one_is_named() {
        let mut samples: Vec<Sample> = [
            (0, None),
            (10, Some("old")),
            (20, Some("new")),
            (30, Some("new")),
        ]
        .into_iter()
        .map(|(at, path)| Sample {
            path: path.map(str::to_owned),
            ..sample(at, true, 1)
        })
        .chain([sample(40, false, 0)])
        .collect();
        let stats = Stats::from_samples(
            "t".into(),
            100.0,
            LIMITS,
            &mut samples,
            Duration::from_millis(50),
            0,
            true,
        );
        assert_eq!(
            stats.paths.into_iter().collect::<Vec<_>>(),
            [
                ("direct".to_owned(), 1),
                ("new".to_owned(), 2),
                ("old".to_owned(), 1)
            ]
        );
        assert_eq!(stats.last_path.as_deref(), Some("new"));
        let without = Stats::from_samples(
            "t".into(),
            100.0,
            LIMITS,
            &mut samples,
            Duration::from_millis(50),
            0,
            false,
        );
        assert!(without.paths.is_empty() && without.last_path.is_none());
    }

    #[test]
    fn a_guard_that_made_far_fewer_requests_than_asked_or_skipped_some_breaks() {
        let mut samples: Vec<Sample> = (0..10).map(|i| sample(i * 100, true, 1)).collect();
        let at = |rate: f64, skipped: u64, samples: &mut [Sample]| {
            Stats::from_samples(
                "t".into(),
                rate,
                LIMITS,
                samples,
                Duration::from_secs(1),
                skipped,
                false,
            )
            .violations()
        };
        assert!(at(10.0, 0, &mut samples).is_empty(), "10 of 10 asked");
        let broken = at(200.0, 0, &mut samples);
        assert_eq!(
            broken,
            [
                "only 10 requests of the 200 its rate of 200/s asked for completed, so the window was not watched"
            ]
        );
        let broken = at(10.0, 3, &mut samples);
        assert_eq!(
            broken,
            ["3 requests were not fired because too many were still in flight"]
        );
    }
}
