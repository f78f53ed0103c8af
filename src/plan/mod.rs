//! `ferry plan`: the whole script run against overlays, changing nothing.
//!
//! A migration script is imperative, so no static reading can say what it
//! will do; running it can. Plan mode runs it for real with three changes:
//!
//! * every cluster and zone is wrapped in an overlay ([`cluster`],
//!   [`zone`]): a write is validated by the real server (server-side dry
//!   run for Kubernetes; the zone's own reads for DNS) and its result kept,
//!   so a later read in the same plan sees the planned object: the Service
//!   just planned as an ExternalName *is* one when the next step reads it;
//! * waits, `probe::until`, guards and sleeps are recorded, not awaited:
//!   the plan says what would be waited for or proven, from where, and goes
//!   on as if it held (the primitives ask [`Plan`] through the session);
//! * gates are listed and passed (`--until-gate` stops at one), and the
//!   journal is a throwaway one, so the team's journal gains no run.
//!
//! What the plan saw goes into one [`Plan`] recorder, shared by the
//! overlays and the primitives, and comes out as a [`Report`]: the steps in
//! order, under each one the diff of every object and record it would
//! create, change or delete, and a summary.

pub mod cluster;
mod report;
pub mod zone;

pub use report::{Report, Summary};

use crate::events::{Event, EventSink};
use serde::Serialize;
use std::sync::{Arc, Mutex};

/// What a planned write does to its object or record set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Change,
    Delete,
}

/// One thing the plan noted, under the step that did it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A Kubernetes object would be created, changed or deleted.
    Object {
        action: Action,
        /// The cluster's name (kubeconfig context).
        cluster: String,
        /// `Service app1-ns/app1`.
        object: String,
        /// `~ spec.type: "ClusterIP" → "ExternalName"` lines.
        diff: Vec<String>,
    },
    /// A DNS record set would be created, changed or deleted.
    Record {
        action: Action,
        zone: String,
        /// `old.mycompany.internal. A`.
        record: String,
        diff: Vec<String>,
    },
    /// A wait, proof or sleep that the plan did not wait for.
    Wait { what: String, now: Option<String> },
    /// A guard that would watch the step's flip.
    Guard {
        target: String,
        rate: f64,
        max_failures: u64,
    },
    /// A gate the run would stop at for approval.
    Gate { name: String, message: String },
    /// Something a person should know (an irreversible step, a claim held).
    Note { text: String },
}

/// A step as the plan met it, in the order it started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedStep {
    pub name: String,
    pub depth: usize,
    /// `run` (the plan ran its body), `replayed` (completed in the journal
    /// the plan continues: `--run`), `gate`, `undo` (a rollback's),
    /// `script` (what the script did between steps; no name).
    pub state: &'static str,
    /// Why the plan stopped at it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub entries: Vec<Entry>,
}

/// Shared by the overlays and the primitives of one plan.
pub struct Plan {
    /// `--until-gate NAME`: the plan stops at this gate.
    pub until_gate: Option<String>,
    /// The team's journal: claims are checked against it, not taken.
    pub journal: Arc<dyn crate::journal::Store>,
    inner: Mutex<Recorded>,
}

/// The steps met so far, in order; what happens between steps (a
/// top-level wait, a `print`) is kept in order too, as a step of state
/// `script` with no name.
#[derive(Default)]
struct Recorded {
    steps: Vec<PlannedStep>,
}

impl Plan {
    pub fn new(journal: Arc<dyn crate::journal::Store>, until_gate: Option<String>) -> Arc<Plan> {
        Arc::new(Plan {
            until_gate,
            journal,
            inner: Mutex::new(Recorded::default()),
        })
    }

    fn recorded(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes `entry` under the innermost step running on this thread.
    pub fn note(&self, entry: Entry) {
        let step = crate::engine::frames::current();
        let mut recorded = self.recorded();
        let found = step.and_then(|name| {
            recorded
                .steps
                .iter_mut()
                .rev()
                .find(|s| s.name == name && s.error.is_none())
        });
        if let Some(step) = found {
            step.entries.push(entry);
            return;
        }
        match recorded.steps.last_mut() {
            Some(last) if last.state == "script" => last.entries.push(entry),
            _ => recorded.steps.push(PlannedStep {
                name: String::new(),
                depth: 1,
                state: "script",
                error: None,
                entries: vec![entry],
            }),
        }
    }

    /// The report of everything noted so far.
    pub fn report(&self) -> Report {
        let recorded = self.recorded();
        Report::new(recorded.steps.clone())
    }

    /// A gate the run would stop at.
    pub fn gate(&self, name: &str, message: &str) {
        let mut recorded = self.recorded();
        recorded.steps.push(PlannedStep {
            name: name.to_owned(),
            depth: crate::engine::frames::depth() + 1,
            state: "gate",
            error: None,
            entries: vec![Entry::Gate {
                name: name.to_owned(),
                message: message.to_owned(),
            }],
        });
    }

    fn started(&self, name: &str, depth: usize, state: &'static str) {
        let mut recorded = self.recorded();
        // A step retried in the same plan (a `retry` around it) is one step.
        if recorded
            .steps
            .last()
            .is_some_and(|s| s.name == name && s.error.is_none() && state == "run")
        {
            return;
        }
        recorded.steps.push(PlannedStep {
            name: name.to_owned(),
            depth,
            state,
            error: None,
            entries: Vec::new(),
        });
    }

    fn failed(&self, name: &str, error: &str) {
        let mut recorded = self.recorded();
        if let Some(step) = recorded.steps.iter_mut().rev().find(|s| s.name == name) {
            step.error = Some(error.to_owned());
        }
    }
}

/// The plan's event sink: the steps' order comes from the run's own events.
pub struct Collector(pub Arc<Plan>);

impl EventSink for Collector {
    fn emit(&self, _: &str, event: &Event) {
        match event {
            Event::StepStarted { step, depth, .. } => self.0.started(step, *depth, "run"),
            Event::StepReplayed { step, depth } => self.0.started(step, *depth, "replayed"),
            Event::StepFailed { step, error, .. } => self.0.failed(step, error),
            Event::UndoStarted { step } => self.0.started(step, 1, "undo"),
            Event::UndoFailed { step, error } => self.0.failed(step, error),
            // What the script says (`print`) goes under its step.
            Event::Output {
                text, debug: false, ..
            } => self.0.note(Entry::Note { text: text.clone() }),
            _ => {}
        }
    }
}
