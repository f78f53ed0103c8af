//! A lab served by `ferry lab up` in its own process, for the benchmarks:
//! its API servers' request counts, its CPU time, and a clean stop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// A lab served by `ferry lab up` in its own process.
pub struct Lab {
    pub dir: PathBuf,
    child: Child,
}

impl Lab {
    pub fn up(dir: &Path, apps: usize) -> Lab {
        let child = Command::new(FERRY)
            .args(["--quiet", "lab", "up", "--dir"])
            .arg(dir)
            .args(["--apps", &apps.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .expect("ferry lab up");
        let lab = Lab {
            dir: dir.to_owned(),
            child,
        };
        let started = Instant::now();
        while !dir.join("lab.pid").exists() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the lab did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        lab
    }

    pub fn kubectl(&self, context: &str, args: &[&str]) -> String {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"))
            .args(["--context", context])
            .args(args)
            .output()
            .expect("kubectl");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// (requests, connections) both API servers counted so far; the
    /// requests reading them are left out.
    pub fn traffic(&self) -> (u64, u64) {
        let mut total = (0, 0);
        for context in ["old", "new"] {
            let text = self.kubectl(context, &["get", "--raw", "/metrics"]);
            let value = |name: &str| -> u64 {
                text.lines()
                    .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
                    .unwrap_or_else(|| panic!("{name} in /metrics"))
            };
            total.0 += value("apiserver_request_total ") - 1;
            total.1 += value("ferry_lab_connections_total ") - 1;
        }
        total
    }

    /// The lab process's CPU time so far.
    #[allow(dead_code)]
    pub fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_millis(ticks * 1000 / hz)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // SAFETY: signals the lab process this harness started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}
