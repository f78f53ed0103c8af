//! Journal histories for in-process tests: a builder fills a store with a
//! run and its records as an earlier execution would have left them, so a
//! test states a history, runs the engine against it, and asserts what
//! replayed, what ran and what was refused, without spawning the binary.
//!
//! ```ignore
//! let h = History::new(SCRIPT).completed("a", json!(1)).running("b");
//! let (outcome, events) = h.resume();
//! ```

use ferry::error::Error;
use ferry::events::{Event, EventSink};
use ferry::journal::{
    Gate, MemoryStore, Run, RunStatus, Step, StepKind, StepStatus, Store, UndoStatus,
};
use ferry::runner::{Outcome, Runner};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub const RUN: &str = "h";

pub struct History {
    id: String,
    by: Option<String>,
    dir: tempfile::TempDir,
    script: PathBuf,
    text: String,
    status: RunStatus,
    records: Vec<Step>,
    gates: Vec<Gate>,
}

/// Events a runner emitted, for assertions.
#[derive(Default)]
pub struct Capture(Mutex<Vec<Event>>);

impl EventSink for Capture {
    fn emit(&self, _: &str, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Capture {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    /// Names of the steps that ran (started) in order.
    pub fn started(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::StepStarted { step, .. } => Some(step),
                _ => None,
            })
            .collect()
    }

    pub fn replayed(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::StepReplayed { step, .. } => Some(step),
                _ => None,
            })
            .collect()
    }

    /// What the script printed, in order.
    pub fn printed(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Output { text, .. } => Some(text),
                _ => None,
            })
            .collect()
    }
}

/// `script.rhai:line:col` of the first `step("name"` / `pause("name"` call.
fn position_of(text: &str, name: &str) -> String {
    for (i, line) in text.lines().enumerate() {
        for call in ["step(", "pause("] {
            let needle = format!("{call}\"{name}\"");
            if let Some(col) = line.find(&needle) {
                return format!("script.rhai:{}:{}", i + 1, col + 1);
            }
        }
    }
    panic!("no step or gate `{name}` in the script");
}

impl History {
    #[must_use]
    pub fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("script.rhai");
        std::fs::write(&script, text).expect("write script");
        History {
            id: RUN.into(),
            by: None,
            dir,
            script,
            text: text.to_owned(),
            status: RunStatus::Failed,
            records: Vec::new(),
            gates: Vec::new(),
        }
    }

    fn record(mut self, name: &str, status: StepStatus, value: Option<Value>) -> Self {
        let mut step = Step::new(name, position_of(&self.text, name), StepKind::Step);
        step.status = status;
        step.value = value;
        step.attempts = 1;
        step.started_at = Some(1);
        step.seq = self.records.len() as i64 + 1;
        self.records.push(step);
        self
    }

    /// A step that completed with `value`.
    #[must_use]
    pub fn completed(self, name: &str, value: Value) -> Self {
        self.record(name, StepStatus::Completed, Some(value))
    }

    /// A step whose process died half-way.
    #[must_use]
    pub fn running(self, name: &str) -> Self {
        self.record(name, StepStatus::Running, None)
    }

    #[must_use]
    pub fn failed(self, name: &str, error: &str) -> Self {
        let mut h = self.record(name, StepStatus::Failed, None);
        h.last().error = Some(error.to_owned());
        h
    }

    fn last(&mut self) -> &mut Step {
        self.records.last_mut().expect("a record first")
    }

    /// The last record has an undo closure, not yet run.
    #[must_use]
    pub fn with_undo(mut self) -> Self {
        self.last().undo = UndoStatus::Pending;
        self
    }

    /// The last record's undo ran (a rollback had begun).
    #[must_use]
    pub fn undone(mut self) -> Self {
        self.last().undo = UndoStatus::Done;
        self
    }

    /// The last record ran inside step `parent`'s body.
    #[must_use]
    pub fn inside(mut self, parent: &str) -> Self {
        self.last().parent = Some(parent.to_owned());
        self
    }

    /// A gate waiting for approval (approved if `approved`).
    #[must_use]
    pub fn gate(mut self, name: &str, approved: bool) -> Self {
        let mut step = Step::new(name, position_of(&self.text, name), StepKind::Gate);
        step.status = StepStatus::Waiting;
        step.attempts = 1;
        step.seq = self.records.len() as i64 + 1;
        self.records.push(step);
        self.gates.push(Gate {
            name: name.to_owned(),
            message: "m".into(),
            requested_at: 1,
            approved_at: approved.then_some(2),
            approved_by: approved.then(|| "test".to_owned()),
        });
        self
    }

    #[must_use]
    pub fn status(mut self, status: RunStatus) -> Self {
        self.status = status;
        self
    }

    /// The script now reads `text` (an edit after the history was written).
    #[must_use]
    pub fn edited(self, text: &str) -> Self {
        std::fs::write(&self.script, text).expect("write script");
        self
    }

    /// The run's id (default [`RUN`]), so several histories share a store.
    #[must_use]
    pub fn id(mut self, id: &str) -> Self {
        self.id = id.to_owned();
        self
    }

    /// Who started the run.
    #[must_use]
    pub fn started_by(mut self, by: &str) -> Self {
        self.by = Some(by.to_owned());
        self
    }

    /// App `app` reached `phase` (a `phase(app, name)` record).
    #[must_use]
    pub fn phase(mut self, app: &str, phase: &str, namespace: &str) -> Self {
        let mut step = Step::new(
            format!("{app}: {phase}"),
            "script.rhai:1:1",
            StepKind::Phase,
        );
        step.status = StepStatus::Completed;
        step.attempts = 1;
        step.started_at = Some(1);
        step.ended_at = Some(1);
        step.seq = self.records.len() as i64 + 1;
        step.data = Some(serde_json::json!({
            "app": app, "phase": phase, "namespace": namespace, "cluster": "old",
        }));
        self.records.push(step);
        self
    }

    /// The last record's guard statistics (its step data's `guard`).
    #[must_use]
    pub fn guard(mut self, stats: Value) -> Self {
        self.last().data = Some(serde_json::json!({ "guard": stats }));
        self
    }

    /// The last gate may only be approved by `approvers`.
    #[must_use]
    pub fn approvers(mut self, approvers: &[&str]) -> Self {
        self.last().data = Some(serde_json::json!({ "approvers": approvers }));
        self
    }

    /// A store holding the run and its records, as left by an earlier execution.
    pub fn store(&self) -> Arc<dyn Store> {
        let store = MemoryStore::new();
        self.write_to(&store);
        Arc::new(store)
    }

    /// Writes the run and its records into `store`.
    pub fn write_to(&self, store: &dyn Store) {
        let run = Run {
            id: self.id.clone(),
            script: self.script.clone(),
            script_hash: String::new(),
            params: BTreeMap::new(),
            libs: Vec::new(),
            status: self.status,
            dry_run: false,
            error: None,
            identities: BTreeMap::new(),
            environment: Default::default(),
            sources: BTreeMap::from([("script.rhai".to_owned(), self.text.clone())]),
            actions: self
                .by
                .iter()
                .map(|by| ferry::journal::Action {
                    action: ferry::journal::ActionKind::Start,
                    by: by.clone(),
                    at: 1,
                    detail: None,
                })
                .collect(),
            created_at: 1,
            updated_at: 1,
        };
        store.create_run(&run).expect("create run");
        for record in &self.records {
            store.put_step(&self.id, record, true).expect("put step");
        }
        for gate in &self.gates {
            store.put_gate(&self.id, gate).expect("put gate");
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// Drives `verb` ("resume" or "rollback") of the run in `store` in process.
pub fn drive(
    store: &Arc<dyn Store>,
    verb: &str,
    allow_changed: bool,
) -> (Result<Outcome, Error>, Arc<Capture>) {
    let sink = Arc::new(Capture::default());
    let runner =
        Runner::new(store.clone(), sink.clone(), vec![], Default::default()).expect("runner");
    let outcome = match verb {
        "resume" => runner.resume(RUN, allow_changed),
        "rollback" => runner.rollback(RUN, allow_changed, false, &|_, _| Ok(())),
        other => panic!("no verb {other}"),
    };
    (outcome, sink)
}
