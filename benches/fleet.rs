//! Fleet migration in the lab (issue 8), against the shell-loop baseline.
//!
//! For every fleet size N: a lab with N apps (`ferry lab up --apps N`, its
//! own process), then `ferry run scripts/fleet.rhai --set apps=N` (the whole
//! per-app recipe: bridge_old, prepare_new, cutover, finalize) through the
//! release binary. Reported: wall time, the API requests and connections
//! the lab's API servers counted (`/metrics`) per app, ferry's peak RSS and
//! CPU time (`wait4`), and the lab's CPU time.
//!
//! Then, for N = FLEET_BASELINE (100), the same per-app operations as a bash
//! loop of kubectl / knsupdate commands (`benches/fleet-kubectl.sh`) against
//! a fresh lab of the same size, timed in the same run, and ferry's ratio.
//!
//!   cargo bench --bench fleet
//!   FLEET_SIZES=10,100 FLEET_LIMIT=32 FLEET_BASELINE=0 cargo bench --bench fleet
//!
//! Needs kubectl, jq and knsupdate on PATH for the baseline.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("a number"))
        .collect()
}

#[path = "common/lab.rs"]
mod lab;
use lab::Lab;

/// Every app's Service in the old cluster is bridged to the new cluster and
/// marked finalized; no route to it is left in the old cluster.
fn check_moved(lab: &Lab, apps: usize) {
    let services = lab.kubectl("old", &["get", "svc", "-A", "-o", "json"]);
    let services: serde_json::Value = serde_json::from_str(&services).unwrap();
    let moved = services["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            // Either bridge: the ExternalName at the new cluster, or the
            // default EndpointSlice bridge (selector set aside).
            let bridged = s["spec"]["externalName"] == "new.mycompany.internal"
                || s["metadata"]["annotations"]["ferry.dev/selector"].is_string();
            bridged && s["metadata"]["annotations"]["ferry.dev/finalized"] == "true"
        })
        .count();
    assert_eq!(moved, apps, "every app moved and finalized");
    // Finalize retires each app's route in the old cluster (the new
    // cluster's stays: callers left in the old cluster cross it).
    let routes = lab.kubectl(
        "old",
        &["get", "ingressroutes.traefik.io", "-A", "-o", "name"],
    );
    assert!(routes.trim().is_empty(), "old routes left: {routes}");
}

/// Runs `command` to its end: (exit status, wall time, user+system CPU,
/// peak RSS in KiB), from `wait4` on that very child (which reaps it).
#[allow(clippy::zombie_processes)]
fn measure(command: &mut Command) -> (i32, Duration, Duration, u64) {
    let started = Instant::now();
    let child = command.spawn().expect("spawn");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(pid, child.id() as i32, "wait4");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    (libc::WEXITSTATUS(status), wall, cpu, usage.ru_maxrss as u64)
}

struct Fleet {
    apps: usize,
    wall: Duration,
    requests: u64,
    connections: u64,
    rss_kib: u64,
    cpu: Duration,
    lab_cpu: Duration,
}

fn fleet(apps: usize, limit: usize) -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::up(&dir.path().join("lab"), apps);
    let before = lab.traffic();
    let lab_before = lab.cpu();
    let (code, wall, cpu, rss_kib) = measure(
        Command::new(FERRY)
            .current_dir(ROOT)
            .arg("--state")
            .arg(dir.path().join("state"))
            .args(["--quiet", "run", "scripts/fleet.rhai", "--lab-dir"])
            .arg(&lab.dir)
            .args(["--set", &format!("apps={apps}")])
            .args(["--set", &format!("limit={limit}")]),
    );
    assert_eq!(code, 0, "the fleet run of {apps} apps succeeds");
    let lab_cpu = lab.cpu() - lab_before;
    let after = lab.traffic();
    check_moved(&lab, apps);
    Fleet {
        apps,
        wall,
        requests: after.0 - before.0,
        connections: after.1 - before.1,
        rss_kib,
        cpu,
        lab_cpu,
    }
}

fn baseline(apps: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::up(&dir.path().join("lab"), apps);
    let (code, wall, _, _) = measure(
        Command::new("bash")
            .arg(Path::new(ROOT).join("benches/fleet-kubectl.sh"))
            .arg(&lab.dir)
            .arg(apps.to_string())
            .stdout(Stdio::null()),
    );
    assert_eq!(code, 0, "the kubectl loop over {apps} apps succeeds");
    check_moved(&lab, apps);
    wall
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sizes = env_list("FLEET_SIZES", "10,100,1000");
    let limit = env_list("FLEET_LIMIT", "32")[0];
    let base = env_list("FLEET_BASELINE", "100")
        .first()
        .copied()
        .unwrap_or(0);
    println!(
        "fleet: scripts/fleet.rhai, limit {limit}, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>6} {:>9} {:>9} {:>12} {:>12} {:>9} {:>10} {:>9}",
        "apps", "wall s", "apps/s", "requests/app", "conns/app", "RSS MiB", "ferry CPU", "lab CPU"
    );
    let mut at_base = None;
    for apps in sizes {
        let f = fleet(apps, limit);
        println!(
            "{:>6} {:>9.2} {:>9.1} {:>12.1} {:>12.1} {:>9.1} {:>9.2}s {:>8.2}s",
            f.apps,
            f.wall.as_secs_f64(),
            f.apps as f64 / f.wall.as_secs_f64(),
            f.requests as f64 / f.apps as f64,
            f.connections as f64 / f.apps as f64,
            f.rss_kib as f64 / 1024.0,
            f.cpu.as_secs_f64(),
            f.lab_cpu.as_secs_f64(),
        );
        if f.apps == base {
            at_base = Some(f.wall);
        }
    }
    if base > 0 {
        let ferry = at_base.unwrap_or_else(|| fleet(base, limit).wall);
        let shell = baseline(base);
        println!(
            "baseline: {base} apps, bash loop of kubectl/knsupdate {:.1}s, ferry {:.2}s: ferry {:.1}x faster",
            shell.as_secs_f64(),
            ferry.as_secs_f64(),
            shell.as_secs_f64() / ferry.as_secs_f64()
        );
    }
}
