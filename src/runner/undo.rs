//! The rollback's second half: once the script replayed and the ledger
//! collected the undo closures, run them newest first, each journaled, with
//! the run `rolling-back` from the first one on.

use super::Outcome;
use crate::engine::Host;
use crate::engine::control::Control;
use crate::engine::frames::{self, Role};
use crate::engine::ledger::UndoMove;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::journal::{Run, RunStatus, Store, now_ms};
use rhai::Dynamic;
use std::time::Instant;

/// Runs collected undo closures, newest step first; each is journaled, so an
/// interrupted rollback continues where it stopped. The run is
/// `rolling-back` from the first undo on. Refuses before any undo runs if an
/// undo that must run could not be collected.
pub(super) fn run_undos(host: &Host, store: &dyn Store, run: &mut Run) -> Result<Outcome> {
    let session = &host.session;
    let ledger = &session.ledger;
    let pos = rhai::Position::NONE;
    let (missing, why) = ledger.uncollected();
    if !missing.is_empty() {
        return Err(Error::RollbackIncomplete {
            run: run.id.clone(),
            steps: missing.into_iter().map(|s| s.name).collect(),
            why: why.unwrap_or_else(|| {
                "the script no longer reaches them (was it changed?)".to_owned()
            }),
        });
    }
    let undos = ledger.take_undos();
    let journal = |err: &rhai::EvalAltResult| Error::Journal {
        state: store.location(),
        source: crate::journal::JournalError::Write {
            message: session.summarize(err),
        },
    };
    if !undos.is_empty() && run.status != RunStatus::RollingBack {
        run.status = RunStatus::RollingBack;
        run.error = None;
        run.updated_at = now_ms();
        store.update_run(run)?;
    }
    for undo in undos {
        ledger
            .undo_move(&undo.step, UndoMove::Start, None, pos)
            .map_err(|e| journal(&e))?;
        session.events.emit(Event::UndoStarted {
            step: undo.step.clone(),
        });
        let started = Instant::now();
        #[allow(deprecated)]
        let ctx = undo.context.create_context(&host.engine);
        let frame = format!("undo of `{}`", undo.step);
        let result = frames::with_role(&frame, Role::Undo, || {
            undo.closure.call_within_context::<Dynamic>(&ctx, ())
        });
        ledger
            .keep_undo_annotations(&undo.step, &frame, pos)
            .map_err(|e| journal(&e))?;
        match result {
            Ok(_) => {
                ledger
                    .undo_move(&undo.step, UndoMove::Finish, None, pos)
                    .map_err(|e| journal(&e))?;
                session.events.emit(Event::UndoCompleted {
                    step: undo.step,
                    ms: started.elapsed().as_millis() as u64,
                });
            }
            Err(err) if matches!(Control::of(&err), Some(Control::Cancelled)) => {
                ledger
                    .undo_move(&undo.step, UndoMove::Interrupt, None, pos)
                    .map_err(|e| journal(&e))?;
                return Ok(Outcome::Interrupted);
            }
            Err(err) => {
                let error = session.summarize(&err);
                ledger
                    .undo_move(&undo.step, UndoMove::Fail, Some(error.clone()), pos)
                    .map_err(|e| journal(&e))?;
                session.events.emit(Event::UndoFailed {
                    step: undo.step.clone(),
                    error: error.clone(),
                });
                return Ok(Outcome::UndoFailed {
                    step: undo.step,
                    error,
                });
            }
        }
    }
    Ok(Outcome::RolledBack)
}
