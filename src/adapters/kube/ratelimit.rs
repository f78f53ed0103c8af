//! Client-side rate limit per cluster (`--qps`, `--burst`, or `qps`/`burst`
//! in the profile): governor's GCRA limiter, the token-bucket behaviour of
//! client-go. Every HTTP request (discovery and retries included) waits for
//! its turn first.

use governor::{DefaultDirectRateLimiter, Quota};
use std::num::NonZeroU32;
use std::time::Duration;

pub struct RateLimiter(Option<DefaultDirectRateLimiter>);

impl RateLimiter {
    /// `qps <= 0` (or not finite) means no limit.
    pub fn new(qps: f64, burst: u32) -> RateLimiter {
        if !(qps.is_finite() && qps > 0.0) {
            return RateLimiter(None);
        }
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        // The flag and the profile are checked (`settings::check_qps`); an
        // interval no Duration holds still must not panic: it limits to nothing.
        let quota = Duration::try_from_secs_f64(1.0 / qps)
            .ok()
            .and_then(Quota::with_period)
            .map(|q| q.allow_burst(burst));
        RateLimiter(quota.map(governor::RateLimiter::direct))
    }

    /// Waits until a request may go.
    pub async fn acquire(&self) {
        if let Some(limiter) = &self.0 {
            limiter.until_ready().await;
        }
    }

    /// Takes a turn if one is free now.
    #[cfg(test)]
    pub fn try_acquire(&self) -> bool {
        self.0
            .as_ref()
            .is_none_or(|limiter| limiter.check().is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_requests_wait_for_their_turn() {
        let limiter = RateLimiter::new(1.0, 3);
        for _ in 0..3 {
            assert!(limiter.try_acquire(), "the burst passes at once");
        }
        assert!(!limiter.try_acquire(), "the fourth waits a second");
        let unlimited = RateLimiter::new(0.0, 1);
        assert!((0..1000).all(|_| unlimited.try_acquire()));
    }
}
