//! An in-memory [`Store`]: for `ferry check`, `ferry docs` and tests.

use super::{Claim, Gate, Holder, LockState, Run, RunLock, Step, Store};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    /// Held locks by run, with their holder's description.
    locks: Arc<Mutex<HashMap<String, String>>>,
}

#[derive(Default)]
struct State {
    runs: BTreeMap<String, Run>,
    steps: BTreeMap<String, Vec<Step>>,
    gates: BTreeMap<String, Vec<Gate>>,
    claims: BTreeMap<String, Claim>,
    next_seq: i64,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-written: every
        // method finishes its mutation before returning.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct MemoryLock {
    locks: Arc<Mutex<HashMap<String, String>>>,
    run: String,
}

impl Drop for MemoryLock {
    fn drop(&mut self) {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.run);
    }
}

impl Store for MemoryStore {
    fn location(&self) -> String {
        "<memory>".into()
    }

    fn create_run(&self, run: &Run) -> Result<()> {
        let mut state = self.state();
        if state.runs.contains_key(&run.id) {
            return Err(Error::RunExists { id: run.id.clone() });
        }
        state.runs.insert(run.id.clone(), run.clone());
        Ok(())
    }

    fn run(&self, id: &str) -> Result<Option<Run>> {
        Ok(self.state().runs.get(id).cloned())
    }

    fn runs(&self) -> Result<Vec<Run>> {
        let mut runs: Vec<Run> = self.state().runs.values().cloned().collect();
        runs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(runs)
    }

    fn update_run(&self, run: &Run) -> Result<()> {
        let mut state = self.state();
        match state.runs.get_mut(&run.id) {
            Some(existing) => *existing = run.clone(),
            None => {
                return Err(Error::UnknownRun {
                    id: run.id.clone(),
                    state: self.location(),
                });
            }
        }
        Ok(())
    }

    fn steps(&self, run: &str) -> Result<Vec<Step>> {
        Ok(self.state().steps.get(run).cloned().unwrap_or_default())
    }

    fn put_step(&self, run: &str, step: &Step, _durable: bool) -> Result<()> {
        let mut state = self.state();
        state.next_seq += 1;
        let seq = state.next_seq;
        let steps = state.steps.entry(run.to_owned()).or_default();
        match steps
            .iter_mut()
            .find(|s| s.kind == step.kind && s.name == step.name)
        {
            Some(existing) => {
                let seq = existing.seq;
                *existing = step.clone();
                existing.seq = seq;
            }
            None => {
                let mut step = step.clone();
                step.seq = seq;
                steps.push(step);
            }
        }
        Ok(())
    }

    fn gates(&self, run: &str) -> Result<Vec<Gate>> {
        Ok(self.state().gates.get(run).cloned().unwrap_or_default())
    }

    fn put_gate(&self, run: &str, gate: &Gate) -> Result<()> {
        let mut state = self.state();
        let gates = state.gates.entry(run.to_owned()).or_default();
        match gates.iter_mut().find(|g| g.name == gate.name) {
            Some(existing) => *existing = gate.clone(),
            None => gates.push(gate.clone()),
        }
        Ok(())
    }

    fn set_undo(
        &self,
        run: &str,
        step: &str,
        undo: super::UndoStatus,
        error: Option<&str>,
    ) -> Result<()> {
        let mut state = self.state();
        if let Some(record) = state.steps.get_mut(run).and_then(|steps| {
            steps
                .iter_mut()
                .find(|s| s.kind == super::StepKind::Step && s.name == step)
        }) {
            record.undo = undo;
            record.undo_error = error.map(str::to_owned);
        }
        Ok(())
    }

    fn lock(&self, run: &str) -> Result<RunLock> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if locks.contains_key(run) {
            return Err(Error::Locked {
                run: run.to_owned(),
                holder: "this process".into(),
            });
        }
        locks.insert(run.to_owned(), super::lock::holder_description());
        Ok(RunLock::new(MemoryLock {
            locks: self.locks.clone(),
            run: run.to_owned(),
        }))
    }

    fn lock_state(&self, run: &str) -> Result<LockState> {
        let locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        Ok(LockState {
            held: locks.contains_key(run),
            holder: locks.get(run).map(|d| Holder::parse(d)),
        })
    }

    fn delete_run(&self, id: &str) -> Result<bool> {
        let mut state = self.state();
        state.steps.remove(id);
        state.gates.remove(id);
        state.claims.retain(|_, c| c.run != id);
        Ok(state.runs.remove(id).is_some())
    }

    fn claim(&self, key: &str, run: &str, at: i64) -> Result<Claim> {
        let mut state = self.state();
        Ok(state
            .claims
            .entry(key.to_owned())
            .or_insert_with(|| Claim {
                key: key.to_owned(),
                run: run.to_owned(),
                claimed_at: at,
            })
            .clone())
    }

    fn release_claims(&self, run: &str) -> Result<usize> {
        let mut state = self.state();
        let before = state.claims.len();
        state.claims.retain(|_, c| c.run != run);
        Ok(before - state.claims.len())
    }

    fn claims(&self) -> Result<Vec<Claim>> {
        Ok(self.state().claims.values().cloned().collect())
    }
}
