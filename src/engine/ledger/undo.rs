//! Rollback's side of the ledger: the undo closures collected while the
//! script replays, the steps whose undo could not be collected, and each
//! undo's moves (pending -> running -> done or failed).

use super::moves::{UndoMove, next_undo};
use super::{Ledger, Res, journal_error};
use crate::journal::{Step, StepKind, UndoStatus};
use rhai::{FnPtr, Position};

/// An undo closure collected during rollback replay.
pub struct Undo {
    pub seq: i64,
    pub step: String,
    pub closure: FnPtr,
    #[allow(deprecated)]
    pub context: rhai::NativeCallContextStore,
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

    /// Notes that the rollback's replay stopped at a script error: the undos
    /// collected so far may still be all that is needed.
    pub fn replay_failed(&self, error: String) {
        self.state()
            .collect_stopped
            .get_or_insert(format!("the replay stopped at a script error: {error}"));
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

    /// Keeps what the undo of `name` observed (its guards' statistics,
    /// annotated under the undo's frame `frame`) in the step's record, as
    /// `data.undo`: a rollback's flips are watched and journaled like the
    /// run's. Written before the undo's durable move, which carries it.
    pub fn keep_undo_annotations(&self, name: &str, frame: &str, pos: Position) -> Res<()> {
        let Some(notes) = self.state().annotations.remove(frame) else {
            return Ok(());
        };
        let key = (StepKind::Step, name.to_owned());
        let Some(mut record) = self.state().records.get(&key).cloned() else {
            return Ok(());
        };
        if record.value.is_none() {
            // Replay let the value go (values leave memory once returned);
            // the record is written whole, so read it back from the store.
            let stored = self
                .store
                .steps(&self.run_id)
                .map_err(|e| journal_error(e, pos))?
                .into_iter()
                .find(|s| s.kind == StepKind::Step && s.name == name);
            if let Some(stored) = stored {
                record.value = stored.value;
            }
        }
        let mut data = match record.data.take() {
            Some(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        data.insert(
            "undo".into(),
            serde_json::Value::Object(notes.into_iter().collect()),
        );
        record.data = Some(serde_json::Value::Object(data));
        self.store
            .put_step(&self.run_id, &record, false)
            .map_err(|e| journal_error(e, pos))?;
        record.value = None;
        self.state().records.insert(key, record);
        Ok(())
    }
}
