//! Dynamic completion (`source <(COMPLETE=bash ferry)`): run ids and the
//! gates runs wait at, read from the journal this folder uses. Completion
//! must never fail or print: any error gives no candidates.

use crate::journal::{StepKind, Store};
use crate::state::{OpenSettings, StateChoice};
use clap_complete::engine::CompletionCandidate;
use std::sync::Arc;

fn store() -> Option<Arc<dyn Store>> {
    let cwd = std::env::current_dir().ok()?;
    let given = std::env::var("FERRY_STATE").ok();
    let choice = StateChoice::find(given.as_deref(), &cwd).ok()?;
    choice.open(&OpenSettings::default(), true).ok()
}

/// Every run, newest first, with its status and script as help.
pub fn run_ids() -> Vec<CompletionCandidate> {
    let Some(store) = store() else {
        return Vec::new();
    };
    store
        .runs()
        .unwrap_or_default()
        .into_iter()
        .map(|run| {
            let script = run
                .script
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            CompletionCandidate::new(run.id).help(Some(format!("{} {script}", run.status).into()))
        })
        .collect()
}

/// Gates that wait for an approval, in any run that has not ended.
pub fn waiting_gates() -> Vec<CompletionCandidate> {
    let Some(store) = store() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for run in store.runs().unwrap_or_default() {
        if crate::runner::finished(run.status) {
            continue;
        }
        let steps = store.steps(&run.id).unwrap_or_default();
        for gate in store.gates(&run.id).unwrap_or_default() {
            let waiting = gate.approved_at.is_none()
                && steps
                    .iter()
                    .any(|s| s.kind == StepKind::Gate && s.name == gate.name);
            if waiting
                && !out
                    .iter()
                    .any(|c: &CompletionCandidate| c.get_value() == gate.name.as_str())
            {
                out.push(
                    CompletionCandidate::new(gate.name.clone())
                        .help(Some(format!("run {}: {}", run.id, gate.message).into())),
                );
            }
        }
    }
    out
}
