//! `sleep(seconds)`. Inside a step it is a durable timer: its deadline is
//! journaled when it starts, so a resumed run waits only what remains.
//! Outside a step, inside a guard's body (a watch window: a re-run attempt
//! watches afresh) and inside an undo it is a plain (cancellable) wait.

use crate::engine::control::runtime_error;
use crate::engine::frames::Role;
use crate::engine::ledger::Entry;
use crate::engine::session::Mode;
use crate::engine::{Session, frames};
use crate::journal::{StepKind, now_ms};
use rhai::{Engine, EvalAltResult, FLOAT, FuncRegistration, INT, NativeCallContext};
use std::sync::Arc;

pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    FuncRegistration::new("sleep")
        .with_params_info(["seconds: FLOAT", "()"])
        .with_comments([
            "/// Waits `seconds`. Inside a step the deadline is journaled: after a halt,",
            "/// resume waits only for what remains. Inside a guard's body it is a watch",
            "/// window, watched whole again when the step runs again.",
        ])
        .register_into_engine(engine, move |ctx: NativeCallContext, seconds: FLOAT| {
            durable_sleep(&ctx, &s, seconds)
        });
    let s = session.clone();
    FuncRegistration::new("sleep")
        .with_params_info(["seconds: FLOAT", "options: Map", "()"])
        .with_comments([
            "/// `sleep` with options: `durable: false` makes it a plain wait even inside",
            "/// a step (no timer record): the pause between polls of a loop that a",
            "/// resumed step runs again from its start anyway.",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, seconds: FLOAT, options: rhai::Map| {
                let durable = match options.get("durable") {
                    None => true,
                    Some(v) => v.as_bool().map_err(|_| {
                        runtime_error(
                            "sleep: `durable` must be true or false",
                            ctx.call_position(),
                        )
                    })?,
                };
                if let Some(key) = options.keys().find(|k| k.as_str() != "durable") {
                    return Err(runtime_error(
                        format!("sleep: unknown option `{key}` (known: durable)"),
                        ctx.call_position(),
                    ));
                }
                if durable {
                    durable_sleep(&ctx, &s, seconds)
                } else {
                    plain_sleep(&ctx, &s, seconds)
                }
            },
        );
    let s = session.clone();
    FuncRegistration::new("sleep")
        .with_params_info(["seconds: INT", "()"])
        .register_into_engine(engine, move |ctx: NativeCallContext, seconds: INT| {
            durable_sleep(&ctx, &s, seconds as FLOAT)
        });
}

/// `seconds` as milliseconds with its progress label, or the error a
/// sleep out of range gets.
fn span(seconds: FLOAT, pos: rhai::Position) -> Result<(u64, String), Box<EvalAltResult>> {
    if !(0.0..=366.0 * 86_400.0).contains(&seconds) {
        return Err(runtime_error(
            format!("sleep needs 0 to 366 days in seconds, got {seconds}"),
            pos,
        ));
    }
    let total_ms = (seconds * 1000.0).round() as u64;
    Ok((
        total_ms,
        format!("sleep {}", crate::events::format_duration(total_ms)),
    ))
}

/// A cancellable wait that leaves no record.
fn plain_sleep(
    ctx: &NativeCallContext,
    session: &Session,
    seconds: FLOAT,
) -> Result<(), Box<EvalAltResult>> {
    let pos = ctx.call_position();
    let (total_ms, label) = span(seconds, pos)?;
    session.wait_until(now_ms() + total_ms as i64, total_ms, &label, pos)
}

fn durable_sleep(
    ctx: &NativeCallContext,
    session: &Session,
    seconds: FLOAT,
) -> Result<(), Box<EvalAltResult>> {
    let pos = ctx.call_position();
    let (total_ms, label) = span(seconds, pos)?;
    let role = frames::role();
    if session.mode == Mode::Rollback && role != Some(Role::Undo) {
        // Rollback replays the script only to collect undos: nothing to wait for.
        return Ok(());
    }
    // A guard's watch window must be watched whole by the attempt that
    // reports it, and an undo runs again whole: neither is a durable timer.
    let durable = role == Some(Role::Body) && !frames::in_guard() && session.mode == Mode::Run;
    let name = durable.then(frames::next_timer_name).flatten();
    let Some(name) = name else {
        return session.wait_until(now_ms() + total_ms as i64, total_ms, &label, pos);
    };
    let position = session.position(ctx);
    let ledger = &session.ledger;
    let (attempt, deadline) = match ledger.enter(StepKind::Sleep, &name, &position, pos)? {
        Entry::Replayed(_) => return Ok(()),
        Entry::Fresh(Some(record)) if deadline_of(&record).is_some() => {
            let deadline = deadline_of(&record).unwrap_or_default();
            (ledger.adopt(record), deadline)
        }
        Entry::Fresh(_) => {
            let deadline = now_ms() + total_ms as i64;
            let data = serde_json::json!({ "deadline_ms": deadline, "seconds": seconds });
            (ledger.start_timer(&name, &position, data, pos)?, deadline)
        }
    };
    session.wait_until(deadline, total_ms, &label, pos)?;
    ledger.complete(attempt, serde_json::Value::Null, pos)
}

fn deadline_of(record: &crate::journal::Step) -> Option<i64> {
    record.data.as_ref()?.get("deadline_ms")?.as_i64()
}
