//! A real PostgreSQL server for a test: `initdb` into a temporary folder,
//! `postgres` on a free loopback port (and a Unix socket in that folder for
//! the harness's own superuser connection), stopped on drop.
//!
//! Why a real server: the journal's guarantees (advisory locks that die
//! with their session, `ON CONFLICT` under concurrency, migrations under
//! `pg_advisory_xact_lock`) are the server's behaviour, which no fake has.
//! nextest runs every test in its own process, so each test starts its own
//! server (about a second); each test still asks for its own database.
//!
//! PostgreSQL refuses to run as root, and CI runs as root: then `initdb`
//! and `postgres` run as `nobody` through `setpriv`, which execs (no fork),
//! so the child's pid is the server's and drop can stop it.
//!
//! Also used by `benches/journal.rs` (through `#[path]`), so it depends only
//! on std, libc, tempfile and tokio-postgres.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The superuser `initdb` creates.
pub const SUPERUSER: &str = "postgres";

pub struct PgServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    runtime: tokio::runtime::Runtime,
}

/// How to set the server up.
#[derive(Default, Clone)]
pub struct PgOptions {
    /// Require this password (SCRAM) on TCP; the socket stays trusted for
    /// the harness.
    pub password: Option<String>,
    /// Keep fsync on (benchmarks); tests turn it off for speed.
    pub durable: bool,
}

/// The folder holding `initdb`, `postgres`: the newest under
/// `/usr/lib/postgresql/*/bin` (Debian's layout), else `PATH`.
pub fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `nobody`'s uid and gid, which the server runs as when the test is root.
const NOBODY: u32 = 65534;

/// A command for a PostgreSQL program, as `nobody` when running as root.
fn pg_command(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups")
            .arg("--")
            .arg(bin.join(program));
        cmd
    } else {
        Command::new(bin.join(program))
    }
}

fn give_to_server(path: &Path) {
    if is_root() {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        let rc = unsafe { libc::chown(c.as_ptr(), NOBODY, NOBODY) };
        assert_eq!(rc, 0, "chown {} to nobody", path.display());
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl PgServer {
    pub fn start() -> PgServer {
        PgServer::start_with(PgOptions::default())
    }

    pub fn start_with(options: PgOptions) -> PgServer {
        PgServer::attempt(options, 1)
    }

    fn attempt(options: PgOptions, attempt: u32) -> PgServer {
        let bin = bin_dir().expect(
            "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin or on PATH): \
             apt-get install postgresql",
        );
        let dir = tempfile::tempdir().expect("temp dir");
        give_to_server(dir.path());
        let data = dir.path().join("data");
        let mut initdb = pg_command(&bin, "initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
                "--no-instructions",
            ])
            .env("HOME", dir.path())
            .current_dir(dir.path())
            .stdout(Stdio::null());
        match &options.password {
            Some(password) => {
                let file = dir.path().join("pwfile");
                std::fs::write(&file, password).expect("write pwfile");
                give_to_server(&file);
                initdb
                    .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                    .arg(format!("--pwfile={}", file.display()));
            }
            None => {
                initdb.args(["-A", "trust"]);
            }
        }
        let out = initdb.output().expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        give_to_server(&dir.path().join("server.log"));
        let mut server = pg_command(&bin, "postgres");
        server
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "max_connections=100"])
            .args(["-c", "logging_collector=off"])
            .env("HOME", dir.path())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if !options.durable {
            server.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
        }
        let child = server.spawn().expect("start postgres");
        let mut pg = PgServer {
            dir,
            child: Some(child),
            port,
            runtime,
        };
        if pg.wait_ready() {
            return pg;
        }
        let log = std::fs::read_to_string(pg.dir.path().join("server.log")).unwrap_or_default();
        // The port was taken between choosing it and binding it: again,
        // with another one.
        assert!(
            attempt < 5 && (log.contains("could not bind") || log.contains("already in use")),
            "postgres did not start: {log}"
        );
        drop(pg);
        PgServer::attempt(options, attempt + 1)
    }

    /// Waits until the server answers a connection (polling the socket, not
    /// a fixed delay); `false` if it exited.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                return false;
            }
            if self.try_admin("postgres").is_ok() {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not get ready in 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn try_admin(&self, db: &str) -> Result<(), tokio_postgres::Error> {
        self.runtime.block_on(async {
            let (client, connection) = self.admin_config(db).connect(tokio_postgres::NoTls).await?;
            drop(client);
            let _ = connection.await;
            Ok(())
        })
    }

    fn admin_config(&self, db: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(self.dir.path())
            .port(self.port)
            .user(SUPERUSER)
            .dbname(db)
            .connect_timeout(Duration::from_secs(5));
        config
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A folder private to this server, for test files (password files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A URL for `db` over TCP as the superuser, without TLS.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// Creates database `name` and returns its URL.
    pub fn database(&self, name: &str) -> String {
        self.sql("postgres", &format!("CREATE DATABASE \"{name}\""));
        self.url(name)
    }

    /// Runs SQL statements in `db` as the superuser (over the socket).
    pub fn sql(&self, db: &str, sql: &str) {
        self.runtime.block_on(async {
            let (client, connection) = self
                .admin_config(db)
                .connect(tokio_postgres::NoTls)
                .await
                .expect("admin connection");
            let task = tokio::spawn(connection);
            client
                .batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            drop(client);
            let _ = task.await;
        });
    }

    /// The first column of every row a query returns, as text.
    pub fn query(&self, db: &str, sql: &str) -> Vec<Option<String>> {
        self.runtime.block_on(async {
            let (client, connection) = self
                .admin_config(db)
                .connect(tokio_postgres::NoTls)
                .await
                .expect("admin connection");
            let task = tokio::spawn(connection);
            let rows = client
                .simple_query(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            drop(client);
            let _ = task.await;
            rows.into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(row) => {
                        Some(row.get(0).map(str::to_owned))
                    }
                    _ => None,
                })
                .collect()
        })
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGQUIT: immediate shutdown; the data is thrown away anyway.
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGQUIT);
            }
            let _ = child.wait();
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}
