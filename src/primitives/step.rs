//! `step(name, body)` and `step(name, body, undo)`: the unit of durability.
//!
//! A completed step returns its recorded value without running (replay);
//! otherwise it is recorded as started, its body runs, and its completion and
//! value are written in one durable transaction.

use crate::engine::session::{Mode, Undo};
use crate::engine::signal::{Signal, runtime_error};
use crate::engine::value::{from_json, to_json};
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
            "/// (newest step first) if this step completed.",
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
    let position = session.position(ctx);
    session.claim(name, &position, pos)?;

    if let Some(record) = session.replay(name, &position, pos)? {
        if let Some(closure) = undo
            && session.mode == Mode::Rollback
            && record.undo != UndoStatus::Done
        {
            #[allow(deprecated)]
            let context = ctx.store_data();
            session.collect_undo(Undo {
                seq: record.seq,
                step: name.to_owned(),
                closure,
                context,
            });
        }
        return Ok(record
            .value
            .as_ref()
            .map(from_json)
            .unwrap_or(Dynamic::UNIT));
    }
    match session.mode {
        Mode::Run => {}
        Mode::Rollback => return Err(Signal::RollbackCollected.raise(pos)),
        Mode::Check => return Err(runtime_error("steps do not run while checking", pos)),
    }
    session.check_not_skipped(name, &position, pos)?;

    let mut record = session.begin(name, &position, StepKind::Step, pos)?;
    if undo.is_some() {
        record.undo = UndoStatus::Pending;
    }
    let result = frames::with_frame(name, || body.call_within_context::<Dynamic>(ctx, ()));
    match result {
        Ok(value) => match to_json(&value) {
            Ok(json) => {
                session.complete(record, json.clone(), pos)?;
                // Return what a replay would return, so first runs and resumes agree.
                Ok(from_json(&json))
            }
            Err(why) => {
                let err = runtime_error(
                    format!("step `{name}` returned a value that cannot be journaled: {why}"),
                    pos,
                );
                session.fail(record, session.summarize(&err), pos)?;
                Err(err)
            }
        },
        Err(err) if Signal::of(&err).is_some() => {
            session.interrupt(record, pos)?;
            Err(err)
        }
        Err(err) => {
            session.fail(record, session.summarize(&err), pos)?;
            Err(err)
        }
    }
}
