//! Durable step overhead and resume cost (issue: core).
//!
//! * per-step cost of a 10,000-step script, next to a raw fsync'd append of
//!   the same bytes to a plain file, measured in the same run;
//! * resume of a run whose 10,000 steps are all complete;
//! * 100k and 1M array pushes inside one step (linear since the engine
//!   stopped measuring every value after each operation).
//!
//! Run: `cargo bench --bench journal` (figures go in the README).

use ferry::events::NullSink;
use ferry::journal::{SqliteStore, Step, StepKind, StepStatus};
use ferry::runner::{Runner, StartRequest};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

const STEPS: usize = 10_000;

fn main() {
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
                dry_run: false,
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
                dry_run: false,
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
}
