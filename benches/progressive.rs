//! `scripts/progressive.rhai` (app1 cut over at 10%, 50%, then all) on a
//! lab served by `ferry lab up` (issue 20): requests, failures and the
//! observed split of each weight step's guard, and the wall time of the
//! whole progressive part, with the default holds (baseline 10 s, 30 s per
//! weight) unless `PROGRESSIVE_HOLD` / `PROGRESSIVE_BASELINE` say otherwise,
//! and the API requests of the whole run. The figures are the holds', not
//! the build's: a dev build measures the same.
//!
//!   cargo bench --profile dev --bench progressive

#[path = "common/lab.rs"]
mod lab;

use serde_json::Value;
use std::process::Command;

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab::Lab::up(&dir.path().join("lab"), 2);
    let state = dir.path().join("state");
    let mut args = vec![
        "run".to_owned(),
        "scripts/progressive.rhai".into(),
        "--id".into(),
        "p".into(),
        "--lab-dir".into(),
        lab.dir.display().to_string(),
    ];
    for (var, key) in [
        ("PROGRESSIVE_HOLD", "hold"),
        ("PROGRESSIVE_BASELINE", "baseline"),
    ] {
        if let Ok(v) = std::env::var(var) {
            args.extend(["--set".into(), format!("{key}={v}")]);
        }
    }
    let before = lab.traffic();
    let out = Command::new(FERRY)
        .current_dir(ROOT)
        .arg("--state")
        .arg(&state)
        .args(&args)
        .output()
        .expect("ferry run");
    let after = lab.traffic();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = Command::new(FERRY)
        .current_dir(ROOT)
        .arg("--state")
        .arg(&state)
        .args(["log", "p", "--json"])
        .output()
        .expect("ferry log");
    let steps: Vec<Value> = String::from_utf8_lossy(&log.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let at = |name: &str| steps.iter().find(|s| s["name"] == name);
    println!("| step | requests | failures | observed split (new) | p99 |");
    println!("|---|---:|---:|---:|---:|");
    let mut first = None;
    let mut last = None;
    for step in &steps {
        let name = step["name"].as_str().unwrap_or_default();
        let guard = &step["data"]["guard"];
        let seq = |s: &Value| s["seq"].as_i64().unwrap_or_default();
        if guard.is_null() || at("app1: baseline").is_none_or(|b| seq(step) < seq(b)) {
            continue;
        }
        first = first.or(step["started_at"].as_i64());
        last = step["ended_at"].as_i64();
        let paths = &guard["paths"];
        let new = paths["new"].as_u64().unwrap_or(0);
        let all = new + paths["old"].as_u64().unwrap_or(0) + paths["direct"].as_u64().unwrap_or(0);
        println!(
            "| `{name}` | {} | {} | {new} ({:.1}%) | {} ms |",
            guard["requests"],
            guard["failures"],
            100.0 * new as f64 / all.max(1) as f64,
            guard["latency_ms"]["p99"],
        );
    }
    if let (Some(first), Some(last)) = (first, last) {
        println!(
            "progressive part (baseline to the flip): {:.1} s",
            (last - first) as f64 / 1000.0
        );
    }
    println!(
        "the whole run: {} API requests to both clusters",
        after.0 - before.0
    );
}
