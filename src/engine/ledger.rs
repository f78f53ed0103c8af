//! The step ledger: the one owner of a run's journal records. Steps, gates,
//! durable timers and undos enter and leave through it, and every change of
//! a record's status is a move in one of the two tables below, so the state
//! machine can be read in one place and an illegal move is a journal error
//! instead of a silently wrong record.
//!
//! `step`, `pause` and `sleep` are thin callers: [`Ledger::enter`] says
//! whether a record replays (completed before) or must run
//! ([`Entry::Fresh`]); [`Ledger::start`] begins an [`Attempt`], which ends
//! through [`Ledger::complete`], [`Ledger::fail`], [`Ledger::interrupt`] or
//! [`Ledger::wait`]. Records are keyed by (kind, name): a timer or a gate
//! lives in its own namespace and cannot collide with a user's step.

use super::diagnostic::Sources;
use super::frames;
use super::signal::{Signal, runtime_error};
use crate::events::{Event, Events};
use crate::journal::{Gate, Step, StepKind, StepStatus, Store, UndoStatus, now_ms};
use rhai::{EvalAltResult, FnPtr, Position};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// What happens to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// An attempt begins (the first, or a re-run of one that did not complete).
    Start,
    Complete,
    Fail,
    /// A signal (Ctrl-C, a gate inside the body) stopped it; it runs again.
    Interrupt,
    /// A gate waits for its approval.
    Wait,
}

/// Every legal move of a record: (from, move) -> to. `None` is "no record
/// yet". A completed record never moves again: it only replays.
const TRANSITIONS: &[(Option<StepStatus>, Move, StepStatus)] = {
    use Move::*;
    use StepStatus::*;
    &[
        (None, Start, Running),
        // The process died during the attempt: it runs again.
        (Some(Running), Start, Running),
        (Some(Failed), Start, Running),
        (Some(Interrupted), Start, Running),
        (Some(Running), Complete, Completed),
        (Some(Running), Fail, Failed),
        (Some(Running), Interrupt, Interrupted),
        (Some(Running), Wait, Waiting),
        // An approved gate passes.
        (Some(Waiting), Complete, Completed),
    ]
};

/// What happens to a step's undo during a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoMove {
    Start,
    Finish,
    Fail,
    /// Ctrl-C: the undo runs again on the next rollback.
    Interrupt,
}

/// Every legal move of an undo: (from, move) -> to.
const UNDO_TRANSITIONS: &[(UndoStatus, UndoMove, UndoStatus)] = {
    use UndoMove::*;
    use UndoStatus::*;
    &[
        (Pending, Start, Running),
        // The process died during the undo: it runs again.
        (Running, Start, Running),
        (Failed, Start, Running),
        (Running, Finish, Done),
        (Running, Fail, Failed),
        (Running, Interrupt, Pending),
    ]
};

fn next_status(from: Option<StepStatus>, mv: Move) -> Option<StepStatus> {
    TRANSITIONS
        .iter()
        .find(|(f, m, _)| *f == from && *m == mv)
        .map(|(_, _, to)| *to)
}

fn next_undo(from: UndoStatus, mv: UndoMove) -> Option<UndoStatus> {
    UNDO_TRANSITIONS
        .iter()
        .find(|(f, m, _)| *f == from && *m == mv)
        .map(|(_, _, to)| *to)
}

/// Where [`Ledger::enter`] found a record.
pub enum Entry {
    /// Completed before: return its value without running the body.
    Replayed(Step),
    /// Not completed: the previous attempt's record, if there was one.
    Fresh(Option<Step>),
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

/// An undo closure collected during rollback replay.
pub struct Undo {
    pub seq: i64,
    pub step: String,
    pub closure: FnPtr,
    #[allow(deprecated)]
    pub context: rhai::NativeCallContextStore,
}

/// How the ledger compares a script against its journal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Replay {
    /// The script's hash differs from the journal's (a run recorded before
    /// sources were journaled): completed steps must still be reached in order.
    pub script_changed: bool,
    /// `--allow-changed`: steps match by name wherever they now are.
    pub allow_changed: bool,
}

type Key = (StepKind, String);

#[derive(Default)]
struct State {
    records: HashMap<Key, Step>,
    /// Steps and gates completed when this execution started, in order.
    completed_order: Vec<Key>,
    /// Steps with nested steps in the journal.
    parents: HashSet<String>,
    replayed: HashSet<Key>,
    /// Records claimed by this execution, with the position that claimed them.
    claimed: HashMap<Key, String>,
    gates: HashMap<String, Gate>,
    undos: Vec<Undo>,
    /// Steps whose undo closure this rollback collected.
    collected: HashSet<String>,
    /// Where replaying a step's body for its nested undos had to stop.
    collect_stopped: Option<String>,
    /// The last step failure: (step, summary). Tells the runner that an
    /// uncaught error came from a step (exit 1) rather than the script (exit 2).
    failure: Option<(String, String)>,
    steps_run: u64,
    steps_replayed: u64,
    /// What primitives attach to the attempt of the step they run in (guard
    /// statistics), in order, merged into the record when it ends.
    annotations: HashMap<String, Vec<(String, Value)>>,
}

pub struct Ledger {
    run_id: String,
    store: Arc<dyn Store>,
    events: Events,
    sources: Arc<Sources>,
    replay: Replay,
    state: Mutex<State>,
}

fn journal_error(e: impl std::fmt::Display, pos: Position) -> Box<EvalAltResult> {
    Signal::Journal {
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
                if step.status == StepStatus::Completed && step.kind != StepKind::Sleep {
                    state.completed_order.push((step.kind, step.name.clone()));
                }
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
        let value = kept.value.take();
        let mut record = kept.clone();
        record.value = value;
        state.claimed.insert(key.clone(), position.to_owned());
        if record.position != position && !self.replay.allow_changed {
            let detail = format!(
                "recorded at {}, now at {}",
                self.sources.display_position(&record.position),
                self.sources.display_position(position)
            );
            return Err(Signal::Diverged {
                step: name.to_owned(),
                detail,
            }
            .raise(pos));
        }
        if self.replay.script_changed {
            // Only a changed script asks which completed steps were reached.
            state.replayed.insert(key);
        }
        state.steps_replayed += 1;
        drop(state);
        if record.position != position {
            // --allow-changed: the record now lives here; later resumes compare against this.
            let mut moved = record.clone();
            moved.position = position.to_owned();
            moved.value = None;
            self.write(&moved, false, pos)?;
        }
        if kind == StepKind::Step {
            self.events.emit(Event::StepReplayed {
                step: name.to_owned(),
                depth: frames::depth(),
            });
        }
        Ok(Entry::Replayed(record))
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

    fn begin(
        &self,
        kind: StepKind,
        name: &str,
        position: &str,
        with_undo: bool,
        data: Option<Value>,
        pos: Position,
    ) -> Res<Attempt> {
        if kind != StepKind::Sleep {
            self.check_not_skipped(name, position, pos)?;
        }
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

    pub fn fail(&self, attempt: Attempt, error: String, pos: Position) -> Res<()> {
        let mut step = attempt.record;
        step.status = self.transition(Some(&step), Move::Fail, &step.name, pos)?;
        step.ended_at = Some(now_ms());
        step.error = Some(error.clone());
        self.take_annotations(&mut step);
        self.write(&step, true, pos)?;
        self.state().failure = Some((step.name.clone(), error.clone()));
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

    /// Before a record runs for the first time in a changed script: every
    /// step completed earlier must have been replayed by now, or the script
    /// no longer takes the path the journal recorded. Branches of `parallel`
    /// interleave freely, so they are not checked.
    fn check_not_skipped(&self, name: &str, position: &str, pos: Position) -> Res<()> {
        if !self.replay.script_changed || self.replay.allow_changed || frames::in_branch() {
            return Ok(());
        }
        let state = self.state();
        if let Some(skipped) = state
            .completed_order
            .iter()
            .find(|k| !state.replayed.contains(*k) && k.1 != name)
        {
            let detail = format!(
                "recorded at {}, but the script now reaches new step `{name}` at {} first",
                state
                    .records
                    .get(skipped)
                    .map(|r| self.sources.display_position(&r.position))
                    .unwrap_or_default(),
                self.sources.display_position(position)
            );
            return Err(Signal::Diverged {
                step: skipped.1.clone(),
                detail,
            }
            .raise(pos));
        }
        Ok(())
    }

    /// The record of (kind, name), in whatever state.
    pub fn record(&self, kind: StepKind, name: &str) -> Option<Step> {
        self.state().records.get(&(kind, name.to_owned())).cloned()
    }

    /// The step failure that produced `summary`, if the uncaught error is one.
    pub fn failed_step(&self, summary: &str) -> Option<String> {
        self.state()
            .failure
            .as_ref()
            .filter(|(_, s)| s == summary)
            .map(|(name, _)| name.clone())
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

/// Undos.
impl Ledger {
    /// Whether the journal has steps nested in `name`'s body.
    pub fn has_children(&self, name: &str) -> bool {
        self.state().parents.contains(name)
    }

    pub fn collect_undo(&self, undo: Undo) {
        let mut state = self.state();
        state.collected.insert(undo.step.clone());
        state.undos.push(undo);
    }

    /// Replaying `step`'s body for its nested undos stopped at `what`.
    pub fn collect_stopped(&self, step: &str, what: String) {
        self.state().collect_stopped.get_or_insert(format!(
            "replaying the body of `{step}` for its nested steps stopped at {what}"
        ));
    }

    /// The collected undo closures, newest first: by the order steps first
    /// started, so nested steps' undos run before their parent's.
    pub fn take_undos(&self) -> Vec<Undo> {
        let mut undos = std::mem::take(&mut self.state().undos);
        undos.sort_by_key(|u| std::cmp::Reverse(u.seq));
        undos
    }

    /// Steps that carry an undo not yet done whose closure this rollback did
    /// not collect, newest first, with why collecting stopped (if it did).
    pub fn uncollected(&self) -> (Vec<Step>, Option<String>) {
        let state = self.state();
        let mut missing: Vec<Step> = state
            .records
            .values()
            .filter(|s| {
                s.kind == StepKind::Step
                    && matches!(
                        s.undo,
                        UndoStatus::Pending | UndoStatus::Running | UndoStatus::Failed
                    )
                    && !state.collected.contains(&s.name)
            })
            .cloned()
            .collect();
        missing.sort_by_key(|s| std::cmp::Reverse(s.seq));
        (missing, state.collect_stopped.clone())
    }

    /// Moves the undo of step `name` (durably), touching nothing else of
    /// its record.
    pub fn undo_move(
        &self,
        name: &str,
        mv: UndoMove,
        error: Option<String>,
        pos: Position,
    ) -> Res<()> {
        let from = self
            .record(StepKind::Step, name)
            .map_or(UndoStatus::None, |r| r.undo);
        let to = next_undo(from, mv).ok_or_else(|| {
            journal_error(
                format!("illegal journal move {mv:?} of the undo of `{name}` from {from}"),
                pos,
            )
        })?;
        self.store
            .set_undo(&self.run_id, name, to, error.as_deref())
            .map_err(|e| journal_error(e, pos))?;
        if let Some(record) = self
            .state()
            .records
            .get_mut(&(StepKind::Step, name.to_owned()))
        {
            record.undo = to;
            record.undo_error = error;
        }
        Ok(())
    }
}

/// Annotations: data primitives attach to the attempt they run in.
impl Ledger {
    /// Attaches `key: value` to the innermost running step's attempt,
    /// written when it ends. Returns false outside a step.
    pub fn annotate(&self, key: &str, value: Value) -> bool {
        let Some(step) = frames::current() else {
            return false;
        };
        let mut state = self.state();
        let notes = state.annotations.entry(step).or_default();
        notes.retain(|(k, _)| k != key);
        notes.push((key.to_owned(), value));
        true
    }

    /// Attaches a guard's statistics to the innermost step's attempt: `guard`
    /// for its first guard, `guard#2`, `guard#3`... for the next ones.
    pub fn annotate_guard(&self, stats: Value) -> bool {
        let Some(step) = frames::current() else {
            return false;
        };
        let mut state = self.state();
        let notes = state.annotations.entry(step).or_default();
        let n = notes.iter().filter(|(k, _)| k.starts_with("guard")).count() + 1;
        let key = if n == 1 {
            "guard".to_owned()
        } else {
            format!("guard#{n}")
        };
        notes.push((key, stats));
        true
    }

    /// Merges the attempt's annotations into its record's data.
    fn take_annotations(&self, step: &mut Step) {
        let Some(notes) = self.state().annotations.remove(&step.name) else {
            return;
        };
        let mut data = match step.data.take() {
            Some(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        data.extend(notes);
        step.data = Some(Value::Object(data));
    }
}

/// What a new attempt keeps of the previous attempt's data. A step's new
/// attempt observes afresh: the previous attempt (its number, how it ended,
/// its guard statistics) joins `previous_attempts`, and the new attempt's
/// own guard keys start empty. Other kinds keep their data (a timer's deadline).
fn carry_over(previous: &Step) -> Option<Value> {
    if previous.kind != StepKind::Step {
        return previous.data.clone();
    }
    let mut map = match &previous.data {
        Some(Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    };
    let mut history = match map.remove("previous_attempts") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let mut entry = serde_json::Map::new();
    entry.insert("attempt".into(), previous.attempts.into());
    // A record still running was stopped by the process ending (kill -9).
    let ended = match previous.status {
        StepStatus::Running => "stopped",
        status => status.as_str(),
    };
    entry.insert("status".into(), ended.into());
    let guards: Vec<String> = map
        .keys()
        .filter(|k| k.starts_with("guard"))
        .cloned()
        .collect();
    for key in guards {
        if let Some(stats) = map.remove(&key) {
            entry.insert(key, stats);
        }
    }
    history.push(Value::Object(entry));
    map.insert("previous_attempts".into(), Value::Array(history));
    Some(Value::Object(map))
}

fn elapsed(started_at: &Option<i64>) -> u64 {
    started_at.map_or(0, |s| (now_ms() - s).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completed_record_never_moves() {
        for mv in [
            Move::Start,
            Move::Complete,
            Move::Fail,
            Move::Interrupt,
            Move::Wait,
        ] {
            assert_eq!(next_status(Some(StepStatus::Completed), mv), None, "{mv:?}");
        }
    }

    #[test]
    fn every_unfinished_record_can_start_again() {
        for from in [
            None,
            Some(StepStatus::Running),
            Some(StepStatus::Failed),
            Some(StepStatus::Interrupted),
        ] {
            assert_eq!(next_status(from, Move::Start), Some(StepStatus::Running));
        }
        // A waiting gate passes only by approval.
        assert_eq!(next_status(Some(StepStatus::Waiting), Move::Start), None);
        assert_eq!(
            next_status(Some(StepStatus::Waiting), Move::Complete),
            Some(StepStatus::Completed)
        );
    }

    #[test]
    fn a_done_undo_never_runs_again_and_an_interrupted_one_does() {
        assert_eq!(next_undo(UndoStatus::Done, UndoMove::Start), None);
        assert_eq!(next_undo(UndoStatus::None, UndoMove::Start), None);
        assert_eq!(
            next_undo(UndoStatus::Running, UndoMove::Interrupt),
            Some(UndoStatus::Pending)
        );
        assert_eq!(
            next_undo(UndoStatus::Running, UndoMove::Start),
            Some(UndoStatus::Running)
        );
    }

    #[test]
    fn a_new_attempt_keeps_the_history_of_the_previous_ones() {
        let mut first = Step::new("flip", "a.rhai:1:1", StepKind::Step);
        first.attempts = 1;
        first.status = StepStatus::Interrupted;
        first.data = Some(serde_json::json!({ "guard": { "requests": 6 } }));
        let carried = carry_over(&first).unwrap_or_default();
        assert_eq!(
            carried,
            serde_json::json!({ "previous_attempts": [
                { "attempt": 1, "status": "interrupted", "guard": { "requests": 6 } }
            ] })
        );
        let mut second = first.clone();
        second.attempts = 2;
        second.status = StepStatus::Running;
        let mut data = carried.as_object().cloned().unwrap_or_default();
        data.insert("guard".into(), serde_json::json!({ "requests": 300 }));
        second.data = Some(Value::Object(data));
        let carried = carry_over(&second).unwrap_or_default();
        assert_eq!(carried["previous_attempts"][1]["status"], "stopped");
        assert_eq!(carried["previous_attempts"][1]["guard"]["requests"], 300);
        assert!(carried.get("guard").is_none());
    }
}
