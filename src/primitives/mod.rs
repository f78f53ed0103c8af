//! Functions scripts call, one file per Rhai name (`step` lives in
//! `step.rs`, `parallel` in `parallel.rs`, ...). Each file has a
//! `register()`; side effects go through the session's ports, never a client
//! held here.

pub mod claim;
pub mod cluster;
pub mod corefile;
pub mod dns;
pub mod guard;
pub mod irreversible;
pub mod options;
pub mod parallel;
pub mod params;
pub mod pause;
pub mod phase;
pub mod planning;
pub mod probe;
pub mod sleep;
pub mod step;
#[cfg(feature = "test-primitives")]
pub mod testing;
pub mod yaml;

use crate::engine::Session;
use crate::engine::control::runtime_error;
use crate::engine::frames;
use rhai::{Engine, EvalAltResult, NativeCallContext};
use std::sync::Arc;

pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    step::register(engine, session);
    claim::register(engine, session);
    irreversible::register(engine, session);
    pause::register(engine, session);
    planning::register(engine, session);
    phase::register(engine, session);
    sleep::register(engine, session);
    parallel::register(engine, session);
    params::register(engine);
    yaml::register(engine);
    corefile::register(engine);
    cluster::register(engine, session);
    dns::register(engine, session);
    probe::register(engine, session);
    guard::register(engine, session);
    #[cfg(feature = "test-primitives")]
    if testing::enabled() {
        testing::register(engine, session);
    }
}

/// Refuses a primitive that changes the world when no step encloses it: only
/// a step's completion is durable, so a mutation outside one could be lost
/// or repeated without record.
pub fn require_step(ctx: &NativeCallContext, primitive: &str) -> Result<(), Box<EvalAltResult>> {
    if frames::role() == Some(frames::Role::Collect) {
        // Rollback replays this completed body only to find nested undos.
        let pos = ctx.call_position();
        return Err(crate::engine::control::Control::CollectStopped {
            what: primitive.to_owned(),
            position: format!(
                "{}:{}:{}",
                ctx.call_source().unwrap_or_default(),
                pos.line().unwrap_or(0),
                pos.position().unwrap_or(0)
            ),
        }
        .raise(pos));
    }
    if frames::depth() > 0 {
        frames::note_change();
        return Ok(());
    }
    Err(runtime_error(
        format!(
            "`{primitive}` changes the world and must run inside a step: step(\"name\", || {{ {primitive}(...) }})"
        ),
        ctx.call_position(),
    ))
}
