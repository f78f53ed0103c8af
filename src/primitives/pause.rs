//! `pause(name, message)`: a gate. The run stops (status paused, exit 3)
//! until someone runs `ferry approve RUN NAME`; `ferry resume` then passes it.

use super::options::{known_keys, with_options};
use crate::engine::Session;
use crate::engine::control::{Control, runtime_error};
use crate::engine::ledger::Entry;
use crate::engine::session::Mode;
use crate::journal::{Gate, StepKind, StepStatus, now_ms};
use rhai::{Engine, EvalAltResult, NativeCallContext};
use std::sync::Arc;

pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    with_options!(
        register_into_engine(engine),
        "pause",
        ["name: &str", "message: &str"],
        "options: Map",
        "()",
        [
            "/// A gate: stops the run (exit 3) until `ferry approve RUN NAME`, then",
            "/// `ferry resume RUN` continues past it. Gate names are unique among gates.",
            "/// Options: `approvers`, who may approve it (user names, `user@host`, or",
            "/// Kubernetes identities as the `kubernetes://` state knows them); anyone",
            "/// may when absent. `ferry status` shows them; anyone else's approval is",
            "/// refused (exit 4).",
            "///",
            "/// ```rhai",
            "/// pause(\"app2-ready\", \"app2's team confirms they are ready to move\");",
            "/// pause(\"prod\", \"go to production?\", #{ approvers: [\"alice\", \"bob\"] });",
            "/// ```",
        ],
        [s],
        |ctx, name: &str, message: &str; opts| gate(&ctx, &s, name, message, opts)
    );
}

/// `approvers` of a gate's options: a list of names, `None` when absent.
fn approvers(
    options: &rhai::Map,
    pos: rhai::Position,
) -> Result<Option<Vec<String>>, Box<EvalAltResult>> {
    known_keys(options, "pause", &["approvers"], pos)?;
    let Some(value) = options.get("approvers").filter(|v| !v.is_unit()) else {
        return Ok(None);
    };
    let bad = || {
        runtime_error(
            "pause: `approvers` must be an array of names (strings)",
            pos,
        )
    };
    let list = value.clone().into_array().map_err(|_| bad())?;
    let names: Vec<String> = list
        .into_iter()
        .map(|v| v.into_string().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    if names.is_empty() || names.iter().any(|n| n.trim().is_empty()) {
        return Err(runtime_error(
            "pause: `approvers` lists nobody: give at least one name, or leave it out so anyone may approve",
            pos,
        ));
    }
    Ok(Some(names))
}

fn gate(
    ctx: &NativeCallContext,
    session: &Session,
    name: &str,
    message: &str,
    options: &rhai::Map,
) -> Result<(), Box<EvalAltResult>> {
    let pos = ctx.call_position();
    session.check_cancelled(pos)?;
    let approvers = approvers(options, pos)?;
    if name.trim().is_empty() || name.contains(char::is_whitespace) {
        return Err(runtime_error(
            format!("gate name `{name}` must be one word (it is typed in `ferry approve`)"),
            pos,
        ));
    }
    super::step::refuse_in_undo("gate", name, pos)?;
    let position = session.position(ctx);
    let ledger = &session.ledger;
    let previous = match ledger.enter(StepKind::Gate, name, &position, pos)? {
        Entry::Replayed(_) => return Ok(()),
        Entry::Fresh(previous) => previous,
    };
    if let Some(plan) = &session.plan
        && session.mode == Mode::Run
    {
        plan.gate(name, message);
        if plan.until_gate.as_deref() != Some(name) {
            // Listed and passed: the plan goes on as if it were approved.
            return Ok(());
        }
        return wait_for_approval(session, name, message, pos);
    }
    match session.mode {
        Mode::Run => {}
        Mode::Rollback => return Err(Control::RollbackCollected.raise(pos)),
        Mode::Check => return Err(runtime_error("gates do not run while checking", pos)),
    }

    let approved = ledger.gate(name).is_some_and(|g| g.approved_at.is_some());
    let attempt = match previous {
        // Waiting since an earlier execution: approval is what moves it.
        Some(record) if record.status == StepStatus::Waiting => ledger.adopt(record),
        _ => {
            session.record_sources(pos)?;
            let data = approvers.map(|a| serde_json::json!({ "approvers": a }));
            let attempt = ledger.start_gate(name, &position, data, pos)?;
            if !approved {
                ledger.wait(attempt, pos)?;
                return wait_for_approval(session, name, message, pos);
            }
            attempt
        }
    };
    if approved {
        return ledger.complete(attempt, serde_json::Value::Null, pos);
    }
    wait_for_approval(session, name, message, pos)
}

/// Records the gate's request (once) and stops the run.
fn wait_for_approval(
    session: &Session,
    name: &str,
    message: &str,
    pos: rhai::Position,
) -> Result<(), Box<EvalAltResult>> {
    if session.ledger.gate(name).is_none() {
        let gate = Gate {
            name: name.to_owned(),
            message: message.to_owned(),
            requested_at: now_ms(),
            approved_at: None,
            approved_by: None,
        };
        session.ledger.request_gate(gate, pos)?;
    }
    session.events.emit(crate::events::Event::GateWaiting {
        gate: name.to_owned(),
        message: message.to_owned(),
    });
    Err(Control::Paused {
        gate: name.to_owned(),
        message: message.to_owned(),
    }
    .raise(pos))
}
