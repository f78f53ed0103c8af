//! `probe::until`: probe every interval until N consecutive successes, or
//! give up at the deadline with the last failure.

use super::{ProbeResult, ProbeSpec};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UntilOptions {
    pub successes: u32,
    pub timeout: Duration,
    pub interval: Duration,
}

pub const DEFAULT_TIMEOUT_S: f64 = 60.0;
pub const DEFAULT_INTERVAL_MS: u64 = 1000;

impl UntilOptions {
    /// `#{ successes: 3, timeout_s: 60, interval_ms: 1000 }`
    pub fn from_map(
        map: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<UntilOptions, String> {
        super::spec::check_keys(
            map,
            &["successes", "timeout_s", "interval_ms"],
            "probe::until",
        )?;
        let successes = super::spec::integer(map, "successes")?.unwrap_or(1);
        if !(1..=10_000).contains(&successes) {
            return Err(format!("`successes` must be 1 to 10000, got {successes}"));
        }
        let timeout_s = super::spec::number(map, "timeout_s")?.unwrap_or(DEFAULT_TIMEOUT_S);
        if timeout_s > 366.0 * 86_400.0 {
            return Err(format!(
                "`timeout_s` must be at most a year, got {timeout_s}"
            ));
        }
        let interval_ms = super::spec::integer(map, "interval_ms")?.unwrap_or(DEFAULT_INTERVAL_MS);
        if !(1..=3_600_000).contains(&interval_ms) {
            return Err(format!(
                "`interval_ms` must be 1 to 3600000, got {interval_ms}"
            ));
        }
        Ok(UntilOptions {
            successes: successes as u32,
            timeout: Duration::from_secs_f64(timeout_s),
            interval: Duration::from_millis(interval_ms),
        })
    }
}

#[derive(Debug, Clone)]
pub enum UntilResult {
    /// The last of the consecutive successes.
    Held { last: ProbeResult, attempts: u64 },
    /// The deadline passed first.
    TimedOut {
        streak: u32,
        attempts: u64,
        last_failure: Option<ProbeResult>,
    },
}

/// Probes until `options.successes` consecutive successes; `attempt(outcome,
/// streak)` is called after each attempt (for progress).
pub async fn until(
    spec: &ProbeSpec,
    options: UntilOptions,
    mut attempt: impl FnMut(&ProbeResult, u32),
) -> UntilResult {
    let deadline = Instant::now() + options.timeout;
    let mut streak = 0;
    let mut attempts = 0;
    let mut last_failure = None;
    loop {
        let started = Instant::now();
        let remaining = deadline.saturating_duration_since(started);
        if remaining.is_zero() && attempts > 0 {
            return UntilResult::TimedOut {
                streak,
                attempts,
                last_failure,
            };
        }
        // Never wait past the deadline for one attempt.
        let outcome = match tokio::time::timeout(
            remaining.max(Duration::from_millis(1)),
            super::run(spec, None),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => ProbeResult::failed(
                super::ErrorKind::Timeout,
                format!("{}: no answer before the deadline", spec.target()),
                started.elapsed(),
            ),
        };
        attempts += 1;
        if outcome.ok {
            streak += 1;
        } else {
            streak = 0;
            last_failure = Some(outcome.clone());
        }
        attempt(&outcome, streak);
        if streak >= options.successes {
            return UntilResult::Held {
                last: outcome,
                attempts,
            };
        }
        let next = started + options.interval;
        if next >= deadline {
            return UntilResult::TimedOut {
                streak,
                attempts,
                last_failure,
            };
        }
        tokio::time::sleep_until(next.into()).await;
    }
}
