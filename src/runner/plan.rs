//! `ferry plan`: a new run, a resume or a rollback driven by a second
//! runner whose journal is a scratch one, whose clusters and zones are
//! overlays and whose events feed the plan. The same `start`, `resume` and
//! `rollback` code runs, so what the plan shows is what they would do; the
//! team's journal is only read (the run a resume or rollback continues,
//! the claims other runs hold).

use super::{EnvironmentChoice, Outcome, Runner, StartRequest};
use crate::error::{Error, Result};
use crate::journal::{Store, now_ms};
use crate::plan::{Collector, Plan, Report};
use crate::ports::Backends;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What to plan.
pub enum PlanOf {
    /// A new run of a script.
    Start {
        script: PathBuf,
        params: BTreeMap<String, String>,
        environment: EnvironmentChoice,
        allow_unknown_params: bool,
    },
    /// What `ferry resume RUN` would do next.
    Resume { run: String },
    /// What `ferry rollback RUN` would undo.
    Rollback { run: String },
}

/// A finished plan: what it saw, and how the planned execution ended
/// (`Succeeded`, a step that would fail, the gate it stopped at).
pub struct Planned {
    pub report: Report,
    pub outcome: Outcome,
}

/// A scratch folder (a lab started for the plan), removed when the plan
/// ends; the plan's journal lives in memory.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        let dir =
            std::env::temp_dir().join(format!("ferry-plan-{}-{}", std::process::id(), now_ms()));
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            action: "create the plan's scratch folder",
            path: dir.clone(),
            source,
        })?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Runner {
    /// Plans `what`; changes nothing anywhere. `until_gate` stops the plan
    /// at that gate; other gates are listed and passed.
    pub fn plan(&self, what: PlanOf, until_gate: Option<String>) -> Result<Planned> {
        let scratch = Scratch::new()?;
        let store: Arc<dyn Store> = Arc::new(crate::journal::MemoryStore::new());
        let plan = Plan::new(self.store.clone(), until_gate);
        let planner = Runner {
            store: store.clone(),
            sink: Arc::new(Collector(plan.clone())),
            libs: self.libs.clone(),
            settings: crate::settings::Settings {
                dry_run: true,
                work_dir: scratch.0.clone(),
                ..self.settings.clone()
            },
            backends: Backends {
                clusters: Arc::new(crate::plan::cluster::OverlayConnector {
                    inner: self.backends.clusters.clone(),
                    plan: plan.clone(),
                }),
                zones: Arc::new(crate::plan::zone::OverlayOpener {
                    inner: self.backends.zones.clone(),
                    plan: plan.clone(),
                }),
            },
            rt: self.rt.clone(),
            plan: Some(plan.clone()),
        };
        let outcome = match what {
            PlanOf::Start {
                script,
                params,
                environment,
                allow_unknown_params,
            } => {
                let label = script
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "script".into());
                planner
                    .start(StartRequest {
                        script,
                        params,
                        id: Some(super::new_run_id(&format!("plan-{label}"))),
                        environment,
                        allow_unknown_params,
                    })?
                    .1
            }
            PlanOf::Resume { run } => {
                let id = into_scratch(&*self.store, &*store, &run)?;
                planner.resume(&id, false)?
            }
            PlanOf::Rollback { run } => {
                let id = into_scratch(&*self.store, &*store, &run)?;
                planner.rollback(&id, false, true, &|_, _| Ok(()))?
            }
        };
        drop(planner);
        Ok(Planned {
            report: plan.report(),
            outcome,
        })
    }
}

/// Copies run `id` (its record, steps and gates) into the scratch journal,
/// with its waiting gates approved: a plan goes past them.
fn into_scratch(from: &dyn Store, to: &dyn Store, id: &str) -> Result<String> {
    let id = super::validate_run_id(id)?;
    let Some(run) = from.run(&id)? else {
        return Err(Error::UnknownRun {
            id,
            state: from.location(),
        });
    };
    crate::journal::copy_run(from, to, &run, |gate| {
        if gate.approved_at.is_none() {
            gate.approved_at = Some(now_ms());
            gate.approved_by = Some("(plan)".into());
        }
    })?;
    to.update_run(&run)?;
    Ok(id)
}
