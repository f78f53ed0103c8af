//! `planning()`: whether the script runs under `ferry plan`. Waits, proofs
//! and guards note themselves in a plan on their own; a recipe that polls
//! in a loop of its own (`ferry/drain`) asks, and says what it would
//! watch instead of spinning through sleeps that a plan does not wait.

use crate::engine::Session;
use rhai::{Engine, FuncRegistration};
use std::sync::Arc;

pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    let planning = session.plan.is_some();
    FuncRegistration::new("planning")
        .with_params_info(["bool"])
        .with_comments([
            "/// True under `ferry plan` (and `ferry run --dry-run`): nothing changes and",
            "/// nothing is waited for, so a loop that polls should say what it would",
            "/// watch (`print`, shown under its step in the plan) and return.",
        ])
        .register_into_engine(engine, move || planning);
}
