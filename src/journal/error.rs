//! What can go wrong with the journal, typed, so a caller (and the next
//! backend: PostgreSQL, Kubernetes) can tell a busy database from a newer
//! schema or an unwritable folder. Messages are lowercase, name no secret,
//! and the error that carries one of these (`Error::Journal`) names the path.

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
    #[error("cannot switch to WAL mode (got {mode})")]
    NoWal { mode: String },
    /// A record could not be written while a run was under way.
    #[error("{message}")]
    Write { message: String },
}
