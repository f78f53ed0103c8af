//! Control flow that must cross the script untouched: a gate that pauses the
//! run, Ctrl-C, a changed script. They travel as `ErrorTerminated`, which
//! Rhai never lets a script's `try`/`catch` swallow and never wraps in
//! function-call errors, so the runner always sees them as raised.

use rhai::{Dynamic, EvalAltResult, Position};

#[derive(Debug, Clone)]
pub enum Control {
    /// A gate waits for approval.
    Paused { gate: String, message: String },
    /// Ctrl-C / SIGTERM.
    Cancelled,
    /// The script no longer matches the journal.
    Diverged { step: String, detail: String },
    /// Rollback replay reached the first step that never completed.
    RollbackCollected,
    /// Rollback re-entered a completed step's body to collect its nested
    /// undos and reached something that would change the world (`what`, at
    /// `position`): replay of that body stops there.
    CollectStopped { what: String, position: String },
    /// A step called `exit()`: the run ends failed, never succeeded.
    Exited { step: String, message: String },
    /// `params.require` found parameters missing.
    MissingParams { names: Vec<String> },
    /// The journal could not be written: the run cannot continue safely.
    Journal { message: String },
    /// Another run holds a key this run claims.
    Claimed(crate::error::ClaimHeld),
    /// A target (e.g. a cluster) is not the one the journal recorded.
    IdentityMismatch {
        name: String,
        recorded: String,
        found: String,
    },
}

impl Control {
    pub fn raise(self, pos: Position) -> Box<EvalAltResult> {
        EvalAltResult::ErrorTerminated(Dynamic::from(self), pos).into()
    }

    /// The signal an error carries, looking through module and call wrappers.
    pub fn of(err: &EvalAltResult) -> Option<Control> {
        match err {
            EvalAltResult::ErrorTerminated(value, _) => value.clone().try_cast::<Control>(),
            EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
            | EvalAltResult::ErrorInModule(_, inner, _) => Control::of(inner),
            _ => None,
        }
    }
}

/// A catchable error raised by a primitive: the script may `try`/`catch` it.
pub fn runtime_error(message: impl Into<String>, pos: Position) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(Dynamic::from(message.into()), pos).into()
}

/// A failure of the world (API server, DNS server, network), apart from a
/// script's own `throw`: `catch (e)` receives a [`HostError`] with `message`,
/// `source` (e.g. "cluster", "dns", "probe") and the details given, so a
/// script can branch on `e.status` or `e.reason`. Messages must never carry
/// credentials.
///
/// [`HostError`]: super::host_error::HostError
pub fn host_error(
    source: &str,
    message: impl Into<String>,
    details: rhai::Map,
    pos: Position,
) -> Box<EvalAltResult> {
    let error = super::host_error::HostError::new(source, message.into(), details);
    EvalAltResult::ErrorRuntime(Dynamic::from(error), pos).into()
}
