//! Bounded exponential backoff with jitter for 429/5xx/connection failures,
//! honouring the server's `Retry-After`.
//!
//! Retries live here rather than in kube's tower `RetryLayer` so that each
//! one is announced in the run's output and Ctrl-C ends the wait at once
//! (the primitive drops the request future).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// Largest computed delay.
    pub cap: Duration,
    /// Largest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(15),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all (opening a cluster must fail fast).
    pub fn once() -> Self {
        RetryPolicy {
            attempts: 1,
            ..Default::default()
        }
    }

    /// The wait before retry number `retry` (1-based): "equal jitter" over an
    /// exponential step, `unit` in [0, 1) choosing where in the upper half it
    /// falls, and never less than the server's `Retry-After`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.cap);
        let half = exp / 2;
        let jittered = half + half.mul_f64(unit.clamp(0.0, 1.0));
        match retry_after {
            Some(after) => jittered.max(after.min(self.max_retry_after)),
            None => jittered,
        }
    }
}

/// A number in [0, 1) that differs between calls and processes, for jitter.
pub fn jitter_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_jitter_bounds_and_cap() {
        let p = RetryPolicy::default();
        for retry in 1..=8 {
            let exp = (p.base * (1 << (retry - 1))).min(p.cap);
            let low = p.delay(retry, None, 0.0);
            let high = p.delay(retry, None, 0.999);
            assert_eq!(low, exp / 2, "retry {retry}");
            assert!(high <= exp && high > low, "retry {retry}: {high:?}");
        }
        assert_eq!(p.delay(30, None, 0.0), p.cap / 2, "no overflow far out");
    }

    #[test]
    fn retry_after_is_a_floor_and_is_bounded() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(5)), 0.5),
            Duration::from_secs(5)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3600)), 0.5),
            p.max_retry_after
        );
        assert!(p.delay(1, Some(Duration::ZERO), 0.5) > Duration::ZERO);
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            let u = jitter_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
