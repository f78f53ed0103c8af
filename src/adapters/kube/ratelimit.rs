//! Client-side rate limit per cluster (`--qps`, `--burst`): a token bucket,
//! as client-go's. Every HTTP request (discovery and retries included) takes
//! a token first.

use std::time::{Duration, Instant};
use tokio::sync::Mutex;

pub struct RateLimiter {
    qps: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub fn full(burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            last: now,
        }
    }

    /// Takes a token at `now`, or says how long until one is there.
    pub fn take(&mut self, qps: f64, burst: f64, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * qps).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - self.tokens) / qps))
        }
    }
}

impl RateLimiter {
    /// `qps <= 0` means no limit.
    pub fn new(qps: f64, burst: u32) -> RateLimiter {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            qps,
            burst,
            bucket: Mutex::new(Bucket::full(burst, Instant::now())),
        }
    }

    pub async fn acquire(&self) {
        if !(self.qps.is_finite() && self.qps > 0.0) {
            return;
        }
        loop {
            let wait = self
                .bucket
                .lock()
                .await
                .take(self.qps, self.burst, Instant::now());
            match wait {
                None => return,
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_requests_are_spaced_at_qps() {
        let t0 = Instant::now();
        let mut b = Bucket::full(3.0, t0);
        for _ in 0..3 {
            assert_eq!(b.take(10.0, 3.0, t0), None);
        }
        let wait = b.take(10.0, 3.0, t0).expect("bucket empty");
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        assert_eq!(b.take(10.0, 3.0, t0 + Duration::from_millis(100)), None);
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(b.take(10.0, 3.0, later), None);
        }
        assert!(b.take(10.0, 3.0, later).is_some());
    }
}
