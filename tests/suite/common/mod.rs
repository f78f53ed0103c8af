//! Test harness: a sandbox folder per test with its own state directory, and
//! a `#[must_use]` builder so tests read as specs:
//!
//! ```ignore
//! sandbox.ferry(["run", "a.rhai"]).code(0).stdout_has("✔ one").run();
//! ```
#![allow(dead_code)]

pub mod backend;
pub mod bind;
pub mod exchanges;
pub mod history;
pub mod knot;
pub mod lab;
pub mod pdns;
pub mod poller;
pub mod postgres;
pub mod pty;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// `migrate-app.rhai`'s parameters for the article's app1, watched from
/// app2's pods (its client in the old cluster).
pub const APP1_FROM_APP2: [&str; 8] = [
    "--set",
    "app=app1",
    "--set",
    "ns=app1-ns",
    "--set",
    "client_ns=app2-ns",
    "--set",
    "client_labels=app=app2",
];

pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file (creating folders) and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.file(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap_or_default()
    }

    /// Lines of a file written by `test_mutate`.
    pub fn lines(&self, name: &str) -> Vec<String> {
        self.read(name).lines().map(str::to_owned).collect()
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(FERRY);
        cmd.current_dir(self.path())
            .env("FERRY_STATE", self.file(".ferry"))
            .env("FERRY_TEST_PRIMITIVES", "1")
            .env_remove("FERRY_PATH")
            .stdin(Stdio::null());
        cmd
    }

    pub fn ferry<I, S>(&self, args: I) -> Invocation<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Invocation {
            sandbox: self,
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            env: Vec::new(),
            code: Some(0),
            stdout_has: Vec::new(),
            stderr_has: Vec::new(),
            stdout_lacks: Vec::new(),
        }
    }

    /// Starts ferry in the background (for signals and lock contention).
    /// The process is killed if the test ends without finishing it.
    pub fn spawn<I, S>(&self, args: I) -> Running
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut cmd = self.command();
        cmd.args(args.into_iter().map(|a| a.as_ref().to_owned()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Running(Some(cmd.spawn().expect("spawn ferry")))
    }

    /// The run's journal records, as `ferry log RUN --json` prints them.
    pub fn steps(&self, run: &str) -> Vec<serde_json::Value> {
        // Before the run exists (a background run just started) there is nothing yet.
        let out = self.ferry(["log", run, "--json"]).any_code().run();
        out.stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }

    #[track_caller]
    pub fn step(&self, run: &str, name: &str) -> serde_json::Value {
        self.steps(run)
            .into_iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no step {name} in {run}"))
    }

    /// The id of the newest run (`ferry status --json`).
    pub fn status_newest_id(&self) -> String {
        let out = self.ferry(["status", "--json"]).run();
        let value: serde_json::Value = serde_json::from_str(&out.stdout).expect("status json");
        value["run"]["id"].as_str().expect("an id").to_owned()
    }

    /// `ferry status RUN --json`
    pub fn status(&self, run: &str) -> serde_json::Value {
        let out = self.ferry(["status", run, "--json"]).run();
        serde_json::from_str(&out.stdout).expect("status json")
    }

    pub fn run_status(&self, run: &str) -> String {
        self.status(run)["run"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Polls `condition` until it holds; panics with `what` after a generous bound.
#[track_caller]
pub fn await_condition(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A background ferry; killed on drop so a failing test leaves nothing behind.
pub struct Running(Option<Child>);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0.as_ref().expect("a running ferry")
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("a running ferry")
    }
}

impl From<Child> for Running {
    fn from(child: Child) -> Self {
        Running(Some(child))
    }
}

impl Running {
    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL, then reap.
    pub fn kill_now(&mut self) {
        if let Some(mut child) = self.0.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn signal(child: &Running, sig: i32) {
    // SAFETY: kill(2) with a child's pid and a valid signal number.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill({}, {sig})", child.id());
}

pub struct Finished {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn finish(mut running: Running) -> Finished {
    let child = running.0.take().expect("a running ferry");
    let out = child.wait_with_output().expect("wait for ferry");
    Finished {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[must_use = "call .run() to execute the invocation"]
pub struct Invocation<'a> {
    sandbox: &'a Sandbox,
    args: Vec<String>,
    env: Vec<(String, String)>,
    code: Option<i32>,
    stdout_has: Vec<String>,
    stderr_has: Vec<String>,
    stdout_lacks: Vec<String>,
}

impl Invocation<'_> {
    /// Expected exit code (default 0).
    pub fn code(mut self, code: i32) -> Self {
        self.code = Some(code);
        self
    }

    pub fn any_code(mut self) -> Self {
        self.code = None;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn stdout_has(mut self, text: &str) -> Self {
        self.stdout_has.push(text.to_owned());
        self
    }

    pub fn stdout_lacks(mut self, text: &str) -> Self {
        self.stdout_lacks.push(text.to_owned());
        self
    }

    pub fn stderr_has(mut self, text: &str) -> Self {
        self.stderr_has.push(text.to_owned());
        self
    }

    #[track_caller]
    pub fn run(self) -> Finished {
        let mut cmd = self.sandbox.command();
        cmd.args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run ferry");
        let finished = Finished {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let context = || {
            format!(
                "ferry {:?}\n--- stdout\n{}\n--- stderr\n{}",
                self.args, finished.stdout, finished.stderr
            )
        };
        if let Some(code) = self.code {
            assert_eq!(finished.code, code, "exit code of {}", context());
        }
        assert!(
            !finished.stderr.contains("panicked"),
            "ferry panicked: {}",
            context()
        );
        for text in &self.stdout_has {
            assert!(
                finished.stdout.contains(text),
                "stdout lacks {text:?}: {}",
                context()
            );
        }
        for text in &self.stdout_lacks {
            assert!(
                !finished.stdout.contains(text),
                "stdout has {text:?}: {}",
                context()
            );
        }
        for text in &self.stderr_has {
            assert!(
                finished.stderr.contains(text),
                "stderr lacks {text:?}: {}",
                context()
            );
        }
        finished
    }
}
