//! `step(name, body)` and `step(name, body, undo)`: the unit of durability.
//!
//! A completed step returns its recorded value without running (replay);
//! otherwise it is recorded as started, its body runs, and its completion and
//! value are written in one durable transaction.

use crate::engine::control::{Control, runtime_error};
use crate::engine::frames::Role;
use crate::engine::ledger::{Entry, Undo};
use crate::engine::session::Mode;
use crate::engine::value::{from_journal, to_json};
use crate::engine::{Session, frames};
use crate::journal::{StepKind, UndoStatus};
use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, FuncRegistration, NativeCallContext};
use std::sync::Arc;

pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    FuncRegistration::new("step")
        .with_params_info(["name: &str", "body: FnPtr", "Dynamic"])
        .with_comments([
            "/// Runs `body` once, durably: its value is journaled and returned on every",
            "/// later resume without running `body` again. Names must be unique in a run.",
            "///",
            "/// ```rhai",
            "/// let ip = step(\"read address\", || old.ingress_address(\"traefik\", \"traefik\"));",
            "/// ```",
        ])
        .register_into_engine(engine, move |ctx: NativeCallContext, name: &str, body: FnPtr| {
            run_step(&ctx, &s, name, body, None)
        });
    let s = session.clone();
    FuncRegistration::new("step")
        .with_params_info(["name: &str", "body: FnPtr", "undo: FnPtr", "Dynamic"])
        .with_comments([
            "/// Like `step(name, body)`, with an undo closure that `ferry rollback` runs",
            "/// (newest step first, nested steps before their parent) if this step",
            "/// started: a step that failed or stopped half-way is undone too, first.",
            "/// Undo closures must converge like bodies; they cannot contain steps or gates.",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, name: &str, body: FnPtr, undo: FnPtr| {
                run_step(&ctx, &s, name, body, Some(undo))
            },
        );
}

fn run_step(
    ctx: &NativeCallContext,
    session: &Session,
    name: &str,
    body: FnPtr,
    undo: Option<FnPtr>,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    session.check_cancelled(pos)?;
    if name.trim().is_empty() {
        return Err(runtime_error("a step needs a non-empty name", pos));
    }
    refuse_in_undo("step", name, pos)?;
    let position = session.position(ctx);
    let ledger = &session.ledger;

    match ledger.enter(StepKind::Step, name, &position, pos)? {
        Entry::Replayed(record) => {
            if session.mode == Mode::Rollback {
                collect_undo(ctx, session, (name, record.seq, record.undo), undo);
                if ledger.has_children(name) {
                    collect_nested(ctx, session, name, &body)?;
                }
            }
            return match &record.value {
                None => Ok(Dynamic::UNIT),
                Some(json) => from_journal(json).map_err(|why| {
                    Control::Journal {
                        message: format!(
                            "the value journaled for step `{name}` cannot be read back: {why}"
                        ),
                    }
                    .raise(pos)
                }),
            };
        }
        Entry::Fresh(previous) => match session.mode {
            Mode::Run => {}
            Mode::Rollback => {
                // The rollback's frontier. A step that started may have
                // changed the world before it failed or stopped: its undo
                // runs first, and so do those of steps nested in it.
                if let Some(record) = previous {
                    collect_undo(ctx, session, (name, record.seq, record.undo), undo);
                    if ledger.has_children(name) {
                        collect_nested(ctx, session, name, &body)?;
                    }
                }
                return Err(Control::RollbackCollected.raise(pos));
            }
            Mode::Check => return Err(runtime_error("steps do not run while checking", pos)),
        },
    }

    session.record_sources(pos)?;
    let attempt = ledger.start(StepKind::Step, name, &position, undo.is_some(), pos)?;
    let result = frames::with_frame(name, || body.call_within_context::<Dynamic>(ctx, ()));
    match result {
        Ok(value) => match to_json(&value) {
            Ok(json) => {
                let replayed = from_journal(&json);
                ledger.complete(attempt, json, pos)?;
                // Return what a replay would return, so first runs and resumes agree.
                replayed.map_err(|why| runtime_error(format!("step `{name}`: {why}"), pos))
            }
            Err(why) => {
                let err = runtime_error(
                    format!("step `{name}` returned a value that cannot be journaled: {why}"),
                    pos,
                );
                ledger.fail(attempt, session.summarize(&err), Some(&err), pos)?;
                Err(err)
            }
        },
        Err(err) if is_exit(&err) => {
            // exit() ends the script, which Rhai reports as success; a step
            // that did not finish cannot let the run succeed.
            let message = format!(
                "step `{name}` called exit() before it finished; a step ends by returning a value or throwing"
            );
            ledger.fail(attempt, message.clone(), None, pos)?;
            Err(Control::Exited {
                step: name.to_owned(),
                message,
            }
            .raise(pos))
        }
        Err(err) if Control::of(&err).is_some() => {
            ledger.interrupt(attempt, pos)?;
            Err(err)
        }
        Err(err) => {
            ledger.fail(attempt, session.summarize(&err), Some(&err), pos)?;
            Err(err)
        }
    }
}

/// Steps, gates and durable timers journal the forward run; an undo closure
/// is journaled as a whole (run again until done), so it cannot contain them.
pub fn refuse_in_undo(
    what: &str,
    name: &str,
    pos: rhai::Position,
) -> Result<(), Box<EvalAltResult>> {
    if frames::role() != Some(Role::Undo) {
        return Ok(());
    }
    let undoing = frames::current().unwrap_or_default();
    Err(runtime_error(
        format!(
            "{what} `{name}` inside the {undoing}: an undo closure runs as a whole and again until it is done, \
             so it cannot contain steps or gates; call the primitives directly"
        ),
        pos,
    ))
}

/// Keeps the undo closure of a step that may have changed the world, unless
/// its undo is done already (a rollback interrupted earlier).
fn collect_undo(
    ctx: &NativeCallContext,
    session: &Session,
    (name, seq, status): (&str, i64, UndoStatus),
    undo: Option<FnPtr>,
) {
    let Some(closure) = undo else { return };
    if !matches!(
        status,
        UndoStatus::Pending | UndoStatus::Running | UndoStatus::Failed
    ) {
        return;
    }
    #[allow(deprecated)]
    let context = ctx.store_data();
    session.ledger.collect_undo(Undo {
        seq,
        step: name.to_owned(),
        closure,
        context,
    });
}

/// Rollback re-enters the body of a step with nested steps, to reach their
/// undo closures: nested steps replay, and anything that would change the
/// world stops the replay of this body (the ledger remembers where, and the
/// rollback refuses if an undo was missed because of it).
fn collect_nested(
    ctx: &NativeCallContext,
    session: &Session,
    name: &str,
    body: &FnPtr,
) -> Result<(), Box<EvalAltResult>> {
    let result = frames::with_role(name, Role::Collect, || {
        body.call_within_context::<Dynamic>(ctx, ())
    });
    match result {
        Ok(_) => Ok(()),
        Err(err) => match Control::of(&err) {
            Some(Control::CollectStopped { what, position }) => {
                let at = session.display_position(&position);
                session
                    .ledger
                    .collect_stopped(name, format!("`{what}` at {at}"));
                Ok(())
            }
            Some(_) => Err(err),
            None => {
                session
                    .ledger
                    .collect_stopped(name, format!("an error: {}", session.summarize(&err)));
                Ok(())
            }
        },
    }
}

/// Whether `err` is Rhai's `exit()`, through function-call wrappers.
fn is_exit(err: &EvalAltResult) -> bool {
    match err {
        EvalAltResult::Exit(..) => true,
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => is_exit(inner),
        _ => false,
    }
}
