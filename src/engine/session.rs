//! The state one process shares with every primitive while it drives a run:
//! the journal as loaded, which steps this execution has claimed and replayed,
//! and the undo closures collected for a rollback.

use super::diagnostic::{self, Sources};
use super::signal::Signal;
use super::{Cancel, frames};
use crate::events::{Event, Events};
use crate::journal::{Gate, Step, StepKind, StepStatus, Store, now_ms};
use rhai::{EvalAltResult, FnPtr, NativeCallContext, Position};
use std::collections::{BTreeMap, HashMap, HashSet};
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

/// An undo closure collected during rollback replay.
pub struct Undo {
    pub seq: i64,
    pub step: String,
    pub closure: FnPtr,
    #[allow(deprecated)]
    pub context: rhai::NativeCallContextStore,
}

pub struct Session {
    pub run_id: String,
    pub mode: Mode,
    pub store: Arc<dyn Store>,
    pub events: Events,
    pub cancel: Cancel,
    pub rt: tokio::runtime::Handle,
    pub sources: Arc<Sources>,
    /// Source label of the main script.
    pub main_label: String,
    pub params: Arc<BTreeMap<String, String>>,
    /// The script's hash differs from the one the journal recorded.
    pub script_changed: bool,
    pub allow_changed: bool,
    /// How to reach targets: kubeconfig, rate limits, dry run.
    pub settings: crate::settings::Settings,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    records: HashMap<String, Step>,
    /// Names of the steps completed when this execution started, in order.
    completed_order: Vec<String>,
    replayed: HashSet<String>,
    /// Step names claimed by this execution, with the position that claimed them.
    claimed: HashMap<String, String>,
    gates: HashMap<String, Gate>,
    undos: Vec<Undo>,
    /// The last step failure: (step, summary). Tells the runner that an
    /// uncaught error came from a step (exit 1) rather than the script (exit 2).
    failure: Option<(String, String)>,
    steps_run: u64,
    steps_replayed: u64,
    /// Identities of the run's targets by name, as the journal records them.
    identities: BTreeMap<String, serde_json::Value>,
    /// Data primitives attach to the step they run in (e.g. guard statistics),
    /// merged into the step's record when it ends.
    annotations: HashMap<String, serde_json::Map<String, serde_json::Value>>,
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
    pub script_changed: bool,
    pub allow_changed: bool,
    pub settings: crate::settings::Settings,
    /// Identities the run recorded so far.
    pub identities: BTreeMap<String, serde_json::Value>,
}

impl Session {
    /// Loads the run's journal so replay needs no further reads.
    pub fn new(config: SessionConfig) -> crate::error::Result<Self> {
        let mut state = State {
            identities: config.identities,
            ..State::default()
        };
        if config.mode != Mode::Check {
            for step in config.store.steps(&config.run_id)? {
                if step.status == StepStatus::Completed && step.kind != StepKind::Sleep {
                    state.completed_order.push(step.name.clone());
                }
                state.records.insert(step.name.clone(), step);
            }
            for gate in config.store.gates(&config.run_id)? {
                state.gates.insert(gate.name.clone(), gate);
            }
        }
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
            script_changed: config.script_changed,
            allow_changed: config.allow_changed,
            settings: config.settings,
            state: Mutex::new(state),
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
        let mut parts = position.rsplitn(3, ':');
        let (col, line, label) = (parts.next(), parts.next(), parts.next());
        match (label, line, col) {
            (Some(label), Some(line), Some(col)) => {
                let display = self
                    .sources
                    .get(label)
                    .map(|s| s.display)
                    .unwrap_or_else(|| label.to_owned());
                format!("{display}:{line}:{col}")
            }
            _ => position.to_owned(),
        }
    }

    pub fn check_cancelled(&self, pos: Position) -> Result<(), Box<EvalAltResult>> {
        if self.cancel.is_cancelled() {
            Err(Signal::Cancelled.raise(pos))
        } else {
            Ok(())
        }
    }

    /// Claims a step name for this execution; the error names the first claim.
    pub fn claim(
        &self,
        name: &str,
        position: &str,
        pos: Position,
    ) -> Result<(), Box<EvalAltResult>> {
        let mut state = self.state();
        if let Some(first) = state.claimed.get(name) {
            let first = self.display_position(first);
            return Err(super::signal::runtime_error(
                format!(
                    "duplicate step name `{name}`: already used at {first}; step names must be unique in a run"
                ),
                pos,
            ));
        }
        state.claimed.insert(name.to_owned(), position.to_owned());
        Ok(())
    }

    /// The record of `name` if it completed before; checks it still matches
    /// the script and counts it as replayed.
    pub fn replay(
        &self,
        name: &str,
        position: &str,
        pos: Position,
    ) -> Result<Option<Step>, Box<EvalAltResult>> {
        let mut state = self.state();
        let Some(record) = state
            .records
            .get(name)
            .filter(|r| r.status == StepStatus::Completed)
            .cloned()
        else {
            return Ok(None);
        };
        if record.position != position && !self.allow_changed {
            let detail = format!(
                "recorded at {}, now at {}",
                self.display_position(&record.position),
                self.display_position(position)
            );
            return Err(Signal::Diverged {
                step: name.to_owned(),
                detail,
            }
            .raise(pos));
        }
        state.replayed.insert(name.to_owned());
        state.steps_replayed += 1;
        drop(state);
        if record.position != position {
            // --allow-changed: the step now lives here; later resumes compare against this.
            let mut moved = record.clone();
            moved.position = position.to_owned();
            self.save(&moved, false, pos)?;
        }
        self.forget_value(name);
        self.events.emit(Event::StepReplayed {
            step: name.to_owned(),
            depth: frames::depth(),
        });
        Ok(Some(record))
    }

    /// Before a step runs for the first time in a changed script: every step
    /// completed earlier must have been replayed by now, or the script no
    /// longer takes the path the journal recorded. Branches of `parallel`
    /// interleave freely, so they are not checked.
    pub fn check_not_skipped(
        &self,
        name: &str,
        position: &str,
        pos: Position,
    ) -> Result<(), Box<EvalAltResult>> {
        if !self.script_changed || self.allow_changed || frames::in_branch() {
            return Ok(());
        }
        let state = self.state();
        if let Some(skipped) = state
            .completed_order
            .iter()
            .find(|n| !state.replayed.contains(*n) && *n != name)
        {
            let detail = format!(
                "recorded at {}, but the script now reaches new step `{name}` at {} first",
                state
                    .records
                    .get(skipped)
                    .map(|r| self.display_position(&r.position))
                    .unwrap_or_default(),
                self.display_position(position)
            );
            return Err(Signal::Diverged {
                step: skipped.clone(),
                detail,
            }
            .raise(pos));
        }
        Ok(())
    }

    /// The record of `name`, in whatever state.
    pub fn record(&self, name: &str) -> Option<Step> {
        self.state().records.get(name).cloned()
    }

    /// Writes a record and keeps the in-memory view in step.
    pub fn save(
        &self,
        step: &Step,
        durable: bool,
        pos: Position,
    ) -> Result<(), Box<EvalAltResult>> {
        self.store
            .put_step(&self.run_id, step, durable)
            .map_err(|e| {
                Signal::Journal {
                    message: e.to_string(),
                }
                .raise(pos)
            })?;
        self.state().records.insert(step.name.clone(), step.clone());
        Ok(())
    }

    /// Records a step as started (attempt n+1) and announces it.
    pub fn begin(
        &self,
        name: &str,
        position: &str,
        kind: StepKind,
        pos: Position,
    ) -> Result<Step, Box<EvalAltResult>> {
        let previous = self.record(name);
        let mut step = Step::new(name, position, kind);
        step.attempts = previous.as_ref().map_or(0, |p| p.attempts) + 1;
        step.started_at = Some(now_ms());
        step.data = previous.and_then(|p| p.data);
        self.save(&step, false, pos)?;
        self.state().steps_run += 1;
        if kind == StepKind::Step {
            self.events.emit(Event::StepStarted {
                step: name.to_owned(),
                depth: frames::depth(),
                attempt: step.attempts,
            });
        }
        Ok(step)
    }

    pub fn complete(
        &self,
        mut step: Step,
        value: serde_json::Value,
        pos: Position,
    ) -> Result<(), Box<EvalAltResult>> {
        step.status = StepStatus::Completed;
        step.ended_at = Some(now_ms());
        step.error = None;
        self.take_annotations(&mut step);
        step.value = Some(value.clone());
        self.save(&step, true, pos)?;
        self.forget_value(&step.name);
        if step.kind == StepKind::Step {
            self.events.emit(Event::StepCompleted {
                step: step.name,
                depth: frames::depth(),
                ms: elapsed(&step.started_at),
                value,
            });
        }
        Ok(())
    }

    pub fn fail(
        &self,
        mut step: Step,
        error: String,
        pos: Position,
    ) -> Result<(), Box<EvalAltResult>> {
        step.status = StepStatus::Failed;
        step.ended_at = Some(now_ms());
        step.error = Some(error.clone());
        self.take_annotations(&mut step);
        self.save(&step, true, pos)?;
        self.state().failure = Some((step.name.clone(), error.clone()));
        self.events.emit(Event::StepFailed {
            step: step.name,
            depth: frames::depth(),
            ms: elapsed(&step.started_at),
            error,
        });
        Ok(())
    }

    /// A signal (pause, Ctrl-C) stopped the step before it finished: it will
    /// run again on resume.
    pub fn interrupt(&self, mut step: Step, pos: Position) -> Result<(), Box<EvalAltResult>> {
        step.status = StepStatus::Interrupted;
        step.ended_at = Some(now_ms());
        // What a guard measured before Ctrl-C is worth keeping.
        self.take_annotations(&mut step);
        self.save(&step, true, pos)?;
        self.events.emit(Event::StepInterrupted {
            step: step.name,
            depth: frames::depth(),
        });
        Ok(())
    }

    /// The step failure that produced `summary`, if the uncaught error is one.
    pub fn failed_step(&self, summary: &str) -> Option<String> {
        self.state()
            .failure
            .as_ref()
            .filter(|(_, s)| s == summary)
            .map(|(name, _)| name.clone())
    }

    pub fn gate(&self, name: &str) -> Option<Gate> {
        self.state().gates.get(name).cloned()
    }

    pub fn request_gate(&self, gate: Gate, pos: Position) -> Result<(), Box<EvalAltResult>> {
        self.store.put_gate(&self.run_id, &gate).map_err(|e| {
            Signal::Journal {
                message: e.to_string(),
            }
            .raise(pos)
        })?;
        self.state().gates.insert(gate.name.clone(), gate);
        Ok(())
    }

    pub fn collect_undo(&self, undo: Undo) {
        self.state().undos.push(undo);
    }

    /// The collected undo closures, newest step first.
    pub fn take_undos(&self) -> Vec<Undo> {
        let mut undos = std::mem::take(&mut self.state().undos);
        undos.sort_by_key(|u| std::cmp::Reverse(u.seq));
        undos
    }

    pub fn counts(&self) -> (u64, u64) {
        let state = self.state();
        (state.steps_run, state.steps_replayed)
    }

    /// Blocks this (engine) thread until `deadline_ms`, showing a countdown;
    /// Ctrl-C ends the wait with [`Signal::Cancelled`].
    pub fn wait_until(
        &self,
        deadline_ms: i64,
        total_ms: u64,
        label: &str,
        pos: Position,
    ) -> Result<(), Box<EvalAltResult>> {
        let step = frames::current();
        let remaining = |now: i64| (deadline_ms - now).max(0) as u64;
        self.events.emit(Event::WaitStarted {
            step: step.clone(),
            depth: frames::depth(),
            label: label.to_owned(),
            total_ms,
            remaining_ms: remaining(now_ms()),
        });
        let outcome = self.rt.block_on(async {
            loop {
                let left = remaining(now_ms());
                if left == 0 {
                    return Ok(());
                }
                let tick = std::time::Duration::from_millis(left.min(250));
                tokio::select! {
                    _ = tokio::time::sleep(tick) => {}
                    _ = self.cancel.cancelled() => return Err(()),
                }
                self.events.emit(Event::WaitProgress {
                    step: step.clone(),
                    label: label.to_owned(),
                    remaining_ms: remaining(now_ms()),
                });
            }
        });
        self.events.emit(Event::WaitEnded {
            step,
            label: label.to_owned(),
        });
        outcome.map_err(|()| Signal::Cancelled.raise(pos))
    }

    /// One-line summary of an error, for the journal.
    pub fn summarize(&self, err: &EvalAltResult) -> String {
        diagnostic::summary(err, &self.main_label, &self.sources)
    }
}

fn elapsed(started_at: &Option<i64>) -> u64 {
    started_at.map_or(0, |s| (now_ms() - s).max(0) as u64)
}

impl Session {
    /// Names in `wanted` that the run's parameters lack.
    pub fn params_missing<'a>(&self, wanted: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        crate::primitives::params::Params(self.params.clone()).missing(wanted)
    }
}

/// Target identities and step annotations.
impl Session {
    /// Checks that the target `name` is the one the journal recorded (its
    /// `id` field), recording it the first time. A different identity raises
    /// [`Signal::IdentityMismatch`]: the run refuses (exit 4) rather than
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
            Some(recorded) => Err(Signal::IdentityMismatch {
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
                let journal = |e: crate::error::Error| {
                    Signal::Journal {
                        message: e.to_string(),
                    }
                    .raise(pos)
                };
                let mut run = self
                    .store
                    .run(&self.run_id)
                    .map_err(journal)?
                    .ok_or_else(|| {
                        Signal::Journal {
                            message: format!("run `{}` vanished from the journal", self.run_id),
                        }
                        .raise(pos)
                    })?;
                run.identities = identities;
                self.store.update_run(&run).map_err(journal)
            }
        }
    }

    /// The identities recorded so far (the runner saves them with the run).
    pub fn identities(&self) -> BTreeMap<String, serde_json::Value> {
        self.state().identities.clone()
    }

    /// Attaches `key: value` to the innermost running step's record (its
    /// `data`), written when the step completes or fails. Returns false
    /// outside a step.
    pub fn annotate(&self, key: &str, value: serde_json::Value) -> bool {
        let Some(step) = frames::current() else {
            return false;
        };
        self.state()
            .annotations
            .entry(step)
            .or_default()
            .insert(key.to_owned(), value);
        true
    }

    /// Merges pending annotations of `step` into its data.
    fn take_annotations(&self, step: &mut Step) {
        let Some(notes) = self.state().annotations.remove(&step.name) else {
            return;
        };
        let mut data = match step.data.take() {
            Some(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        data.extend(notes);
        step.data = Some(serde_json::Value::Object(data));
    }
}

/// Async work from the engine thread.
impl Session {
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

/// Memory and undo bookkeeping.
impl Session {
    /// Drops a step's value from memory once it is journaled and returned:
    /// nothing reads it again in this process (names are unique), and a
    /// fleet's values (whole Kubernetes objects) would otherwise pile up.
    fn forget_value(&self, name: &str) {
        if let Some(record) = self.state().records.get_mut(name) {
            record.value = None;
        }
    }

    /// Records the progress of a step's undo (durably), touching nothing else
    /// of the step's record.
    pub fn set_undo(
        &self,
        name: &str,
        undo: crate::journal::UndoStatus,
        error: Option<String>,
        pos: Position,
    ) -> Result<(), Box<EvalAltResult>> {
        self.store
            .set_undo(&self.run_id, name, undo, error.as_deref())
            .map_err(|e| {
                Signal::Journal {
                    message: e.to_string(),
                }
                .raise(pos)
            })?;
        if let Some(record) = self.state().records.get_mut(name) {
            record.undo = undo;
            record.undo_error = error;
        }
        Ok(())
    }
}
