//! Test-only primitives, registered when `FERRY_TEST_PRIMITIVES=1`. They let
//! the integration tests observe and hold a step without a cluster:
//! `test_mutate(path, line)` is a world-changing primitive (it appends a line
//! to a file, so it is refused outside a step), `test_wait_for(path)`
//! blocks until a file exists and `test_exists(path)` asks whether it does.
//! `test_identity(name, path)`, `test_annotate(key, value)` and
//! `test_host_error(message)` exercise the hooks adapters build on.

use super::require_step;
use crate::engine::Session;
use crate::engine::control::{Control, runtime_error};
use rhai::{Engine, EvalAltResult, NativeCallContext};
use std::io::Write;
use std::sync::Arc;

pub const ENV: &str = "FERRY_TEST_PRIMITIVES";

pub fn enabled() -> bool {
    std::env::var(ENV).is_ok_and(|v| v == "1")
}

pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    let planning = session.plan.clone();
    engine.register_fn(
        "test_mutate",
        move |ctx: NativeCallContext, path: &str, line: &str| -> Result<(), Box<EvalAltResult>> {
            require_step(&ctx, "test_mutate")?;
            if let Some(plan) = &planning {
                // A side effect like any other: planned, not made.
                plan.note(crate::plan::Entry::Note {
                    text: format!("would append {line:?} to {path}"),
                });
                return Ok(());
            }
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    runtime_error(format!("test_mutate: {path}: {e}"), ctx.call_position())
                })?;
            // One write per line: O_APPEND keeps concurrent branches' lines whole.
            file.write_all(format!("{line}\n").as_bytes())
                .and_then(|()| file.sync_data())
                .map_err(|e| {
                    runtime_error(format!("test_mutate: {path}: {e}"), ctx.call_position())
                })
        },
    );
    engine.register_fn(
        "test_wait_for",
        move |ctx: NativeCallContext, path: &str| -> Result<(), Box<EvalAltResult>> {
            // Native code is not interrupted by the engine's progress hook, so
            // this watches the cancel flag itself.
            loop {
                if std::path::Path::new(path).exists() {
                    return Ok(());
                }
                if s.cancel.is_cancelled() {
                    return Err(Control::Cancelled.raise(ctx.call_position()));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        },
    );
    engine.register_fn("test_exists", |path: &str| {
        std::path::Path::new(path).exists()
    });
    let s = session.clone();
    engine.register_fn(
        "test_identity",
        move |ctx: NativeCallContext, name: &str, path: &str| -> Result<(), Box<EvalAltResult>> {
            let id = std::fs::read_to_string(path).unwrap_or_default();
            s.check_identity(
                name,
                serde_json::json!({ "id": id.trim(), "source": path }),
                ctx.call_position(),
            )
        },
    );
    let s = session.clone();
    engine.register_fn(
        "test_annotate",
        move |ctx: NativeCallContext,
              key: &str,
              value: rhai::Dynamic|
              -> Result<bool, Box<EvalAltResult>> {
            let value = crate::engine::value::to_json(&value)
                .map_err(|e| runtime_error(e, ctx.call_position()))?;
            Ok(s.ledger.annotate(key, value))
        },
    );
    engine.register_fn(
        "test_host_error",
        |ctx: NativeCallContext, message: &str| -> Result<(), Box<EvalAltResult>> {
            let mut details = rhai::Map::new();
            details.insert("status".into(), rhai::Dynamic::from(503 as rhai::INT));
            Err(crate::engine::control::host_error(
                "test",
                message,
                details,
                ctx.call_position(),
            ))
        },
    );
}
