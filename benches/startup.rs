//! Start-up (issue 8): a fresh `ferry --version` process, and `ferry check`
//! of every stdlib module and shipped script, each run RUNS times
//! (default 50) as separate processes; median, min and max wall time.
//! The binary's pages are in the page cache (as after any first call): this
//! measures process start, not disk reads.
//!
//!   cargo bench --bench startup

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn time(runs: usize, args: &[String]) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            let status = Command::new(FERRY)
                .current_dir(ROOT)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("ferry runs");
            let took = started.elapsed();
            assert!(status.success(), "ferry {args:?} failed");
            took
        })
        .collect();
    times.sort();
    times
}

fn files(dir: &str) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(format!("{ROOT}/{dir}"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy()))
        .filter(|p| p.ends_with(".rhai"))
        .collect();
    found.sort();
    found
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(50);
    let stdlib = files("stdlib");
    let mut all = stdlib.clone();
    all.extend(files("scripts"));
    let cases: Vec<(String, Vec<String>)> = vec![
        ("ferry --version".into(), vec!["--version".into()]),
        (
            format!("ferry check stdlib/*.rhai ({} files)", stdlib.len()),
            [vec!["--quiet".to_owned(), "check".to_owned()], stdlib].concat(),
        ),
        (
            format!(
                "ferry check stdlib/*.rhai scripts/*.rhai ({} files)",
                all.len()
            ),
            [vec!["--quiet".to_owned(), "check".to_owned()], all].concat(),
        ),
    ];
    for (label, args) in cases {
        let _ = time(2, &args); // warm the page cache
        let t = time(runs, &args);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{label:<55} median {:>7.2} ms  min {:>7.2} ms  max {:>7.2} ms  ({runs} runs)",
            ms(t[t.len() / 2]),
            ms(t[0]),
            ms(t[t.len() - 1]),
        );
    }
}
