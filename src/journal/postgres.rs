//! The PostgreSQL [`Store`] (`postgres://` state): one database a team
//! shares, so every operator and CI job sees the same runs, locks and claims.
//!
//! Why it is built the way it is:
//!
//! * `Store` is synchronous and is called from plain threads and from threads
//!   inside the runner's tokio runtime, where a blocking client (or any
//!   `block_on`) would panic. The store therefore owns a small runtime of its
//!   own, runs the async client there, and the calling thread waits on a
//!   plain channel, which is safe in both contexts.
//! * Durability as in SQLite: a step's start is committed with
//!   `synchronous_commit = off` for that one transaction (losing it only
//!   means the step runs again); its completion, and every other write, is an
//!   ordinary durable commit. Each write is a single statement, so one
//!   transition is one transaction and one round trip.
//! * A run's lock dies with its holder: it is a session-level advisory lock
//!   on a connection owned by the [`RunLock`] guard. A killed process's
//!   session ends and the server releases the lock; nothing needs a
//!   heartbeat. The `locks` table only remembers who last took it, so a
//!   refused process can name the holder. Keepalives on both ends (about a
//!   minute) end the session of a machine that vanished without closing it.
//! * The password never comes from the command line or the URL (it would
//!   show in shell history, `ps`, `ferry.toml` and messages): `PGPASSWORD`,
//!   `PGPASSFILE`/`~/.pgpass` or `passfile=PATH`, as libpq reads them.

use super::{
    Claim, Gate, JournalError, LockState, Run, RunLock, RunStatus, Step, StepKind, StepStatus,
    Store, UndoStatus,
};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

/// Schema migrations, applied in order; `ferry_schema.version` counts how
/// many ran. Every table lives in the store's schema (`search_path` is set to
/// it alone at connection start-up).
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    script      TEXT NOT NULL,
    script_hash TEXT NOT NULL,
    params      TEXT NOT NULL,
    libs        TEXT NOT NULL,
    status      TEXT NOT NULL,
    dry_run     BOOLEAN NOT NULL,
    error       TEXT,
    identities  TEXT NOT NULL,
    environment TEXT NOT NULL,
    sources     TEXT NOT NULL,
    actions     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE TABLE steps (
    seq         BIGSERIAL PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    position    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    parent      TEXT,
    status      TEXT NOT NULL,
    value       TEXT,
    error       TEXT,
    attempts    BIGINT NOT NULL,
    started_at  BIGINT,
    ended_at    BIGINT,
    undo        TEXT NOT NULL,
    undo_error  TEXT,
    data        TEXT,
    UNIQUE (run_id, kind, name)
);
-- A run's records in journal order without a sort: what every resume reads.
CREATE INDEX steps_by_run ON steps (run_id, seq);
CREATE TABLE gates (
    run_id       TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    message      TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    approved_at  BIGINT,
    approved_by  TEXT,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE claims (
    key        TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    claimed_at BIGINT NOT NULL
);
CREATE INDEX claims_by_run ON claims (run_id);
-- Who last took a run's lock (the lock itself is an advisory lock).
CREATE TABLE locks (
    run_id   TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    taken_at BIGINT NOT NULL
);
"#];

const DEFAULT_SCHEMA: &str = "ferry";
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a lock guard waits for the server to confirm the unlock.
const UNLOCK_TIMEOUT: Duration = Duration::from_secs(5);

const PASSWORD_SOURCES: &str = "set PGPASSWORD, add a line host:port:database:user:password to \
     ~/.pgpass (or the file PGPASSFILE names; mode 0600), or give passfile=PATH in the URL";

pub struct PostgresStore {
    shared: Arc<Shared>,
    worker: Arc<Worker>,
}

/// What every task on the worker needs: where to connect and the session.
struct Shared {
    target: Target,
    /// The URL without its password, for messages.
    location: String,
    /// The store's session; `None` until connected, replaced when it closed.
    session: tokio::sync::Mutex<Option<Session>>,
}

struct Session {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Session {
    /// A prepared statement, prepared once per session.
    async fn statement(&mut self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }
}

/// The store's own runtime: one worker thread the client's futures run on.
/// Callers wait on a channel, never on the runtime, so a caller inside
/// another runtime does not panic.
struct Worker {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Worker {
    fn new() -> std::io::Result<Worker> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .thread_name("ferry-postgres")
            .enable_all()
            .build()?;
        Ok(Worker {
            runtime: Some(runtime),
        })
    }

    /// Runs `future` on the worker and waits for it; `None` if the worker
    /// is gone (its task panicked or the runtime shut down).
    fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let runtime = self.runtime.as_ref()?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv().ok()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime;
        // shutting it down in the background does not.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl PostgresStore {
    /// Connects to the database `url` names, creating ferry's schema and
    /// tables (or migrating them) in one transaction.
    pub fn open(url: &str) -> Result<Self> {
        let target = Target::parse(url, &|name| std::env::var(name).ok())?;
        let location = crate::state::redact(url);
        let worker = Worker::new().map_err(|source| Error::Journal {
            state: location.clone(),
            source: JournalError::Io {
                action: "start the database client",
                source,
            },
        })?;
        let store = PostgresStore {
            shared: Arc::new(Shared {
                target,
                location,
                session: tokio::sync::Mutex::new(None),
            }),
            worker: Arc::new(worker),
        };
        let shared = store.shared.clone();
        store.block(async move { shared.migrate().await })?;
        Ok(store)
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &str {
        &self.shared.target.schema
    }

    fn block<T: Send + 'static>(
        &self,
        future: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        self.worker.run(future).unwrap_or_else(|| {
            Err(Error::Journal {
                state: self.shared.location.clone(),
                source: JournalError::Unreachable {
                    message: "the database client stopped unexpectedly".into(),
                },
            })
        })
    }

    /// Runs `f` with the session (connecting first when there is none or
    /// it closed), mapping the client's errors.
    fn with_session<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'s> FnOnce(
                &'s mut Session,
            ) -> std::pin::Pin<
                Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + Send + 's>,
            > + Send
            + 'static,
    {
        let shared = self.shared.clone();
        self.block(async move {
            let mut guard = shared.session().await?;
            let Some(session) = guard.as_mut() else {
                return Err(shared.unreachable("not connected".into()));
            };
            f(session).await.map_err(|e| shared.fail(&e))
        })
    }

    /// Runs one statement, prepared once per session, with owned parameters
    /// (it runs on the store's worker thread); returns the rows it changed.
    fn execute(&self, sql: &'static str, params: Vec<Param>) -> Result<u64> {
        self.with_session(move |s| {
            Box::pin(async move {
                let statement = s.statement(sql).await?;
                let params: Vec<&(dyn ToSql + Sync)> = params
                    .iter()
                    .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                s.client.execute(&statement, &params).await
            })
        })
    }
}

/// A statement parameter the worker thread owns.
type Param = Box<dyn ToSql + Send + Sync>;

impl Shared {
    /// The session, connected.
    async fn session(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Session>>> {
        let mut guard = self.session.lock().await;
        if guard.as_ref().is_none_or(|s| s.client.is_closed()) {
            *guard = None;
            let client = self.connect().await?;
            *guard = Some(Session {
                client,
                statements: HashMap::new(),
            });
        }
        Ok(guard)
    }

    /// A new connection, with the whole handshake bounded by the connect
    /// timeout (the client's own timeout covers only the TCP connect).
    async fn connect(&self) -> Result<Client> {
        let config = self.target.config();
        let tls = self.target.tls().map_err(|message| Error::Journal {
            state: self.location.clone(),
            source: JournalError::Unreachable { message },
        })?;
        let timeout = self.target.connect_timeout;
        let connecting = config.connect(tls);
        let (client, connection) = match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(self.connect_failed(&e)),
            Err(_) => {
                return Err(self.unreachable(format!(
                    "cannot reach the server at {}: no answer within {}s (connect_timeout)",
                    self.target.address(),
                    timeout.as_secs()
                )));
            }
        };
        // The connection drives the socket; it ends when the client drops
        // or the server goes away (the client then reads as closed).
        tokio::spawn(async move {
            let _ = connection.await;
        });
        // A server or role default of `synchronous_commit = off` would make
        // every write lossy; a stronger default (remote_apply) is kept.
        let row = client
            .query_one("SELECT current_setting('synchronous_commit')", &[])
            .await
            .map_err(|e| self.connect_failed(&e))?;
        let mode: String = row.try_get(0).map_err(|e| self.connect_failed(&e))?;
        if mode == "off" {
            client
                .batch_execute("SET synchronous_commit = on")
                .await
                .map_err(|e| self.connect_failed(&e))?;
        }
        Ok(client)
    }

    /// Creates the schema and migrates its tables, once even when several
    /// processes open a fresh database at the same moment.
    async fn migrate(&self) -> Result<()> {
        let mut guard = self.session().await?;
        let Some(session) = guard.as_mut() else {
            return Err(self.unreachable("not connected".into()));
        };
        let schema = self.target.schema.clone();
        let fail = |e: tokio_postgres::Error| self.fail(&e);
        let tx = session.client.transaction().await.map_err(fail)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&advisory_key("migrate", &schema)],
        )
        .await
        .map_err(fail)?;
        let exists = tx
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
            .await
            .map_err(fail)?
            .is_some();
        if !exists {
            // The name was checked to be a plain lowercase identifier.
            tx.batch_execute(&format!("CREATE SCHEMA {schema}"))
                .await
                .map_err(fail)?;
        }
        let tables: Vec<String> = tx
            .query(
                "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'p', 'f') ORDER BY 1",
                &[&schema],
            )
            .await
            .map_err(fail)?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()
            .map_err(fail)?;
        if !tables.iter().any(|t| t == "ferry_schema") {
            // Before anything is written: a schema holding tables that are
            // not ferry's is refused untouched.
            if !tables.is_empty() {
                return Err(Error::Journal {
                    state: self.location.clone(),
                    source: JournalError::Foreign {
                        tables: tables.iter().map(|t| format!("{schema}.{t}")).collect(),
                    },
                });
            }
            tx.batch_execute(
                "CREATE TABLE ferry_schema (version BIGINT NOT NULL); \
                 INSERT INTO ferry_schema (version) VALUES (0)",
            )
            .await
            .map_err(fail)?;
        }
        let version: i64 = tx
            .query_one("SELECT version FROM ferry_schema", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(fail)?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(Error::Journal {
                state: self.location.clone(),
                source: JournalError::NewerSchema {
                    found: version,
                    known,
                },
            });
        }
        if version < known {
            for sql in &MIGRATIONS[version.max(0) as usize..] {
                tx.batch_execute(sql).await.map_err(fail)?;
            }
            tx.execute("UPDATE ferry_schema SET version = $1", &[&known])
                .await
                .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }

    fn unreachable(&self, message: String) -> Error {
        Error::Journal {
            state: self.location.clone(),
            source: JournalError::Unreachable { message },
        }
    }

    /// A failure while connecting: the server's words and a hint.
    fn connect_failed(&self, e: &tokio_postgres::Error) -> Error {
        let Some(db) = e.as_db_error() else {
            let text = error_chain(e);
            if text.contains("password missing") {
                return self.unreachable(format!(
                    "the server at {} asks for the password of user `{}` (database `{}`) and none was found: {PASSWORD_SOURCES}",
                    self.target.address(),
                    self.target.user,
                    self.target.dbname
                ));
            }
            return self.unreachable(format!(
                "cannot reach the server at {}: {text}",
                self.target.address()
            ));
        };
        let hint = match db.code().code() {
            "28P01" => format!(
                "; check the password for user `{}` ({PASSWORD_SOURCES})",
                self.target.user
            ),
            "28000" => format!(
                "; check the user (`{}`) and the server's pg_hba.conf",
                self.target.user
            ),
            "3D000" => format!(
                "; create it (createdb {}) or fix the database in the URL",
                self.target.dbname
            ),
            "42501" => {
                "; the user needs CONNECT on the database and CREATE to make ferry's schema".into()
            }
            _ => String::new(),
        };
        self.unreachable(format!(
            "the server at {} refused the connection: {}{hint}",
            self.target.address(),
            db.message()
        ))
    }

    /// A failure of an operation: the server's error, or a lost connection.
    fn fail(&self, e: &tokio_postgres::Error) -> Error {
        match e.as_db_error() {
            Some(db) => Error::Journal {
                state: self.location.clone(),
                source: JournalError::Database {
                    code: Some(db.code().code().to_owned()),
                    message: match db.hint() {
                        Some(hint) => format!("{} ({hint})", db.message()),
                        None => db.message().to_owned(),
                    },
                },
            },
            None if e.is_closed() => self.unreachable(format!(
                "lost the connection to the server at {}; the next command reconnects",
                self.target.address()
            )),
            None => self.unreachable(format!(
                "talking to the server at {}: {}",
                self.target.address(),
                error_chain(e)
            )),
        }
    }
}

/// An error with its causes (`error connecting to server: Connection refused`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A 64-bit advisory-lock key for `what` (a run id) in `schema`: teams
/// sharing one database through different schemas never collide.
fn advisory_key(kind: &str, what: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("ferry\0{kind}\0{what}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

fn run_lock_key(schema: &str, run: &str) -> i64 {
    advisory_key("run", &format!("{schema}\0{run}"))
}

// ---------------------------------------------------------------------------
// Rows

fn json_col<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn parse_json<T: serde::de::DeserializeOwned + Default>(text: Option<String>) -> T {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// A value the journal cannot read back, as an error that names it.
fn bad_value(location: &str, column: &str, text: &str) -> Error {
    let text = match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    };
    Error::Journal {
        state: location.to_owned(),
        source: JournalError::Database {
            code: None,
            message: format!("unreadable record: {column}={text}"),
        },
    }
}

/// A journaled JSON column; values may nest as deep as a step was allowed
/// to return (see [`super::parse_value`]).
fn json_value(
    location: &str,
    text: Option<String>,
    column: &str,
) -> Result<Option<serde_json::Value>> {
    match text {
        None => Ok(None),
        Some(text) => super::parse_value(&text)
            .map(Some)
            .map_err(|e| bad_value(location, column, &format!("{e} in {text}"))),
    }
}

const RUN_COLUMNS: &str = "SELECT id, script, script_hash, params, libs, status, dry_run, error, identities, \
     environment, sources, actions, created_at, updated_at FROM runs";

fn run_from_row(location: &str, row: &tokio_postgres::Row) -> Result<Run> {
    let get = |e: tokio_postgres::Error| bad_value(location, "run", &e.to_string());
    let status: String = row.try_get(5).map_err(get)?;
    Ok(Run {
        id: row.try_get(0).map_err(get)?,
        script: PathBuf::from(row.try_get::<_, String>(1).map_err(get)?),
        script_hash: row.try_get(2).map_err(get)?,
        params: parse_json(row.try_get(3).map_err(get)?),
        libs: parse_json(row.try_get(4).map_err(get)?),
        status: RunStatus::parse(&status).ok_or_else(|| bad_value(location, "status", &status))?,
        dry_run: row.try_get(6).map_err(get)?,
        error: row.try_get(7).map_err(get)?,
        identities: parse_json(row.try_get(8).map_err(get)?),
        environment: parse_json(row.try_get(9).map_err(get)?),
        sources: parse_json(row.try_get(10).map_err(get)?),
        actions: parse_json(row.try_get(11).map_err(get)?),
        created_at: row.try_get(12).map_err(get)?,
        updated_at: row.try_get(13).map_err(get)?,
    })
}

const STEP_SELECT: &str = "SELECT seq, name, position, kind, status, parent, value, error, attempts, \
     started_at, ended_at, undo, undo_error, data FROM steps WHERE run_id = $1 ORDER BY seq";

fn step_from_row(location: &str, row: &tokio_postgres::Row) -> Result<Step> {
    let get = |e: tokio_postgres::Error| bad_value(location, "step", &e.to_string());
    let kind: &str = row.try_get(3).map_err(get)?;
    let status: &str = row.try_get(4).map_err(get)?;
    let undo: &str = row.try_get(11).map_err(get)?;
    let attempts: i64 = row.try_get(8).map_err(get)?;
    Ok(Step {
        seq: row.try_get(0).map_err(get)?,
        name: row.try_get(1).map_err(get)?,
        position: row.try_get(2).map_err(get)?,
        kind: StepKind::parse(kind).ok_or_else(|| bad_value(location, "kind", kind))?,
        status: StepStatus::parse(status).ok_or_else(|| bad_value(location, "status", status))?,
        parent: row.try_get(5).map_err(get)?,
        value: json_value(location, row.try_get(6).map_err(get)?, "value")?,
        error: row.try_get(7).map_err(get)?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        started_at: row.try_get(9).map_err(get)?,
        ended_at: row.try_get(10).map_err(get)?,
        undo: UndoStatus::parse(undo).ok_or_else(|| bad_value(location, "undo", undo))?,
        undo_error: row.try_get(12).map_err(get)?,
        data: json_value(location, row.try_get(13).map_err(get)?, "data")?,
    })
}

fn claim_from_row(row: &tokio_postgres::Row) -> Result<Claim, tokio_postgres::Error> {
    Ok(Claim {
        key: row.try_get(0)?,
        run: row.try_get(1)?,
        claimed_at: row.try_get(2)?,
    })
}

/// Inserts or replaces a record in one statement (one implicit
/// transaction, one round trip). `$15` is the commit mode for this
/// transaction only: `off` for a step's start, the session's own otherwise;
/// `set_config` is volatile, so the planner keeps it, and the setting is
/// read when the transaction commits.
const PUT_STEP: &str = "INSERT INTO steps (run_id, name, position, kind, status, value, error, attempts, \
       started_at, ended_at, undo, undo_error, data, parent) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 \
     FROM (SELECT set_config('synchronous_commit', \
             CASE WHEN $15::boolean THEN current_setting('synchronous_commit') ELSE 'off' END, true) AS mode) AS commit_mode \
     WHERE commit_mode.mode IS NOT NULL \
     ON CONFLICT (run_id, kind, name) DO UPDATE SET \
       position = excluded.position, parent = excluded.parent, status = excluded.status, \
       value = excluded.value, error = excluded.error, attempts = excluded.attempts, \
       started_at = excluded.started_at, ended_at = excluded.ended_at, undo = excluded.undo, \
       undo_error = excluded.undo_error, data = excluded.data";

impl Store for PostgresStore {
    fn location(&self) -> String {
        self.shared.location.clone()
    }

    fn create_run(&self, run: &Run) -> Result<()> {
        let inserted = self.execute(
            "INSERT INTO runs (id, script, script_hash, params, libs, status, dry_run, error, \
             identities, created_at, updated_at, environment, sources, actions) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (id) DO NOTHING",
            vec![
                Box::new(run.id.clone()),
                Box::new(run.script.to_string_lossy().into_owned()),
                Box::new(run.script_hash.clone()),
                Box::new(json_col(&run.params)),
                Box::new(json_col(&run.libs)),
                Box::new(run.status.as_str()),
                Box::new(run.dry_run),
                Box::new(run.error.clone()),
                Box::new(json_col(&run.identities)),
                Box::new(run.created_at),
                Box::new(run.updated_at),
                Box::new(json_col(&run.environment)),
                Box::new(json_col(&run.sources)),
                Box::new(json_col(&run.actions)),
            ],
        )?;
        if inserted == 0 {
            return Err(Error::RunExists { id: run.id.clone() });
        }
        Ok(())
    }

    fn run(&self, id: &str) -> Result<Option<Run>> {
        let id = id.to_owned();
        let row = self.with_session(move |s| {
            Box::pin(async move {
                let statement = s.statement(RUN_BY_ID).await?;
                s.client.query_opt(&statement, &[&id]).await
            })
        })?;
        row.map(|row| run_from_row(&self.shared.location, &row))
            .transpose()
    }

    fn runs(&self) -> Result<Vec<Run>> {
        let rows = self.with_session(move |s| {
            Box::pin(async move {
                s.client
                    .query(
                        &format!("{RUN_COLUMNS} ORDER BY created_at DESC, id COLLATE \"C\" DESC"),
                        &[],
                    )
                    .await
            })
        })?;
        rows.iter()
            .map(|row| run_from_row(&self.shared.location, row))
            .collect()
    }

    fn update_run(&self, run: &Run) -> Result<()> {
        let updated = self.execute(
            "UPDATE runs SET script_hash = $2, status = $3, error = $4, identities = $5, \
             updated_at = $6, sources = $7, actions = $8 WHERE id = $1",
            vec![
                Box::new(run.id.clone()),
                Box::new(run.script_hash.clone()),
                Box::new(run.status.as_str()),
                Box::new(run.error.clone()),
                Box::new(json_col(&run.identities)),
                Box::new(run.updated_at),
                Box::new(json_col(&run.sources)),
                Box::new(json_col(&run.actions)),
            ],
        )?;
        if updated == 0 {
            return Err(Error::UnknownRun {
                id: run.id.clone(),
                state: self.location(),
            });
        }
        Ok(())
    }

    fn steps(&self, run: &str) -> Result<Vec<Step>> {
        let run = run.to_owned();
        let rows = self.with_session(move |s| {
            Box::pin(async move {
                let statement = s.statement(STEP_SELECT).await?;
                s.client.query(&statement, &[&run]).await
            })
        })?;
        rows.iter()
            .map(|row| step_from_row(&self.shared.location, row))
            .collect()
    }

    fn put_step(&self, run: &str, step: &Step, durable: bool) -> Result<()> {
        self.execute(
            PUT_STEP,
            vec![
                Box::new(run.to_owned()),
                Box::new(step.name.clone()),
                Box::new(step.position.clone()),
                Box::new(step.kind.as_str()),
                Box::new(step.status.as_str()),
                Box::new(step.value.as_ref().map(json_col)),
                Box::new(step.error.clone()),
                Box::new(i64::from(step.attempts)),
                Box::new(step.started_at),
                Box::new(step.ended_at),
                Box::new(step.undo.as_str()),
                Box::new(step.undo_error.clone()),
                Box::new(step.data.as_ref().map(json_col)),
                Box::new(step.parent.clone()),
                Box::new(durable),
            ],
        )
        .map(drop)
    }

    fn gates(&self, run: &str) -> Result<Vec<Gate>> {
        let run = run.to_owned();
        self.with_session(move |s| {
            Box::pin(async move {
                let rows = s
                    .client
                    .query(
                        "SELECT name, message, requested_at, approved_at, approved_by FROM gates \
                         WHERE run_id = $1 ORDER BY requested_at, name COLLATE \"C\"",
                        &[&run],
                    )
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(Gate {
                            name: row.try_get(0)?,
                            message: row.try_get(1)?,
                            requested_at: row.try_get(2)?,
                            approved_at: row.try_get(3)?,
                            approved_by: row.try_get(4)?,
                        })
                    })
                    .collect()
            })
        })
    }

    fn put_gate(&self, run: &str, gate: &Gate) -> Result<()> {
        self.execute(
            "INSERT INTO gates (run_id, name, message, requested_at, approved_at, approved_by) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (run_id, name) DO UPDATE SET message = excluded.message, \
               approved_at = excluded.approved_at, approved_by = excluded.approved_by",
            vec![
                Box::new(run.to_owned()),
                Box::new(gate.name.clone()),
                Box::new(gate.message.clone()),
                Box::new(gate.requested_at),
                Box::new(gate.approved_at),
                Box::new(gate.approved_by.clone()),
            ],
        )
        .map(drop)
    }

    fn set_undo(&self, run: &str, step: &str, undo: UndoStatus, error: Option<&str>) -> Result<()> {
        self.execute(
            "UPDATE steps SET undo = $3, undo_error = $4 \
             WHERE run_id = $1 AND kind = 'step' AND name = $2",
            vec![
                Box::new(run.to_owned()),
                Box::new(step.to_owned()),
                Box::new(undo.as_str()),
                Box::new(error.map(str::to_owned)),
            ],
        )
        .map(drop)
    }

    fn lock(&self, run: &str) -> Result<RunLock> {
        let shared = self.shared.clone();
        let run_id = run.to_owned();
        let key = run_lock_key(&self.shared.target.schema, run);
        let client = self.block(async move {
            // A connection of its own: the lock lives exactly as long as
            // this session, which the guard owns.
            let client = shared.connect().await?;
            let fail = |e: tokio_postgres::Error| shared.fail(&e);
            let taken: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await
                .and_then(|r| r.try_get(0))
                .map_err(fail)?;
            if !taken {
                let holder: Option<String> = client
                    .query_opt("SELECT holder FROM locks WHERE run_id = $1", &[&run_id])
                    .await
                    .map_err(fail)?
                    .map(|r| r.try_get(0))
                    .transpose()
                    .map_err(fail)?;
                return Err(Error::Locked {
                    run: run_id,
                    holder: holder.unwrap_or_else(|| "another process".into()),
                });
            }
            client
                .execute(
                    "INSERT INTO locks (run_id, holder, taken_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (run_id) DO UPDATE SET holder = excluded.holder, taken_at = excluded.taken_at",
                    &[&run_id, &super::lock::holder_description(), &super::now_ms()],
                )
                .await
                .map_err(fail)?;
            Ok(client)
        })?;
        Ok(RunLock::new(LockGuard {
            client: Some(client),
            key,
            worker: self.worker.clone(),
        }))
    }

    fn lock_state(&self, run: &str) -> Result<LockState> {
        let key = run_lock_key(&self.shared.target.schema, run);
        let run = run.to_owned();
        // pg_locks shows a bigint advisory key as its high and low halves.
        let high = (key >> 32) & 0xffff_ffff;
        let low = key & 0xffff_ffff;
        let (held, holder) = self.with_session(move |s| {
            Box::pin(async move {
                let row = s
                    .client
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
                           AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                           AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1), \
                         (SELECT holder FROM locks WHERE run_id = $3)",
                        &[&high, &low, &run],
                    )
                    .await?;
                Ok((row.try_get::<_, bool>(0)?, row.try_get::<_, Option<String>>(1)?))
            })
        })?;
        Ok(LockState {
            held,
            holder: holder.map(|h| super::Holder::parse(&h)),
        })
    }

    fn delete_run(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.with_session(move |s| {
            Box::pin(async move {
                let tx = s.client.transaction().await?;
                for sql in [
                    "DELETE FROM steps WHERE run_id = $1",
                    "DELETE FROM gates WHERE run_id = $1",
                    "DELETE FROM claims WHERE run_id = $1",
                    "DELETE FROM locks WHERE run_id = $1",
                ] {
                    tx.execute(sql, &[&id]).await?;
                }
                let deleted = tx.execute("DELETE FROM runs WHERE id = $1", &[&id]).await?;
                tx.commit().await?;
                Ok(deleted > 0)
            })
        })
    }

    fn claim(&self, key: &str, run: &str, at: i64) -> Result<Claim> {
        let values = (key.to_owned(), run.to_owned(), at);
        self.with_session(move |s| {
            Box::pin(async move {
                let (key, run, at) = &values;
                // Read committed: the insert waits for a competing
                // transaction on the same key; the select, a new statement,
                // then sees whichever run won.
                let tx = s.client.transaction().await?;
                tx.execute(
                    "INSERT INTO claims (key, run_id, claimed_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO NOTHING",
                    &[key, run, at],
                )
                .await?;
                let row = tx
                    .query_one(
                        "SELECT key, run_id, claimed_at FROM claims WHERE key = $1",
                        &[key],
                    )
                    .await?;
                let claim = claim_from_row(&row)?;
                tx.commit().await?;
                Ok(claim)
            })
        })
    }

    fn release_claims(&self, run: &str) -> Result<usize> {
        self.execute(
            "DELETE FROM claims WHERE run_id = $1",
            vec![Box::new(run.to_owned())],
        )
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn claims(&self) -> Result<Vec<Claim>> {
        self.with_session(move |s| {
            Box::pin(async move {
                let rows = s
                    .client
                    .query(
                        "SELECT key, run_id, claimed_at FROM claims ORDER BY key COLLATE \"C\"",
                        &[],
                    )
                    .await?;
                rows.iter().map(claim_from_row).collect()
            })
        })
    }
}

const RUN_BY_ID: &str = "SELECT id, script, script_hash, params, libs, status, dry_run, error, \
     identities, environment, sources, actions, created_at, updated_at FROM runs WHERE id = $1";

/// Owns the lock's session: dropping it unlocks (confirmed by the server,
/// so the next `lock_state` reads it free) and closes the connection.
struct LockGuard {
    client: Option<Client>,
    key: i64,
    worker: Arc<Worker>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let key = self.key;
        // If the server is gone the session (and with it the lock) is too.
        let _ = self.worker.run(async move {
            let params: [&(dyn ToSql + Sync); 1] = [&key];
            let unlock = client.execute("SELECT pg_advisory_unlock($1)", &params);
            let _ = tokio::time::timeout(UNLOCK_TIMEOUT, unlock).await;
            drop(client);
        });
    }
}

// ---------------------------------------------------------------------------
// Where to connect

/// libpq's `sslmode`, with the same meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The connection settings a URL (and the `PG*` environment) gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// A host name, an IP address, or a Unix socket directory (`/…`).
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    pub schema: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub application_name: Option<String>,
    pub options: Option<String>,
    /// Found in `PGPASSWORD` or a password file; never printed.
    password: Option<Secret>,
}

/// A password: its `Debug` never shows it.
#[derive(Clone, PartialEq)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The query parameters a state URL may carry.
const KNOWN_PARAMS: &[&str] = &[
    "host",
    "port",
    "user",
    "dbname",
    "schema",
    "sslmode",
    "sslrootcert",
    "passfile",
    "connect_timeout",
    "application_name",
    "options",
];

impl Target {
    /// Reads a `postgres://` URL, with `env` (the process environment, or a
    /// test's) supplying `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`,
    /// `PGSSLMODE`, `PGSSLROOTCERT`, `PGCONNECT_TIMEOUT` where the URL is
    /// silent and the password from `PGPASSWORD` or a password file.
    pub fn parse(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Target> {
        let shown = crate::state::redact(url);
        let bad = |why: String| Error::usage(format!("state {shown}: {why}"));
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| bad("give postgres://USER@HOST:PORT/DATABASE".into()))?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((authority, path)) => (authority, path),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let password_refused = || {
            bad(format!(
                "a password in the URL would show in shell history, process lists and ferry.toml; \
                 remove it and {PASSWORD_SOURCES}"
            ))
        };
        let mut user = None;
        if let Some(userinfo) = userinfo {
            if userinfo.contains(':') {
                return Err(password_refused());
            }
            user = Some(decode(userinfo).map_err(&bad)?).filter(|u| !u.is_empty());
        }
        let (mut host, mut port) = split_host_port(hostport).map_err(&bad)?;
        let mut dbname =
            Some(decode(path.trim_end_matches('/')).map_err(&bad)?).filter(|d| !d.is_empty());
        let mut params: HashMap<String, String> = HashMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(key).map_err(&bad)?;
            if key == "password" {
                return Err(password_refused());
            }
            if !KNOWN_PARAMS.contains(&key.as_str()) {
                return Err(bad(format!(
                    "unknown parameter `{key}`; known: {}",
                    KNOWN_PARAMS.join(", ")
                )));
            }
            params.insert(key, decode(value).map_err(&bad)?);
        }
        if let Some(h) = params.remove("host") {
            host = Some(h);
        }
        if let Some(p) = params.remove("port") {
            port = Some(p);
        }
        if let Some(u) = params.remove("user") {
            user = Some(u);
        }
        if let Some(d) = params.remove("dbname") {
            dbname = Some(d);
        }
        let host = host
            .filter(|h| !h.is_empty())
            .or_else(|| env("PGHOST").filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "localhost".into());
        if host.contains(',') {
            return Err(bad("give one host (several hosts are not supported)".into()));
        }
        let port = match port.filter(|p| !p.is_empty()).or_else(|| env("PGPORT")) {
            None => 5432,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad(format!("`{p}` is not a port")))?,
        };
        let user = user
            .or_else(|| env("PGUSER"))
            .or_else(|| env("USER"))
            .or_else(|| env("LOGNAME"))
            .filter(|u| !u.is_empty())
            .ok_or_else(|| bad("give the user (postgres://USER@HOST/DATABASE or PGUSER)".into()))?;
        let dbname = dbname
            .or_else(|| env("PGDATABASE"))
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| user.clone());
        let schema = params
            .remove("schema")
            .unwrap_or_else(|| DEFAULT_SCHEMA.into());
        if !is_plain_identifier(&schema) {
            return Err(bad(format!(
                "schema `{schema}`: give a lowercase name of letters, digits and '_' (at most 63, not starting with a digit or pg_)"
            )));
        }
        let sslmode = match params
            .remove("sslmode")
            .or_else(|| env("PGSSLMODE"))
            .as_deref()
        {
            None | Some("prefer") => SslMode::Prefer,
            Some("disable") => SslMode::Disable,
            // Without TLS on offer, libpq's `allow` connects in plain text too.
            Some("allow") => SslMode::Prefer,
            Some("require") => SslMode::Require,
            Some("verify-ca") => SslMode::VerifyCa,
            Some("verify-full") => SslMode::VerifyFull,
            Some(other) => {
                return Err(bad(format!(
                    "sslmode `{other}`: give disable, prefer, require, verify-ca or verify-full"
                )));
            }
        };
        let sslrootcert = params
            .remove("sslrootcert")
            .or_else(|| env("PGSSLROOTCERT"))
            .map(PathBuf::from);
        let connect_timeout = match params
            .remove("connect_timeout")
            .or_else(|| env("PGCONNECT_TIMEOUT"))
        {
            None => DEFAULT_CONNECT_TIMEOUT,
            // libpq: zero means wait forever; ferry waits at most a day.
            Some(t) => match t.trim().parse::<u64>() {
                Ok(0) => Duration::from_secs(86_400),
                // libpq treats 1 as 2 seconds; so does ferry.
                Ok(secs) => Duration::from_secs(secs.clamp(2, 86_400)),
                Err(_) => return Err(bad(format!("connect_timeout `{t}`: give whole seconds"))),
            },
        };
        let mut target = Target {
            host,
            port,
            user,
            dbname,
            schema,
            sslmode,
            sslrootcert,
            connect_timeout,
            application_name: params.remove("application_name"),
            options: params.remove("options"),
            password: None,
        };
        target.password = match env("PGPASSWORD").filter(|p| !p.is_empty()) {
            Some(password) => Some(Secret(password)),
            None => {
                let file = params
                    .remove("passfile")
                    .or_else(|| env("PGPASSFILE"))
                    .map(PathBuf::from)
                    .or_else(|| env("HOME").map(|home| Path::new(&home).join(".pgpass")));
                file.and_then(|file| target.password_from(&file))
                    .map(Secret)
            }
        };
        Ok(target)
    }

    /// `host:port`, or the socket path, for messages.
    pub fn address(&self) -> String {
        if self.host.starts_with('/') {
            format!("{}/.s.PGSQL.{}", self.host.trim_end_matches('/'), self.port)
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether a password was found (for tests: never the password itself).
    #[cfg(test)]
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The password a libpq password file holds for this target, if the
    /// file exists and is private (libpq ignores a group- or
    /// world-readable one, with a warning).
    fn password_from(&self, file: &Path) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(file).ok()?;
        if !meta.is_file() {
            return None;
        }
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "warning: password file {} has group or world access; permissions should be u=rw (0600) or less; ignoring it",
                file.display()
            );
            return None;
        }
        let text = std::fs::read_to_string(file).ok()?;
        // A socket directory matches `localhost`, as in libpq.
        let host = if self.host.starts_with('/') {
            "localhost"
        } else {
            &self.host
        };
        pgpass_lookup(
            &text,
            host,
            &self.port.to_string(),
            &self.dbname,
            &self.user,
        )
    }

    fn config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        if self.host.starts_with('/') {
            config.host_path(&self.host);
        } else {
            config.host(&self.host);
        }
        config
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .connect_timeout(self.connect_timeout)
            .application_name(self.application_name.as_deref().unwrap_or("ferry"))
            // A vanished peer is noticed within about a minute on this side.
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3)
            .tcp_user_timeout(Duration::from_secs(60))
            .ssl_mode(match self.sslmode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                _ => tokio_postgres::config::SslMode::Require,
            });
        if self.host.starts_with('/') {
            // libpq never uses TLS over a Unix socket.
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
        }
        if let Some(Secret(password)) = &self.password {
            config.password(password);
        }
        // Only ferry's schema on the search path, so every statement names
        // its tables plainly; server-side keepalives end the session (and
        // its run lock) of a client that vanished; a transaction left open
        // by a dead client does not hold rows for long.
        let mut options = format!(
            "-c search_path={} -c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 \
             -c tcp_keepalives_count=3 -c idle_in_transaction_session_timeout=60000",
            self.schema
        );
        if let Some(extra) = &self.options {
            options = format!("{extra} {options}");
        }
        config.options(&options);
        config
    }

    fn tls(&self) -> std::result::Result<tls::MakeRustls, String> {
        tls::MakeRustls::new(self.sslmode, self.sslrootcert.as_deref())
    }
}

/// `host`, `host:port`, `[v6]:port`, percent-decoded; `None`s when empty.
fn split_host_port(text: &str) -> std::result::Result<(Option<String>, Option<String>), String> {
    if text.is_empty() {
        return Ok((None, None));
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{text}`: unclosed [ in the host"))?;
        let port = after.strip_prefix(':').map(str::to_owned);
        return Ok((Some(host.to_owned()), port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Ok((Some(decode(host)?), Some(port.to_owned()))),
        None => Ok((Some(decode(text)?), None)),
    }
}

fn decode(text: &str) -> std::result::Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("`{text}`: bad percent-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{text}`: not UTF-8 once decoded"))
}

fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
        && !name.starts_with("pg_")
}

/// The password of the first line of a libpq password file matching the
/// target: `host:port:database:user:password`, `*` matching anything in the
/// first four fields, `\:` and `\\` escaping, `#` starting a comment line.
pub fn pgpass_lookup(
    text: &str,
    host: &str,
    port: &str,
    dbname: &str,
    user: &str,
) -> Option<String> {
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::with_capacity(5);
        let mut field = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(next) = chars.next() {
                        field.push(next);
                    }
                }
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        fields.push(field);
        if fields.len() != 5 {
            continue;
        }
        let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        if matches(&fields[0], host)
            && matches(&fields[1], port)
            && matches(&fields[2], dbname)
            && matches(&fields[3], user)
        {
            return Some(fields.swap_remove(4));
        }
    }
    None
}

// ---------------------------------------------------------------------------
// TLS

mod tls {
    //! rustls for tokio-postgres (the process's one TLS stack, ring), with
    //! libpq's sslmode meanings: `prefer`/`require` encrypt without checking
    //! the certificate (unless a root certificate is given, as libpq does),
    //! `verify-ca` checks the chain, `verify-full` the chain and the host.

    use super::SslMode;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};
    use std::future::Future;
    use std::io;
    use std::path::Path;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

    #[derive(Clone)]
    pub struct MakeRustls {
        config: Arc<rustls::ClientConfig>,
    }

    impl MakeRustls {
        pub fn new(mode: SslMode, rootcert: Option<&Path>) -> Result<MakeRustls, String> {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("tls: {e}"))?;
            let verify = match (mode, rootcert) {
                (SslMode::VerifyFull, _) => Some(false),
                (SslMode::VerifyCa, _) | (_, Some(_)) => Some(true),
                _ => None,
            };
            let verifier: Arc<dyn ServerCertVerifier> = match verify {
                // Nothing to check, or the mode never uses TLS: the verifier
                // is never asked, or accepts any certificate (libpq's
                // `require` without a root certificate).
                None => Arc::new(AnyCert(provider.clone())),
                Some(skip_name) if mode != SslMode::Disable => {
                    let roots = Arc::new(roots(rootcert)?);
                    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                        roots,
                        provider.clone(),
                    )
                    .build()
                    .map_err(|e| format!("tls: {e}"))?;
                    Arc::new(Checked { inner, skip_name })
                }
                Some(_) => Arc::new(AnyCert(provider.clone())),
            };
            let config = builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            Ok(MakeRustls {
                config: Arc::new(config),
            })
        }
    }

    /// The roots to check a server's chain with: the `sslrootcert` file
    /// (`system`: the system's roots), else `~/.postgresql/root.crt` as
    /// libpq reads it, else the system's roots.
    fn roots(rootcert: Option<&Path>) -> Result<rustls::RootCertStore, String> {
        use rustls::pki_types::pem::PemObject;
        let mut store = rustls::RootCertStore::empty();
        let default = std::env::var_os("HOME")
            .map(|home| Path::new(&home).join(".postgresql/root.crt"))
            .filter(|p| p.is_file());
        match rootcert.map(Path::to_owned).or(default) {
            Some(path) if path.as_os_str() != "system" => {
                let certs = CertificateDer::pem_file_iter(&path)
                    .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                for cert in certs {
                    let cert = cert.map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                    store
                        .add(cert)
                        .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                }
                if store.is_empty() {
                    return Err(format!(
                        "sslrootcert {}: no certificate in the file",
                        path.display()
                    ));
                }
            }
            _ => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = store.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err("no system root certificates found; give sslrootcert=PATH".into());
                }
            }
        }
        Ok(store)
    }

    /// Checks the chain; with `skip_name` (verify-ca) not the host name.
    #[derive(Debug)]
    struct Checked {
        inner: Arc<rustls::client::WebPkiServerVerifier>,
        skip_name: bool,
    }

    impl ServerCertVerifier for Checked {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            match self
                .inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            {
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. },
                )) if self.skip_name => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls12_signature(message, cert, dss)
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls13_signature(message, cert, dss)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.inner.supported_verify_schemes()
        }
    }

    /// Accepts any certificate but still checks the handshake's signatures
    /// (libpq's `prefer`/`require`: encrypted, not authenticated).
    #[derive(Debug)]
    struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

    impl ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    impl<S> MakeTlsConnect<S> for MakeRustls
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        type Stream = RustlsStream<S>;
        type TlsConnect = RustlsConnect;
        type Error = rustls::pki_types::InvalidDnsNameError;

        fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, Self::Error> {
            Ok(RustlsConnect {
                config: self.config.clone(),
                name: ServerName::try_from(domain.to_owned())?,
            })
        }
    }

    pub struct RustlsConnect {
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    }

    impl<S> TlsConnect<S> for RustlsConnect
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        type Stream = RustlsStream<S>;
        type Error = io::Error;
        type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

        fn connect(self, stream: S) -> Self::Future {
            Box::pin(async move {
                let connector = tokio_rustls::TlsConnector::from(self.config);
                connector.connect(self.name, stream).await.map(RustlsStream)
            })
        }
    }

    pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

    impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
        /// `tls-server-end-point` (RFC 5929): the server certificate's hash,
        /// so SCRAM can bind the login to this TLS session.
        fn channel_binding(&self) -> ChannelBinding {
            let (_, connection) = self.0.get_ref();
            match connection
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|cert| end_point_hash(cert.as_ref()))
            {
                Some(hash) => ChannelBinding::tls_server_end_point(hash),
                None => ChannelBinding::none(),
            }
        }
    }

    /// The certificate hashed with its signature's hash (SHA-256 for MD5,
    /// SHA-1 and SHA-256), or `None` where RFC 5929 defines none (Ed25519).
    fn end_point_hash(cert: &[u8]) -> Option<Vec<u8>> {
        use sha2::Digest;
        let oid = signature_oid(cert)?;
        const SHA384: &[&[u8]] = &[
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c],
            &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
        ];
        const SHA512: &[&[u8]] = &[
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d],
            &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],
        ];
        const ED: &[&[u8]] = &[&[0x2b, 0x65, 0x70], &[0x2b, 0x65, 0x71]];
        if SHA384.contains(&oid) {
            Some(sha2::Sha384::digest(cert).to_vec())
        } else if SHA512.contains(&oid) {
            Some(sha2::Sha512::digest(cert).to_vec())
        } else if ED.contains(&oid) {
            None
        } else {
            Some(sha2::Sha256::digest(cert).to_vec())
        }
    }

    /// The signature algorithm's OID of a DER certificate:
    /// `SEQUENCE { tbsCertificate, SEQUENCE { OID, … }, BIT STRING }`.
    fn signature_oid(cert: &[u8]) -> Option<&[u8]> {
        let (tag, outer, _) = der(cert)?;
        if tag != 0x30 {
            return None;
        }
        let (_, _, after_tbs) = der(outer)?;
        let (tag, algorithm, _) = der(after_tbs)?;
        if tag != 0x30 {
            return None;
        }
        let (tag, oid, _) = der(algorithm)?;
        (tag == 0x06).then_some(oid)
    }

    /// One DER element: its tag, its content and what follows it.
    fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let tag = *input.first()?;
        let first = *input.get(1)?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return None;
            }
            let mut len = 0usize;
            for b in input.get(2..2 + n)? {
                len = (len << 8) | usize::from(*b);
            }
            (len, 2 + n)
        };
        let content = input.get(header..header.checked_add(len)?)?;
        Some((tag, content, &input[header + len..]))
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }
        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn der_walks_a_certificate_header() {
            // SEQUENCE { SEQUENCE {}, SEQUENCE { OID 1.2.840.113549.1.1.12 }, BIT STRING }
            let cert = [
                0x30, 0x12, 0x30, 0x00, 0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
                0x01, 0x01, 0x0c, 0x03, 0x01, 0x00,
            ];
            assert_eq!(super::end_point_hash(&cert).map(|h| h.len()), Some(48));
            assert_eq!(super::signature_oid(&cert[..5]), None, "truncated input");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn urls_parse_with_environment_defaults() {
        let t = Target::parse(
            "postgres://ferry@db.internal:6543/journal?sslmode=verify-full&schema=team_a&connect_timeout=3",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.user.as_str(),
                t.dbname.as_str(),
                t.schema.as_str()
            ),
            ("db.internal", 6543, "ferry", "journal", "team_a")
        );
        assert_eq!(t.sslmode, SslMode::VerifyFull);
        assert_eq!(t.connect_timeout, Duration::from_secs(3));
        let t = Target::parse(
            "postgresql://",
            &env(&[
                ("PGHOST", "/run/pg"),
                ("PGPORT", "5433"),
                ("PGUSER", "u"),
                ("PGDATABASE", "d"),
            ]),
        )
        .unwrap();
        assert_eq!(t.address(), "/run/pg/.s.PGSQL.5433");
        assert_eq!(
            (t.user.as_str(), t.dbname.as_str(), t.schema.as_str()),
            ("u", "d", "ferry")
        );
        assert_eq!(t.sslmode, SslMode::Prefer);
        let t = Target::parse("postgres://[::1]:5/x?user=v", &env(&[])).unwrap();
        assert_eq!((t.address().as_str(), t.user.as_str()), ("[::1]:5", "v"));
        for bad in [
            "postgres://u@h/d?schema=Bad",
            "postgres://u@h/d?sslmode=maybe",
            "postgres://u@h/d?nope=1",
            "postgres://u@h:99999/d",
            "postgres://u@h1,h2/d",
        ] {
            assert!(Target::parse(bad, &env(&[])).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_showing_it() {
        for url in [
            "postgres://ferry:hunter2@db/ferry",
            "postgres://ferry@db/ferry?password=hunter2",
        ] {
            let e = Target::parse(url, &env(&[])).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{e}");
            assert!(e.contains("PGPASSWORD") && e.contains(".pgpass"), "{e}");
        }
        let t = Target::parse("postgres://u@h/d", &env(&[("PGPASSWORD", "s3cret")])).unwrap();
        assert!(t.has_password());
        assert!(
            !format!("{t:?}").contains("s3cret"),
            "Debug hides the password"
        );
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let text = "# comment\n\
                    other:5432:*:u:wrong\n\
                    db\\:x:*:journal:u:pa\\:ss\\\\\n\
                    *:*:*:*:fallback\n";
        assert_eq!(
            pgpass_lookup(text, "db:x", "5432", "journal", "u").as_deref(),
            Some("pa:ss\\")
        );
        assert_eq!(
            pgpass_lookup(text, "db", "1", "x", "y").as_deref(),
            Some("fallback")
        );
        assert_eq!(
            pgpass_lookup("h:1:d:u\n", "h", "1", "d", "u"),
            None,
            "four fields"
        );
    }
}
