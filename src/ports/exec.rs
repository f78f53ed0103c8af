//! Running a command inside a pod: the in-cluster vantage point (the article
//! curls app1 from inside app2's pod). The kube adapter implements it through
//! the `pods/exec` subresource; probes use it for `probe::http_from`.

use std::future::Future;
use std::pin::Pin;

/// What a command printed and how it exited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    /// Exit status; `None` if the runtime did not report one.
    pub status: Option<i32>,
}

pub type ExecFuture<'a> = Pin<Box<dyn Future<Output = Result<ExecOutput, String>> + Send + 'a>>;

pub trait PodExec: Send + Sync {
    /// Runs `command` in `container` (the pod's first one if `None`) of
    /// `namespace/pod`. An `Err` names what could not be reached; a command
    /// that ran and failed is an `Ok` with its status.
    fn exec<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
        command: &'a [String],
    ) -> ExecFuture<'a>;
}
