//! The store's connection: a kube client on a runtime of the store's own,
//! reached from sync code, and failures turned into journal errors that name
//! the context, the object and what the server said.
//!
//! `Store` is a sync trait, called from plain threads and from threads that
//! are inside the runner's tokio runtime (where `block_on` panics). Every
//! call therefore runs its future on the store's runtime: directly from a
//! plain thread, and from a scoped helper thread when the caller is inside a
//! runtime. The kube client is built inside the store's runtime, so its
//! connection pool and request buffer live there, whoever calls.

use crate::error::{Error, JournalError};
use std::future::Future;
use std::path::Path;
use std::time::Duration;

pub(super) struct Conn {
    /// `Some` until dropped: shut down in the background, since the last
    /// owner may be dropped inside an async context, where dropping a
    /// runtime panics.
    rt: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pub client: kube::Client,
    /// The kubeconfig context (or `in-cluster`), for messages.
    pub context: String,
    /// `https://host:port` of the API server, never with credentials.
    pub server: String,
    pub namespace: String,
    /// Credentials that must never reach a message.
    secrets: Vec<String>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    // One worker: the journal's requests are few and sequential, and the
    // lease renewal is one timer.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("ferry-journal")
        .enable_all()
        .build()
}

/// Runs `fut` on the runtime of `handle` and waits for it, from any thread.
fn run_on<F>(handle: &tokio::runtime::Handle, fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return handle.block_on(fut);
    }
    // Inside a runtime this thread may not block on another future: a
    // helper thread does, borrowing everything for the call's length.
    std::thread::scope(|scope| match scope.spawn(|| handle.block_on(fut)).join() {
        Ok(out) => out,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// `scheme://host:port` of the API server, never any user info.
fn server_address(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{host}{port}", uri.scheme_str().unwrap_or("https"))
}

/// The state string of errors raised before the context is known.
pub(super) fn location(context: &str, namespace: &str) -> String {
    format!("kubernetes://{context}/{namespace}")
}

impl Conn {
    /// Loads the context by kubectl's rules (see `adapters::kube`) and
    /// builds the client on a new runtime.
    pub fn open(
        context: Option<&str>,
        namespace: &str,
        kubeconfig: Option<&Path>,
    ) -> Result<Conn, Error> {
        crate::tls::install_provider();
        let shown = context.unwrap_or("");
        let rt = runtime().map_err(|source| Error::Journal {
            state: location(shown, namespace),
            source: JournalError::Io {
                action: "start the kubernetes client",
                source,
            },
        })?;
        let built = run_on(rt.handle(), async {
            let (mut config, name) = crate::adapters::kube::load_config(kubeconfig, context)
                .await
                .map_err(|e| (e.cluster.clone(), e.message))?;
            // A journal write either lands or fails: no hidden retries of a
            // create whose answer was lost (the retry would read as someone
            // else's record). An unreachable server fails fast.
            config.default_retry = false;
            config.connect_timeout = Some(Duration::from_secs(5));
            config.read_timeout = Some(Duration::from_secs(30));
            config.write_timeout = Some(Duration::from_secs(30));
            let server = server_address(&config.cluster_url);
            let secrets = secrets_of(&config);
            let client = kube::Client::try_from(config).map_err(|e| {
                (
                    name.clone(),
                    redact(
                        &format!("cannot build a client for {server}: {e}"),
                        &secrets,
                    ),
                )
            })?;
            Ok::<_, (String, String)>((client, name, server, secrets))
        });
        let (client, name, server, secrets) = built.map_err(|(ctx, message)| Error::Journal {
            state: location(if ctx.is_empty() { shown } else { &ctx }, namespace),
            source: JournalError::Unreachable { message },
        })?;
        let handle = rt.handle().clone();
        Ok(Conn {
            rt: Some(rt),
            handle,
            client,
            context: name,
            server,
            namespace: namespace.to_owned(),
            secrets,
        })
    }

    pub fn location(&self) -> String {
        location(&self.context, &self.namespace)
    }

    /// Runs `fut` to completion on the store's runtime, from any thread.
    pub fn block<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        run_on(&self.handle, fut)
    }

    /// Spawns a background task on the store's runtime (the lease renewal).
    pub fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(fut)
    }

    pub fn journal(&self, source: JournalError) -> Error {
        Error::Journal {
            state: self.location(),
            source,
        }
    }

    /// A failed request about `resource` (`configmaps`, `leases`) `name`
    /// while doing `verb`, as a journal error.
    pub fn fail(&self, verb: &str, resource: &str, name: Option<&str>, err: &kube::Error) -> Error {
        let ns = &self.namespace;
        let object = match name {
            Some(name) => format!("{} {ns}/{name}", singular(resource)),
            None => format!("{resource} in namespace {ns}"),
        };
        let source = match err {
            kube::Error::Api(status) => {
                let message = redact(&status.message, &self.secrets);
                match (status.code, status.reason.as_str()) {
                    (401, _) => JournalError::Unreachable {
                        message: format!(
                            "the API server of context `{}` at {} refused the credentials \
                             ({message}); check the kubeconfig's user",
                            self.context, self.server
                        ),
                    },
                    (403, _) => JournalError::Database {
                        code: Some("Forbidden".into()),
                        message: format!(
                            "cannot {verb} {resource} in namespace {ns}: forbidden ({message}); \
                             grant it with: ferry state rbac --namespace {ns}"
                        ),
                    },
                    (404, _) if namespace_missing(status) => JournalError::Database {
                        code: Some("NotFound".into()),
                        message: missing_namespace(&self.context, ns),
                    },
                    (409, "Conflict") => JournalError::Conflict {
                        message: format!(
                            "{object} was changed by another writer since this ferry read it; \
                             nothing was overwritten ({message})"
                        ),
                    },
                    (413 | 422, _) => JournalError::Write {
                        message: format!(
                            "the API server refused to {verb} {object}: {message} ({} {})",
                            status.code, status.reason
                        ),
                    },
                    (code, reason) => JournalError::Database {
                        code: Some(reason.to_owned()),
                        message: format!("cannot {verb} {object}: {message} ({code} {reason})"),
                    },
                }
            }
            other => JournalError::Unreachable {
                message: format!(
                    "cannot reach the API server of context `{}` at {}: {}",
                    self.context,
                    self.server,
                    redact(&crate::adapters::kube::describe_error(other), &self.secrets)
                ),
            },
        };
        self.journal(source)
    }
}

/// `configmaps` -> `configmap`, for naming one object.
fn singular(resource: &str) -> &str {
    resource.strip_suffix('s').unwrap_or(resource)
}

/// Whether a 404 is about the namespace rather than the object.
fn namespace_missing(status: &kube::core::Status) -> bool {
    status
        .details
        .as_ref()
        .is_some_and(|d| d.kind == "namespaces")
}

pub(super) fn missing_namespace(context: &str, namespace: &str) -> String {
    format!(
        "namespace `{namespace}` does not exist in the cluster of context `{context}`; \
         create it (kubectl create namespace {namespace}) or name another in \
         kubernetes://CONTEXT/NAMESPACE"
    )
}

/// Credentials in a configuration, to scrub from messages.
fn secrets_of(config: &kube::Config) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Ok(auth) = serde_json::to_value(&config.auth_info) {
        for key in ["token", "password"] {
            if let Some(s) = auth.get(key).and_then(|v| v.as_str()) {
                secrets.push(s.to_owned());
            }
        }
    }
    secrets
}

fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret.as_str(), "[redacted]");
    }
    out
}

/// Whether a failure is the server's answer `code` (with `reason`, if given).
pub(super) fn is_status(err: &kube::Error, code: u16, reason: Option<&str>) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == code && reason.is_none_or(|r| s.reason == r))
}
