//! `ferry plan scripts/two-apps.rhai` against a lab served by `ferry lab
//! up` (issue 15): wall time per plan (median of PLAN_RUNS, default 5) and
//! the API requests both of the lab's API servers counted for one plan.
//!
//!   cargo bench --bench plan

#[path = "common/lab.rs"]
mod lab;

use std::process::Command;
use std::time::{Duration, Instant};

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn main() {
    let runs: usize = std::env::var("PLAN_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let lab = lab::Lab::up(&dir.path().join("lab"), 2);
    let mut walls: Vec<Duration> = Vec::new();
    let mut requests = 0;
    for i in 0..runs {
        let before = lab.traffic();
        let started = Instant::now();
        let out = Command::new(FERRY)
            .current_dir(ROOT)
            .arg("--state")
            .arg(dir.path().join("state"))
            .args(["plan", "scripts/two-apps.rhai", "--lab-dir"])
            .arg(&lab.dir)
            .output()
            .expect("ferry plan");
        walls.push(started.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let after = lab.traffic();
        if i == 0 {
            requests = after.0 - before.0;
            let text = String::from_utf8_lossy(&out.stdout);
            println!("{}", text.lines().rev().nth(1).unwrap_or_default());
        }
    }
    walls.sort();
    println!(
        "plan of two-apps.rhai: median {:.0} ms over {runs} runs (min {:.0} ms, max {:.0} ms); {requests} API requests",
        walls[runs / 2].as_secs_f64() * 1000.0,
        walls[0].as_secs_f64() * 1000.0,
        walls[runs - 1].as_secs_f64() * 1000.0,
    );
}
