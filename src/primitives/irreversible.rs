//! `irreversible(why)`: the step it runs in cannot be undone safely (it
//! deleted what callers may still need, say). `ferry rollback` then refuses
//! (exit 4) before undoing anything, naming the step and why, unless
//! `--force`: the way back must be as careful as the way forward.

use crate::engine::Session;
use crate::engine::control::runtime_error;
use rhai::{Engine, EvalAltResult, FuncRegistration, NativeCallContext};
use std::sync::Arc;

pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    FuncRegistration::new("irreversible")
        .with_params_info(["why: &str", "()"])
        .with_comments([
            "/// Declares that the step it runs in cannot be undone safely: `ferry",
            "/// rollback` of the run refuses (exit 4) naming the step and `why`, unless",
            "/// `--force`. Call it inside the step, before what cannot be taken back.",
            "///",
            "/// ```rhai",
            "/// step(\"delete from old\", || {",
            "///     irreversible(\"the old Service and Deployment are deleted\");",
            "///     old.delete(\"svc\", \"app1-ns\", \"app1\");",
            "/// });",
            "/// ```",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, why: &str| -> Result<(), Box<EvalAltResult>> {
                if why.trim().is_empty() {
                    return Err(runtime_error(
                        "irreversible: say why the step cannot be undone",
                        ctx.call_position(),
                    ));
                }
                if !s.ledger.annotate("irreversible", why.into()) {
                    return Err(runtime_error(
                        "irreversible() belongs inside the step it describes",
                        ctx.call_position(),
                    ));
                }
                if let Some(plan) = &s.plan {
                    plan.note(crate::plan::Entry::Note {
                        text: format!(
                            "irreversible: {why} (rollback past this step needs --force)"
                        ),
                    });
                }
                Ok(())
            },
        );
}
