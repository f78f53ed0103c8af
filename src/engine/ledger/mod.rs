//! The step ledger: the one owner of a run's journal records. Steps, gates,
//! durable timers and undos enter and leave through it, and every change of
//! a record's status is a move in one of the two tables in [`moves`], so the
//! state machine can be read in one place and an illegal move is a journal
//! error instead of a silently wrong record.
//!
//! `step`, `pause` and `sleep` are thin callers: [`Ledger::enter`] says
//! whether a record replays (completed before) or must run
//! ([`Entry::Fresh`]); [`Ledger::start`] begins an [`Attempt`], which ends
//! through [`Ledger::complete`], [`Ledger::fail`], [`Ledger::interrupt`] or
//! [`Ledger::wait`]. Records are keyed by (kind, name): a timer or a gate
//! lives in its own namespace and cannot collide with a user's step.
//! Rollback's side is in [`undo`]; attempt data in [`annotations`].

mod annotations;
mod moves;
mod undo;

pub use moves::{Move, UndoMove};
pub use undo::Undo;

use super::control::{Control, runtime_error};
use super::diagnostic::Sources;
use super::frames;
use crate::events::{Event, Events};
use crate::journal::{Gate, Step, StepKind, StepStatus, Store, UndoStatus, now_ms};
use annotations::carry_over;
use moves::next_status;
use rhai::{EvalAltResult, Position};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Where [`Ledger::enter`] found a record.
pub enum Entry {
    /// Completed before: return its value without running the body.
    Replayed(Replayed),
    /// Not completed: the previous attempt's record, if there was one.
    Fresh(Option<Step>),
}

/// What a replay needs of a completed record (no copy of the rest: a
/// resume replays every completed step).
pub struct Replayed {
    /// The journaled value (`None`: the body returned nothing to keep).
    pub value: Option<Value>,
    /// Order of first start, which orders undos.
    pub seq: i64,
    pub undo: UndoStatus,
}

/// An attempt under way: the record as it will be written when it ends.
pub struct Attempt {
    record: Step,
}

impl Attempt {
    pub fn record(&self) -> &Step {
        &self.record
    }
}

/// How the ledger compares a script against its journal. A changed script
/// or module never gets this far without `--allow-changed` (the runner
/// refuses it with a diff first), so the one choice left is whether a
/// completed step that moved replays where it now is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Replay {
    /// `--allow-changed`: steps match by name wherever they now are.
    pub allow_changed: bool,
}

type Key = (StepKind, String);

#[derive(Default)]
struct State {
    records: HashMap<Key, Step>,
    /// Steps with nested steps in the journal.
    parents: HashSet<String>,
    /// Records claimed by this execution, with the position that claimed them.
    claimed: HashMap<Key, String>,
    gates: HashMap<String, Gate>,
    undos: Vec<Undo>,
    /// Steps whose undo closure this rollback collected.
    collected: HashSet<String>,
    /// Where replaying a step's body for its nested undos had to stop.
    collect_stopped: Option<String>,
    /// The last step failure. Tells the runner that an uncaught error came
    /// from a step (exit 1) rather than the script (exit 2).
    failure: Option<FailureMark>,
    steps_run: u64,
    steps_replayed: u64,
    /// What primitives attach to the attempt of the step they run in (guard
    /// statistics), in order, merged into the record when it ends.
    annotations: HashMap<String, Vec<(String, Value)>>,
}

/// Which error a step failed with: the variant and position of the
/// innermost error (what Rhai's call wrappers carry unchanged to the top).
struct FailureMark {
    step: String,
    kind: std::mem::Discriminant<EvalAltResult>,
    at: Position,
}

/// The error inside Rhai's function-call and module wrappers.
fn innermost(err: &EvalAltResult) -> &EvalAltResult {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => innermost(inner),
        other => other,
    }
}

pub struct Ledger {
    run_id: String,
    store: Arc<dyn Store>,
    events: Events,
    sources: Arc<Sources>,
    replay: Replay,
    state: Mutex<State>,
}

pub(super) fn journal_error(e: impl std::fmt::Display, pos: Position) -> Box<EvalAltResult> {
    Control::Journal {
        message: e.to_string(),
    }
    .raise(pos)
}

impl Ledger {
    /// Takes the run's records as the store holds them, and loads its
    /// gates; `None` for a session that runs nothing (`ferry check`).
    pub fn load(
        store: Arc<dyn Store>,
        run_id: &str,
        events: Events,
        sources: Arc<Sources>,
        replay: Replay,
        records: Option<Vec<Step>>,
    ) -> crate::error::Result<Ledger> {
        let mut state = State::default();
        if let Some(records) = records {
            for step in records {
                if let Some(parent) = &step.parent {
                    state.parents.insert(parent.clone());
                }
                state.records.insert((step.kind, step.name.clone()), step);
            }
            for gate in store.gates(run_id)? {
                state.gates.insert(gate.name.clone(), gate);
            }
        }
        Ok(Ledger {
            run_id: run_id.to_owned(),
            store,
            events,
            sources,
            replay,
            state: Mutex::new(state),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims (kind, name) for this execution and looks its record up. A
    /// completed record must still be where the script recorded it (unless
    /// `--allow-changed`), and counts as replayed.
    pub fn enter(&self, kind: StepKind, name: &str, position: &str, pos: Position) -> Res<Entry> {
        let key = (kind, name.to_owned());
        let mut state = self.state();
        if let Some(first) = state.claimed.get(&key) {
            let first = self.sources.display_position(first);
            let what = match kind {
                StepKind::Gate => "gate",
                StepKind::Phase => "phase",
                _ => "step",
            };
            return Err(runtime_error(
                format!(
                    "duplicate {what} name `{name}`: already used at {first}; {what} names must be unique in a run"
                ),
                pos,
            ));
        }
        let Some(kept) = state.records.get_mut(&key) else {
            state.claimed.insert(key, position.to_owned());
            return Ok(Entry::Fresh(None));
        };
        if kept.status != StepStatus::Completed {
            let record = kept.clone();
            state.claimed.insert(key, position.to_owned());
            return Ok(Entry::Fresh(Some(record)));
        }
        // Values leave memory once returned: names are unique, nothing reads
        // them again, and a fleet's values (whole objects) would pile up.
        let replayed = Replayed {
            value: kept.value.take(),
            seq: kept.seq,
            undo: kept.undo,
        };
        let moved = (kept.position != position).then(|| kept.clone());
        if let Some(moved) = &moved
            && !self.replay.allow_changed
        {
            let detail = format!(
                "recorded at {}, now at {}",
                self.sources.display_position(&moved.position),
                self.sources.display_position(position)
            );
            return Err(Control::Diverged {
                step: name.to_owned(),
                detail,
            }
            .raise(pos));
        }
        state.claimed.insert(key, position.to_owned());
        state.steps_replayed += 1;
        drop(state);
        if let Some(mut moved) = moved {
            // --allow-changed: the record now lives here; later resumes compare against this.
            moved.position = position.to_owned();
            self.write(&moved, false, pos)?;
        }
        if kind == StepKind::Step {
            self.events.emit(Event::StepReplayed {
                step: name.to_owned(),
                depth: frames::depth(),
            });
        }
        Ok(Entry::Replayed(replayed))
    }

    /// Begins an attempt of a record that [`Ledger::enter`] found fresh.
    /// Only a step's or gate's start is announced; a timer's start is
    /// durable (its deadline is what a resume honours).
    pub fn start(
        &self,
        kind: StepKind,
        name: &str,
        position: &str,
        with_undo: bool,
        pos: Position,
    ) -> Res<Attempt> {
        self.begin(kind, name, position, with_undo, None, pos)
    }

    /// Begins a gate's attempt; `data` holds who may approve it.
    pub fn start_gate(
        &self,
        name: &str,
        position: &str,
        data: Option<Value>,
        pos: Position,
    ) -> Res<Attempt> {
        self.begin(StepKind::Gate, name, position, false, data, pos)
    }

    /// Begins a durable timer with its deadline (`data`), written durably
    /// before it waits: the deadline is what a resume honours.
    pub fn start_timer(
        &self,
        name: &str,
        position: &str,
        data: Value,
        pos: Position,
    ) -> Res<Attempt> {
        self.begin(StepKind::Sleep, name, position, false, Some(data), pos)
    }

    /// Begins the record of a phase a script declares (`phase(app, name)`),
    /// `data` saying which app reached which phase; it completes at once.
    pub fn start_phase(
        &self,
        name: &str,
        position: &str,
        data: Value,
        pos: Position,
    ) -> Res<Attempt> {
        self.begin(StepKind::Phase, name, position, false, Some(data), pos)
    }

    fn begin(
        &self,
        kind: StepKind,
        name: &str,
        position: &str,
        with_undo: bool,
        data: Option<Value>,
        pos: Position,
    ) -> Res<Attempt> {
        let previous = self.state().records.get(&(kind, name.to_owned())).cloned();
        let status = self.transition(previous.as_ref(), Move::Start, name, pos)?;
        let mut record = Step::new(name, position, kind);
        record.status = status;
        record.attempts = previous.as_ref().map_or(0, |p| p.attempts) + 1;
        record.started_at = Some(now_ms());
        record.parent = frames::current();
        record.data = data.or_else(|| previous.as_ref().and_then(carry_over));
        if with_undo {
            // Written with the start: a step killed half-way is undone too.
            record.undo = UndoStatus::Pending;
        }
        self.write(&record, kind == StepKind::Sleep, pos)?;
        self.state().annotations.remove(name);
        if kind == StepKind::Step {
            self.state().steps_run += 1;
            self.events.emit(Event::StepStarted {
                step: name.to_owned(),
                depth: frames::depth(),
                attempt: record.attempts,
            });
        }
        Ok(Attempt { record })
    }

    /// Continues an attempt that a previous process began and left running
    /// (a timer whose deadline is recorded) or waiting (a gate).
    pub fn adopt(&self, record: Step) -> Attempt {
        Attempt { record }
    }

    /// Ends an attempt with its value: one durable write (a timer's is not
    /// fsync'd: if lost, its deadline has passed and it ends again at once).
    pub fn complete(&self, attempt: Attempt, value: Value, pos: Position) -> Res<()> {
        let mut step = attempt.record;
        step.status = self.transition(Some(&step), Move::Complete, &step.name, pos)?;
        step.ended_at = Some(now_ms());
        step.error = None;
        self.take_annotations(&mut step);
        step.value = Some(value.clone());
        self.write(&step, step.kind != StepKind::Sleep, pos)?;
        if let Some(kept) = self
            .state()
            .records
            .get_mut(&(step.kind, step.name.clone()))
        {
            kept.value = None;
        }
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

    /// Ends an attempt as failed with `error` (its summary); `cause` is the
    /// error the step raises, so the runner can tell it from a script error.
    pub fn fail(
        &self,
        attempt: Attempt,
        error: String,
        cause: Option<&EvalAltResult>,
        pos: Position,
    ) -> Res<()> {
        let mut step = attempt.record;
        step.status = self.transition(Some(&step), Move::Fail, &step.name, pos)?;
        step.ended_at = Some(now_ms());
        step.error = Some(error.clone());
        self.take_annotations(&mut step);
        self.write(&step, true, pos)?;
        if let Some(cause) = cause.map(innermost) {
            self.state().failure = Some(FailureMark {
                step: step.name.clone(),
                kind: std::mem::discriminant(cause),
                at: cause.position(),
            });
        }
        self.events.emit(Event::StepFailed {
            step: step.name,
            depth: frames::depth(),
            ms: elapsed(&step.started_at),
            error,
        });
        Ok(())
    }

    /// A signal (a gate, Ctrl-C) stopped the attempt before it finished: it
    /// runs again on resume. What a guard measured so far is kept.
    pub fn interrupt(&self, attempt: Attempt, pos: Position) -> Res<()> {
        let mut step = attempt.record;
        step.status = self.transition(Some(&step), Move::Interrupt, &step.name, pos)?;
        step.ended_at = Some(now_ms());
        self.take_annotations(&mut step);
        self.write(&step, true, pos)?;
        if step.kind == StepKind::Step {
            self.events.emit(Event::StepInterrupted {
                step: step.name,
                depth: frames::depth(),
            });
        }
        Ok(())
    }

    /// A gate's attempt waits for its approval.
    pub fn wait(&self, attempt: Attempt, pos: Position) -> Res<()> {
        let mut step = attempt.record;
        step.status = self.transition(Some(&step), Move::Wait, &step.name, pos)?;
        self.write(&step, true, pos)
    }

    fn transition(
        &self,
        from: Option<&Step>,
        mv: Move,
        name: &str,
        pos: Position,
    ) -> Res<StepStatus> {
        let status = from.map(|s| s.status);
        next_status(status, mv).ok_or_else(|| {
            journal_error(
                format!(
                    "illegal journal move {mv:?} of `{name}` from {}",
                    status.map_or("no record".to_owned(), |s| s.to_string())
                ),
                pos,
            )
        })
    }

    /// Writes a record and keeps the in-memory view in step.
    fn write(&self, step: &Step, durable: bool, pos: Position) -> Res<()> {
        self.store
            .put_step(&self.run_id, step, durable)
            .map_err(|e| journal_error(e, pos))?;
        self.state()
            .records
            .insert((step.kind, step.name.clone()), step.clone());
        Ok(())
    }

    /// The record of (kind, name), in whatever state.
    pub fn record(&self, kind: StepKind, name: &str) -> Option<Step> {
        self.state().records.get(&(kind, name.to_owned())).cloned()
    }

    /// The step whose failure `err` is, if the uncaught error is one (and
    /// not a script error raised after a step failure was caught).
    pub fn failed_step(&self, err: &EvalAltResult) -> Option<String> {
        let err = innermost(err);
        self.state()
            .failure
            .as_ref()
            .filter(|m| m.kind == std::mem::discriminant(err) && m.at == err.position())
            .map(|m| m.step.clone())
    }

    /// Steps run and replayed by this execution.
    pub fn counts(&self) -> (u64, u64) {
        let state = self.state();
        (state.steps_run, state.steps_replayed)
    }
}

/// Gates.
impl Ledger {
    pub fn gate(&self, name: &str) -> Option<Gate> {
        self.state().gates.get(name).cloned()
    }

    pub fn request_gate(&self, gate: Gate, pos: Position) -> Res<()> {
        self.store
            .put_gate(&self.run_id, &gate)
            .map_err(|e| journal_error(e, pos))?;
        self.state().gates.insert(gate.name.clone(), gate);
        Ok(())
    }
}

fn elapsed(started_at: &Option<i64>) -> u64 {
    started_at.map_or(0, |s| (now_ms() - s).max(0) as u64)
}
