//! `sleep(seconds)`. Inside a step it is a durable timer: its deadline is
//! journaled when it starts, so a resumed run waits only what remains.
//! Outside a step it is a plain (cancellable) wait.

use crate::engine::signal::runtime_error;
use crate::engine::{Session, frames};
use crate::journal::{StepKind, StepStatus, now_ms};
use rhai::{Engine, EvalAltResult, FLOAT, FuncRegistration, INT, NativeCallContext};
use std::sync::Arc;

pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    FuncRegistration::new("sleep")
        .with_params_info(["seconds: FLOAT", "()"])
        .with_comments([
            "/// Waits `seconds`. Inside a step the deadline is journaled: after a halt,",
            "/// resume waits only for what remains.",
        ])
        .register_into_engine(engine, move |ctx: NativeCallContext, seconds: FLOAT| {
            durable_sleep(&ctx, &s, seconds)
        });
    let s = session.clone();
    FuncRegistration::new("sleep")
        .with_params_info(["seconds: INT", "()"])
        .register_into_engine(engine, move |ctx: NativeCallContext, seconds: INT| {
            durable_sleep(&ctx, &s, seconds as FLOAT)
        });
}

fn durable_sleep(
    ctx: &NativeCallContext,
    session: &Session,
    seconds: FLOAT,
) -> Result<(), Box<EvalAltResult>> {
    let pos = ctx.call_position();
    if !(0.0..=366.0 * 86_400.0).contains(&seconds) {
        return Err(runtime_error(
            format!("sleep needs 0 to 366 days in seconds, got {seconds}"),
            pos,
        ));
    }
    let total_ms = (seconds * 1000.0).round() as u64;
    let label = format!("sleep {}", crate::events::format_duration(total_ms));
    let Some(name) = frames::next_timer_name() else {
        return session.wait_until(now_ms() + total_ms as i64, total_ms, &label, pos);
    };
    let existing = session.record(&name);
    if existing
        .as_ref()
        .is_some_and(|r| r.status == StepStatus::Completed)
    {
        return Ok(());
    }
    let deadline = existing
        .as_ref()
        .and_then(|r| r.data.as_ref()?.get("deadline_ms")?.as_i64());
    let (record, deadline) = match (existing, deadline) {
        (Some(record), Some(deadline)) => (record, deadline),
        _ => {
            let deadline = now_ms() + total_ms as i64;
            let mut record =
                crate::journal::Step::new(&name, session.position(ctx), StepKind::Sleep);
            record.attempts = 1;
            record.started_at = Some(now_ms());
            record.data = Some(serde_json::json!({ "deadline_ms": deadline, "seconds": seconds }));
            // Durable before waiting: the deadline is what a resume honours.
            session.save(&record, true, pos)?;
            (record, deadline)
        }
    };
    session.wait_until(deadline, total_ms, &label, pos)?;
    let mut record = record;
    record.status = StepStatus::Completed;
    record.ended_at = Some(now_ms());
    record.value = Some(serde_json::Value::Null);
    // Not fsync'd: if lost, the recorded deadline has passed and resume returns at once.
    session.save(&record, false, pos)
}
