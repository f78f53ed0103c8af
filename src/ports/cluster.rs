//! The cluster port: what the cluster primitives (`src/primitives/cluster/`)
//! need from a Kubernetes cluster. Objects cross it as JSON shaped exactly
//! like their YAML. The real implementation is `crate::adapters::kube`;
//! tests and the lab reach it through a [`ClusterConnector`] placed in
//! the runner's settings (`clusters`).
//!
//! Every mutating method is idempotent (a step killed half-way runs it again)
//! and, on a handle opened for a dry run, is sent with `dryRun=All`.

use super::exec::PodExec;
use serde_json::Value;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type ClusterFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ClusterError>> + Send + 'a>>;

/// An API call that failed, with everything a person needs to act on it.
/// Never carries credentials: adapters redact them before building one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterError {
    /// The handle's name (the kubeconfig context).
    pub cluster: String,
    /// What ferry was doing: `get`, `apply`, `to_external_name`, `connect`...
    pub verb: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// HTTP status, when the server answered.
    pub status: Option<u16>,
    /// The server's machine-readable reason (`Forbidden`, `Conflict`...) or,
    /// without an answer, what failed (`Unreachable`, `Timeout`, `UnknownKind`...).
    pub reason: String,
    /// The server's message, or a description of the failure.
    pub message: String,
}

impl ClusterError {
    /// `app1-ns/app1`, `app1-ns`, or `app1` (cluster-scoped), or empty.
    pub fn object(&self) -> String {
        match (self.namespace.is_empty(), self.name.is_empty()) {
            (false, false) => format!("{}/{}", self.namespace, self.name),
            (false, true) => self.namespace.clone(),
            (true, false) => self.name.clone(),
            (true, true) => String::new(),
        }
    }
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cluster `{}`: {}", self.cluster, self.verb)?;
        if !self.kind.is_empty() {
            write!(f, " {}", self.kind)?;
        }
        let object = self.object();
        if !object.is_empty() {
            write!(f, " {object}")?;
        }
        f.write_str(" failed: ")?;
        if let Some(status) = self.status {
            write!(f, "{status} ")?;
        }
        if !self.reason.is_empty() {
            write!(f, "{}: ", self.reason)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClusterError {}

/// An object named for people: `Service app1-ns/app1`, `Namespace app1-ns`
/// (cluster-scoped); a `group/version/Kind` shows its kind only.
pub fn shown(kind: &str, namespace: &str, name: &str) -> String {
    let kind = kind.rsplit('/').next().unwrap_or(kind);
    if namespace.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {namespace}/{name}")
    }
}

/// A kind as API discovery resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Empty for the core group.
    pub group: String,
    pub version: String,
    /// `v1`, `apps/v1`, `traefik.io/v1alpha1`.
    pub api_version: String,
    pub kind: String,
    /// The URL segment: `services`, `ingressroutes`.
    pub plural: String,
    pub namespaced: bool,
}

/// How `patch` merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// JSON merge patch (RFC 7386).
    Merge,
    /// JSON patch (RFC 6902): a list of operations.
    Json,
    /// Kubernetes strategic merge patch (built-in kinds only).
    Strategic,
}

impl PatchType {
    pub fn parse(text: &str) -> Option<PatchType> {
        match text {
            "merge" => Some(PatchType::Merge),
            "json" => Some(PatchType::Json),
            "strategic" => Some(PatchType::Strategic),
            _ => None,
        }
    }
}

/// Selectors for `list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// `app=app1,tier!=db`
    pub labels: Option<String>,
    /// `metadata.name=app1`
    pub fields: Option<String>,
}

/// What a delete found.
#[derive(Debug, Clone, PartialEq)]
pub enum Deleted {
    /// Nothing was there: success.
    Absent,
    /// The object was deleted (or, with finalizers, is being deleted); the
    /// value is the object as it was, for waiting on its `metadata.uid`.
    Gone(Value),
}

/// A connection to one cluster. Cheap to share; one per kubeconfig context
/// and run, so every handle on the same context shares its discovery cache
/// and rate limit.
pub trait Cluster: PodExec + Send + Sync {
    /// The name the script opened it with (the kubeconfig context).
    fn name(&self) -> &str;
    /// The API server's address (no credentials).
    fn server(&self) -> &str;
    /// Whether mutations are sent with server-side dry run.
    fn dry_run(&self) -> bool;
    /// The `kube-system` namespace's UID: what makes a cluster itself.
    fn identity(&self) -> ClusterFuture<'_, String>;
    /// Resolves `Service`, `services`, `svc`, `deploy.apps` or
    /// `traefik.io/v1alpha1/IngressRoute` through API discovery.
    fn resolve<'a>(&'a self, kind: &'a str) -> ClusterFuture<'a, Resource>;
    /// The object, or `None` if it does not exist.
    fn get<'a>(
        &'a self,
        kind: &'a str,
        namespace: &'a str,
        name: &'a str,
    ) -> ClusterFuture<'a, Option<Value>>;
    /// Objects of a kind; an empty namespace lists all namespaces.
    fn list<'a>(
        &'a self,
        kind: &'a str,
        namespace: &'a str,
        options: &'a ListOptions,
    ) -> ClusterFuture<'a, Vec<Value>>;
    /// Server-side apply (field manager `ferry`, forced); the live object.
    fn apply(&self, object: Value) -> ClusterFuture<'_, Value>;
    /// Creates the object; an existing identical one is success.
    fn create(&self, object: Value) -> ClusterFuture<'_, Value>;
    /// Replaces the object at its live resourceVersion, retrying conflicts.
    fn replace(&self, object: Value) -> ClusterFuture<'_, Value>;
    fn patch<'a>(
        &'a self,
        kind: &'a str,
        namespace: &'a str,
        name: &'a str,
        patch: Value,
        patch_type: PatchType,
    ) -> ClusterFuture<'a, Value>;
    /// Deletes the object; absence is success.
    fn delete<'a>(
        &'a self,
        kind: &'a str,
        namespace: &'a str,
        name: &'a str,
    ) -> ClusterFuture<'a, Deleted>;
    /// The object stripped of what its cluster owns (uid, resourceVersion,
    /// status, allocated IPs and ports...), ready to apply elsewhere;
    /// `None` if it does not exist.
    fn export<'a>(
        &'a self,
        kind: &'a str,
        namespace: &'a str,
        name: &'a str,
    ) -> ClusterFuture<'a, Option<Value>>;
    /// Turns a Service into an ExternalName Service pointing at `host`,
    /// keeping its previous spec in an annotation (or, if it already is an
    /// ExternalName, points it at `host`). One write; none if already done.
    fn to_external_name<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        host: &'a str,
    ) -> ClusterFuture<'a, Value>;
    /// Restores the Service that `to_external_name` converted, asking for
    /// its old clusterIP again. One write (two if the old IP was taken);
    /// none if it is no ExternalName.
    fn to_cluster_ip<'a>(&'a self, namespace: &'a str, name: &'a str) -> ClusterFuture<'a, Value>;
    /// Runs a command in a pod (what [`PodExec::exec`] does, with a
    /// [`ClusterError`] when the pod cannot be reached).
    fn exec_in<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
        command: &'a [String],
    ) -> ClusterFuture<'a, super::exec::ExecOutput>;
}

/// What a connector needs from the run to open a cluster.
#[derive(Clone)]
pub struct ConnectOptions {
    /// The context to open; `None` for kubeconfig's current context (or the
    /// in-cluster configuration when there is no kubeconfig).
    pub context: Option<String>,
    /// The kubeconfig file; `None` for kubectl's rules (`KUBECONFIG`,
    /// `~/.kube/config`, in-cluster).
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Client-side rate limit for this cluster's API requests.
    pub qps: f64,
    pub burst: u32,
    /// Send every mutation with server-side dry run.
    pub dry_run: bool,
    /// Reports progress worth a line in the output (retries, fallbacks),
    /// under whatever step is running.
    pub notify: Arc<dyn Fn(String) + Send + Sync>,
}

/// Opens clusters by kubeconfig context name.
pub trait ClusterConnector: Send + Sync {
    fn connect(&self, options: ConnectOptions) -> ClusterFuture<'_, Arc<dyn Cluster>>;
}

impl fmt::Debug for dyn ClusterConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterConnector")
    }
}
