//! `kubectl exec` into a lab pod: the commands migration scripts and probes
//! run from a pod's vantage point (the article's `curl -H "Host: ..."` from
//! inside app2), performed by the lab from that pod's network: its cluster's
//! DNS, the private zone, Service IPs, other clusters' load balancers.
//!
//! Supported: `curl` (-s -S -f -o -w -H -m --connect-timeout --resolve -k -X
//! -i -I -L -d), BusyBox-style `wget` (-q -O -T --header -S), `sh -c` with
//! `;`, `&&`, `||` and output redirections, `command -v`, `which`, `echo`,
//! `true`, `false`, `hostname`. Images whose name says `distroless` or
//! `scratch` have no shell, curl or wget, as in real life.
//!
//! Here: finding the pod and its image, and running one argv; `shell.rs` runs
//! `sh -c` scripts (parsed by `parser.rs`) and the small builtins; `curl.rs`
//! and `wget.rs` turn their flags into one request and their own output and
//! exit codes; `fetch.rs` sends that request the way the pod's network
//! would, so both tools fail the same way for the same cause.
//!
//! ferry's guard probe loop (`crate::probes::stream`: background workers,
//! `sleep`, arithmetic, a `read` on stdin) is more shell than this one
//! speaks: `probe_loop.rs` recognises it by its marker and runs the same
//! loop natively, with the same line per probe. The shell text itself is
//! tested with a real `sh`, curl and wget. Every session costs
//! [`LabCommands::startup`] before it runs, as a real exec's set-up does.

mod curl;
mod fetch;
mod parser;
mod probe_loop;
mod shell;
mod wget;

use super::network::SharedNetwork;
use crate::lab::apiserver::{ClusterStore, PodCommands};
use crate::ports::exec::ExecOutput;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

pub struct LabCommands {
    pub network: SharedNetwork,
    /// What opening a session costs.
    pub startup: std::time::Duration,
}

impl PodCommands for LabCommands {
    fn run(
        &self,
        cluster: &str,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        command: Vec<String>,
    ) -> Pin<Box<dyn Future<Output = ExecOutput> + Send + '_>> {
        let (cluster, namespace, pod, container) = (
            cluster.to_owned(),
            namespace.to_owned(),
            pod.to_owned(),
            container.map(str::to_owned),
        );
        Box::pin(async move {
            match self
                .open(&cluster, &namespace, &pod, container.as_deref())
                .await
            {
                Ok(target) => target.shell(&self.network).run(&command).await,
                Err(failed) => failed,
            }
        })
    }

    fn stream(
        &self,
        cluster: &str,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        plan: crate::probes::stream::Plan,
        lines: tokio::sync::mpsc::Sender<String>,
    ) -> Pin<Box<dyn Future<Output = ExecOutput> + Send + '_>> {
        let (cluster, namespace, pod, container) = (
            cluster.to_owned(),
            namespace.to_owned(),
            pod.to_owned(),
            container.map(str::to_owned),
        );
        Box::pin(async move {
            match self
                .open(&cluster, &namespace, &pod, container.as_deref())
                .await
            {
                Ok(target) => target.shell(&self.network).probe_loop(&plan, &lines).await,
                Err(failed) => failed,
            }
        })
    }
}

/// The pod an exec session runs in: its cluster, the pod, and whether its
/// container is bare (no tools).
struct Target {
    cluster: std::sync::Arc<ClusterStore>,
    pod: Value,
    bare: bool,
}

impl Target {
    fn shell<'a>(&'a self, network: &'a SharedNetwork) -> Shell<'a> {
        Shell {
            network,
            cluster: &self.cluster,
            pod: &self.pod,
            bare: self.bare,
        }
    }
}

impl LabCommands {
    /// Opens a session: pays its start-up cost, then finds the pod (or the
    /// answer kubectl would print when there is none).
    async fn open(
        &self,
        cluster: &str,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
    ) -> Result<Target, ExecOutput> {
        tokio::time::sleep(self.startup).await;
        let Some(cluster) = self.network.cluster(cluster).cloned() else {
            return Err(failure(1, "no such cluster\n"));
        };
        let pod_object =
            cluster.with_state(|s| s.objects.get(&format!("pods/{namespace}/{pod}")).cloned());
        let Some(pod_object) = pod_object else {
            return Err(failure(1, &format!("pods \"{pod}\" not found\n")));
        };
        let image = pod_object["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| container.is_none_or(|name| c["name"] == name))
            .and_then(|c| c["image"].as_str())
            .unwrap_or_default()
            .to_owned();
        let bare = image.contains("distroless") || image.contains("scratch");
        Ok(Target {
            cluster,
            pod: pod_object,
            bare,
        })
    }
}

fn failure(status: i32, stderr: &str) -> ExecOutput {
    ExecOutput {
        stdout: String::new(),
        stderr: stderr.to_owned(),
        status: Some(status),
    }
}

struct Shell<'a> {
    network: &'a SharedNetwork,
    cluster: &'a ClusterStore,
    pod: &'a Value,
    /// No tools at all (distroless / scratch images).
    bare: bool,
}

impl Shell<'_> {
    fn has(&self, tool: &str) -> bool {
        !self.bare
            && matches!(
                tool,
                "sh" | "curl"
                    | "wget"
                    | "echo"
                    | "true"
                    | "false"
                    | "hostname"
                    | "which"
                    | "command"
            )
    }

    async fn run(&self, argv: &[String]) -> ExecOutput {
        let Some(program) = argv.first() else {
            return failure(1, "no command\n");
        };
        if !self.has(program) {
            // What the container runtime reports when the binary is missing.
            return failure(
                127,
                &format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{program}\": executable file not found in $PATH\n"
                ),
            );
        }
        match program.as_str() {
            "sh" => match argv.get(1).map(String::as_str) {
                Some("-c") => {
                    self.script(argv.get(2).map(String::as_str).unwrap_or_default())
                        .await
                }
                _ => failure(2, "sh: only `sh -c SCRIPT` is supported in the lab\n"),
            },
            _ => self.simple(argv).await,
        }
    }
}
