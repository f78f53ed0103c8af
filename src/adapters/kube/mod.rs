//! The cluster port through the Kubernetes API, with the `kube` crate.
//!
//! * `config.rs`: kubeconfig/context loading (kubectl's rules) and the
//!   [`KubeConnector`] that opens a handle per context;
//! * `client.rs`: kube's client behind a rate limit and visible retries;
//! * `discovery.rs`: cached kind resolution (short names, CRDs);
//! * `objects.rs`: stripping what a cluster owns, comparing objects;
//! * `services.rs`: `to_external_name` / `to_cluster_ip`;
//! * `exec.rs`: `pods/exec` ([`crate::ports::exec::PodExec`]);
//! * `errors.rs`, `retry.rs`, `ratelimit.rs`: failures, backoff, QPS.

// A `ClusterError` is large (it names everything), but it is built once per
// failed network call: boxing it would buy nothing measurable.
#![allow(clippy::result_large_err)]

mod client;
mod config;
mod discovery;
mod errors;
mod exec;
pub mod objects;
mod ratelimit;
mod retry;
mod services;

pub use client::Notify;
pub use config::{KubeConnector, load_config};
pub use errors::describe as describe_error;
pub use retry::RetryPolicy;
pub use services::{SAVED_SPEC, cluster_ip_patch, external_name_patch};

use crate::ports::cluster::{
    Cluster, ClusterError, ClusterFuture, Deleted, ListOptions, PatchType, Resource,
};
use client::{Prepared, Transport};
use errors::{Failure, Target};
use kube::core::Request;
use kube::core::params::{
    DeleteParams, GetParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy,
};
use serde_json::Value;

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "ferry";

/// How to build a [`KubeCluster`] around a ready `kube::Client`.
pub struct KubeParams {
    /// The handle's name (kubeconfig context).
    pub name: String,
    /// The API server's address, for messages (no credentials).
    pub server: String,
    pub client: kube::Client,
    pub qps: f64,
    pub burst: u32,
    pub dry_run: bool,
    pub retry: RetryPolicy,
    pub notify: Notify,
    /// Credentials to scrub from messages.
    pub secrets: Vec<String>,
}

pub struct KubeCluster {
    t: Transport,
    discovery: discovery::Discovery,
    dry_run: bool,
    default_ns: String,
}

/// A namespace or name that could be sent in a URL path as is.
fn check_name(what: &str, value: &str, target: &Target, cluster: &str) -> Result<(), ClusterError> {
    let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '%');
    if value.chars().any(bad) || value == "." || value == ".." {
        return Err(target.error(
            cluster,
            None,
            "Invalid",
            format!("`{value}` is no valid {what}"),
        ));
    }
    Ok(())
}

impl KubeCluster {
    pub fn new(p: KubeParams) -> KubeCluster {
        crate::tls::install_provider();
        let default_ns = p.client.default_namespace().to_owned();
        KubeCluster {
            t: Transport {
                cluster: p.name,
                server: p.server,
                client: p.client,
                limiter: ratelimit::RateLimiter::new(p.qps, p.burst),
                retry: p.retry,
                notify: p.notify,
                secrets: p.secrets,
            },
            discovery: Default::default(),
            dry_run: p.dry_run,
            default_ns,
        }
    }

    fn cluster(&self) -> &str {
        &self.t.cluster
    }

    /// The namespace a request goes to: none for cluster-scoped kinds, the
    /// context's default when a namespaced kind is given none.
    fn namespace_for(&self, r: &Resource, ns: &str) -> String {
        match (r.namespaced, ns.is_empty()) {
            (false, _) => String::new(),
            (true, true) => self.default_ns.clone(),
            (true, false) => ns.to_owned(),
        }
    }

    fn request(&self, r: &Resource, ns: &str) -> Request {
        let base = if r.group.is_empty() {
            format!("/api/{}", r.version)
        } else {
            format!("/apis/{}/{}", r.group, r.version)
        };
        let path = if ns.is_empty() {
            format!("{base}/{}", r.plural)
        } else {
            format!("{base}/namespaces/{ns}/{}", r.plural)
        };
        Request::new(path)
    }

    fn built(
        &self,
        target: &Target,
        req: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    ) -> Result<Prepared, ClusterError> {
        req.map(Prepared::new)
            .map_err(|e| target.error(self.cluster(), None, "InvalidRequest", e.to_string()))
    }

    async fn resolve_kind(&self, kind: &str) -> Result<Resource, ClusterError> {
        self.discovery.resolve(&self.t, kind).await
    }

    /// Kind, namespace and name of an object map, resolved.
    async fn locate(
        &self,
        verb: &str,
        object: &Value,
    ) -> Result<(Resource, String, String), ClusterError> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = objects::meta_str(object, "name");
        let ns = objects::meta_str(object, "namespace");
        let target = Target::new(verb, kind, ns, name);
        if !object.is_object() || api_version.is_empty() || kind.is_empty() || name.is_empty() {
            return Err(target.error(
                self.cluster(),
                None,
                "Invalid",
                "an object needs `apiVersion`, `kind` and `metadata.name`".into(),
            ));
        }
        let r = self.resolve_kind(&format!("{api_version}/{kind}")).await?;
        let ns = self.namespace_for(&r, ns);
        check_name("namespace", &ns, &target, self.cluster())?;
        check_name("name", name, &target, self.cluster())?;
        Ok((r, ns, name.to_owned()))
    }

    /// Resolves `kind` and checks the namespace and name.
    async fn target(
        &self,
        verb: &str,
        kind: &str,
        ns: &str,
        name: &str,
    ) -> Result<(Resource, String, Target), ClusterError> {
        let r = self.resolve_kind(kind).await?;
        let ns = self.namespace_for(&r, ns);
        let target = Target::new(verb, &r.kind, &ns, name);
        check_name("namespace", &ns, &target, self.cluster())?;
        check_name("name", name, &target, self.cluster())?;
        Ok((r, ns, target))
    }

    async fn get_at(
        &self,
        r: &Resource,
        ns: &str,
        name: &str,
        target: &Target,
    ) -> Result<Option<Value>, ClusterError> {
        let req = self.built(target, self.request(r, ns).get(name, &GetParams::default()))?;
        match self.t.send_raw(&req).await {
            Ok(v) => Ok(Some(v)),
            Err(Failure::Status { status: 404, .. }) => Ok(None),
            Err(f) => Err(self.t.error(target, &f)),
        }
    }

    fn post_params(&self) -> PostParams {
        PostParams {
            dry_run: self.dry_run,
            field_manager: Some(FIELD_MANAGER.into()),
        }
    }

    fn patch_params(&self) -> PatchParams {
        PatchParams {
            dry_run: self.dry_run,
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        }
    }

    /// A patch request of any type (kube builds merge and strategic ones; a
    /// JSON patch is the same request with its own content type).
    fn patch_request(
        &self,
        r: &Resource,
        ns: &str,
        name: &str,
        patch: &Value,
        patch_type: PatchType,
        target: &Target,
    ) -> Result<Prepared, ClusterError> {
        let pp = self.patch_params();
        let req = self.request(r, ns);
        Ok(match patch_type {
            PatchType::Merge => self.built(target, req.patch(name, &pp, &Patch::Merge(patch)))?,
            PatchType::Strategic => {
                self.built(target, req.patch(name, &pp, &Patch::Strategic(patch)))?
            }
            PatchType::Json => self
                .built(target, req.patch(name, &pp, &Patch::Merge(patch)))?
                .with_content_type("application/json-patch+json"),
        })
    }

    async fn apply_object(&self, object: Value) -> Result<Value, ClusterError> {
        let (r, ns, name) = self.locate("apply", &object).await?;
        let target = Target::new("apply", &r.kind, &ns, &name);
        let mut body = object;
        objects::strip_server_metadata(&mut body);
        if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut)
            && r.namespaced
        {
            meta.insert("namespace".into(), Value::String(ns.clone()));
        }
        let mut pp = PatchParams::apply(FIELD_MANAGER).force();
        pp.dry_run = self.dry_run;
        let req = self.built(
            &target,
            self.request(&r, &ns)
                .patch(&name, &pp, &Patch::Apply(&body)),
        )?;
        self.t.send(&target, &req).await
    }

    async fn create_object(&self, object: Value) -> Result<Value, ClusterError> {
        let (r, ns, name) = self.locate("create", &object).await?;
        let target = Target::new("create", &r.kind, &ns, &name);
        let mut body = object.clone();
        objects::strip_server_metadata(&mut body);
        if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut)
            && r.namespaced
        {
            meta.insert("namespace".into(), Value::String(ns.clone()));
        }
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let req = self.built(
            &target,
            self.request(&r, &ns).create(&self.post_params(), bytes),
        )?;
        match self.t.send_raw(&req).await {
            Ok(v) => Ok(v),
            Err(f @ Failure::Status { status: 409, .. }) => {
                // Idempotent: an identical object already there is success.
                let Some(live) = self.get_at(&r, &ns, &name, &target).await? else {
                    return Err(self.t.error(&target, &f));
                };
                match objects::first_difference(&body, &live) {
                    None => Ok(live),
                    Some(diff) => Err(target.error(
                        self.cluster(),
                        Some(409),
                        "AlreadyExists",
                        format!("it already exists and differs: {diff}; use apply or replace to change it"),
                    )),
                }
            }
            Err(f) => Err(self.t.error(&target, &f)),
        }
    }

    async fn replace_object(&self, object: Value) -> Result<Value, ClusterError> {
        const ATTEMPTS: u32 = 5;
        let (r, ns, name) = self.locate("replace", &object).await?;
        let target = Target::new("replace", &r.kind, &ns, &name);
        let mut attempt = 1;
        loop {
            let Some(live) = self.get_at(&r, &ns, &name, &target).await? else {
                return Err(target.error(
                    self.cluster(),
                    Some(404),
                    "NotFound",
                    "there is nothing to replace; use apply or create".into(),
                ));
            };
            let mut body = object.clone();
            objects::strip_server_metadata(&mut body);
            if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                if r.namespaced {
                    meta.insert("namespace".into(), Value::String(ns.clone()));
                }
                meta.insert(
                    "resourceVersion".into(),
                    Value::String(objects::meta_str(&live, "resourceVersion").to_owned()),
                );
            }
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            let req = self.built(
                &target,
                self.request(&r, &ns)
                    .replace(&name, &self.post_params(), bytes),
            )?;
            match self.t.send_raw(&req).await {
                Ok(v) => return Ok(v),
                Err(f @ Failure::Status { status: 409, .. }) if attempt < ATTEMPTS => {
                    (self.t.notify)(format!(
                        "↻ replace {} {ns}/{name} on cluster `{}`: {}; reading it again (attempt {}/{ATTEMPTS})",
                        r.kind,
                        self.cluster(),
                        f.short(),
                        attempt + 1
                    ));
                    attempt += 1;
                }
                Err(f) => return Err(self.t.error(&target, &f)),
            }
        }
    }
}

impl crate::ports::exec::PodExec for KubeCluster {
    fn exec<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
        command: &'a [String],
    ) -> crate::ports::exec::ExecFuture<'a> {
        Box::pin(async move {
            exec::run(self, namespace, pod, container, command)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn exec_stream<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
        command: &'a [String],
    ) -> crate::ports::exec::ExecStreamFuture<'a> {
        Box::pin(async move {
            exec::stream(self, namespace, pod, container, command)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

impl Cluster for KubeCluster {
    fn name(&self) -> &str {
        &self.t.cluster
    }

    fn server(&self) -> &str {
        &self.t.server
    }

    fn dry_run(&self) -> bool {
        self.dry_run
    }

    fn identity(&self) -> ClusterFuture<'_, String> {
        Box::pin(async move {
            let target = Target::new("read identity of", "Namespace", "", "kube-system");
            let req = self.built(
                &target,
                Request::new("/api/v1/namespaces").get("kube-system", &GetParams::default()),
            )?;
            // Opening a cluster fails fast: an unreachable context is one
            // attempt, with the server's address in the message.
            let ns = self
                .t
                .send_with(&req, &RetryPolicy::once())
                .await
                .map_err(|f| self.t.error(&target, &f))?;
            let uid = objects::meta_str(&ns, "uid");
            if uid.is_empty() {
                return Err(target.error(
                    self.cluster(),
                    None,
                    "NoIdentity",
                    "namespace kube-system has no metadata.uid".into(),
                ));
            }
            Ok(uid.to_owned())
        })
    }

    fn resolve<'a>(&'a self, kind: &'a str) -> ClusterFuture<'a, Resource> {
        Box::pin(self.resolve_kind(kind))
    }

    fn get<'a>(
        &'a self,
        kind: &'a str,
        ns: &'a str,
        name: &'a str,
    ) -> ClusterFuture<'a, Option<Value>> {
        Box::pin(async move {
            let (r, ns, target) = self.target("get", kind, ns, name).await?;
            self.get_at(&r, &ns, name, &target).await
        })
    }

    fn list<'a>(
        &'a self,
        kind: &'a str,
        ns: &'a str,
        options: &'a ListOptions,
    ) -> ClusterFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let r = self.resolve_kind(kind).await?;
            // An empty namespace lists every namespace.
            let ns = if r.namespaced {
                ns.to_owned()
            } else {
                String::new()
            };
            let target = Target::new("list", &r.kind, &ns, "");
            check_name("namespace", &ns, &target, self.cluster())?;
            let mut items = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let lp = ListParams {
                    label_selector: options.labels.clone(),
                    field_selector: options.fields.clone(),
                    limit: Some(500),
                    continue_token: token.clone(),
                    ..Default::default()
                };
                let req = self.built(&target, self.request(&r, &ns).list(&lp))?;
                let page = self.t.send(&target, &req).await?;
                for mut item in page
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    if let Some(obj) = item.as_object_mut() {
                        obj.entry("apiVersion")
                            .or_insert_with(|| Value::String(r.api_version.clone()));
                        obj.entry("kind")
                            .or_insert_with(|| Value::String(r.kind.clone()));
                    }
                    items.push(item);
                }
                token = page
                    .pointer("/metadata/continue")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned);
                if token.is_none() {
                    return Ok(items);
                }
            }
        })
    }

    fn apply(&self, object: Value) -> ClusterFuture<'_, Value> {
        Box::pin(self.apply_object(object))
    }

    fn create(&self, object: Value) -> ClusterFuture<'_, Value> {
        Box::pin(self.create_object(object))
    }

    fn replace(&self, object: Value) -> ClusterFuture<'_, Value> {
        Box::pin(self.replace_object(object))
    }

    fn patch<'a>(
        &'a self,
        kind: &'a str,
        ns: &'a str,
        name: &'a str,
        patch: Value,
        patch_type: PatchType,
    ) -> ClusterFuture<'a, Value> {
        Box::pin(async move {
            let (r, ns, target) = self.target("patch", kind, ns, name).await?;
            let req = self.patch_request(&r, &ns, name, &patch, patch_type, &target)?;
            self.t.send(&target, &req).await
        })
    }

    fn delete<'a>(
        &'a self,
        kind: &'a str,
        ns: &'a str,
        name: &'a str,
    ) -> ClusterFuture<'a, Deleted> {
        Box::pin(async move {
            let (r, ns, target) = self.target("delete", kind, ns, name).await?;
            let dp = DeleteParams {
                dry_run: self.dry_run,
                propagation_policy: Some(PropagationPolicy::Background),
                ..Default::default()
            };
            let req = self.built(&target, self.request(&r, &ns).delete(name, &dp))?;
            match self.t.send_raw(&req).await {
                Ok(v) => Ok(Deleted::Gone(v)),
                Err(Failure::Status { status: 404, .. }) => Ok(Deleted::Absent),
                Err(f) => Err(self.t.error(&target, &f)),
            }
        })
    }

    fn export<'a>(
        &'a self,
        kind: &'a str,
        ns: &'a str,
        name: &'a str,
    ) -> ClusterFuture<'a, Option<Value>> {
        Box::pin(async move {
            let (r, ns, target) = self.target("read", kind, ns, name).await?;
            Ok(self
                .get_at(&r, &ns, name, &target)
                .await?
                .map(objects::portable))
        })
    }

    fn to_external_name<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
        host: &'a str,
    ) -> ClusterFuture<'a, Value> {
        Box::pin(services::to_external_name(self, ns, name, host))
    }

    fn to_cluster_ip<'a>(&'a self, ns: &'a str, name: &'a str) -> ClusterFuture<'a, Value> {
        Box::pin(services::to_cluster_ip(self, ns, name))
    }

    fn exec_in<'a>(
        &'a self,
        ns: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
        command: &'a [String],
    ) -> ClusterFuture<'a, crate::ports::exec::ExecOutput> {
        Box::pin(exec::run(self, ns, pod, container, command))
    }
}
