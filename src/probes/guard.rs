//! The background prober behind `guard(...)`: fires the probe at a fixed
//! rate on the tokio runtime, each request on a fresh connection, records
//! every outcome, and reports live counts until it is stopped.
//!
//! A probe `from:` a pod is not fired from here: one exec per probe at
//! 200/s overwhelmed real container runtimes. Instead one exec runs the
//! probe loop inside the container (`super::stream`) and this reads its
//! lines; a stream that breaks is replaced, and a vantage left without one
//! for longer than the gap limit fails the guard as a vantage failure.

use super::spec::ProbeSpec;
use super::stats::{DEFAULT_STREAM_GAP_MS, Limits, Sample, Stats, StreamReport};
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
    /// `stop_early`: once more than `max_failures` failed, the body's waits
    /// end at once (its `sleep`s are cut short), so a breach is acted on
    /// without sitting out the watch window.
    pub stop_early: bool,
}

impl GuardOptions {
    /// `#{ rate, max_failures, max_gap_ms }`
    pub fn from_map(map: &Map<String, Value>) -> Result<GuardOptions, String> {
        super::spec::check_keys(
            map,
            &["rate", "max_failures", "max_gap_ms", "stop_early"],
            "guard",
        )?;
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
            stop_early: super::spec::boolean(map, "stop_early")?.unwrap_or(false),
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
    /// For a guard fired from a pod: how its exec stream fared.
    stream: Option<Arc<Mutex<StreamState>>>,
}

/// A stream guard's bookkeeping, shared with its task.
#[derive(Default)]
struct StreamState {
    report: StreamReport,
    /// Since when no stream has worked (from the start until the first
    /// says hello; that start-up is not a break).
    down_since: Option<Duration>,
    ever_up: bool,
}

/// A stream that ends this close to its loop's `max_s` ran out of time.
const RENEWAL_SLACK: Duration = Duration::from_secs(5);

/// Pause between a broken stream and the next attempt.
const REOPEN_AFTER: Duration = Duration::from_millis(100);

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
        if matches!(&*spec, Spec::HttpFrom(..)) {
            let state = Arc::new(Mutex::new(StreamState {
                down_since: Some(Duration::ZERO),
                report: StreamReport {
                    gap_limit_ms: options.limits.max_gap_ms.unwrap_or(DEFAULT_STREAM_GAP_MS),
                    ..Default::default()
                },
                ..Default::default()
            }));
            let task = rt.spawn(stream_task(
                spec.clone(),
                options,
                started,
                samples.clone(),
                live.clone(),
                state.clone(),
                stop_rx,
                progress,
            ));
            return Ok(Prober {
                spec,
                options,
                started,
                samples,
                live,
                stop: Some(stop_tx),
                task,
                stream: Some(state),
            });
        }
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
            stream: None,
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

    /// How long after the guard started `at` was (zero before it).
    pub fn since_start(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.started)
    }

    pub fn abort(&mut self) -> Duration {
        let end = self.started.elapsed();
        self.stop.take();
        self.task.abort();
        end
    }

    /// Whether more requests failed so far than the limits allow (for
    /// `stop_early`): a check that reads the live counts, for any thread.
    pub fn over_limit(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let (live, max) = (self.live.clone(), self.options.limits.max_failures);
        move || live.failures.load(Ordering::Relaxed) > max
    }

    pub fn stats(&self, end: Duration) -> Stats {
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut stats = Stats::from_samples(
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
        );
        if let ProbeSpec::Http(h) | ProbeSpec::HttpFrom(h, _) = &*self.spec {
            stats.name_unmarked(h.unmarked());
        }
        stats.stream = self.stream.as_ref().map(|state| {
            let state = state.lock().unwrap_or_else(|p| p.into_inner());
            let mut report = state.report.clone();
            // Still without a stream at the end: that gap counts too.
            if let Some(since) = state.down_since {
                report.longest_gap_ms = report
                    .longest_gap_ms
                    .max(end.saturating_sub(since).as_millis() as u64);
            }
            report
        });
        stats
    }
}

/// Reads the probe loop's lines from one exec into samples until stopped,
/// opening a fresh exec when one ends or breaks.
#[allow(clippy::too_many_arguments)]
async fn stream_task(
    spec: Arc<Spec>,
    options: GuardOptions,
    started: Instant,
    samples: Arc<Mutex<Vec<Sample>>>,
    live: Arc<Live>,
    state: Arc<Mutex<StreamState>>,
    mut stop_rx: oneshot::Receiver<()>,
    progress: impl Fn(u64, u64) + Send + 'static,
) {
    let Spec::HttpFrom(h, at) = &*spec else {
        return;
    };
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    let plan = super::stream::Plan::new(h, options.rate, super::stream::MAX_STREAM);
    let command = [
        "sh".to_owned(),
        "-c".to_owned(),
        super::stream::script(&plan),
    ];
    let pod = format!("pod {}/{}", at.namespace, at.pod);
    let mut report = tokio::time::interval(PROGRESS_EVERY);
    let report_now = move |live: &Live| {
        progress(
            live.requests.load(Ordering::Relaxed),
            live.failures.load(Ordering::Relaxed),
        )
    };
    loop {
        let open = tokio::time::timeout(
            super::EXEC_SLACK,
            at.exec
                .exec_stream(&at.namespace, &at.pod, at.container.as_deref(), &command),
        );
        let opened = tokio::select! {
            biased;
            _ = &mut stop_rx => return,
            opened = open => opened,
        };
        lock().report.sessions += 1;
        let why = match opened {
            Err(_) => format!(
                "the exec into {pod} did not open within {}ms",
                super::EXEC_SLACK.as_millis()
            ),
            Ok(Err(e)) => format!("cannot open the probe stream in {pod}: {e}"),
            Ok(Ok(mut stream)) => {
                let opened_at = Instant::now();
                let mut tool = None;
                let mut other: Option<String> = None;
                let why = loop {
                    tokio::select! {
                        biased;
                        _ = &mut stop_rx => {
                            stream.stop();
                            return;
                        }
                        line = stream.lines.recv() => match line {
                            Some(Ok(text)) => match super::stream::read_line(tool, h, &text) {
                                super::stream::Read::Hello(t) => {
                                    tool = Some(t);
                                    let _ = at.tool.set(t);
                                    let now = started.elapsed();
                                    let mut s = lock();
                                    if let Some(since) = s.down_since.take() && s.ever_up {
                                        let gap = now.saturating_sub(since).as_millis() as u64;
                                        s.report.longest_gap_ms = s.report.longest_gap_ms.max(gap);
                                    }
                                    s.ever_up = true;
                                }
                                super::stream::Read::NoTool => {
                                    lock().report.fatal = Some(format!(
                                        "{pod} has neither curl nor wget: a guard from a pod runs one of them inside the container; pick a pod whose image has one"
                                    ));
                                    stream.stop();
                                    let _ = (&mut stop_rx).await;
                                    return;
                                }
                                super::stream::Read::Probe(line) => {
                                    let o = line.outcome;
                                    let start = started.elapsed().saturating_sub(o.latency);
                                    live.requests.fetch_add(1, Ordering::Relaxed);
                                    if !o.ok {
                                        live.failures.fetch_add(1, Ordering::Relaxed);
                                    }
                                    let error = o.error.map(|e| format!("{e} (from {pod})"));
                                    samples.lock().unwrap_or_else(|p| p.into_inner()).push(Sample {
                                        start,
                                        latency: o.latency,
                                        ok: o.ok,
                                        kind: o.kind,
                                        error,
                                        path: o.path,
                                    });
                                }
                                super::stream::Read::Other(text) => other = Some(text),
                            },
                            Some(Err(e)) => break e,
                            None => break match other.take() {
                                Some(text) => format!("the probe stream ended: {}", super::truncate(&text, 300)),
                                None => "the probe stream ended".to_owned(),
                            },
                        },
                        _ = report.tick() => report_now(&live),
                    }
                };
                // A loop that ran its full time ends by itself: the next
                // one takes over at once, a renewal rather than a break.
                if opened_at.elapsed() + RENEWAL_SLACK >= super::stream::MAX_STREAM {
                    continue;
                }
                format!("{why} (from {pod})")
            }
        };
        {
            let now = started.elapsed();
            let mut s = lock();
            s.report.breaks += 1;
            s.report.last_error = Some(why);
            s.down_since.get_or_insert(now);
        }
        tokio::select! {
            biased;
            _ = &mut stop_rx => return,
            _ = tokio::time::sleep(REOPEN_AFTER) => {}
        }
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
