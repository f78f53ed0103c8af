//! The PostgreSQL journal against a real server: the contract every store
//! keeps, then what only a shared database has to get right (locks that die
//! with their session, claims and migrations under concurrency, foreign and
//! newer schemas, credentials that never leak, unreachable servers).

use crate::common::Sandbox;
use crate::common::postgres::{PgOptions, PgServer};
use crate::journal_store::{RunBuilder, claims_suite, completed, records_suite, suite};
use ferry::error::Error;
use ferry::journal::{JournalError, PostgresStore, Store};
use std::time::{Duration, Instant};

fn journal_error(result: Result<PostgresStore, Error>) -> (String, JournalError) {
    match result {
        Err(Error::Journal { state, source }) => (state, source),
        Err(other) => panic!("expected a journal error, got {other:?}"),
        Ok(_) => panic!("expected a journal error, the store opened"),
    }
}

/// Waits (bounded) for a condition the server reaches asynchronously.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn journal_postgres_keeps_the_contract() {
    let pg = PgServer::start();
    let store = PostgresStore::open(&pg.database("contract")).unwrap();
    suite(&store);
    records_suite(&store);
    claims_suite(&store);
    // The tables live in ferry's own schema, nothing in public.
    assert_eq!(store.schema(), "ferry");
    let public = pg.query(
        "contract",
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
    );
    assert_eq!(public, [Some("0".to_owned())]);
    // A second schema in the same database is a separate journal.
    let team_b = PostgresStore::open(&format!("{}&schema=team_b", pg.url("contract"))).unwrap();
    assert!(team_b.runs().unwrap().is_empty());
    assert!(!store.runs().unwrap().is_empty());
}

#[test]
fn journal_postgres_records_survive_a_reopen_and_a_reconnect() {
    let pg = PgServer::start();
    let url = pg.database("persist");
    {
        let store = PostgresStore::open(&url).unwrap();
        store.create_run(&RunBuilder::new("keep").build()).unwrap();
        store
            .put_step("keep", &completed("a", serde_json::json!("v")), true)
            .unwrap();
    }
    let store = PostgresStore::open(&url).unwrap();
    assert_eq!(
        store.steps("keep").unwrap()[0].value,
        Some(serde_json::json!("v"))
    );
    // The server ends the store's session: the next call fails clearly,
    // the one after reconnects.
    pg.sql(
        "persist",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = 'persist' AND pid <> pg_backend_pid()",
    );
    let mut last = None;
    for _ in 0..3 {
        match store.steps("keep") {
            Ok(steps) => {
                last = Some(steps);
                break;
            }
            Err(e) => assert!(
                matches!(
                    e,
                    Error::Journal {
                        source: JournalError::Unreachable { .. } | JournalError::Database { .. },
                        ..
                    }
                ),
                "{e:?}"
            ),
        }
    }
    assert_eq!(last.map(|s| s.len()), Some(1), "reconnected");
}

#[test]
fn journal_postgres_lock_is_exclusive_and_dies_with_its_session() {
    let pg = PgServer::start();
    let url = pg.database("locks");
    let a = PostgresStore::open(&url).unwrap();
    let b = PostgresStore::open(&url).unwrap();
    a.create_run(&RunBuilder::new("r").build()).unwrap();
    let held = a.lock("r").unwrap();
    match b.lock("r") {
        Err(e @ Error::Locked { .. }) => {
            let Error::Locked { holder, .. } = &e else {
                unreachable!()
            };
            assert!(
                holder.contains(&format!("pid {}", std::process::id())),
                "{holder}"
            );
            assert_eq!(e.exit_code(), 4);
        }
        other => panic!("expected Locked, got {:?}", other.err()),
    }
    assert!(
        b.lock_state("r").unwrap().held,
        "another store sees it held"
    );
    drop(held);
    assert!(!b.lock_state("r").unwrap().held, "free once dropped");
    let held_by_b = b.lock("r").unwrap();
    assert!(matches!(a.lock("r"), Err(Error::Locked { .. })));

    // The lock's session ends (as when its process is killed or its
    // machine's connection is cut): the server frees the lock.
    let terminated = pg.query(
        "locks",
        "SELECT pg_terminate_backend(pid)::text FROM pg_locks \
         WHERE locktype = 'advisory' AND granted",
    );
    assert_eq!(terminated, [Some("true".to_owned())]);
    eventually("the terminated session's lock to go", || {
        !a.lock_state("r").unwrap().held
    });
    let _again = a.lock("r").unwrap();
    let state = b.lock_state("r").unwrap();
    assert!(state.held);
    assert_eq!(state.holder.and_then(|h| h.pid), Some(std::process::id()));
    // Dropping the guard whose session is already gone does not hang or panic.
    drop(held_by_b);
}

#[test]
fn journal_postgres_lock_is_freed_when_its_process_is_killed() {
    // A ferry process holds the lock of a run paused at a gate... the
    // simplest holder that can be SIGKILLed: a `ferry run` waiting in a step.
    let pg = PgServer::start();
    let url = pg.database("killed");
    let sb = Sandbox::new();
    sb.write(
        "slow.rhai",
        r#"step("wait", || { test_mutate("log", "started"); sleep(600); });"#,
    );
    let mut cmd = sb.command();
    cmd.env("FERRY_STATE", &url)
        .args(["run", "slow.rhai", "--id", "slow"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut running = crate::common::Running::from(cmd.spawn().unwrap());
    let store = PostgresStore::open(&url).unwrap();
    eventually("the run to take its lock", || {
        store.lock_state("slow").is_ok_and(|s| s.held)
    });
    assert!(matches!(store.lock("slow"), Err(Error::Locked { .. })));
    running.kill_now();
    eventually("the killed process's lock to go", || {
        !store.lock_state("slow").unwrap().held
    });
    store.lock("slow").unwrap();
}

#[test]
fn journal_postgres_concurrent_claims_have_exactly_one_holder() {
    let pg = PgServer::start();
    let url = pg.database("claims");
    let setup = PostgresStore::open(&url).unwrap();
    const THREADS: usize = 8;
    for i in 0..THREADS {
        setup
            .create_run(&RunBuilder::new(&format!("run-{i}")).build())
            .unwrap();
    }
    let stores: Vec<PostgresStore> = (0..THREADS)
        .map(|_| PostgresStore::open(&url).unwrap())
        .collect();
    for round in 0..5 {
        let key = format!("uid/ns/app-{round}");
        let barrier = std::sync::Barrier::new(THREADS);
        let winners: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(i, store)| {
                    let (key, barrier) = (&key, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        store.claim(key, &format!("run-{i}"), i as i64).unwrap().run
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(
            winners.iter().all(|w| *w == winners[0]),
            "every claimer sees the same holder: {winners:?}"
        );
        let holders: Vec<_> = setup
            .claims()
            .unwrap()
            .into_iter()
            .filter(|c| c.key == key)
            .collect();
        assert_eq!(holders.len(), 1);
        assert_eq!(holders[0].run, winners[0]);
    }
}

#[test]
fn journal_postgres_concurrent_first_opens_migrate_once() {
    let pg = PgServer::start();
    for round in 0..3 {
        let url = pg.database(&format!("fresh{round}"));
        let barrier = std::sync::Barrier::new(6);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        PostgresStore::open(&url).map(drop)
                    })
                })
                .collect();
            for handle in handles {
                handle.join().unwrap().unwrap();
            }
        });
        assert_eq!(
            pg.query(
                &format!("fresh{round}"),
                "SELECT count(*)::text || ':' || max(version)::text FROM ferry.ferry_schema"
            ),
            [Some("1:1".to_owned())],
            "one version row, migrated once"
        );
    }
}

#[test]
fn journal_postgres_refuses_a_newer_schema() {
    let pg = PgServer::start();
    let url = pg.database("newer");
    drop(PostgresStore::open(&url).unwrap());
    pg.sql("newer", "UPDATE ferry.ferry_schema SET version = 99");
    let (state, source) = journal_error(PostgresStore::open(&url));
    assert_eq!(state, url);
    assert!(
        matches!(
            source,
            JournalError::NewerSchema {
                found: 99,
                known: 1
            }
        ),
        "{source:?}"
    );
    assert!(source.to_string().contains("newer ferry"), "{source}");
    assert_eq!(
        pg.query("newer", "SELECT version::text FROM ferry.ferry_schema"),
        [Some("99".to_owned())],
        "left as it was"
    );
}

#[test]
fn journal_postgres_refuses_a_foreign_runs_table_untouched() {
    let pg = PgServer::start();
    let url = pg.database("foreign");
    pg.sql(
        "foreign",
        "CREATE TABLE public.runs (x int); INSERT INTO public.runs VALUES (7); \
         CREATE SCHEMA ferry; CREATE TABLE ferry.runs (y text); INSERT INTO ferry.runs VALUES ('theirs')",
    );
    let (_, source) = journal_error(PostgresStore::open(&url));
    match &source {
        JournalError::Foreign { tables } => assert_eq!(tables, &["ferry.runs"]),
        other => panic!("expected Foreign, got {other:?}"),
    }
    let (_, source) = journal_error(PostgresStore::open(&format!("{url}&schema=public")));
    assert!(
        matches!(&source, JournalError::Foreign { tables } if tables == &["public.runs"]),
        "{source:?}"
    );
    assert_eq!(
        pg.query(
            "foreign",
            "SELECT (SELECT count(*) FROM pg_tables WHERE tablename = 'ferry_schema')::text \
             || ' ' || (SELECT y FROM ferry.runs) || ' ' || (SELECT x FROM public.runs)::text"
        ),
        [Some("0 theirs 7".to_owned())],
        "nothing was created or changed"
    );
    // A schema of its own beside the foreign tables works.
    let store = PostgresStore::open(&format!("{url}&schema=ferry_journal")).unwrap();
    assert!(store.runs().unwrap().is_empty());
}

/// A password-protected server, a user file in its folder, and the URL.
fn password_server(password: &str) -> (PgServer, String) {
    let pg = PgServer::start_with(PgOptions {
        password: Some(password.into()),
        ..Default::default()
    });
    let url = pg.database("secure");
    (pg, url)
}

fn passfile(pg: &PgServer, name: &str, line: &str, mode: u32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = pg.dir().join(name);
    std::fs::write(&path, format!("# ferry test\n{line}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn journal_postgres_password_comes_from_a_private_pgpass() {
    let secret = "s3cret-Pa55";
    let (pg, url) = password_server(secret);
    let port = pg.port();

    // The right password in a private password file: connects; nothing the
    // store says or records contains it.
    let good = passfile(
        &pg,
        "good",
        &format!("127.0.0.1:{port}:secure:postgres:{secret}"),
        0o600,
    );
    let with_file = format!("{url}&passfile={}", good.display());
    let store = PostgresStore::open(&with_file).unwrap();
    assert!(!store.location().contains(secret));
    suite(&store);
    let held = store.lock("r1").unwrap();
    let records = pg.query(
        "secure",
        "SELECT concat((SELECT string_agg(r::text, ' ') FROM ferry.runs r), \
                       (SELECT string_agg(s::text, ' ') FROM ferry.steps s), \
                       (SELECT string_agg(l::text, ' ') FROM ferry.locks l), \
                       (SELECT string_agg(application_name, ' ') FROM pg_stat_activity))",
    );
    let records = records[0].clone().unwrap_or_default();
    assert!(records.contains("pid"), "the lock row is there: {records}");
    assert!(!records.contains(secret), "{records}");
    drop(held);

    // A wildcard line matches too.
    let wild = passfile(&pg, "wild", &format!("*:*:*:postgres:{secret}"), 0o600);
    PostgresStore::open(&format!("{url}&passfile={}", wild.display())).unwrap();

    // A wrong password: refused with the server's words and a hint.
    let wrong = passfile(
        &pg,
        "wrong",
        &format!("127.0.0.1:{port}:secure:postgres:not-{secret}"),
        0o600,
    );
    let (state, source) = journal_error(PostgresStore::open(&format!(
        "{url}&passfile={}",
        wrong.display()
    )));
    let message = format!("{state}: {source}");
    assert!(
        matches!(source, JournalError::Unreachable { .. }),
        "{source:?}"
    );
    assert!(
        message.contains("password authentication failed"),
        "{message}"
    );
    assert!(message.contains("PGPASSWORD"), "{message}");
    assert!(!message.contains(secret), "{message}");

    // A password file others can read is ignored, as libpq does: then no
    // password is found, and the message says where to put one.
    let open = passfile(&pg, "open", &format!("*:*:*:*:{secret}"), 0o644);
    let (_, source) = journal_error(PostgresStore::open(&format!(
        "{url}&passfile={}",
        open.display()
    )));
    let message = source.to_string();
    assert!(
        message.contains("asks for the password of user `postgres`"),
        "{message}"
    );
    assert!(message.contains(".pgpass"), "{message}");

    // No such role, no such database: the server's words, with a hint.
    let (_, source) = journal_error(PostgresStore::open(&format!(
        "postgres://nobody_here@127.0.0.1:{port}/secure?sslmode=disable&passfile={}",
        wild.display()
    )));
    assert!(source.to_string().contains("nobody_here"), "{source}");
    let (_, source) = journal_error(PostgresStore::open(&format!(
        "postgres://postgres@127.0.0.1:{port}/missing_db?sslmode=disable&passfile={}",
        wild.display()
    )));
    let message = source.to_string();
    assert!(
        message.contains("\"missing_db\" does not exist") && message.contains("createdb"),
        "{message}"
    );

    // The CLI: PGPASSWORD from the environment, wrong then right.
    let sb = Sandbox::new();
    sb.write("one.rhai", r#"step("one", || 1);"#);
    let out = sb
        .ferry(["run", "one.rhai", "--id", "cli"])
        .env("FERRY_STATE", &url)
        .env("PGPASSWORD", "wrong-one")
        .env("PGPASSFILE", "/nonexistent")
        .code(2)
        .run();
    assert!(
        out.stderr.contains("password authentication failed"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("wrong-one"), "{}", out.stderr);
    sb.ferry(["run", "one.rhai", "--id", "cli"])
        .env("FERRY_STATE", &url)
        .env("PGPASSWORD", secret)
        .stdout_has("run cli succeeded")
        .run();
    let out = sb
        .ferry(["status", "cli", "--json"])
        .env("FERRY_STATE", &url)
        .env("PGPASSWORD", secret)
        .run();
    assert!(out.stdout.contains("\"succeeded\""), "{}", out.stdout);
    assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
}

#[test]
fn journal_postgres_password_in_the_url_is_refused() {
    for url in [
        "postgres://ferry:hunter2@127.0.0.1:1/db",
        "postgresql://ferry@127.0.0.1:1/db?password=hunter2",
    ] {
        let err = match PostgresStore::open(url) {
            Err(e) => e,
            Ok(_) => panic!("a password in the URL was accepted"),
        };
        let message = err.to_string();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            message.contains("PGPASSWORD") && message.contains(".pgpass"),
            "{message}"
        );
        assert_eq!(err.exit_code(), 2);
    }
    let sb = Sandbox::new();
    let out = sb
        .ferry(["runs"])
        .env("FERRY_STATE", "postgres://ferry:hunter2@127.0.0.1:1/db")
        .code(2)
        .run();
    assert!(out.stderr.contains("PGPASSWORD"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[test]
fn journal_postgres_unreachable_server_fails_within_the_connect_timeout() {
    // Nothing listens: refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://ferry@127.0.0.1:{port}/db?sslmode=disable");
    let started = Instant::now();
    let (state, source) = journal_error(PostgresStore::open(&url));
    assert_eq!(state, url, "the message names the URL");
    assert!(
        matches!(source, JournalError::Unreachable { .. }),
        "{source:?}"
    );
    assert!(
        source.to_string().contains(&format!("127.0.0.1:{port}")),
        "{source}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // Something accepts the connection and never answers: the connect
    // timeout bounds the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("postgres://ferry@127.0.0.1:{port}/db?sslmode=disable&connect_timeout=2");
    let started = Instant::now();
    let (_, source) = journal_error(PostgresStore::open(&url));
    let waited = started.elapsed();
    assert!(
        matches!(source, JournalError::Unreachable { .. }),
        "{source:?}"
    );
    assert!(source.to_string().contains("connect_timeout"), "{source}");
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(6),
        "waited {waited:?}"
    );
    drop(silent);
}

#[test]
fn journal_postgres_works_from_inside_a_tokio_runtime() {
    let pg = PgServer::start();
    let url = pg.database("inside");
    // The runner calls the store from its runtime's threads; a blocking
    // client there panics ("Cannot start a runtime from within a runtime").
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url2 = url.clone();
    multi.block_on(async move {
        let store = PostgresStore::open(&url2).unwrap();
        suite(&store);
        let lock = store.lock("r2").unwrap();
        assert!(store.lock_state("r2").unwrap().held);
        drop(lock);
        // From a spawned task too, then the store dropped inside the runtime.
        tokio::spawn(async move {
            records_suite(&store);
            drop(store);
        })
        .await
        .unwrap();
    });
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    single.block_on(async {
        let store = PostgresStore::open(&url).unwrap();
        claims_suite(&store);
        assert_eq!(
            store.steps("k").unwrap().len(),
            3,
            "written from the other runtime"
        );
    });
}
