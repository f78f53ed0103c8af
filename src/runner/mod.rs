//! Starts, resumes and rolls back runs: loads the script, checks it before
//! anything changes, takes the run's lock, drives the engine on its own
//! thread while the main thread watches for Ctrl-C/SIGTERM, and turns what
//! happened into a run status and an [`Outcome`].

mod approve;
mod changes;
mod engine_thread;
mod id;
mod labs;
mod lifecycle;
mod plan;
mod undo;

pub use approve::{Approver, approve};
pub use engine_thread::shutdown_signal;
pub use id::{new_run_id, validate_run_id};
pub use lifecycle::{abort, delete, finished, prune};
pub use plan::{PlanOf, Planned};

use crate::engine::control::Control;
use crate::engine::diagnostic::Sources;
use crate::engine::ledger::Replay;
use crate::engine::session::Mode;
use crate::engine::{Host, Script, Session, SessionConfig, check, library_roots};
use crate::environment::Environment;
use crate::error::{Error, Result, exit};
use crate::events::{Event, EventSink, Events};
use crate::journal::{
    ActionKind, Gate, Run, RunStatus, Step, StepKind, StepStatus, Store, UndoStatus, now_ms,
};
use crate::settings::Settings;
use rhai::AST;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// How a run ended this time.
#[derive(Debug)]
pub enum Outcome {
    Succeeded,
    /// A step failed; `rendered` has the location and source line.
    StepFailed {
        step: String,
        rendered: String,
    },
    Paused {
        gate: String,
        message: String,
    },
    Interrupted,
    RolledBack,
    UndoFailed {
        step: String,
        error: String,
    },
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Succeeded | Outcome::RolledBack => exit::SUCCEEDED,
            Outcome::StepFailed { .. } | Outcome::UndoFailed { .. } => exit::STEP_FAILED,
            Outcome::Paused { .. } => exit::PAUSED,
            Outcome::Interrupted => exit::INTERRUPTED,
        }
    }

    /// The run's status after this outcome of a run or resume.
    fn status(&self) -> RunStatus {
        match self {
            Outcome::Succeeded => RunStatus::Succeeded,
            Outcome::StepFailed { .. } => RunStatus::Failed,
            Outcome::UndoFailed { .. } => RunStatus::RollbackFailed,
            Outcome::Paused { .. } => RunStatus::Paused,
            Outcome::Interrupted => RunStatus::Interrupted,
            Outcome::RolledBack => RunStatus::RolledBack,
        }
    }
}

/// What `ferry approve` did.
#[derive(Debug)]
pub struct Approval {
    pub gate: Gate,
    /// The gate had been approved before: nothing changed.
    pub already: bool,
    /// The run's status, which says whether a resume has anything to do.
    pub status: RunStatus,
}

/// Where a new run's targets come from.
#[derive(Debug, Clone, Default)]
pub enum EnvironmentChoice {
    /// `ferry.toml` beside the script if there is one; kubeconfig contexts otherwise.
    #[default]
    Auto,
    /// `--env FILE`
    File(PathBuf),
    /// `--lab` (a lab of its own under the state directory) or `--lab-dir DIR`.
    Lab(Option<PathBuf>),
}

pub struct StartRequest {
    pub script: PathBuf,
    pub params: BTreeMap<String, String>,
    pub id: Option<String>,
    pub environment: EnvironmentChoice,
    /// Accept `--set` keys the script never reads (it may read them in a way
    /// the check cannot see).
    pub allow_unknown_params: bool,
}

/// A run ready to drive: its engine, compiled script, lab (if any) and the
/// parameters the script reads (`None`: it may read any).
type Prepared = (
    Host,
    AST,
    Option<labs::LabGuard>,
    Option<std::collections::BTreeSet<String>>,
);

pub struct Runner {
    store: Arc<dyn Store>,
    sink: Arc<dyn EventSink>,
    /// `--lib` folders given on this command line.
    libs: Vec<PathBuf>,
    settings: Settings,
    backends: crate::ports::Backends,
    rt: Arc<tokio::runtime::Runtime>,
    /// Set on the runner `ferry plan` drives: its store is a scratch
    /// journal, its backends overlays (`crate::plan`).
    plan: Option<Arc<crate::plan::Plan>>,
}

impl Runner {
    pub fn new(
        store: Arc<dyn Store>,
        sink: Arc<dyn EventSink>,
        libs: Vec<PathBuf>,
        settings: Settings,
    ) -> Result<Self> {
        crate::tls::install_provider();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::usage(format!("cannot start the async runtime: {e}")))?;
        Ok(Runner {
            store,
            sink,
            libs,
            settings,
            backends: crate::adapters::real(),
            rt: Arc::new(rt),
            plan: None,
        })
    }

    /// Opens clusters and zones through `backends` instead of the real
    /// adapters (tests, embedders).
    #[must_use]
    pub fn with_backends(mut self, backends: crate::ports::Backends) -> Self {
        self.backends = backends;
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// `ferry run`: checks the script, records a new run and drives it.
    pub fn start(&self, request: StartRequest) -> Result<(String, Outcome)> {
        let script = Script::load(&request.script)?;
        let id = match request.id {
            Some(id) => validate_run_id(&id)?,
            None => new_run_id(&script.label),
        };
        if self.store.run(&id)?.is_some() {
            return Err(Error::RunExists { id });
        }
        let libs = library_roots(&self.libs)?;
        let now = now_ms();
        let mut run = Run {
            id: id.clone(),
            script: script.path.clone(),
            script_hash: script.hash.clone(),
            params: request.params,
            libs: self
                .libs
                .iter()
                .map(|l| l.canonicalize().unwrap_or_else(|_| l.clone()))
                .collect(),
            status: RunStatus::Running,
            dry_run: self.plan.is_some(),
            error: None,
            identities: BTreeMap::new(),
            environment: self.choose_environment(&request.environment, &script, &id)?,
            sources: BTreeMap::from([(script.label.clone(), script.text.to_string())]),
            actions: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        run.record(&*self.store, ActionKind::Start, None);
        let (host, ast, _lab, read) = self.prepare(
            &script,
            &run,
            Mode::Run,
            &libs,
            Vec::new(),
            Replay::default(),
        )?;
        if !request.allow_unknown_params
            && let Some(read) = read
        {
            refuse_unread(&run.params, &read)?;
        }
        self.store.create_run(&run)?;
        let lock = self.store.lock(&id)?;
        let outcome = match self.drive(&host, &ast, &mut run, &script, "run") {
            Ok(outcome) => outcome,
            Err(e) => {
                // Stopped before it recorded anything (a cluster context or
                // DNS zone the profile lacks, a script error before the
                // first step): nothing happened, so no run is kept to
                // resume or clean up; `ferry run` again once it is fixed.
                if self.store.steps(&id).is_ok_and(|s| s.is_empty()) {
                    let _ = lifecycle::remove(&*self.store, &run);
                }
                drop(lock);
                return Err(e);
            }
        };
        Ok((id, outcome))
    }

    /// `ferry resume`: continues a run from its journal.
    pub fn resume(&self, id: &str, allow_changed: bool) -> Result<Outcome> {
        let id = validate_run_id(id)?;
        let _lock = self.store.lock(&id)?;
        let mut run = self.existing(&id)?;
        match run.status {
            RunStatus::Succeeded => {
                return Err(Error::NotResumable {
                    run: id,
                    status: run.status.to_string(),
                    hint: "nothing left to do".into(),
                });
            }
            RunStatus::RolledBack | RunStatus::Aborted => {
                return Err(Error::NotResumable {
                    run: id,
                    status: run.status.to_string(),
                    hint: "start a new run with `ferry run`".into(),
                });
            }
            _ => {}
        }
        // Once an undo has started, resuming would build on a half-undone
        // world: only rollback may drive the run on.
        let records = self.store.steps(&id)?;
        let undone = records
            .iter()
            .any(|s| !matches!(s.undo, UndoStatus::None | UndoStatus::Pending));
        if run.status.in_rollback() || undone {
            return Err(Error::RollbackUnderway {
                run: id,
                status: run.status.to_string(),
            });
        }
        if let Some(gate) = self.waiting_gate(&id, &records)? {
            return Err(Error::GateWaiting {
                run: id,
                gate: gate.name,
                message: gate.message,
            });
        }
        let (script, host, ast, _lab) = self.reopen(&run, Mode::Run, records, allow_changed)?;
        if allow_changed {
            run.script_hash = script.hash.clone();
            // What this execution loads is what the run now is.
            run.sources.clear();
        }
        run.record(
            &*self.store,
            ActionKind::Resume,
            allow_changed.then(|| "--allow-changed".to_owned()),
        );
        self.drive(&host, &ast, &mut run, &script, "resume")
    }

    /// `ferry rollback`: replays the script to collect the undo closures of
    /// completed steps and runs them newest first, each journaled.
    /// `confirm` sees the run and its records once they are read under the
    /// lock (nobody can start driving the run while a person answers) and
    /// may refuse; nothing has been undone yet.
    pub fn rollback(
        &self,
        id: &str,
        allow_changed: bool,
        force: bool,
        confirm: &dyn Fn(&Run, &[Step]) -> Result<()>,
    ) -> Result<Outcome> {
        let id = validate_run_id(id)?;
        let _lock = self.store.lock(&id)?;
        let mut run = self.existing(&id)?;
        if run.status == RunStatus::RolledBack {
            return Err(Error::NotResumable {
                run: id,
                status: run.status.to_string(),
                hint: "already rolled back".into(),
            });
        }
        let records = self.store.steps(&id)?;
        if !force && let Some((step, why)) = irreversible(&records) {
            return Err(Error::Irreversible { run: id, step, why });
        }
        confirm(&run, &records)?;
        let (script, host, ast, _lab) =
            self.reopen(&run, Mode::Rollback, records, allow_changed)?;
        run.record(&*self.store, ActionKind::Rollback, None);
        self.drive(&host, &ast, &mut run, &script, "rollback")
    }

    /// Loads an existing run's script and engine for a resume or rollback,
    /// and refuses a changed script or module unless `allow_changed`.
    fn reopen(
        &self,
        run: &Run,
        mode: Mode,
        records: Vec<Step>,
        allow_changed: bool,
    ) -> Result<(Script, Host, AST, Option<labs::LabGuard>)> {
        let script = self.script_of(run)?;
        let libs = if self.libs.is_empty() {
            // The run's own roots, even those missing here: a module's label
            // names its root by position, and recorded copies stand in.
            recorded_roots(&run.libs)
        } else {
            library_roots(&self.libs)?
        };
        let replay = Replay { allow_changed };
        let (host, ast, lab, _) = self.prepare(&script, run, mode, &libs, records, replay)?;
        self.refuse_changed(run, &host, &script, allow_changed)?;
        Ok((script, host, ast, lab))
    }

    /// Refuses (exit 4) to go on with a script or module whose text differs
    /// from what the run recorded, showing the change as a unified diff,
    /// unless `--allow-changed` (then steps match by name).
    fn refuse_changed(
        &self,
        run: &Run,
        host: &Host,
        script: &Script,
        allow_changed: bool,
    ) -> Result<()> {
        if allow_changed {
            return Ok(());
        }
        let diff = if run.sources.is_empty() {
            // Recorded before sources were journaled: only the hash tells.
            (script.hash != run.script_hash).then(|| {
                format!(
                    "{} changed since the run started (no recorded copy to compare)",
                    script.display
                )
            })
        } else {
            changes::diff(&run.sources, |label| {
                if label == script.label {
                    Some(script.text.to_string())
                } else {
                    host.resolver.current_text(label)
                }
            })
        };
        match diff {
            Some(diff) => Err(Error::SourcesChanged {
                run: run.id.clone(),
                diff,
            }),
            None => Ok(()),
        }
    }

    /// `ferry approve`: records the approval of a gate by this operator
    /// (once: approving it again changes nothing); see [`approve::approve`].
    pub fn approve(&self, id: &str, gate: &str) -> Result<Approval> {
        approve::approve(&*self.store, id, gate, Approver::Operator)
    }

    fn existing(&self, id: &str) -> Result<Run> {
        self.store.run(id)?.ok_or_else(|| Error::UnknownRun {
            id: id.to_owned(),
            state: self.store.location(),
        })
    }

    /// The first gate that waits for an approval, if any.
    fn waiting_gate(&self, id: &str, records: &[Step]) -> Result<Option<Gate>> {
        let waiting: Vec<&str> = records
            .iter()
            .filter(|s| s.kind == StepKind::Gate && s.status == StepStatus::Waiting)
            .map(|s| s.name.as_str())
            .collect();
        Ok(self
            .store
            .gates(id)?
            .into_iter()
            .find(|g| g.approved_at.is_none() && waiting.contains(&g.name.as_str())))
    }

    /// `--lib` given now wins; otherwise the folders the run started with.
    /// The run's script: the file it recorded, or, where that path does not
    /// exist here (another machine, another folder, a pod), the copy the
    /// journal holds.
    fn script_of(&self, run: &Run) -> Result<Script> {
        match Script::load(&run.script) {
            Err(Error::ScriptRead { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                let label = run
                    .script
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "script".into());
                match run.sources.get(&label) {
                    Some(text) => {
                        self.sink.emit(
                            &run.id,
                            &Event::Output {
                                step: None,
                                depth: 0,
                                text: format!(
                                    "note: {} is not here: using the copy run {} recorded",
                                    run.script.display(),
                                    run.id
                                ),
                                debug: false,
                            },
                        );
                        Ok(Script::recorded(&run.script, &label, text))
                    }
                    None => Script::load(&run.script),
                }
            }
            other => other,
        }
    }

    /// Builds the engine for a run and checks the script before anything runs.
    /// The environment a new run records.
    fn choose_environment(
        &self,
        choice: &EnvironmentChoice,
        script: &Script,
        id: &str,
    ) -> Result<Environment> {
        match choice {
            EnvironmentChoice::Auto => {
                // The nearest ferry.toml from the script's folder upwards,
                // else from the working directory upwards: the team repo's
                // profile, whichever subfolder the command runs in.
                let found = crate::state::find_profile(&script.dir()).or_else(|| {
                    std::env::current_dir()
                        .ok()
                        .and_then(|cwd| crate::state::find_profile(&cwd))
                });
                match found {
                    Some(profile) => Environment::load(&profile).map_err(Error::usage),
                    None => Ok(Environment::default()),
                }
            }
            EnvironmentChoice::File(path) => Environment::load(path).map_err(Error::usage),
            EnvironmentChoice::Lab(dir) => {
                let dir = match dir {
                    Some(dir) => dir.clone(),
                    None => self.settings.work_dir.join("labs").join(id),
                };
                std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
                    action: "create the lab directory",
                    path: dir.clone(),
                    source,
                })?;
                Ok(Environment::lab(dir.canonicalize().unwrap_or(dir)))
            }
        }
    }

    /// The run's environment with its targets reachable: a lab run's lab is
    /// brought up (from its saved state) unless `ferry lab up` serves it.
    fn environment(&self, run: &Run) -> Result<(Environment, Option<labs::LabGuard>)> {
        match &run.environment.lab {
            None => Ok((run.environment.clone(), None)),
            Some(dir) => labs::reach(&self.rt, dir).map(|(env, lab)| (env, Some(lab))),
        }
    }

    fn prepare(
        &self,
        script: &Script,
        run: &Run,
        mode: Mode,
        libs: &[PathBuf],
        records: Vec<Step>,
        replay: Replay,
    ) -> Result<Prepared> {
        let (environment, lab) = self.environment(run)?;
        let session = Session::new(SessionConfig {
            run_id: run.id.clone(),
            mode,
            store: self.store.clone(),
            events: Events::new(&run.id, self.sink.clone()),
            cancel: Default::default(),
            rt: self.rt.handle().clone(),
            sources: Arc::new(Sources::default()),
            main_label: script.label.clone(),
            params: run.params.clone(),
            replay,
            // A dry run stays a dry run when resumed.
            settings: Settings {
                dry_run: run.dry_run || self.plan.is_some(),
                environment: Arc::new(environment),
                ..self.settings.clone()
            },
            identities: run.identities.clone(),
            records: Some(records),
            backends: self.backends.clone(),
            plan: self.plan.clone(),
        })?;
        let host = Host::new(Arc::new(session), script, libs, crate::primitives::register);
        host.resolver.fall_back_to(&run.sources);
        let ast = host.compile(script)?;
        let analysis = check::analyze(&host, &ast, &script.label);
        if !analysis.findings.is_empty() {
            return Err(Error::Script {
                rendered: analysis.findings.join("\n\n"),
            });
        }
        let mut missing = host
            .session
            .params_missing(analysis.required_params.iter().map(String::as_str));
        missing.dedup();
        if !missing.is_empty() {
            return Err(Error::MissingParams { names: missing });
        }
        Ok((host, ast, lab, analysis.read_params))
    }

    /// Runs the script (and, for a rollback, the undos) on the engine thread,
    /// records the run's new status and reports how it ended.
    fn drive(
        &self,
        host: &Host,
        ast: &AST,
        run: &mut Run,
        script: &Script,
        verb: &str,
    ) -> Result<Outcome> {
        let session = host.session.clone();
        let started = Instant::now();
        let status_before = run.status;
        let rollback = session.mode == Mode::Rollback;
        if !rollback {
            // A rollback keeps the run's status until its first undo starts.
            run.status = RunStatus::Running;
            run.error = None;
        }
        run.sources.extend(session.sources.texts());
        run.updated_at = now_ms();
        self.store.update_run(run)?;
        session.sources_saved();
        session.events.emit(Event::RunStarted {
            script: script.display.clone(),
            mode: verb.to_owned(),
        });

        let store = self.store.clone();
        let result = engine_thread::on_engine_thread(&self.rt, &session, || {
            let mut scope = host.scope();
            let replay = host.engine.run_ast_with_scope(&mut scope, ast);
            match session.mode {
                Mode::Rollback => match replay {
                    Ok(()) => Ok(undo::run_undos(host, &*store, run)),
                    Err(err) if matches!(Control::of(&err), Some(Control::RollbackCollected)) => {
                        Ok(undo::run_undos(host, &*store, run))
                    }
                    // A script error where the replay went on past the
                    // completed steps (code between steps, a broken later
                    // part): collecting undos needs only the steps that
                    // started, so if every one of them was collected the
                    // rollback goes on; `run_undos` refuses otherwise,
                    // naming the error.
                    Err(err) if Control::of(&err).is_none() => {
                        session.ledger.replay_failed(session.summarize(&err));
                        Ok(undo::run_undos(host, &*store, run))
                    }
                    Err(err) => Err(err),
                },
                _ => replay.map(|()| Ok(Outcome::Succeeded)),
            }
        });

        let outcome: Result<Outcome> = match result {
            Ok(outcome) => outcome,
            Err(err) => match Control::of(&err) {
                Some(Control::Paused { gate, message }) => Ok(Outcome::Paused { gate, message }),
                Some(Control::Cancelled) => Ok(Outcome::Interrupted),
                Some(Control::Exited { step, message }) => Ok(Outcome::StepFailed {
                    step,
                    rendered: host.render(&crate::engine::control::runtime_error(
                        message,
                        err.position(),
                    )),
                }),
                Some(Control::IdentityMismatch {
                    name,
                    recorded,
                    found,
                }) => Err(Error::IdentityMismatch {
                    run: run.id.clone(),
                    name,
                    recorded,
                    found,
                }),
                Some(Control::Claimed(held)) => Err(Error::Claimed(held)),
                Some(Control::Diverged { step, detail }) => Err(Error::ScriptChanged {
                    run: run.id.clone(),
                    step,
                    detail,
                }),
                Some(Control::MissingParams { names }) => Err(Error::MissingParams { names }),
                Some(Control::Journal { message }) => Err(Error::Journal {
                    state: self.store.location(),
                    source: crate::journal::JournalError::Write { message },
                }),
                Some(Control::RollbackCollected | Control::CollectStopped { .. }) | None => {
                    let summary = session.summarize(&err);
                    match session.ledger.failed_step(&err) {
                        Some(step) => Ok(Outcome::StepFailed {
                            step,
                            rendered: host.render(&err),
                        }),
                        None => {
                            run.error = Some(summary);
                            let rendered = host.render(&err);
                            // A cluster, DNS server or probe that failed
                            // outside any step is the world's failure, not
                            // a usage error; a target that cannot even be
                            // opened (no such context or zone) is config.
                            if crate::engine::host_error::HostError::of(&err)
                                .is_some_and(|h| !h.is_open())
                            {
                                Err(Error::Target { rendered })
                            } else {
                                Err(Error::Script { rendered })
                            }
                        }
                    }
                }
            },
        };

        // Identities and sources recorded during the run are kept whatever happened.
        run.identities = session.identities();
        run.sources.extend(session.sources.texts());
        let refused = matches!(
            outcome,
            Err(Error::ScriptChanged { .. }
                | Error::IdentityMismatch { .. }
                | Error::Claimed(_)
                | Error::RollbackIncomplete { .. })
        );
        if refused {
            // A refusal changes nothing else.
            run.status = if rollback { run.status } else { status_before };
            self.store.update_run(run)?;
        } else {
            run.status = match (&outcome, rollback) {
                (Ok(outcome), false) => outcome.status(),
                (Err(_), false) => RunStatus::Failed,
                (Ok(Outcome::RolledBack), true) => RunStatus::RolledBack,
                (Ok(Outcome::UndoFailed { .. }), true) => RunStatus::RollbackFailed,
                // Stopped, or failed before an undo ran: a rollback that has
                // begun stays rolling-back; one that has not changed nothing.
                (_, true) if run.status.in_rollback() => RunStatus::RollingBack,
                (_, true) => status_before,
            };
            if let Ok(Outcome::StepFailed { rendered, .. }) = &outcome {
                run.error = rendered
                    .lines()
                    .next()
                    .map(|l| l.trim_start_matches("error: ").to_owned());
            }
            if let Ok(Outcome::UndoFailed { step, error }) = &outcome {
                run.error = Some(format!("undo of `{step}` failed: {error}"));
            }
            run.updated_at = now_ms();
            self.store.update_run(run)?;
            if finished(run.status) {
                // The run has ended: the apps it held are free again.
                self.store.release_claims(&run.id)?;
            }
            let (steps_run, steps_replayed) = session.ledger.counts();
            session.events.emit(Event::RunFinished {
                status: run.status.to_string(),
                ms: started.elapsed().as_millis() as u64,
                steps_run,
                steps_replayed,
            });
        }
        self.sink.finish();
        outcome
    }
}

/// The newest step that ran and declared it cannot be undone safely
/// (`irreversible(why)` in its body), with why.
fn irreversible(records: &[Step]) -> Option<(String, String)> {
    records
        .iter()
        .rev()
        .filter(|s| s.kind == StepKind::Step && s.undo != UndoStatus::Done)
        .find_map(|s| {
            let why = s.data.as_ref()?.get("irreversible")?.as_str()?;
            Some((s.name.clone(), why.to_owned()))
        })
}

/// What `ferry rollback` would undo, newest first: every step that started
/// with an undo not yet done.
pub fn undo_plan(records: &[Step]) -> Vec<&Step> {
    let mut plan: Vec<&Step> = records
        .iter()
        .filter(|s| {
            s.kind == StepKind::Step
                && matches!(
                    s.undo,
                    UndoStatus::Pending | UndoStatus::Running | UndoStatus::Failed
                )
        })
        .collect();
    plan.sort_by_key(|s| std::cmp::Reverse(s.seq));
    plan
}

/// A run's recorded library roots, kept in order (missing ones included,
/// since module labels name roots by position), then `FERRY_PATH`.
fn recorded_roots(libs: &[PathBuf]) -> Vec<PathBuf> {
    let mut roots = libs.to_vec();
    if let Some(path) = std::env::var_os("FERRY_PATH") {
        roots.extend(std::env::split_paths(&path).filter(|p| p.is_dir()));
    }
    roots
}

/// Refuses `--set` keys the script never reads: a typo (`clinet`) must not
/// run the migration with the default it meant to replace.
fn refuse_unread(
    params: &BTreeMap<String, String>,
    read: &std::collections::BTreeSet<String>,
) -> Result<()> {
    let names: Vec<String> = params
        .keys()
        .filter(|k| !read.contains(*k))
        .cloned()
        .collect();
    let Some(first) = names.first() else {
        return Ok(());
    };
    let hint = check::suggest(first, &read.iter().cloned().collect());
    Err(Error::UnknownParams {
        names,
        read: read.iter().cloned().collect(),
        hint,
    })
}
