//! The default [`Store`]: one SQLite database in WAL mode under the state
//! directory (`.ferry/state.db`), created private to its owner.
//!
//! Durability: a step's start is written without fsync (losing it only means
//! the step runs again, which steps must tolerate anyway); its completion is
//! written with `synchronous=FULL`, which fsyncs the WAL and with it every
//! earlier record. That keeps one fsync per step.

use super::{
    Claim, Gate, JournalError, LockState, Run, RunLock, RunStatus, Step, StepKind, StepStatus,
    Store, UndoStatus,
};
use crate::error::{Error, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Schema migrations, applied in order; `PRAGMA user_version` counts how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    script      TEXT NOT NULL,
    script_hash TEXT NOT NULL,
    params      TEXT NOT NULL,
    libs        TEXT NOT NULL,
    status      TEXT NOT NULL,
    dry_run     INTEGER NOT NULL,
    error       TEXT,
    identities  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE steps (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    position    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    value       TEXT,
    error       TEXT,
    attempts    INTEGER NOT NULL,
    started_at  INTEGER,
    ended_at    INTEGER,
    undo        TEXT NOT NULL,
    undo_error  TEXT,
    data        TEXT,
    UNIQUE (run_id, name)
);
CREATE TABLE gates (
    run_id       TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    message      TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    approved_at  INTEGER,
    approved_by  TEXT,
    PRIMARY KEY (run_id, name)
);
"#,
    // 2: the environment profile a run resolves its targets with.
    "ALTER TABLE runs ADD COLUMN environment TEXT NOT NULL DEFAULT '{}';",
    // 3: records keyed by (kind, name), so timers and gates live in their own
    // namespaces; the enclosing step of nested steps; the run's sources.
    r#"
CREATE TABLE steps_v3 (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    position    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    parent      TEXT,
    status      TEXT NOT NULL,
    value       TEXT,
    error       TEXT,
    attempts    INTEGER NOT NULL,
    started_at  INTEGER,
    ended_at    INTEGER,
    undo        TEXT NOT NULL,
    undo_error  TEXT,
    data        TEXT,
    UNIQUE (run_id, kind, name)
);
INSERT INTO steps_v3 (seq, run_id, name, position, kind, status, value, error, attempts, started_at, ended_at, undo, undo_error, data)
    SELECT seq, run_id, name, position, kind, status, value, error, attempts, started_at, ended_at, undo, undo_error, data FROM steps;
DROP TABLE steps;
ALTER TABLE steps_v3 RENAME TO steps;
-- A run's records in journal order without a sort: what every resume reads.
CREATE INDEX steps_by_run ON steps (run_id, seq);
ALTER TABLE runs ADD COLUMN sources TEXT NOT NULL DEFAULT '{}';
"#,
    // 4: who did what to a run; the apps (claim keys) runs hold.
    r#"
ALTER TABLE runs ADD COLUMN actions TEXT NOT NULL DEFAULT '[]';
CREATE TABLE claims (
    key        TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    claimed_at INTEGER NOT NULL
);
CREATE INDEX claims_by_run ON claims (run_id);
"#,
];

pub struct SqliteStore {
    dir: PathBuf,
    db: PathBuf,
    conn: Mutex<Conn>,
}

struct Conn {
    conn: Connection,
    /// Whether `synchronous=FULL` is in effect, to skip redundant pragmas.
    sync_full: bool,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let db = dir.join("state.db");
        let io = |path: &Path, action: &'static str| {
            let path = path.to_owned();
            move |source| Error::Journal {
                state: path.display().to_string(),
                source: JournalError::Io { action, source },
            }
        };
        create_private_dir(dir).map_err(io(dir, "create the state directory"))?;
        create_private_file(&db).map_err(io(&db, "create the state file"))?;
        let conn = Connection::open(&db).map_err(|e| Error::Journal {
            state: db.display().to_string(),
            source: database(&e),
        })?;
        let store = SqliteStore {
            dir: dir.to_owned(),
            db: db.clone(),
            conn: Mutex::new(Conn {
                conn,
                sync_full: true,
            }),
        };
        store.init()?;
        Ok(store)
    }

    /// Opens the store for reading (`status`, `runs`, `log`, `describe`):
    /// as [`SqliteStore::open`] does, or read-only when this user cannot
    /// write the state, so a teammate's read-only copy can still be read.
    pub fn open_for_reading(dir: &Path) -> Result<Self> {
        match Self::open(dir) {
            Err(e) if cannot_write(&e) && dir.join("state.db").is_file() => {
                Self::open_read_only(dir).map_err(|_| e)
            }
            other => other,
        }
    }

    /// Opens an existing journal without writing anything, not even WAL's
    /// shared-memory file: when SQLite cannot create it (a read-only folder
    /// with no writer, since a writer would have created it), the file is
    /// read as immutable.
    pub fn open_read_only(dir: &Path) -> Result<Self> {
        let db = dir.join("state.db");
        let fail = |e: rusqlite::Error| Error::Journal {
            state: db.display().to_string(),
            source: database(&e),
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
        let version =
            |c: &Connection| c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0));
        let conn = match Connection::open_with_flags(&db, flags) {
            Ok(conn) if version(&conn).is_ok() => conn,
            _ => {
                let uri = format!("file:{}?immutable=1", uri_path(&db));
                Connection::open_with_flags(uri, flags).map_err(fail)?
            }
        };
        let found = version(&conn).map_err(fail)?;
        let known = MIGRATIONS.len() as i64;
        if found != known {
            return Err(Error::Journal {
                state: db.display().to_string(),
                source: if found > known {
                    JournalError::NewerSchema { found, known }
                } else {
                    JournalError::OlderSchemaReadOnly { found, known }
                },
            });
        }
        Ok(SqliteStore {
            dir: dir.to_owned(),
            db,
            conn: Mutex::new(Conn {
                conn,
                sync_full: true,
            }),
        })
    }

    fn init(&self) -> Result<()> {
        let mut guard = self.lock_conn();
        let conn = &mut guard.conn;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| self.fail(e))?;
        // Before anything is written (WAL mode included): a database that is
        // not ferry's is refused untouched.
        let foreign = retry_busy(|| foreign_tables(conn)).map_err(|e| self.fail(e))?;
        if !foreign.is_empty() {
            return Err(Error::Journal {
                state: self.db.display().to_string(),
                source: JournalError::Foreign { tables: foreign },
            });
        }
        // Switching a fresh file to WAL takes an exclusive lock and does not
        // wait on the busy handler, so a second process opening the same new
        // state directory retries it.
        let mode: String =
            retry_busy(|| conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)))
                .map_err(|e| self.fail(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Journal {
                state: self.db.display().to_string(),
                source: JournalError::NoWal { mode },
            });
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(|e| self.fail(e))?;
        // The version is read inside a write transaction, so when several
        // processes open a fresh state directory at once only one migrates.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.fail(e))?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.fail(e))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(Error::Journal {
                state: self.db.display().to_string(),
                source: JournalError::NewerSchema {
                    found: version,
                    known,
                },
            });
        }
        if version < known {
            for sql in &MIGRATIONS[version as usize..] {
                tx.execute_batch(sql).map_err(|e| self.fail(e))?;
            }
            tx.pragma_update(None, "user_version", known)
                .map_err(|e| self.fail(e))?;
        }
        tx.commit().map_err(|e| self.fail(e))
    }

    fn lock_conn(&self) -> std::sync::MutexGuard<'_, Conn> {
        // A panic mid-transaction rolls the transaction back on drop, so the
        // connection is consistent even if the mutex was poisoned.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fail(&self, e: rusqlite::Error) -> Error {
        Error::Journal {
            state: self.db.display().to_string(),
            source: database(&e),
        }
    }

    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let guard = self.lock_conn();
        f(&guard.conn).map_err(|e| self.fail(e))
    }
}

/// Tables of a database that ferry never migrated (`user_version` 0): a
/// fresh file has none; anything else is someone else's database.
fn foreign_tables(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    // One statement, so the version and the tables come from one snapshot
    // even while another process migrates a fresh file.
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' \
         AND (SELECT user_version FROM pragma_user_version) = 0 ORDER BY name",
    )?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// Whether opening the state failed because this user may not write it.
fn cannot_write(e: &Error) -> bool {
    match e {
        Error::Journal {
            source: JournalError::Io { source, .. },
            ..
        } => matches!(
            source.kind(),
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
        ),
        Error::Journal {
            source: JournalError::Database {
                code: Some(code), ..
            },
            ..
        } => matches!(
            code.as_str(),
            "ReadOnly" | "CannotOpen" | "PermissionDenied"
        ),
        _ => false,
    }
}

/// A path as the path part of an SQLite `file:` URI.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' => out.push_str(&format!("%{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// SQLite's error as a journal error: its code and its words.
fn database(e: &rusqlite::Error) -> JournalError {
    JournalError::Database {
        code: e.sqlite_error_code().map(|c| format!("{c:?}")),
        message: describe(e),
    }
}

/// SQLite's own words, with a hint where they are cryptic.
fn describe(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => {
            "not a ferry state file (file is not a database); move it aside or pass --state DIR"
                .into()
        }
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            "the state file is corrupt; restore it from a backup or move it aside".into()
        }
        Some(rusqlite::ErrorCode::ReadOnly)
        | Some(rusqlite::ErrorCode::CannotOpen)
        | Some(rusqlite::ErrorCode::PermissionDenied) => {
            format!("cannot write the state file ({e}); check permissions or pass --state DIR")
        }
        _ => e.to_string(),
    }
}

/// Retries `f` while SQLite answers "busy" (bounded: about ten seconds).
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let mut tries = 0;
    loop {
        match f() {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && tries < 500 =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // Probe writability now, so the error names the directory rather than
    // surfacing later as a SQLite I/O error.
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = dir.join(format!(".write-test-{}-{n}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map(drop)
}

fn json_col<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn parse_json<T: serde::de::DeserializeOwned + Default>(text: Option<String>) -> T {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// A journaled JSON column. Values may nest as deep as a step was allowed
/// to return (the depth was checked when it was written), deeper than
/// serde_json's default limit; a column that does not parse is an error,
/// never a silent `()`.
fn json_value(
    row: &Row,
    index: usize,
    column: &str,
) -> rusqlite::Result<Option<serde_json::Value>> {
    let text = match row.get_ref(index)? {
        rusqlite::types::ValueRef::Null => return Ok(None),
        value => value.as_str().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into())
        })?,
    };
    super::parse_value(text)
        .map(Some)
        .map_err(|e| bad_value(column, &format!("{e} in {}", truncate(text))))
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}

fn bad_value(column: &str, text: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, format!("{column}={text}"), rusqlite::types::Type::Text)
}

fn run_from_row(row: &Row) -> rusqlite::Result<Run> {
    let status: String = row.get("status")?;
    Ok(Run {
        id: row.get("id")?,
        script: PathBuf::from(row.get::<_, String>("script")?),
        script_hash: row.get("script_hash")?,
        params: parse_json(row.get("params")?),
        libs: parse_json(row.get("libs")?),
        status: RunStatus::parse(&status).ok_or_else(|| bad_value("status", &status))?,
        dry_run: row.get("dry_run")?,
        error: row.get("error")?,
        identities: parse_json(row.get("identities")?),
        environment: parse_json(row.get("environment")?),
        sources: parse_json(row.get("sources")?),
        actions: parse_json(row.get("actions")?),
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// The columns [`step_from_row`] reads, by index: a resume reads every
/// record of a run, and looking columns up by name costs more than the rest.
const STEP_COLUMNS: &str = "seq, name, position, kind, status, parent, value, error, attempts, \
     started_at, ended_at, undo, undo_error, data";

fn step_from_row(row: &Row) -> rusqlite::Result<Step> {
    let text = |i: usize| -> rusqlite::Result<&str> {
        row.get_ref(i)?.as_str().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
        })
    };
    let kind = text(3)?;
    let status = text(4)?;
    let undo = text(11)?;
    Ok(Step {
        seq: row.get(0)?,
        name: row.get(1)?,
        position: row.get(2)?,
        kind: StepKind::parse(kind).ok_or_else(|| bad_value("kind", kind))?,
        status: StepStatus::parse(status).ok_or_else(|| bad_value("status", status))?,
        parent: row.get(5)?,
        value: json_value(row, 6, "value")?,
        error: row.get(7)?,
        attempts: row.get(8)?,
        started_at: row.get(9)?,
        ended_at: row.get(10)?,
        undo: UndoStatus::parse(undo).ok_or_else(|| bad_value("undo", undo))?,
        undo_error: row.get(12)?,
        data: json_value(row, 13, "data")?,
    })
}

impl Store for SqliteStore {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn create_run(&self, run: &Run) -> Result<()> {
        let inserted = self.with_conn(|c| {
            c.execute(
                "INSERT INTO runs (id, script, script_hash, params, libs, status, dry_run, error, identities, created_at, updated_at, environment, sources, actions)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) ON CONFLICT(id) DO NOTHING",
                params![
                    run.id,
                    run.script.to_string_lossy(),
                    run.script_hash,
                    json_col(&run.params),
                    json_col(&run.libs),
                    run.status.as_str(),
                    run.dry_run,
                    run.error,
                    json_col(&run.identities),
                    run.created_at,
                    run.updated_at,
                    json_col(&run.environment),
                    json_col(&run.sources),
                    json_col(&run.actions)
                ],
            )
        })?;
        if inserted == 0 {
            return Err(Error::RunExists { id: run.id.clone() });
        }
        Ok(())
    }

    fn run(&self, id: &str) -> Result<Option<Run>> {
        self.with_conn(|c| {
            c.query_row("SELECT * FROM runs WHERE id = ?1", [id], run_from_row)
                .optional()
        })
    }

    fn runs(&self) -> Result<Vec<Run>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare("SELECT * FROM runs ORDER BY created_at DESC, id DESC")?;
            stmt.query_map([], run_from_row)?.collect()
        })
    }

    fn update_run(&self, run: &Run) -> Result<()> {
        let updated = self.with_conn(|c| {
            c.execute(
                "UPDATE runs SET script_hash = ?2, status = ?3, error = ?4, identities = ?5, updated_at = ?6, sources = ?7, actions = ?8 WHERE id = ?1",
                params![run.id, run.script_hash, run.status.as_str(), run.error, json_col(&run.identities), run.updated_at, json_col(&run.sources), json_col(&run.actions)],
            )
        })?;
        if updated == 0 {
            return Err(Error::UnknownRun {
                id: run.id.clone(),
                state: self.location(),
            });
        }
        Ok(())
    }

    fn steps(&self, run: &str) -> Result<Vec<Step>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ?1 ORDER BY seq"
            ))?;
            stmt.query_map([run], step_from_row)?.collect()
        })
    }

    fn put_step(&self, run: &str, step: &Step, durable: bool) -> Result<()> {
        let mut guard = self.lock_conn();
        if guard.sync_full != durable {
            let mode = if durable { "FULL" } else { "NORMAL" };
            guard
                .conn
                .pragma_update(None, "synchronous", mode)
                .map_err(|e| self.fail(e))?;
            guard.sync_full = durable;
        }
        guard
            .conn
            .prepare_cached(
                "INSERT INTO steps (run_id, name, position, kind, status, value, error, attempts, started_at, ended_at, undo, undo_error, data, parent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT(run_id, kind, name) DO UPDATE SET
                   position = excluded.position, parent = excluded.parent, status = excluded.status,
                   value = excluded.value, error = excluded.error, attempts = excluded.attempts,
                   started_at = excluded.started_at, ended_at = excluded.ended_at, undo = excluded.undo,
                   undo_error = excluded.undo_error, data = excluded.data",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    run,
                    step.name,
                    step.position,
                    step.kind.as_str(),
                    step.status.as_str(),
                    step.value.as_ref().map(json_col),
                    step.error,
                    step.attempts,
                    step.started_at,
                    step.ended_at,
                    step.undo.as_str(),
                    step.undo_error,
                    step.data.as_ref().map(json_col),
                    step.parent,
                ])
            })
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    fn gates(&self, run: &str) -> Result<Vec<Gate>> {
        self.with_conn(|c| {
            let mut stmt =
                c.prepare("SELECT * FROM gates WHERE run_id = ?1 ORDER BY requested_at, name")?;
            stmt.query_map([run], |row| {
                Ok(Gate {
                    name: row.get("name")?,
                    message: row.get("message")?,
                    requested_at: row.get("requested_at")?,
                    approved_at: row.get("approved_at")?,
                    approved_by: row.get("approved_by")?,
                })
            })?
            .collect()
        })
    }

    fn put_gate(&self, run: &str, gate: &Gate) -> Result<()> {
        self.with_conn(|c| {
            c.execute(
                "INSERT INTO gates (run_id, name, message, requested_at, approved_at, approved_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(run_id, name) DO UPDATE SET message = excluded.message,
                   approved_at = excluded.approved_at, approved_by = excluded.approved_by",
                params![
                    run,
                    gate.name,
                    gate.message,
                    gate.requested_at,
                    gate.approved_at,
                    gate.approved_by
                ],
            )
            .map(drop)
        })
    }

    fn set_undo(&self, run: &str, step: &str, undo: UndoStatus, error: Option<&str>) -> Result<()> {
        let mut guard = self.lock_conn();
        if !guard.sync_full {
            guard
                .conn
                .pragma_update(None, "synchronous", "FULL")
                .map_err(|e| self.fail(e))?;
            guard.sync_full = true;
        }
        guard
            .conn
            .execute(
                "UPDATE steps SET undo = ?3, undo_error = ?4 WHERE run_id = ?1 AND kind = 'step' AND name = ?2",
                params![run, step, undo.as_str(), error],
            )
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    fn lock(&self, run: &str) -> Result<RunLock> {
        let dir = self.dir.join("locks");
        std::fs::create_dir_all(&dir).map_err(|source| Error::Journal {
            state: dir.display().to_string(),
            source: JournalError::Io {
                action: "create the locks directory",
                source,
            },
        })?;
        RunLock::file(&dir.join(format!("{run}.lock")), run)
    }

    fn lock_state(&self, run: &str) -> Result<LockState> {
        super::lock::file_state(&self.dir.join("locks").join(format!("{run}.lock")))
    }

    fn delete_run(&self, id: &str) -> Result<bool> {
        let deleted = {
            let mut guard = self.lock_conn();
            let tx = guard.conn.transaction().map_err(|e| self.fail(e))?;
            tx.execute("DELETE FROM steps WHERE run_id = ?1", [id])
                .map_err(|e| self.fail(e))?;
            tx.execute("DELETE FROM gates WHERE run_id = ?1", [id])
                .map_err(|e| self.fail(e))?;
            tx.execute("DELETE FROM claims WHERE run_id = ?1", [id])
                .map_err(|e| self.fail(e))?;
            let deleted = tx
                .execute("DELETE FROM runs WHERE id = ?1", [id])
                .map_err(|e| self.fail(e))?;
            tx.commit().map_err(|e| self.fail(e))?;
            deleted > 0
        };
        // The lock file goes with the run (its last holder is all it says).
        let _ = std::fs::remove_file(self.dir.join("locks").join(format!("{id}.lock")));
        Ok(deleted)
    }

    fn claim(&self, key: &str, run: &str, at: i64) -> Result<Claim> {
        // One statement inserts or keeps the holder; the read in the same
        // transaction sees whichever run won.
        let mut guard = self.lock_conn();
        let tx = guard
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.fail(e))?;
        tx.execute(
            "INSERT INTO claims (key, run_id, claimed_at) VALUES (?1, ?2, ?3) ON CONFLICT(key) DO NOTHING",
            params![key, run, at],
        )
        .map_err(|e| self.fail(e))?;
        let claim = tx
            .query_row(
                "SELECT key, run_id, claimed_at FROM claims WHERE key = ?1",
                [key],
                claim_from_row,
            )
            .map_err(|e| self.fail(e))?;
        tx.commit().map_err(|e| self.fail(e))?;
        Ok(claim)
    }

    fn release_claims(&self, run: &str) -> Result<usize> {
        self.with_conn(|c| c.execute("DELETE FROM claims WHERE run_id = ?1", [run]))
    }

    fn claims(&self) -> Result<Vec<Claim>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare("SELECT key, run_id, claimed_at FROM claims ORDER BY key")?;
            stmt.query_map([], claim_from_row)?.collect()
        })
    }
}

fn claim_from_row(row: &Row) -> rusqlite::Result<Claim> {
    Ok(Claim {
        key: row.get(0)?,
        run: row.get(1)?,
        claimed_at: row.get(2)?,
    })
}
