//! Durable step overhead and resume cost (issue: core).
//!
//! * per-step cost of a 10,000-step script, next to a raw fsync'd append of
//!   the same bytes to a plain file, measured in the same run;
//! * resume of a run whose 10,000 steps are all complete;
//! * 100k and 1M array pushes inside one step (linear since the engine
//!   stopped measuring every value after each operation).
//!
//! * PostgreSQL, when a server can be started here (`initdb` under
//!   /usr/lib/postgresql/*/bin or on PATH; skipped otherwise): per-step cost
//!   of the two writes the runner makes (start without, completion with a
//!   durable commit) next to a raw one-row INSERT + COMMIT to the same
//!   server, the same 1,000 steps through the runner, and resume's reads of
//!   a 1,000-step run (`steps()` + `run()`).
//!
//! Run: `cargo bench --bench journal` (figures go in the README); `PG_ONLY=1`
//! runs only the PostgreSQL part.

use ferry::events::NullSink;
use ferry::journal::{
    PostgresStore, Run, RunStatus, SqliteStore, Step, StepKind, StepStatus, Store,
};
use ferry::runner::{Runner, StartRequest};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

const STEPS: usize = 10_000;

#[path = "../tests/suite/common/postgres.rs"]
mod pg_server;

fn main() {
    if std::env::var_os("PG_ONLY").is_some() {
        postgres_figures();
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("steps.rhai");
    std::fs::write(
        &script,
        format!("for i in 0..{STEPS} {{ step(`step ${{i}}`, || i); }}\npause(\"end\", \"measure resume\");\n"),
    )
    .unwrap();

    let runs = std::env::var("RUNS")
        .map(|v| v.parse().unwrap())
        .unwrap_or(3);
    let mut per_step = Vec::new();
    let mut raw_per_append = Vec::new();
    let mut resume_times = Vec::new();
    for round in 0..runs {
        let state = dir.path().join(format!("state-{round}"));
        let runner = || {
            let store = Arc::new(SqliteStore::open(&state).unwrap());
            Runner::new(store, Arc::new(NullSink), vec![], Default::default()).unwrap()
        };
        let id = format!("bench-{round}");

        let started = Instant::now();
        let (_, outcome) = runner()
            .start(StartRequest {
                script: script.clone(),
                params: Default::default(),
                id: Some(id.clone()),
                environment: Default::default(),
                allow_unknown_params: false,
            })
            .unwrap();
        let run_time = started.elapsed();
        assert_eq!(outcome.exit_code(), 3, "the run stops at the final gate");
        per_step.push(run_time / STEPS as u32);

        // The same bytes the journal stores for one completed step.
        let mut record = Step::new("step 1234", "steps.rhai:1:23", StepKind::Step);
        record.status = StepStatus::Completed;
        record.value = Some(serde_json::json!(1234));
        let bytes = serde_json::to_vec(&record).unwrap();
        let raw_path = dir.path().join(format!("raw-{round}.log"));
        let mut raw = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&raw_path)
            .unwrap();
        let started = Instant::now();
        for _ in 0..STEPS {
            raw.write_all(&bytes).unwrap();
            raw.write_all(b"\n").unwrap();
            raw.sync_data().unwrap();
        }
        raw_per_append.push(started.elapsed() / STEPS as u32);

        // Each resume gets its own copy of the journal (RESUMES copies, for
        // profiling; one by default).
        let resumes: usize = std::env::var("RESUMES").map_or(1, |v| v.parse().unwrap());
        for copy in 0..resumes {
            let copied = dir.path().join(format!("state-{round}-{copy}"));
            std::fs::create_dir_all(&copied).unwrap();
            for entry in std::fs::read_dir(&state).unwrap().flatten() {
                if entry.path().is_file() {
                    std::fs::copy(entry.path(), copied.join(entry.file_name())).unwrap();
                }
            }
            let runner = || {
                let store = Arc::new(SqliteStore::open(&copied).unwrap());
                Runner::new(store, Arc::new(NullSink), vec![], Default::default()).unwrap()
            };
            runner().approve(&id, "end").unwrap();
            // What `ferry resume` does beyond process start: open the state,
            // start the runtime, resume.
            let started = Instant::now();
            let outcome = runner().resume(&id, false).unwrap();
            resume_times.push(started.elapsed());
            assert_eq!(outcome.exit_code(), 0);
        }
    }

    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let step = median(per_step);
    let raw = median(raw_per_append);
    let resume = median(resume_times);
    println!("durable step overhead ({STEPS} steps, median of {runs} runs)");
    println!(
        "  ferry step:            {:>9.1} µs/step",
        step.as_secs_f64() * 1e6
    );
    println!(
        "  raw fsync'd append:    {:>9.1} µs/append",
        raw.as_secs_f64() * 1e6
    );
    println!(
        "  ratio:                 {:>9.2}x   (goal <= 2x)",
        step.as_secs_f64() / raw.as_secs_f64()
    );
    println!("resume of a {STEPS}-step completed run (opening the state included)");
    println!(
        "  resume:                {:>9.1} ms   (goal < 50 ms)",
        resume.as_secs_f64() * 1e3
    );

    println!("array pushes inside one step");
    for n in [100_000, 1_000_000] {
        let script = dir.path().join(format!("push-{n}.rhai"));
        std::fs::write(
            &script,
            format!(
                "step(\"fill\", || {{ let a = []; for i in 0..{n} {{ a.push(i); }} a.len() }});\n"
            ),
        )
        .unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join(format!("push-{n}"))).unwrap());
        let runner = Runner::new(store, Arc::new(NullSink), vec![], Default::default()).unwrap();
        let started = Instant::now();
        let (_, outcome) = runner
            .start(StartRequest {
                script,
                params: Default::default(),
                id: Some(format!("push-{n}")),
                environment: Default::default(),
                allow_unknown_params: false,
            })
            .unwrap();
        assert_eq!(outcome.exit_code(), 0);
        println!(
            "  {n:>9} pushes:        {:>9.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    postgres_figures();
}

const PG_STEPS: usize = 1_000;

fn postgres_figures() {
    println!("postgresql (loopback server, fsync on)");
    if pg_server::bin_dir().is_none() {
        println!("  skipped: no PostgreSQL here (apt-get install postgresql)");
        return;
    }
    let server = match std::panic::catch_unwind(|| {
        pg_server::PgServer::start_with(pg_server::PgOptions {
            durable: true,
            ..Default::default()
        })
    }) {
        Ok(server) => server,
        Err(_) => {
            println!("  skipped: the server did not start");
            return;
        }
    };
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let url = server.database("bench");
    let store = PostgresStore::open(&url).unwrap();
    let rounds = 3;
    let (mut starts, mut completions, mut raws) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let id = format!("steps-{round}");
        store.create_run(&bench_run(&id)).unwrap();
        let (mut start_time, mut complete_time) = (Duration::ZERO, Duration::ZERO);
        for i in 0..PG_STEPS {
            let mut step = Step::new(format!("step {i}"), "steps.rhai:1:23", StepKind::Step);
            step.attempts = 1;
            step.started_at = Some(i as i64);
            let started = Instant::now();
            store.put_step(&id, &step, false).unwrap();
            start_time += started.elapsed();
            step.status = StepStatus::Completed;
            step.value = Some(serde_json::json!(i));
            step.ended_at = Some(i as i64);
            let started = Instant::now();
            store.put_step(&id, &step, true).unwrap();
            complete_time += started.elapsed();
        }
        starts.push(start_time / PG_STEPS as u32);
        completions.push(complete_time / PG_STEPS as u32);
        raws.push(raw_insert_commit(server.port(), round));
    }
    let (start, complete, raw) = (median(starts), median(completions), median(raws));
    println!("  per step ({PG_STEPS} steps, median of {rounds} rounds)");
    println!("    put_step running (no sync):   {:>9.1} µs", us(start));
    println!("    put_step completed (durable): {:>9.1} µs", us(complete));
    println!(
        "    ferry step (both):            {:>9.1} µs/step",
        us(start + complete)
    );
    println!(
        "    raw INSERT + COMMIT:          {:>9.1} µs/write",
        us(raw)
    );
    println!(
        "    ratio step / raw write:       {:>9.2}x",
        (start + complete).as_secs_f64() / raw.as_secs_f64()
    );

    // The same steps through the runner (script, engine and journal).
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("steps.rhai");
    std::fs::write(
        &script,
        format!("for i in 0..{PG_STEPS} {{ step(`step ${{i}}`, || i); }}\npause(\"end\", \"measure resume\");\n"),
    )
    .unwrap();
    let mut through_runner = Vec::new();
    let mut resumes = Vec::new();
    for round in 0..rounds {
        let id = format!("runner-{round}");
        let runner = || {
            let store = Arc::new(PostgresStore::open(&url).unwrap());
            Runner::new(store, Arc::new(NullSink), vec![], Default::default()).unwrap()
        };
        let started = Instant::now();
        let (_, outcome) = runner()
            .start(StartRequest {
                script: script.clone(),
                params: Default::default(),
                id: Some(id.clone()),
                environment: Default::default(),
                allow_unknown_params: false,
            })
            .unwrap();
        through_runner.push(started.elapsed() / PG_STEPS as u32);
        assert_eq!(outcome.exit_code(), 3, "the run stops at the final gate");
        runner().approve(&id, "end").unwrap();
        let started = Instant::now();
        let outcome = runner().resume(&id, false).unwrap();
        resumes.push(started.elapsed());
        assert_eq!(outcome.exit_code(), 0);
    }
    println!(
        "    through the runner:           {:>9.1} µs/step",
        us(median(through_runner))
    );

    // Resume's reads of a 1,000-step run, on an open store and from scratch.
    let mut warm = Vec::new();
    let mut cold = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let steps = store.steps("steps-0").unwrap();
        let run = store.run("steps-0").unwrap();
        warm.push(started.elapsed());
        assert_eq!(steps.len(), PG_STEPS);
        assert!(run.is_some());
        let started = Instant::now();
        let fresh = PostgresStore::open(&url).unwrap();
        let steps = fresh.steps("steps-0").unwrap();
        let _ = fresh.run("steps-0").unwrap();
        cold.push(started.elapsed());
        assert_eq!(steps.len(), PG_STEPS);
    }
    println!("  resume of a {PG_STEPS}-step run (median of 5)");
    println!(
        "    steps() + run():              {:>9.1} ms",
        median(warm).as_secs_f64() * 1e3
    );
    println!(
        "    open + steps() + run():       {:>9.1} ms",
        median(cold).as_secs_f64() * 1e3
    );
    println!(
        "    ferry resume (runner):        {:>9.1} ms",
        median(resumes).as_secs_f64() * 1e3
    );
}

fn bench_run(id: &str) -> Run {
    Run {
        id: id.into(),
        script: "/bench/steps.rhai".into(),
        script_hash: "bench".into(),
        params: Default::default(),
        libs: vec![],
        status: RunStatus::Running,
        dry_run: false,
        error: None,
        identities: Default::default(),
        environment: Default::default(),
        sources: Default::default(),
        actions: vec![],
        created_at: 0,
        updated_at: 0,
    }
}

/// µs of one raw durable write: a prepared one-row INSERT, committed on its
/// own (autocommit), over one TCP connection to the same server.
fn raw_insert_commit(port: u16, round: usize) -> Duration {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(port)
            .user(pg_server::SUPERUSER)
            .dbname("bench");
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let table = format!("raw_{round}");
        client
            .batch_execute(&format!(
                "CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)"
            ))
            .await
            .unwrap();
        let insert = client
            .prepare(&format!("INSERT INTO {table} (body) VALUES ($1)"))
            .await
            .unwrap();
        let body = r#"{"name":"step 1234","status":"completed","value":1234}"#;
        let started = Instant::now();
        for _ in 0..PG_STEPS {
            client.execute(&insert, &[&body]).await.unwrap();
        }
        started.elapsed() / PG_STEPS as u32
    })
}
