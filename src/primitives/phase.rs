//! `phase(app, name)`: declares that `app` reached phase `name` (the stdlib
//! recipe's `bridged`, `prepared`, `cut over`, `finalized`). It is journaled
//! as a record of its own kind, completed at once and replayed on resume
//! like a step, so the board's fleet view reads which app is where from the
//! journal alone, for any script that declares its phases, on every backend,
//! without reading step names. A phase whose earlier steps were rolled back
//! no longer counts (the board decides that from the undos recorded).

use super::options::{known_keys, with_options};
use crate::engine::Session;
use crate::engine::control::runtime_error;
use crate::engine::ledger::Entry;
use crate::engine::session::Mode;
use crate::journal::StepKind;
use rhai::{Engine, EvalAltResult, NativeCallContext};
use serde_json::json;
use std::sync::Arc;

pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    with_options!(
        register_into_engine(engine),
        "phase",
        ["app: &str", "name: &str"],
        "options: Map",
        "()",
        [
            "/// Declares that `app` reached phase `name` (journaled once, replayed on",
            "/// resume): `ferry board` shows every app's phases across runs. Options:",
            "/// `namespace` and `cluster` (the board filters by them). The stdlib",
            "/// recipe declares `bridged`, `prepared`, `cut over` and `finalized`.",
            "///",
            "/// ```rhai",
            "/// phase(\"app1\", \"bridged\", #{ namespace: \"app1-ns\", cluster: \"old\" });",
            "/// ```",
        ],
        [s],
        |ctx, app: &str, name: &str; opts| phase(&ctx, &s, app, name, opts)
    );
}

fn phase(
    ctx: &NativeCallContext,
    session: &Session,
    app: &str,
    name: &str,
    options: &rhai::Map,
) -> Result<(), Box<EvalAltResult>> {
    let pos = ctx.call_position();
    known_keys(options, "phase", &["namespace", "cluster"], pos)?;
    if app.trim().is_empty() || name.trim().is_empty() {
        return Err(runtime_error(
            format!("phase(`{app}`, `{name}`): give an app and a phase name"),
            pos,
        ));
    }
    if session.mode != Mode::Run {
        // Rollback and checks replay the script: nothing is reached.
        return Ok(());
    }
    let text = |key: &str| -> Result<Option<String>, Box<EvalAltResult>> {
        match options.get(key).filter(|v| !v.is_unit()) {
            None => Ok(None),
            Some(v) => v
                .clone()
                .into_string()
                .map(Some)
                .map_err(|_| runtime_error(format!("phase: `{key}` must be a string"), pos)),
        }
    };
    let data = json!({
        "app": app,
        "phase": name,
        "namespace": text("namespace")?,
        "cluster": text("cluster")?,
    });
    let position = session.position(ctx);
    let ledger = &session.ledger;
    let record = format!("{app}: {name}");
    match ledger.enter(StepKind::Phase, &record, &position, pos)? {
        Entry::Replayed(_) => Ok(()),
        Entry::Fresh(_) => {
            let attempt = ledger.start_phase(&record, &position, data, pos)?;
            ledger.complete(attempt, serde_json::Value::Null, pos)
        }
    }
}
