//! Approving a gate: `ferry approve` and the board's approve button both
//! come here, so a gate's `approvers` are honoured, an ended run refused
//! and the approval recorded the same way whoever asks.

use super::{Approval, finished, validate_run_id};
use crate::error::{Error, Result};
use crate::journal::{Store, gate_approvers, may_approve, now_ms, operator};

/// Who approves.
#[derive(Debug, Clone, Copy)]
pub enum Approver<'a> {
    /// The operator running this ferry (`ferry approve`): known as
    /// `user@host` and the backend's identity.
    Operator,
    /// A person who gave their name on the board (`ferry board
    /// --allow-approve`), served by this operator: the name must be one of
    /// a gate's `approvers`, and is recorded with who served the board.
    Named(&'a str),
}

/// Records the approval of `gate` of run `id` (once: approving it again
/// changes nothing). A gate of a run that has ended is refused.
pub fn approve(store: &dyn Store, id: &str, gate: &str, who: Approver) -> Result<Approval> {
    let id = validate_run_id(id)?;
    let run = store.run(&id)?.ok_or_else(|| Error::UnknownRun {
        id: id.clone(),
        state: store.location(),
    })?;
    let gates = store.gates(&id)?;
    let Some(mut found) = gates.iter().find(|g| g.name == gate).cloned() else {
        return Err(Error::UnknownGate {
            run: id,
            gate: gate.to_owned(),
            waiting: gates
                .iter()
                .filter(|g| g.approved_at.is_none())
                .map(|g| g.name.clone())
                .collect(),
        });
    };
    let already = found.approved_at.is_some();
    if !already {
        if finished(run.status) {
            return Err(Error::NotResumable {
                run: id,
                status: run.status.to_string(),
                hint: format!("it has ended, so nothing waits at gate `{gate}` any more"),
            });
        }
        let by = match who {
            Approver::Operator => operator(store),
            Approver::Named(name) => format!("{name} (on the board of {})", operator(store)),
        };
        if let Some(approvers) = gate_approvers(&store.steps(&id)?, gate) {
            let allowed = match who {
                Approver::Operator => may_approve(&approvers, store),
                Approver::Named(name) => approvers.iter().any(|a| a == name),
            };
            if !allowed {
                return Err(Error::NotApprover {
                    run: id,
                    gate: gate.to_owned(),
                    who: by,
                    approvers,
                });
            }
        }
        found.approved_at = Some(now_ms());
        found.approved_by = Some(by);
        store.put_gate(&id, &found)?;
    }
    Ok(Approval {
        gate: found,
        already,
        status: run.status,
    })
}
