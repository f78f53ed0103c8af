//! The background prober behind `guard(...)`: fires the probe at a fixed
//! rate on the tokio runtime, each request on a fresh connection, records
//! every outcome, and reports live counts until it is stopped.

use super::spec::ProbeSpec;
use super::stats::{Limits, Sample, Stats};
use super::{ProbeSpec as Spec, http};
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// Requests per second when none is given.
pub const DEFAULT_RATE: f64 = 20.0;
pub const MAX_RATE: f64 = 1000.0;
/// One request every 100 seconds.
pub const MIN_RATE: f64 = 0.01;
/// Requests allowed in flight at once; a tick beyond that is skipped (and counted).
const MAX_IN_FLIGHT: usize = 2048;
/// How often live counts are reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardOptions {
    pub rate: f64,
    pub limits: Limits,
}

impl GuardOptions {
    /// `#{ rate, max_failures, max_gap_ms }`
    pub fn from_map(map: &Map<String, Value>) -> Result<GuardOptions, String> {
        super::spec::check_keys(map, &["rate", "max_failures", "max_gap_ms"], "guard")?;
        let rate = super::spec::number(map, "rate")?.unwrap_or(DEFAULT_RATE);
        if !(MIN_RATE..=MAX_RATE).contains(&rate) {
            return Err(format!(
                "`rate` must be {MIN_RATE} to {MAX_RATE} requests per second, got {rate}"
            ));
        }
        Ok(GuardOptions {
            rate,
            limits: Limits {
                max_failures: super::spec::integer(map, "max_failures")?.unwrap_or(0),
                max_gap_ms: super::spec::integer(map, "max_gap_ms")?,
            },
        })
    }
}

/// Live counts, readable while the prober runs.
#[derive(Default)]
pub struct Live {
    pub requests: AtomicU64,
    pub failures: AtomicU64,
    pub skipped: AtomicU64,
}

pub struct Prober {
    spec: Arc<Spec>,
    options: GuardOptions,
    started: Instant,
    samples: Arc<Mutex<Vec<Sample>>>,
    live: Arc<Live>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Prober {
    /// Starts firing `spec` at `options.rate` on `rt`; `progress(requests,
    /// failures)` is called every 250ms from the runtime.
    pub fn start(
        rt: &tokio::runtime::Handle,
        spec: ProbeSpec,
        options: GuardOptions,
        progress: impl Fn(u64, u64) + Send + 'static,
    ) -> Result<Prober, String> {
        // One client without idle connections: every request connects anew.
        let client = match &spec {
            Spec::Http(h) => Some(Arc::new(http::client(h)?)),
            _ => None,
        };
        let spec = Arc::new(spec);
        let samples = Arc::new(Mutex::new(Vec::new()));
        let live = Arc::new(Live::default());
        let (stop_tx, mut stop_rx) = oneshot::channel();
        let started = Instant::now();
        let period = Duration::from_secs_f64(1.0 / options.rate);
        let task = {
            let (spec, samples, live) = (spec.clone(), samples.clone(), live.clone());
            rt.spawn(async move {
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut report = tokio::time::interval(PROGRESS_EVERY);
                let mut in_flight = JoinSet::new();
                // Even around an instant closure, at least one request is fired.
                let mut fired = 0u64;
                loop {
                    tokio::select! {
                        biased;
                        _ = &mut stop_rx, if fired > 0 => break,
                        Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                        _ = tick.tick() => {
                            if in_flight.len() >= MAX_IN_FLIGHT {
                                live.skipped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            fired += 1;
                            let (spec, client, samples, live) =
                                (spec.clone(), client.clone(), samples.clone(), live.clone());
                            in_flight.spawn(async move {
                                let start = started.elapsed();
                                let outcome = super::run(&spec, client.as_deref()).await;
                                live.requests.fetch_add(1, Ordering::Relaxed);
                                if !outcome.ok {
                                    live.failures.fetch_add(1, Ordering::Relaxed);
                                }
                                samples.lock().unwrap_or_else(|p| p.into_inner()).push(Sample {
                                    start,
                                    latency: outcome.latency,
                                    ok: outcome.ok,
                                    kind: outcome.kind,
                                    error: outcome.error,
                                    path: outcome.path,
                                });
                            });
                        }
                        _ = report.tick() => progress(
                            live.requests.load(Ordering::Relaxed),
                            live.failures.load(Ordering::Relaxed),
                        ),
                    }
                }
                // Requests already fired belong to the guarded window: let them
                // finish (each is bounded by its timeout).
                while in_flight.join_next().await.is_some() {}
            })
        };
        Ok(Prober {
            spec,
            options,
            started,
            samples,
            live,
            stop: Some(stop_tx),
            task,
        })
    }

    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Stops firing, waits for requests in flight, and summarises. Cancelling
    /// this future (Ctrl-C) abandons the requests in flight; call
    /// [`Prober::abort`] then [`Prober::stats`] for what was recorded.
    pub async fn stop(&mut self) -> Duration {
        let end = self.started.elapsed();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        end
    }

    pub fn abort(&mut self) -> Duration {
        let end = self.started.elapsed();
        self.stop.take();
        self.task.abort();
        end
    }

    pub fn stats(&self, end: Duration) -> Stats {
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Stats::from_samples(
            self.spec.target(),
            self.options.rate,
            self.options.limits,
            &mut samples,
            end,
            self.live.skipped.load(Ordering::Relaxed),
            matches!(
                &*self.spec,
                ProbeSpec::Http(h) | ProbeSpec::HttpFrom(h, _) if h.path_header.is_some()
            ),
        )
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let parse = |v: serde_json::Value| GuardOptions::from_map(v.as_object().unwrap());
        let o = parse(serde_json::json!({ "rate": 50, "max_gap_ms": 0 })).unwrap();
        assert_eq!(o.rate, 50.0);
        assert_eq!(
            o.limits,
            Limits {
                max_failures: 0,
                max_gap_ms: Some(0)
            }
        );
        assert!(
            parse(serde_json::json!({ "rate": 1e-300 }))
                .unwrap_err()
                .contains("`rate`")
        );
        assert!(
            parse(serde_json::json!({ "rate": 5000 }))
                .unwrap_err()
                .contains("`rate`")
        );
        assert!(
            parse(serde_json::json!({ "rate": -1 }))
                .unwrap_err()
                .contains("`rate`")
        );
        assert!(
            parse(serde_json::json!({ "max_failures": -1 }))
                .unwrap_err()
                .contains("max_failures")
        );
        assert!(
            parse(serde_json::json!({ "burst": 1 }))
                .unwrap_err()
                .contains("unknown option `burst`")
        );
    }
}
