//! Running a command inside a pod: the in-cluster vantage point (the article
//! curls app1 from inside app2's pod). The kube adapter implements it through
//! the `pods/exec` subresource; probes use it for `probe::http_from`.
//!
//! Two shapes: [`PodExec::exec`] runs a command to its end and returns what
//! it printed (one probe, one session); [`PodExec::exec_stream`] keeps one
//! session open and hands over stdout line by line as it comes, for a guard
//! whose probe loop runs inside the container (one exec per probe at
//! 200/s locked up containerd's shim on real clusters).

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

/// A running command's stdout, line by line. Dropping it (or [`ExecStream::stop`])
/// closes the command's stdin and the session, which is how a caller ends
/// a command that would otherwise run on.
pub struct ExecStream {
    /// Lines without their newline; an `Err` when the session broke (the
    /// stream ends after it). The channel closes when the command ends.
    pub lines: tokio::sync::mpsc::Receiver<Result<String, String>>,
    /// Dropped or fired: end the session.
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ExecStream {
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub type ExecStreamFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ExecStream, String>> + Send + 'a>>;

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

    /// Starts `command` with stdin open and streams its stdout's lines
    /// (stderr is dropped: the command is expected to fold what matters into
    /// stdout). The future resolves once the session is open; an `Err`
    /// names what could not be reached.
    fn exec_stream<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
        command: &'a [String],
    ) -> ExecStreamFuture<'a>;
}
