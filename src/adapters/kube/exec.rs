//! `exec(ns, pod, container, [cmd...])` through the `pods/exec` subresource
//! (a WebSocket, through kube): the in-cluster vantage point, as the article
//! curls app1 from inside app2's pod.

use super::errors::{Failure, Target};
use super::{KubeCluster, check_name};
use crate::ports::cluster::ClusterError;
use crate::ports::exec::ExecOutput;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncReadExt;

/// Output beyond this is cut (a probe's answer, not a log dump).
const MAX_OUTPUT: u64 = 4 << 20;

async fn read_all<R: tokio::io::AsyncRead + Unpin>(reader: Option<R>) -> String {
    let Some(reader) = reader else {
        return String::new();
    };
    let mut buf = Vec::new();
    let _ = reader.take(MAX_OUTPUT).read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf).into_owned()
}

/// The exit code a `pods/exec` Status reports: 0 on `Success`, the
/// `ExitCode` cause on `NonZeroExitCode`.
pub fn exit_code(status: &Status) -> Option<i32> {
    if status.status.as_deref() == Some("Success") {
        return Some(0);
    }
    status
        .details
        .as_ref()?
        .causes
        .as_ref()?
        .iter()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .and_then(|c| c.message.as_deref()?.parse().ok())
}

/// Opens `pods/exec` (one API request, through the cluster's rate limit),
/// with stdin when `stdin`; names are checked first.
async fn open(
    c: &KubeCluster,
    ns: &str,
    pod: &str,
    container: Option<&str>,
    command: &[String],
    stdin: bool,
) -> Result<kube::api::AttachedProcess, ClusterError> {
    let ns = if ns.is_empty() {
        c.default_ns.clone()
    } else {
        ns.to_owned()
    };
    let target = Target::new("exec in", "Pod", &ns, pod);
    check_name("namespace", &ns, &target, c.cluster())?;
    check_name("pod name", pod, &target, c.cluster())?;
    if command.is_empty() {
        return Err(target.error(c.cluster(), None, "Invalid", "exec needs a command".into()));
    }
    c.t.limiter.acquire().await;
    let api: Api<Pod> = Api::namespaced(c.t.client.clone(), &ns);
    let mut params = AttachParams::default()
        .stdin(stdin)
        .stdout(true)
        .stderr(true);
    if let Some(container) = container.filter(|c| !c.is_empty()) {
        params = params.container(container);
    }
    api.exec(pod, command.to_vec(), &params)
        .await
        .map_err(|e| c.t.error(&target, &Failure::from_kube(&e)))
}

pub async fn run(
    c: &KubeCluster,
    ns: &str,
    pod: &str,
    container: Option<&str>,
    command: &[String],
) -> Result<ExecOutput, ClusterError> {
    let mut process = open(c, ns, pod, container, command, false).await?;
    let status = process.take_status();
    let (stdout, stderr) = tokio::join!(read_all(process.stdout()), read_all(process.stderr()));
    let status = match status {
        Some(status) => status.await,
        None => None,
    };
    let _ = process.join().await;
    Ok(ExecOutput {
        stdout,
        stderr,
        status: status.as_ref().and_then(exit_code),
    })
}

/// How long a stopped stream's session may take to close on its own (stdin
/// shut, the command's stdin watcher ends it) before it is cut.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// `pods/exec` with stdin open, stdout read line by line as it comes (a
/// guard's probe loop). Stopping shuts stdin (the loop ends itself on EOF),
/// then drops the session; stderr is read and discarded so it never fills.
pub async fn stream(
    c: &KubeCluster,
    ns: &str,
    pod: &str,
    container: Option<&str>,
    command: &[String],
) -> Result<crate::ports::exec::ExecStream, ClusterError> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut process = open(c, ns, pod, container, command, true).await?;
    let (lines_tx, lines_rx) = tokio::sync::mpsc::channel(4096);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stdout = process.stdout();
    let stderr = process.stderr();
    let mut stdin = process.stdin();
    let status = process.take_status();
    tokio::spawn(async move {
        if let Some(mut stderr) = stderr {
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
            });
        }
        let read = async {
            let Some(stdout) = stdout else {
                return;
            };
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        if lines_tx.send(Ok(line)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = lines_tx
                            .send(Err(format!("the exec stream broke: {e}")))
                            .await;
                        return;
                    }
                }
            }
        };
        tokio::select! {
            _ = read => {
                // The command ended: report a failure status as the stream's last word.
                if let Some(status) = status
                    && let Some(status) = status.await
                    && exit_code(&status) != Some(0)
                {
                    let why = status.message.unwrap_or_else(|| "the command failed".into());
                    let _ = lines_tx.send(Err(format!("the exec ended: {why}"))).await;
                }
            }
            _ = stop_rx => {
                if let Some(stdin) = stdin.as_mut() {
                    let _ = stdin.shutdown().await;
                }
                drop(stdin);
                let _ = tokio::time::timeout(STOP_GRACE, process.join()).await;
                return;
            }
        }
        drop(stdin);
        let _ = tokio::time::timeout(STOP_GRACE, process.join()).await;
    });
    Ok(crate::ports::exec::ExecStream {
        lines: lines_rx,
        stop: Some(stop_tx),
    })
}
