//! `pause(name, message)`: a gate. The run stops (status paused, exit 3)
//! until someone runs `ferry approve RUN NAME`; `ferry resume` then passes it.

use crate::engine::Session;
use crate::engine::session::Mode;
use crate::engine::signal::{Signal, runtime_error};
use crate::journal::{Gate, StepKind, StepStatus, now_ms};
use rhai::{Engine, EvalAltResult, FuncRegistration, NativeCallContext};
use std::sync::Arc;

pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    FuncRegistration::new("pause")
        .with_params_info(["name: &str", "message: &str", "()"])
        .with_comments([
            "/// A gate: stops the run (exit 3) until `ferry approve RUN NAME`, then",
            "/// `ferry resume RUN` continues past it. Gate names share the step namespace.",
            "///",
            "/// ```rhai",
            "/// pause(\"app2-ready\", \"app2's team confirms they are ready to move\");",
            "/// ```",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, name: &str, message: &str| gate(&ctx, &s, name, message),
        );
}

fn gate(
    ctx: &NativeCallContext,
    session: &Session,
    name: &str,
    message: &str,
) -> Result<(), Box<EvalAltResult>> {
    let pos = ctx.call_position();
    session.check_cancelled(pos)?;
    if name.trim().is_empty() || name.contains(char::is_whitespace) {
        return Err(runtime_error(
            format!("gate name `{name}` must be one word (it is typed in `ferry approve`)"),
            pos,
        ));
    }
    let position = session.position(ctx);
    session.claim(name, &position, pos)?;
    if session.replay(name, &position, pos)?.is_some() {
        return Ok(());
    }
    match session.mode {
        Mode::Run => {}
        Mode::Rollback => return Err(Signal::RollbackCollected.raise(pos)),
        Mode::Check => return Err(runtime_error("gates do not run while checking", pos)),
    }
    session.check_not_skipped(name, &position, pos)?;

    let approved = session.gate(name).is_some_and(|g| g.approved_at.is_some());
    let mut record = match session.record(name) {
        Some(existing) if existing.kind == StepKind::Gate => existing,
        _ => session.begin(name, &position, StepKind::Gate, pos)?,
    };
    if approved {
        return session.complete(record, serde_json::Value::Null, pos);
    }
    if session.gate(name).is_none() {
        let gate = Gate {
            name: name.to_owned(),
            message: message.to_owned(),
            requested_at: now_ms(),
            approved_at: None,
            approved_by: None,
        };
        session.request_gate(gate, pos)?;
    }
    record.status = StepStatus::Waiting;
    record.position = position;
    session.save(&record, true, pos)?;
    session.events.emit(crate::events::Event::GateWaiting {
        gate: name.to_owned(),
        message: message.to_owned(),
    });
    Err(Signal::Paused {
        gate: name.to_owned(),
        message: message.to_owned(),
    }
    .raise(pos))
}
