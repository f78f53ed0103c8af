//! The fleet: which app reached which phase, across every run in the
//! journal. A run's phases come from its `phase` records (`phase(app,
//! name)`, which the stdlib recipe calls); runs recorded before that
//! primitive existed fall back to the recipe's step names
//! (`crate::cli::phases`). A phase whose preceding undo ran (rollback
//! undoes newest first, so the nearest undoable step before the phase tells)
//! no longer counts. An app's row shows, per phase, the newest run that
//! reached it, and the newest run that touched the app at all.

use crate::journal::{Run, RunStatus, Step, StepKind, StepStatus, UndoStatus};
use std::collections::{BTreeMap, HashMap};

/// The stdlib recipe's phases, in order; other phases a script declares
/// follow in the order first seen.
pub const RECIPE_PHASES: [&str; 4] = ["bridged", "prepared", "cut over", "finalized"];

/// A phase one run reached for one app.
#[derive(Debug, Clone, PartialEq)]
pub struct Reached {
    pub app: String,
    pub namespace: Option<String>,
    pub cluster: Option<String>,
    pub phase: String,
    pub at: Option<i64>,
}

/// What one run contributes to the fleet (cached per run: see [`Cache`]).
#[derive(Debug, Clone, Default)]
pub struct RunPhases {
    pub reached: Vec<Reached>,
    /// Apps the run touched, phase reached or not (phase records and, for
    /// the stdlib recipe, step names `app: ...`).
    pub apps: Vec<(String, Option<String>, Option<String>)>,
    /// Who may approve each of the run's gates that names approvers.
    pub approvers: BTreeMap<String, Vec<String>>,
}

impl RunPhases {
    pub fn of(run: &Run, steps: &[Step]) -> RunPhases {
        let mut out = RunPhases::default();
        let phases: Vec<&Step> = steps.iter().filter(|s| s.kind == StepKind::Phase).collect();
        if phases.is_empty() {
            // A journal from before `phase()`: the recipe's step names.
            for (app, cells) in crate::cli::phases::apps(steps) {
                for (i, cell) in cells.iter().enumerate() {
                    if cell.is_some() {
                        out.reached.push(Reached {
                            app: app.clone(),
                            namespace: None,
                            cluster: None,
                            phase: RECIPE_PHASES[i].to_owned(),
                            at: None,
                        });
                    }
                }
                out.apps.push((app, None, None));
            }
            return out;
        }
        for record in phases {
            let data = record.data.as_ref();
            let text = |key: &str| {
                data.and_then(|d| d.get(key))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            let (Some(app), Some(phase)) = (text("app"), text("phase")) else {
                continue;
            };
            let (namespace, cluster) = (text("namespace"), text("cluster"));
            if !out
                .apps
                .iter()
                .any(|(a, n, c)| *a == app && *n == namespace && *c == cluster)
            {
                out.apps
                    .push((app.clone(), namespace.clone(), cluster.clone()));
            }
            if record.status != StepStatus::Completed
                || run.status == RunStatus::RolledBack
                || undone(steps, record.seq)
            {
                continue;
            }
            out.reached.push(Reached {
                app,
                namespace,
                cluster,
                phase,
                at: record.ended_at,
            });
        }
        out
    }
}

/// Whether the nearest step with an undo recorded before `seq` was undone.
fn undone(steps: &[Step], seq: i64) -> bool {
    steps
        .iter()
        .filter(|s| s.kind == StepKind::Step && s.seq < seq && s.undo != UndoStatus::None)
        .max_by_key(|s| s.seq)
        .is_some_and(|s| s.undo == UndoStatus::Done)
}

/// A run as the fleet names it.
#[derive(Debug, Clone)]
pub struct RunRef {
    pub id: String,
    pub status: RunStatus,
    pub started_by: Option<String>,
    pub created_at: i64,
}

impl RunRef {
    fn of(run: &Run) -> RunRef {
        RunRef {
            id: run.id.clone(),
            status: run.status,
            started_by: run.started_by().map(str::to_owned),
            created_at: run.created_at,
        }
    }
}

/// One app's row.
#[derive(Debug, Clone)]
pub struct AppRow {
    pub app: String,
    pub namespace: Option<String>,
    pub cluster: Option<String>,
    /// Per phase column: the newest run that reached it, and when.
    pub phases: Vec<Option<(RunRef, Option<i64>)>>,
    /// The newest run that touched the app.
    pub latest: RunRef,
}

impl AppRow {
    /// The furthest phase reached, by column.
    pub fn furthest(&self) -> Option<usize> {
        self.phases.iter().rposition(Option::is_some)
    }
}

/// The whole fleet.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    pub phases: Vec<String>,
    pub rows: Vec<AppRow>,
}

impl Fleet {
    /// Builds the fleet from runs (newest first, as the store lists them)
    /// and what each contributed.
    pub fn build(runs: &[(Run, std::sync::Arc<RunPhases>)]) -> Fleet {
        let mut phases: Vec<String> = RECIPE_PHASES.iter().map(|p| (*p).to_owned()).collect();
        for (_, rp) in runs.iter().rev() {
            for r in &rp.reached {
                if !phases.contains(&r.phase) {
                    phases.push(r.phase.clone());
                }
            }
        }
        let column: HashMap<&str, usize> = phases
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_str(), i))
            .collect();
        type Key = (Option<String>, Option<String>, String);
        let mut rows: BTreeMap<Key, AppRow> = BTreeMap::new();
        for (run, rp) in runs {
            let run_ref = RunRef::of(run);
            for (app, namespace, cluster) in &rp.apps {
                let key = (namespace.clone(), cluster.clone(), app.clone());
                // Runs come newest first: the first seen is the latest.
                rows.entry(key).or_insert_with(|| AppRow {
                    app: app.clone(),
                    namespace: namespace.clone(),
                    cluster: cluster.clone(),
                    phases: vec![None; phases.len()],
                    latest: run_ref.clone(),
                });
            }
            for r in &rp.reached {
                let key = (r.namespace.clone(), r.cluster.clone(), r.app.clone());
                if let Some(row) = rows.get_mut(&key)
                    && let Some(&i) = column.get(r.phase.as_str())
                    && row.phases[i].is_none()
                {
                    row.phases[i] = Some((run_ref.clone(), r.at));
                }
            }
        }
        Fleet {
            phases,
            rows: rows.into_values().collect(),
        }
    }
}

/// Per-run phase summaries, kept while a run's status and `updated_at`
/// stay the same: a run that no process drives cannot gain records, so only
/// running runs are read again on every page.
#[derive(Default)]
pub struct Cache {
    runs: std::sync::Mutex<HashMap<String, Cached>>,
}

/// A run's summary and the (status, `updated_at`) it was read at.
type Cached = (RunStatus, i64, std::sync::Arc<RunPhases>);

impl Cache {
    pub fn get(&self, run: &Run) -> Option<std::sync::Arc<RunPhases>> {
        if matches!(run.status, RunStatus::Running | RunStatus::RollingBack) {
            return None;
        }
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.get(&run.id)
            .filter(|(status, updated, _)| *status == run.status && *updated == run.updated_at)
            .map(|(_, _, phases)| phases.clone())
    }

    pub fn put(&self, run: &Run, phases: std::sync::Arc<RunPhases>) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.insert(run.id.clone(), (run.status, run.updated_at, phases));
    }

    /// Forgets runs no longer in the journal (deleted, pruned).
    pub fn retain(&self, ids: &std::collections::HashSet<&str>) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.retain(|id, _| ids.contains(id.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: i64, kind: StepKind, undo: UndoStatus, app: &str, phase: &str) -> Step {
        let mut s = Step::new(format!("{app}: {phase}"), "s:1:1", kind);
        s.seq = seq;
        s.status = StepStatus::Completed;
        s.undo = undo;
        if kind == StepKind::Phase {
            s.data = Some(serde_json::json!({ "app": app, "phase": phase, "namespace": "ns" }));
        }
        s
    }

    #[test]
    fn a_phase_after_an_undone_step_no_longer_counts() {
        // app1 bridged; app2 bridged; a rollback undid app2's step, then stopped.
        let steps = [
            record(1, StepKind::Step, UndoStatus::Pending, "app1", "bridge"),
            record(2, StepKind::Phase, UndoStatus::None, "app1", "bridged"),
            record(3, StepKind::Step, UndoStatus::Done, "app2", "bridge"),
            record(4, StepKind::Step, UndoStatus::None, "app2", "check"),
            record(5, StepKind::Phase, UndoStatus::None, "app2", "bridged"),
        ];
        let run = Run {
            id: "r".into(),
            script: "s.rhai".into(),
            script_hash: String::new(),
            params: Default::default(),
            libs: Vec::new(),
            status: RunStatus::RollbackFailed,
            dry_run: false,
            error: None,
            identities: Default::default(),
            environment: Default::default(),
            sources: Default::default(),
            actions: Vec::new(),
            created_at: 0,
            updated_at: 0,
        };
        let phases = RunPhases::of(&run, &steps);
        let reached: Vec<&str> = phases.reached.iter().map(|r| r.app.as_str()).collect();
        assert_eq!(reached, ["app1"]);
        assert_eq!(phases.apps.len(), 2, "both apps were touched");
        let fleet = Fleet::build(&[(run, std::sync::Arc::new(phases))]);
        assert_eq!(fleet.rows[0].furthest(), Some(0));
        assert_eq!(fleet.rows[1].furthest(), None);
    }
}
