//! The durable step journal: what a run is, what its steps recorded, and the
//! [`Store`] port every backend implements.
//!
//! The SQLite store is the default; PostgreSQL and Kubernetes keep a team's
//! journal where the whole team reaches it (`crate::state` chooses); the
//! in-memory store backs `ferry check`, `ferry docs` and tests. All of them
//! pass the same suite (`tests/suite/journal_store.rs`).

mod copy;
mod kubernetes;
pub mod lock;
mod memory;
mod postgres;
mod sqlite;

pub use crate::error::JournalError;
pub use copy::{Copied, copy, copy_run};
pub use kubernetes::{
    KubernetesStore, LEASE_DURATION, MAX_RECORD_BYTES, RECORD_FORMAT, rbac_manifest,
};
pub use lock::{Holder, LockState, RunLock};
pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Formats a journal timestamp for people (UTC, seconds).
pub fn format_ms(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// How deep a journaled value may nest. Deeper values fail their step with
/// a clear error when written, so every value that was journaled reads back.
pub const MAX_VALUE_DEPTH: usize = 512;

/// Parses a journaled JSON value. serde_json stops at 128 levels by default;
/// journaled values were checked against [`MAX_VALUE_DEPTH`] when written, so
/// the limit is lifted here (the depth, and with it the recursion, is bounded).
pub fn parse_value(text: &str) -> serde_json::Result<serde_json::Value> {
    use serde::Deserialize;
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let value = serde_json::Value::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// Where a run stands.
    RunStatus {
        Running = "running",
        Paused = "paused",
        Failed = "failed",
        Succeeded = "succeeded",
        RolledBack = "rolled-back",
        Aborted = "aborted",
        Interrupted = "interrupted",
        RollingBack = "rolling-back",
        RollbackFailed = "rollback-failed",
    }
);

impl RunStatus {
    /// Whether a rollback has begun: from then on only `ferry rollback`
    /// drives the run, since a resume would build on a half-undone world.
    pub fn in_rollback(self) -> bool {
        matches!(self, RunStatus::RollingBack | RunStatus::RollbackFailed)
    }
}

string_enum!(
    /// Where a step stands. `Running` after a crash means "interrupted, run
    /// again"; only `Completed` is ever replayed.
    StepStatus {
        Running = "running",
        Completed = "completed",
        Failed = "failed",
        Interrupted = "interrupted",
        Waiting = "waiting",
    }
);

string_enum!(
    /// What produced a journal record. Each kind is its own namespace: a
    /// record is keyed by (kind, name), so a user's step can never collide
    /// with a gate or with a step's durable timer. A `phase` record says
    /// which phase an app reached (`phase(app, name)`), for the board.
    StepKind {
        Step = "step",
        Gate = "gate",
        Sleep = "sleep",
        Phase = "phase",
    }
);

string_enum!(
    /// Progress of a step's undo closure during `ferry rollback`.
    UndoStatus {
        None = "none",
        Pending = "pending",
        Running = "running",
        Done = "done",
        Failed = "failed",
    }
);

/// One run: a script, its parameters and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub id: String,
    /// Absolute path of the script, so anyone can resume from any directory.
    pub script: PathBuf,
    /// SHA-256 of the script's content when the run started (or was last
    /// resumed with `--allow-changed`).
    pub script_hash: String,
    pub params: BTreeMap<String, String>,
    /// Library roots (`--lib`) in effect, so a resume resolves the same imports.
    pub libs: Vec<PathBuf>,
    pub status: RunStatus,
    pub dry_run: bool,
    pub error: Option<String>,
    /// Identities of the targets the run touched (e.g. cluster UIDs), by name.
    pub identities: BTreeMap<String, serde_json::Value>,
    /// The environment profile its names resolve through (for a lab run,
    /// the lab's directory), so a resume reaches the same targets.
    pub environment: crate::environment::Environment,
    /// Source text of the script and of every module it imported, by source
    /// label, as of the last run or resume: a resume compares against them,
    /// and they are what a teammate needs to see what the run executed.
    pub sources: BTreeMap<String, String>,
    /// Who started, resumed, approved, rolled back or aborted the run, oldest
    /// first: a team sharing one journal sees who did what.
    pub actions: Vec<Action>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Run {
    /// Who started the run (the first action's operator).
    pub fn started_by(&self) -> Option<&str> {
        self.actions.first().map(|a| a.by.as_str())
    }
}

string_enum!(
    /// What an operator did to a run.
    ActionKind {
        Start = "start",
        Resume = "resume",
        Rollback = "rollback",
        Abort = "abort",
    }
);

/// One thing an operator did to a run: what, who (`user@host`, with the
/// Kubernetes identity where one is known) and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub action: ActionKind,
    pub by: String,
    pub at: i64,
    /// What it was about, e.g. the gate approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A key (an app a recipe moves: `<cluster identity>/<namespace>/<app>`)
/// that one run holds for its whole life, across gates and weeks, so a
/// second run cannot drive the same app at the same time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claim {
    pub key: String,
    pub run: String,
    pub claimed_at: i64,
}

/// One journal record: a step, a gate or a durable timer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Order of first start within the run; assigned by the store.
    pub seq: i64,
    pub name: String,
    /// `source:line:col` of the call, used to detect changed scripts.
    pub position: String,
    pub kind: StepKind,
    /// The enclosing step's name, for a step run inside another step's body:
    /// rollback re-enters the parent to collect the nested steps' undos.
    pub parent: Option<String>,
    pub status: StepStatus,
    /// The body's value, as JSON, once completed.
    pub value: Option<serde_json::Value>,
    pub error: Option<String>,
    pub attempts: u32,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub undo: UndoStatus,
    pub undo_error: Option<String>,
    /// Kind-specific data: a timer's deadline, a guard's statistics.
    pub data: Option<serde_json::Value>,
}

impl Step {
    pub fn new(name: impl Into<String>, position: impl Into<String>, kind: StepKind) -> Self {
        Step {
            seq: 0,
            name: name.into(),
            position: position.into(),
            kind,
            parent: None,
            status: StepStatus::Running,
            value: None,
            error: None,
            attempts: 0,
            started_at: None,
            ended_at: None,
            undo: UndoStatus::None,
            undo_error: None,
            data: None,
        }
    }
}

/// A gate a run waits at, and who approved it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gate {
    pub name: String,
    pub message: String,
    pub requested_at: i64,
    pub approved_at: Option<i64>,
    pub approved_by: Option<String>,
}

/// The journal port. Every write is one transaction; `durable` writes are on
/// disk when the call returns.
pub trait Store: Send + Sync {
    /// Where the state lives, for messages: a path, or a URL without its
    /// password.
    fn location(&self) -> String;
    /// Records a new run; fails with [`crate::error::Error::RunExists`] if the id is taken.
    fn create_run(&self, run: &Run) -> Result<()>;
    fn run(&self, id: &str) -> Result<Option<Run>>;
    /// All runs, newest first.
    fn runs(&self) -> Result<Vec<Run>>;
    /// Saves a run's mutable fields (status, error, hash, identities, updated_at).
    fn update_run(&self, run: &Run) -> Result<()>;
    /// A run's records in order of first start.
    fn steps(&self, run: &str) -> Result<Vec<Step>>;
    /// Inserts or replaces the record keyed by (`step.kind`, `step.name`).
    fn put_step(&self, run: &str, step: &Step, durable: bool) -> Result<()>;
    fn gates(&self, run: &str) -> Result<Vec<Gate>>;
    fn put_gate(&self, run: &str, gate: &Gate) -> Result<()>;
    /// Durably sets the undo status (and error) of the step (kind `step`) named `step`, leaving the
    /// rest of its record as it is.
    fn set_undo(&self, run: &str, step: &str, undo: UndoStatus, error: Option<&str>) -> Result<()>;
    /// Takes the run's lock: only one process drives a run at a time. A lock
    /// whose holder died is free again.
    fn lock(&self, run: &str) -> Result<RunLock>;
    /// Whether a live process holds the run's lock, and who last took it,
    /// without taking it (`status` tells a running run from a dead driver).
    fn lock_state(&self, run: &str) -> Result<LockState>;
    /// Removes a run with its records and gates; `false` if there was none.
    /// The caller decides whether the run may go (`ferry delete`, `prune`).
    fn delete_run(&self, id: &str) -> Result<bool>;
    /// Claims `key` for `run` atomically: returns the claim that holds the
    /// key afterwards, which is `run`'s own (new, or kept from an earlier
    /// call) unless another run held it already.
    fn claim(&self, key: &str, run: &str, at: i64) -> Result<Claim>;
    /// Releases every claim `run` holds; returns how many there were.
    fn release_claims(&self, run: &str) -> Result<usize>;
    /// Every claim held, by key.
    fn claims(&self) -> Result<Vec<Claim>>;
    /// Who the backend knows this process as (the Kubernetes user of the
    /// `kubernetes://` backend), to record beside `user@host`.
    fn identity(&self) -> Option<String> {
        None
    }
}

/// Who may approve gate `name`, as its record says (`pause(…, #{ approvers })`);
/// `None`: anyone may.
pub fn gate_approvers(steps: &[Step], name: &str) -> Option<Vec<String>> {
    let record = steps
        .iter()
        .find(|s| s.kind == StepKind::Gate && s.name == name)?;
    let list = record.data.as_ref()?.get("approvers")?.as_array()?;
    Some(
        list.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
    )
}

/// Whether this operator is one of `approvers`: by user name, `user@host`,
/// or the backend's identity of them.
pub fn may_approve(approvers: &[String], store: &dyn Store) -> bool {
    let mut me = vec![lock::user(), lock::user_at_host()];
    me.extend(store.identity());
    approvers.iter().any(|a| me.iter().any(|m| m == a))
}

/// Who is acting: `user@host`, and the backend's identity where it has one
/// (`alice@laptop (kubernetes: alice@example.com)`).
pub fn operator(store: &dyn Store) -> String {
    let local = lock::user_at_host();
    match store.identity() {
        Some(identity) => format!("{local} (kubernetes: {identity})"),
        None => local,
    }
}

impl Run {
    /// Records that the operator did `action` (pushed before the next
    /// `update_run` writes it).
    pub fn record(&mut self, store: &dyn Store, action: ActionKind, detail: Option<String>) {
        self.actions.push(Action {
            action,
            by: operator(store),
            at: now_ms(),
            detail,
        });
    }
}
