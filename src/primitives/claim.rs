//! `claim(key)`: this run holds `key` (an app it moves) until it ends.
//!
//! A team shares one journal; two runs driving the same app at once is how
//! an app ends up half-flipped by one and half-undone by the other. A claim
//! is taken atomically in the journal, kept across gates and weeks, and
//! released when the run succeeds, is rolled back or is aborted. A run that
//! meets another's claim stops before it changes anything else and is
//! refused (exit 4) naming the holder: a control-flow signal, so a script's
//! `try`/`catch` cannot swallow it.

use crate::engine::Session;
use crate::engine::control::{Control, runtime_error};
use crate::engine::session::Mode;
use crate::journal::{Claim, format_ms, now_ms};
use rhai::{Engine, EvalAltResult, FuncRegistration, NativeCallContext};
use std::sync::Arc;

pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    FuncRegistration::new("claim")
        .with_params_info(["key: &str", "()"])
        .with_comments([
            "/// Claims `key` for this run until it succeeds, is rolled back or is",
            "/// aborted: a second run claiming the same key is refused (exit 4)",
            "/// naming this run, its status and who started it. Claiming a key",
            "/// this run holds already is a no-op (resume replays it). The stdlib",
            "/// recipe claims `<cluster identity>/<namespace>/<app>` for every app.",
            "///",
            "/// ```rhai",
            "/// claim(`${old.identity()}/app1-ns/app1`);",
            "/// ```",
        ])
        .register_into_engine(engine, move |ctx: NativeCallContext, key: &str| {
            claim(&ctx, &s, key)
        });
}

fn claim(ctx: &NativeCallContext, session: &Session, key: &str) -> Result<(), Box<EvalAltResult>> {
    let pos = ctx.call_position();
    if key.trim().is_empty() {
        return Err(runtime_error("claim: the key is empty", pos));
    }
    if session.mode == Mode::Check {
        return Ok(());
    }
    // A plan looks in the team's journal without taking: it must not block a real run.
    let store = match &session.plan {
        Some(plan) => &plan.journal,
        None => &session.store,
    };
    let journal = |e: crate::error::Error| {
        Control::Journal {
            message: format!("cannot claim `{key}`: {e}"),
        }
        .raise(pos)
    };
    let holder: Option<Claim> = if session.plan.is_some() {
        store
            .claims()
            .map_err(journal)?
            .into_iter()
            .find(|c| c.key == key)
    } else {
        Some(
            store
                .claim(key, &session.run_id, now_ms())
                .map_err(journal)?,
        )
    };
    match holder {
        Some(claim) if claim.run != session.run_id => {
            let other = store.run(&claim.run).map_err(journal)?;
            let (status, by, since) = match &other {
                Some(run) => (
                    run.status.to_string(),
                    run.started_by().unwrap_or("someone").to_owned(),
                    format_ms(run.created_at),
                ),
                None => ("gone".into(), "someone".into(), format_ms(claim.claimed_at)),
            };
            Err(Control::Claimed(crate::error::ClaimHeld {
                key: key.to_owned(),
                holder: claim.run,
                status,
                by,
                since,
            })
            .raise(pos))
        }
        _ => Ok(()),
    }
}
