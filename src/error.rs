//! Everything that can stop a command, and the exit code each one maps to.
//!
//! Variants are structs with named fields so a message always says *what* and
//! *where*. Messages are lowercase and carry no credentials.

use std::path::PathBuf;

/// Exit codes, documented in the README.
pub mod exit {
    pub const SUCCEEDED: i32 = 0;
    pub const STEP_FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const PAUSED: i32 = 3;
    pub const REFUSED: i32 = 4;
    pub const INTERRUPTED: i32 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Usage { message: String },

    /// A script that does not compile, or fails outside any step. `rendered`
    /// already carries `file:line:col`, the source line and a caret.
    #[error("{rendered}")]
    Script { rendered: String },

    /// A cluster, DNS server or probe failed outside any step (a `get`, a
    /// zone's `get`, a probe at the script's top level): exit 1, as a failed
    /// step, never the usage code. `rendered` carries the script position.
    #[error("{rendered}")]
    Target { rendered: String },

    #[error(
        "missing parameter{} {}: pass {}",
        if names.len() == 1 { "" } else { "s" },
        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
        names.iter().map(|n| format!("--set {n}=...")).collect::<Vec<_>>().join(" ")
    )]
    MissingParams { names: Vec<String> },

    #[error(
        "--set {}: the script never reads {} (it reads: {}){}; pass --allow-unknown-params to set {} anyway",
        names.join(", "),
        if names.len() == 1 { "it" } else { "them" },
        if read.is_empty() { "no parameter".to_owned() } else { read.join(", ") },
        hint,
        if names.len() == 1 { "it" } else { "them" },
    )]
    UnknownParams {
        names: Vec<String>,
        read: Vec<String>,
        /// `; did you mean `x`?` for the first name, or empty.
        hint: String,
    },

    #[error("--set {key} is given twice (`{first}` and `{second}`): give each key once")]
    RepeatedParam {
        key: String,
        first: String,
        second: String,
    },

    #[error("no run `{id}` in {state}")]
    UnknownRun { id: String, state: String },

    #[error("run `{id}` already exists; continue it with `ferry resume {id}`")]
    RunExists { id: String },

    #[error("cannot read script {}: {source}", path.display())]
    ScriptRead {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "cannot use {} as a script: it is not a regular file (a pipe, a device such as \
         /dev/stdin, or a folder); ferry records the script's path so a resume can read it \
         again, so save the script to a file",
        path.display()
    )]
    ScriptNotAFile { path: PathBuf },

    /// A file or folder ferry needed could not be read, written or removed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// `state` is where the journal lives, as [`crate::journal::Store::location`]
    /// says it (a path, or a URL without its password).
    #[error("state at {state}: {source}")]
    Journal { state: String, source: JournalError },

    #[error("run `{run}` is held by {holder}; wait for it to finish or stop that process")]
    Locked { run: String, holder: String },

    /// Another run holds an app (any claim key) this run wants to touch.
    #[error(
        "`{}` is claimed by run `{}` ({}, started by {} at {}); \
         finish, roll back or abort that run first (ferry status {})",
        .0.key, .0.holder, .0.status, .0.by, .0.since, .0.holder
    )]
    Claimed(ClaimHeld),

    /// A command that must not act on a run a live process drives.
    #[error("cannot {action} run `{run}`: {holder} drives it; {hint}")]
    Held {
        action: &'static str,
        run: String,
        holder: String,
        hint: String,
    },

    /// Whoever read stdout went away (`ferry log RUN | head -1`): stop
    /// quietly, as cat, cargo and ripgrep do.
    #[error("stdout closed")]
    OutputClosed,

    #[error(
        "script changed since run `{run}` recorded step `{step}` ({detail}); \
         rerun with --allow-changed to continue by step name"
    )]
    ScriptChanged {
        run: String,
        step: String,
        detail: String,
    },

    #[error(
        "`{name}` is not the target run `{run}` recorded: recorded {recorded}, found {found}; \
         check your kubeconfig context or DNS profile"
    )]
    IdentityMismatch {
        run: String,
        name: String,
        recorded: String,
        found: String,
    },

    #[error(
        "the script or a module of run `{run}` changed since it last ran; \
         rerun with --allow-changed to continue by step name\n{diff}"
    )]
    SourcesChanged { run: String, diff: String },

    #[error(
        "run `{run}` is {status}: its rollback has begun, so resuming would build on a \
         half-undone world; finish it with `ferry rollback {run}`"
    )]
    RollbackUnderway { run: String, status: String },

    #[error(
        "cannot roll back run `{run}` safely: the undo of {} could not be collected ({why}); \
         nothing was undone",
        steps.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
    )]
    RollbackIncomplete {
        run: String,
        steps: Vec<String>,
        why: String,
    },

    #[error(
        "cannot roll back run `{run}` past step `{step}`: it cannot be undone safely ({why}); \
         nothing was undone; pass --force to roll back the rest anyway"
    )]
    Irreversible {
        run: String,
        step: String,
        why: String,
    },

    #[error("rollback of run `{run}` {what}; nothing was undone")]
    RollbackDeclined { run: String, what: String },

    #[error("run `{run}` is {status}: {hint}")]
    NotResumable {
        run: String,
        status: String,
        hint: String,
    },

    #[error("run `{run}` has no record `{step}`{}", if near.is_empty() { String::new() } else { format!("; did you mean {}?", near.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")) })]
    UnknownStep {
        run: String,
        step: String,
        near: Vec<String>,
    },

    #[error(
        "{who} may not approve gate `{gate}` of run `{run}`: it names its approvers ({})",
        approvers.join(", ")
    )]
    NotApprover {
        run: String,
        gate: String,
        who: String,
        approvers: Vec<String>,
    },

    #[error("run `{run}` has no gate `{gate}`{}", if waiting.is_empty() { String::new() } else { format!(" (waiting: {})", waiting.join(", ")) })]
    UnknownGate {
        run: String,
        gate: String,
        waiting: Vec<String>,
    },

    #[error(
        "run `{run}` waits at gate `{gate}`: {message}\n  approve it with: ferry approve {run} {gate}"
    )]
    GateWaiting {
        run: String,
        gate: String,
        message: String,
    },

    /// `ferry board` could not listen where it was told to.
    #[error("cannot serve the board on {address}: {reason}")]
    Listen { address: String, reason: String },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Locked { .. }
            | Error::Claimed(_)
            | Error::NotApprover { .. }
            | Error::Irreversible { .. }
            | Error::RollbackDeclined { .. }
            | Error::ScriptChanged { .. }
            | Error::SourcesChanged { .. }
            | Error::RollbackUnderway { .. }
            | Error::RollbackIncomplete { .. }
            | Error::IdentityMismatch { .. }
            | Error::Held { .. }
            | Error::NotResumable { .. } => exit::REFUSED,
            Error::OutputClosed => exit::SUCCEEDED,
            Error::Target { .. } => exit::STEP_FAILED,
            Error::GateWaiting { .. } => exit::PAUSED,
            _ => exit::USAGE,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A key another run holds: which, the holder, and what it is (for the
/// refusal to name), carried from the `claim` primitive to the runner.
#[derive(Debug, Clone)]
pub struct ClaimHeld {
    pub key: String,
    pub holder: String,
    pub status: String,
    pub by: String,
    pub since: String,
}

/// What can go wrong with the journal, typed, so a caller (and the next
/// backend: PostgreSQL, Kubernetes) can tell a busy database from a newer
/// schema or an unwritable folder; [`Error::Journal`] adds the path.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file or folder of the state could not be created, opened or written.
    #[error("cannot {action}: {source}")]
    Io {
        action: &'static str,
        source: std::io::Error,
    },
    /// The database answered with an error (with a hint where it is cryptic).
    #[error("{message}")]
    Database {
        /// SQLite's result code, e.g. `DatabaseBusy`, when there is one.
        code: Option<String>,
        message: String,
    },
    #[error("written by a newer ferry (schema {found}, this ferry knows {known})")]
    NewerSchema { found: i64, known: i64 },
    #[error(
        "written by an older ferry (schema {found}, this ferry knows {known}) and not writable here; \
         open it once where it is writable to upgrade it"
    )]
    OlderSchemaReadOnly { found: i64, known: i64 },
    /// A database that is not a ferry journal: refused untouched.
    #[error(
        "not a ferry journal: the database holds other tables ({}); move it aside or pass --state DIR",
        tables.join(", ")
    )]
    Foreign { tables: Vec<String> },
    #[error("cannot switch to WAL mode (got {mode})")]
    NoWal { mode: String },
    /// A record could not be written while a run was under way.
    #[error("{message}")]
    Write { message: String },
    /// The backend could not be reached or refused the credentials.
    #[error("{message}")]
    Unreachable { message: String },
    /// Someone else wrote the record between this process's read and write
    /// (a resourceVersion or row-version conflict), or a record is not ferry's.
    #[error("{message}")]
    Conflict { message: String },
}
