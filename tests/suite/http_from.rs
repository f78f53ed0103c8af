//! `probe::http_from`'s logic through a fake `PodExec` that runs the command
//! on this machine, with a PATH holding only the tools the "container" has,
//! against a real local HTTP server.

use crate::common::backend::Backend;
use ferry::ports::exec::{ExecFuture, ExecOutput, ExecStream, ExecStreamFuture, PodExec};
use ferry::probes::http_from::{Vantage, http_from};
use ferry::probes::spec::HttpSpec;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A "pod" whose container has exactly `tools` (plus `sh`).
pub(crate) struct LocalPod {
    bin: tempfile::TempDir,
    pub(crate) commands: Mutex<Vec<Vec<String>>>,
    /// The streamed commands' processes, to see that they end.
    pub(crate) streams: Mutex<Vec<std::process::Child>>,
}

fn which(tool: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.exists())
}

impl LocalPod {
    pub(crate) fn with(tools: &[&str]) -> LocalPod {
        let bin = tempfile::tempdir().unwrap();
        for tool in ["sh"].iter().chain(tools) {
            let path = which(tool).unwrap_or_else(|| panic!("{tool} is needed on this machine"));
            std::os::unix::fs::symlink(path, bin.path().join(tool)).unwrap();
        }
        LocalPod {
            bin,
            commands: Mutex::new(Vec::new()),
            streams: Mutex::new(Vec::new()),
        }
    }
}

impl PodExec for LocalPod {
    fn exec<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        _container: Option<&'a str>,
        command: &'a [String],
    ) -> ExecFuture<'a> {
        Box::pin(async move {
            assert_eq!((namespace, pod), ("app2-ns", "app2"));
            self.commands.lock().unwrap().push(command.to_vec());
            let program = self.bin.path().join(&command[0]);
            let out = std::process::Command::new(program)
                .args(&command[1..])
                .env_clear()
                .env("PATH", self.bin.path())
                .output()
                .map_err(|e| format!("exec {}: {e}", command[0]))?;
            Ok(ExecOutput {
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                status: out.status.code(),
            })
        })
    }

    /// The command with stdin and stdout piped, as an exec with stdin open:
    /// stopping closes its stdin.
    fn exec_stream<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        _container: Option<&'a str>,
        command: &'a [String],
    ) -> ExecStreamFuture<'a> {
        Box::pin(async move {
            assert_eq!((namespace, pod), ("app2-ns", "app2"));
            self.commands.lock().unwrap().push(command.to_vec());
            let mut child = std::process::Command::new(self.bin.path().join(&command[0]))
                .args(&command[1..])
                .env_clear()
                .env("PATH", self.bin.path())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| format!("exec {}: {e}", command[0]))?;
            let stdin = child.stdin.take();
            let stdout = child.stdout.take().expect("piped stdout");
            self.streams.lock().unwrap().push(child);
            let (tx, rx) = tokio::sync::mpsc::channel(4096);
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stdout).lines() {
                    let sent = match line {
                        Ok(line) => tx.blocking_send(Ok(line)),
                        Err(e) => tx.blocking_send(Err(e.to_string())),
                    };
                    if sent.is_err() {
                        return;
                    }
                }
            });
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(async move {
                let _ = stopped.await;
                drop(stdin);
            });
            Ok(ExecStream {
                lines: rx,
                stop: Some(stop),
            })
        })
    }
}

const AT: Vantage<'static> = Vantage {
    namespace: "app2-ns",
    pod: "app2",
    container: None,
};

fn spec(url: &str, options: serde_json::Value) -> HttpSpec {
    HttpSpec::new(url, options.as_object().unwrap()).unwrap()
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn check_tool(tool: &str) {
    let app = Backend::start("app1");
    let port = app.port;
    let pod = LocalPod::with(&[tool]);
    // The in-cluster name only "resolves" through the override, as app1.app1-ns does in a pod.
    let routed = spec(
        "http://app1.app1-ns/",
        serde_json::json!({ "resolve": format!("127.0.0.1:{port}"), "expect_body": "Hello from app1" }),
    );
    let o = block_on(http_from(&pod, AT, &routed)).unwrap();
    assert!(o.ok, "{tool}: {o:?}");
    assert_eq!(o.status, ferry::probes::Status::Http(200));
    assert!(o.body.contains("(Host: app1.app1-ns)"), "{tool}: {o:?}");
    assert_eq!(
        o.address.as_deref(),
        Some(format!("127.0.0.1:{port}").as_str())
    );

    let hosted = spec(
        &format!("http://127.0.0.1:{port}/status/404"),
        serde_json::json!({ "host": "app1.app1-ns" }),
    );
    let o = block_on(http_from(&pod, AT, &hosted)).unwrap();
    assert!(!o.ok);
    assert_eq!(o.status, ferry::probes::Status::Http(404), "{tool}: {o:?}");
    assert_eq!(o.kind, Some(ferry::probes::ErrorKind::Status));
    assert!(
        o.error
            .as_deref()
            .unwrap()
            .contains("from pod app2-ns/app2"),
        "{o:?}"
    );

    app.stop();
    let o = block_on(http_from(&pod, AT, &routed)).unwrap();
    assert!(!o.ok);
    assert_eq!(
        o.kind,
        Some(ferry::probes::ErrorKind::Refused),
        "{tool}: {o:?}"
    );
    assert!(
        o.error.as_deref().unwrap().contains("http://app1.app1-ns/"),
        "{o:?}"
    );

    let commands = pod.commands.lock().unwrap();
    assert_eq!(commands[0][0], "sh", "detects the tool first");
    assert!(commands.iter().any(|c| c[0] == tool), "{commands:?}");
}

#[test]
fn http_from_uses_curl_when_the_container_has_it() {
    check_tool("curl");
}

#[test]
fn http_from_falls_back_to_wget() {
    check_tool("wget");
}

#[test]
fn http_from_says_clearly_when_the_container_has_neither() {
    let pod = LocalPod::with(&[]);
    let err = block_on(http_from(
        &pod,
        AT,
        &spec("http://app1.app1-ns/", serde_json::json!({})),
    ))
    .unwrap_err();
    assert!(
        err.contains("pod app2-ns/app2 has neither curl nor wget"),
        "{err}"
    );
}
