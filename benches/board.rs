//! The board's render times and page weights (issue: the migration board).
//!
//! * Fleet view of 1,000 apps in 1,000 runs (a SQLite journal: each run
//!   moved one app through the recipe's 4 phases, 12 steps each; a tenth
//!   paused at a gate, some failed or rolled back): server time to render
//!   the whole page, the first time (every run's records read) and again
//!   (unchanged runs come from the board's cache), and its weight.
//! * Run view of a 10,000-step run with a guarded flip's chart.
//!
//! Run: `cargo bench --bench board` (figures go in the README).

use ferry::board::Board;
use ferry::board::views::{self, FleetFilter};
use ferry::journal::{
    Action, ActionKind, Gate, Run, RunStatus, SqliteStore, Step, StepKind, StepStatus, Store,
    UndoStatus,
};
use ferry::probes::stats::{Limits, Sample, Stats};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const APPS: usize = 1_000;
const STEPS_PER_APP: usize = 12;
const BIG_RUN: usize = 10_000;

fn run(id: &str, status: RunStatus, at: i64) -> Run {
    Run {
        id: id.into(),
        script: "/repo/migrate-app.rhai".into(),
        script_hash: String::new(),
        params: BTreeMap::from([("app".to_owned(), id.to_owned())]),
        libs: Vec::new(),
        status,
        dry_run: false,
        error: None,
        identities: BTreeMap::new(),
        environment: Default::default(),
        sources: BTreeMap::from([(
            "migrate-app.rhai".to_owned(),
            "import \"ferry/migrate\" as migrate;\n".repeat(20),
        )]),
        actions: vec![Action {
            action: ActionKind::Start,
            by: "alice@laptop".into(),
            at,
            detail: None,
        }],
        created_at: at,
        updated_at: at,
    }
}

fn step(seq: usize, name: String, at: i64, kind: StepKind) -> Step {
    let mut step = Step::new(name, format!("migrate.rhai:{}:5", seq + 1), kind);
    step.status = StepStatus::Completed;
    step.attempts = 1;
    step.started_at = Some(at);
    step.ended_at = Some(at + 40);
    step.value = Some(serde_json::json!({ "changed": true, "name": "app-internal" }));
    step
}

fn guard() -> serde_json::Value {
    let mut samples: Vec<Sample> = (0..6_000)
        .map(|i| Sample {
            start: Duration::from_millis(i * 5),
            latency: Duration::from_millis(2 + i % 7),
            ok: true,
            kind: None,
            error: None,
            path: None,
        })
        .collect();
    let mut stats = Stats::from_samples(
        "http://app.ns/".into(),
        200.0,
        Limits {
            max_failures: 0,
            max_gap_ms: None,
        },
        &mut samples,
        Duration::from_secs(30),
        0,
        false,
    );
    stats.flip_ms = Some(12_000);
    stats.to_json()
}

fn fill_fleet(store: &dyn Store) {
    let guard = guard();
    for i in 0..APPS {
        let id = format!("move-app{i:04}");
        let status = match i % 20 {
            0 | 1 => RunStatus::Paused,
            2 => RunStatus::Failed,
            3 => RunStatus::RolledBack,
            _ => RunStatus::Succeeded,
        };
        let at = 1_764_000_000_000 + i as i64 * 60_000;
        store.create_run(&run(&id, status, at)).unwrap();
        let app = format!("app{i:04}");
        let namespace = format!("team{:02}", i / 10);
        let mut seq = 0;
        for phase in ["bridged", "prepared", "cut over", "finalized"] {
            for n in 0..STEPS_PER_APP / 4 {
                let mut s = step(seq, format!("{app}: {phase} step {n}"), at, StepKind::Step);
                s.undo = if status == RunStatus::RolledBack {
                    UndoStatus::Done
                } else {
                    UndoStatus::Pending
                };
                if n == 2 && phase == "cut over" {
                    s.data = Some(serde_json::json!({ "guard": guard }));
                }
                store.put_step(&id, &s, false).unwrap();
                seq += 1;
            }
            let mut p = step(seq, format!("{app}: {phase}"), at, StepKind::Phase);
            p.value = None;
            p.data = Some(serde_json::json!({
                "app": app, "phase": phase, "namespace": namespace, "cluster": "old",
            }));
            store.put_step(&id, &p, false).unwrap();
            seq += 1;
            if status == RunStatus::Paused && phase == "cut over" {
                let mut g = step(seq, "finalize-ok".into(), at, StepKind::Gate);
                g.status = StepStatus::Waiting;
                g.data = Some(serde_json::json!({ "approvers": ["alice", "bob"] }));
                store.put_step(&id, &g, false).unwrap();
                store
                    .put_gate(
                        &id,
                        &Gate {
                            name: "finalize-ok".into(),
                            message: format!("finalize {app}?"),
                            requested_at: at,
                            approved_at: None,
                            approved_by: None,
                        },
                    )
                    .unwrap();
                break;
            }
        }
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("fleet")).unwrap());
    let filling = Instant::now();
    fill_fleet(&*store);
    eprintln!("journal of {APPS} runs written in {:?}", filling.elapsed());

    let board = Board::new(store.clone(), None);
    let filter = FleetFilter::default();
    let page = |main: String| views::page("Fleet", "/live/", maud::PreEscaped(main)).into_string();
    let started = Instant::now();
    let html = page(board.render_fleet(&filter).unwrap());
    let cold = started.elapsed();
    let warm = median(
        (0..15)
            .map(|_| {
                let started = Instant::now();
                let _ = page(board.render_fleet(&filter).unwrap());
                started.elapsed()
            })
            .collect(),
    );
    let filtered = FleetFilter {
        namespace: "team42".into(),
        ..FleetFilter::default()
    };
    let small = page(board.render_fleet(&filtered).unwrap());
    assert_eq!(html.matches("data-app=").count(), APPS);
    println!(
        "fleet of {APPS} apps in {APPS} runs: first render {} (every run read), then {} median of 15 (cache); page {:.0} KiB ({:.0} KiB filtered to one namespace)",
        ms(cold),
        ms(warm),
        html.len() as f64 / 1024.0,
        small.len() as f64 / 1024.0
    );

    let big: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("big")).unwrap());
    big.create_run(&run("big", RunStatus::Succeeded, 1_764_000_000_000))
        .unwrap();
    for i in 0..BIG_RUN {
        let mut s = step(
            i,
            format!("step {i}"),
            1_764_000_000_000 + i as i64 * 10,
            StepKind::Step,
        );
        if i == BIG_RUN / 2 {
            s.data = Some(serde_json::json!({ "guard": guard() }));
        }
        big.put_step("big", &s, false).unwrap();
    }
    let board = Board::new(big, None);
    let mut size = 0;
    let run_view = median(
        (0..7)
            .map(|_| {
                let started = Instant::now();
                let main = board.render_run("big", None, None).unwrap().unwrap();
                let html =
                    views::page("Run big", "/live/runs/big", maud::PreEscaped(main)).into_string();
                size = html.len();
                started.elapsed()
            })
            .collect(),
    );
    println!(
        "run view of a {BIG_RUN}-step run with a guard chart: {} median of 7 (journal read included); page {:.1} MiB",
        ms(run_view),
        size as f64 / 1024.0 / 1024.0
    );
}
