//! The state one process shares with every primitive while it drives a run:
//! its ports and settings, the target identities, and the [`Ledger`] that
//! owns every journal record.

use super::Cancel;
use super::control::Control;
use super::diagnostic::{self, Sources};
use super::ledger::{Ledger, Replay};
use crate::events::Events;
use crate::journal::Store;
use rhai::{EvalAltResult, NativeCallContext, Position};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run or resume: replay completed steps, run the rest.
    Run,
    /// Replay completed steps to collect their undo closures; stop at the
    /// first step that never completed.
    Rollback,
    /// Compile and analyse only (`ferry check`, `ferry docs`).
    Check,
}

pub struct Session {
    pub run_id: String,
    pub mode: Mode,
    pub store: Arc<dyn Store>,
    pub events: Events,
    pub cancel: Cancel,
    /// Private: blocking goes through [`Session::block_on`] (which ends on
    /// Ctrl-C); background work through [`Session::spawner`].
    rt: tokio::runtime::Handle,
    pub sources: Arc<Sources>,
    /// Source label of the main script.
    pub main_label: String,
    pub params: Arc<BTreeMap<String, String>>,
    /// How to reach targets: kubeconfig, rate limits, dry run.
    pub settings: crate::settings::Settings,
    /// What opens clusters and zones.
    pub backends: crate::ports::Backends,
    /// Every journal record of the run enters and leaves through it.
    pub ledger: Ledger,
    /// `ferry plan`: what the run would do is recorded here, waits are
    /// noted instead of awaited, gates are passed.
    pub plan: Option<Arc<crate::plan::Plan>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Identities of the run's targets by name, as the journal records them.
    identities: BTreeMap<String, serde_json::Value>,
    /// How many sources the journal has (a module loaded since is recorded
    /// with the next step that starts).
    sources_recorded: usize,
}

pub struct SessionConfig {
    pub run_id: String,
    pub mode: Mode,
    pub store: Arc<dyn Store>,
    pub events: Events,
    pub cancel: Cancel,
    pub rt: tokio::runtime::Handle,
    pub sources: Arc<Sources>,
    pub main_label: String,
    pub params: BTreeMap<String, String>,
    /// How replay compares the script with the journal.
    pub replay: Replay,
    pub settings: crate::settings::Settings,
    pub backends: crate::ports::Backends,
    /// Identities the run recorded so far.
    pub identities: BTreeMap<String, serde_json::Value>,
    /// The run's journal records, read once by the runner; `None` when
    /// nothing runs (`ferry check`, `ferry docs`).
    pub records: Option<Vec<crate::journal::Step>>,
    /// Plan mode (`ferry plan`).
    pub plan: Option<Arc<crate::plan::Plan>>,
}

impl Session {
    /// Loads the run's journal so replay needs no further reads.
    pub fn new(config: SessionConfig) -> crate::error::Result<Self> {
        let ledger = Ledger::load(
            config.store.clone(),
            &config.run_id,
            config.events.clone(),
            config.sources.clone(),
            config.replay,
            config.records,
        )?;
        Ok(Session {
            run_id: config.run_id,
            mode: config.mode,
            store: config.store,
            events: config.events,
            cancel: config.cancel,
            rt: config.rt,
            sources: config.sources,
            main_label: config.main_label,
            params: Arc::new(config.params),
            settings: config.settings,
            backends: config.backends,
            ledger,
            plan: config.plan,
            state: Mutex::new(State {
                identities: config.identities,
                sources_recorded: 0,
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `label:line:col` of the primitive call, stable across machines.
    pub fn position(&self, ctx: &NativeCallContext) -> String {
        let pos = ctx.call_position();
        let label = ctx.call_source().unwrap_or(&self.main_label);
        format!(
            "{label}:{}:{}",
            pos.line().unwrap_or(0),
            pos.position().unwrap_or(0)
        )
    }

    /// Where a position label points, for people.
    pub fn display_position(&self, position: &str) -> String {
        self.sources.display_position(position)
    }

    pub fn check_cancelled(&self, pos: Position) -> Result<(), Box<EvalAltResult>> {
        if self.cancel.is_cancelled() {
            Err(Control::Cancelled.raise(pos))
        } else {
            Ok(())
        }
    }

    /// Records the sources loaded so far (the script and its modules) with
    /// the run, once a new one appeared: whoever resumes compares against
    /// them, even after `kill -9`.
    pub fn record_sources(&self, pos: Position) -> Result<(), Box<EvalAltResult>> {
        if self.mode != Mode::Run {
            return Ok(());
        }
        let loaded = self.sources.len();
        if self.state().sources_recorded == loaded {
            return Ok(());
        }
        self.update_run(pos, |run| run.sources.extend(self.sources.texts()))?;
        self.state().sources_recorded = loaded;
        Ok(())
    }

    /// The runner wrote every source loaded so far with the run: the next
    /// step need not write them again.
    pub fn sources_saved(&self) {
        let loaded = self.sources.len();
        self.state().sources_recorded = loaded;
    }

    /// Reads the run, changes it and writes it back.
    fn update_run(
        &self,
        pos: Position,
        change: impl FnOnce(&mut crate::journal::Run),
    ) -> Result<(), Box<EvalAltResult>> {
        let journal = |e: crate::error::Error| {
            Control::Journal {
                message: e.to_string(),
            }
            .raise(pos)
        };
        let mut run = self
            .store
            .run(&self.run_id)
            .map_err(journal)?
            .ok_or_else(|| {
                Control::Journal {
                    message: format!("run `{}` vanished from the journal", self.run_id),
                }
                .raise(pos)
            })?;
        change(&mut run);
        self.store.update_run(&run).map_err(journal)
    }

    /// Blocks this (engine) thread until `deadline_ms`, showing a countdown;
    /// Ctrl-C ends the wait with [`Control::Cancelled`].
    pub fn wait_until(
        &self,
        deadline_ms: i64,
        total_ms: u64,
        label: &str,
        pos: Position,
    ) -> Result<(), Box<EvalAltResult>> {
        if self.plan.is_some() {
            // A plan notes the waits that matter (proofs, rollouts, records
            // visible); sleeps between them are not worth a line.
            return Ok(());
        }
        let countdown = super::Countdown::until(
            &self.events,
            label,
            std::time::Duration::from_millis(total_ms),
            deadline_ms,
        );
        // Inside a guard with `stop_early`, its breach ends the wait.
        let breach = super::frames::breach();
        let tick = if breach.is_some() { 50 } else { 250 };
        let outcome = self.block_on(async {
            loop {
                let left = countdown.remaining_ms();
                if left == 0 || breach.as_ref().is_some_and(|b| b()) {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(left.min(tick))).await;
                countdown.progress();
            }
        });
        drop(countdown);
        outcome.ok_or_else(|| Control::Cancelled.raise(pos))
    }

    /// One-line summary of an error, for the journal.
    pub fn summarize(&self, err: &EvalAltResult) -> String {
        diagnostic::summary(err, &self.main_label, &self.sources)
    }
}

impl Session {
    /// Names in `wanted` that the run's parameters lack.
    pub fn params_missing<'a>(&self, wanted: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        super::params::Params(self.params.clone()).missing(wanted)
    }
}

/// Target identities and step annotations.
impl Session {
    /// Checks that the target `name` is the one the journal recorded (its
    /// `id` field), recording it the first time. A different identity raises
    /// [`Control::IdentityMismatch`]: the run refuses (exit 4) rather than
    /// touching another cluster under the same name.
    pub fn check_identity(
        &self,
        name: &str,
        identity: serde_json::Value,
        pos: Position,
    ) -> Result<(), Box<EvalAltResult>> {
        let mut state = self.state();
        match state.identities.get(name) {
            Some(recorded) if recorded.get("id") == identity.get("id") => Ok(()),
            Some(recorded) => Err(Control::IdentityMismatch {
                name: name.to_owned(),
                recorded: recorded.to_string(),
                found: identity.to_string(),
            }
            .raise(pos)),
            None => {
                state.identities.insert(name.to_owned(), identity);
                if self.mode == Mode::Check {
                    return Ok(());
                }
                let identities = state.identities.clone();
                drop(state);
                self.update_run(pos, |run| run.identities = identities)
            }
        }
    }

    /// The identities recorded so far (the runner saves them with the run).
    pub fn identities(&self) -> BTreeMap<String, serde_json::Value> {
        self.state().identities.clone()
    }
}

/// Async work from the engine thread.
impl Session {
    /// The runtime, to start background work that outlives one call (the
    /// guard's prober); never to block on.
    pub fn spawner(&self) -> &tokio::runtime::Handle {
        &self.rt
    }

    /// Runs `work` on the runtime from this (engine or branch) thread;
    /// Ctrl-C drops it (and any retry or wait inside it) at once: `None`.
    pub fn block_on<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        self.rt.block_on(async {
            tokio::select! {
                value = work => Some(value),
                _ = self.cancel.cancelled() => None,
            }
        })
    }
}
