//! The cluster overlay: a [`Cluster`] that validates every write with the
//! real server and keeps the result, so later reads in the same plan see
//! the planned object, and records what each write would do.
//!
//! The first write of an object goes to the server as is, with server-side
//! dry run (the handle underneath was opened with `dry_run`): the server
//! computes the result from the live object, defaulting, validation and
//! admission included. A later write of an object the plan has already
//! changed cannot be sent that way (the server would start again from the
//! live object), so the overlay computes it from the planned object and
//! has the server validate the outcome, as a dry-run replace (the object
//! exists) or create (it exists only in the plan). Strategic merge patches
//! of planned objects are computed as merge patches: close for maps, not
//! for lists with merge keys.

// `ClusterError` is the cluster port's error, large by design (it names
// the cluster, object and server message); boxing it here alone would not help.
#![allow(clippy::result_large_err)]

use super::{Action, Entry, Plan};
use crate::adapters::kube::objects::{portable, strip_server_metadata};
use crate::ports::cluster::{
    Cluster, ClusterConnector, ClusterError, ClusterFuture, ConnectOptions, Deleted, ListOptions,
    PatchType, Resource,
};
use crate::ports::exec::{ExecFuture, ExecOutput, ExecStreamFuture, PodExec};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Opens clusters through `inner`, each wrapped in an overlay recording
/// into `plan`.
pub struct OverlayConnector {
    pub inner: Arc<dyn ClusterConnector>,
    pub plan: Arc<Plan>,
}

impl ClusterConnector for OverlayConnector {
    fn connect(&self, mut options: ConnectOptions) -> ClusterFuture<'_, Arc<dyn Cluster>> {
        // Whatever the caller asked, nothing underneath the overlay writes.
        options.dry_run = true;
        Box::pin(async move {
            let inner = self.inner.connect(options).await?;
            Ok(Arc::new(Overlay {
                inner,
                plan: self.plan.clone(),
                objects: Mutex::new(BTreeMap::new()),
            }) as Arc<dyn Cluster>)
        })
    }
}

/// group, plural, namespace, name.
type Key = (String, String, String, String);

/// An object the plan has written.
#[derive(Clone)]
struct Planned {
    /// The object after the plan's writes; `None`: planned deleted.
    object: Option<Value>,
    /// Whether the object exists in the cluster itself.
    live: bool,
}

struct Overlay {
    inner: Arc<dyn Cluster>,
    plan: Arc<Plan>,
    objects: Mutex<BTreeMap<Key, Planned>>,
}

fn meta<'a>(object: &'a Value, key: &str) -> &'a str {
    object
        .pointer(&format!("/metadata/{key}"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A whole object's `apiVersion/kind`, namespace and name.
fn located(object: &Value) -> (String, String, String) {
    let field = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or_default();
    (
        format!("{}/{}", field("apiVersion"), field("kind")),
        meta(object, "namespace").to_owned(),
        meta(object, "name").to_owned(),
    )
}

/// RFC 7386 merge of `patch` into `target` (null removes).
fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

impl Overlay {
    fn planned(&self, key: &Key) -> Option<Planned> {
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn keep(&self, key: Key, planned: Planned) {
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, planned);
    }

    async fn key(&self, kind: &str, ns: &str, name: &str) -> Result<(Resource, Key), ClusterError> {
        let r = self.inner.resolve(kind).await?;
        let ns = if r.namespaced { ns } else { "" };
        let key = (
            r.group.clone(),
            r.plural.clone(),
            ns.to_owned(),
            name.to_owned(),
        );
        Ok((r, key))
    }

    /// Records a write of `r`'s object from `before` to `after`.
    fn record(
        &self,
        r: &Resource,
        ns: &str,
        name: &str,
        before: Option<&Value>,
        after: Option<&Value>,
    ) {
        let (action, diff) = match (before, after) {
            (None, None) => return,
            (None, Some(after)) => (Action::Create, super::report::diff(&json!({}), after)),
            (Some(before), Some(after)) => {
                let diff = super::report::diff(before, after);
                if diff.is_empty() {
                    return;
                }
                (Action::Change, diff)
            }
            (Some(_), None) => (Action::Delete, Vec::new()),
        };
        self.plan.note(Entry::Object {
            action,
            cluster: self.inner.name().to_owned(),
            object: crate::ports::cluster::shown(&r.kind, if r.namespaced { ns } else { "" }, name),
            diff,
        });
    }

    /// A write of an object the plan has already written: `computed` is
    /// what it would be; the server validates it.
    async fn validate(
        &self,
        planned: &Planned,
        mut computed: Value,
    ) -> Result<Value, ClusterError> {
        if planned.live {
            self.inner.replace(computed).await
        } else {
            strip_server_metadata(&mut computed);
            self.inner.create(computed).await
        }
    }

    /// The plan's view of an object before a write: the planned one, or
    /// the live one.
    async fn before(
        &self,
        kind: &str,
        key: &Key,
        ns: &str,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        match self.planned(key) {
            Some(planned) => Ok(planned.object),
            None => self.inner.get(kind, ns, name).await,
        }
    }

    /// One write: `first` sends it to the server (nothing planned for the
    /// object yet); `again` computes it from the planned object.
    async fn write(
        &self,
        kind: &str,
        ns: &str,
        name: &str,
        first: impl AsyncOnce,
        again: impl FnOnce(Option<Value>) -> Result<Option<Value>, ClusterError>,
    ) -> Result<Value, ClusterError> {
        let (r, key) = self.key(kind, ns, name).await?;
        match self.planned(&key) {
            None => {
                let before = self.inner.get(kind, ns, name).await?;
                let after = first.call(&*self.inner).await?;
                let ns = if r.namespaced {
                    meta(&after, "namespace").to_owned()
                } else {
                    String::new()
                };
                let key = (key.0, key.1, ns.clone(), key.3);
                self.record(&r, &ns, name, before.as_ref(), Some(&after));
                self.keep(
                    key,
                    Planned {
                        object: Some(after.clone()),
                        live: before.is_some(),
                    },
                );
                Ok(after)
            }
            Some(planned) => {
                let before = planned.object.clone();
                let Some(computed) = again(planned.object.clone())? else {
                    // Nothing to write: the planned object already says it.
                    return Ok(before.unwrap_or(Value::Null));
                };
                let after = self.validate(&planned, computed).await?;
                self.record(&r, ns, name, before.as_ref(), Some(&after));
                self.keep(
                    key,
                    Planned {
                        object: Some(after.clone()),
                        live: planned.live,
                    },
                );
                Ok(after)
            }
        }
    }
}

/// A first write, sent to the server underneath.
trait AsyncOnce {
    fn call(self, inner: &dyn Cluster) -> ClusterFuture<'_, Value>;
}

struct Apply(Value);
struct Create(Value);
struct Replace(Value);
struct PatchIt(String, String, String, Value, PatchType);
struct ToExternalName(String, String, String);
struct ToClusterIp(String, String);

impl AsyncOnce for Apply {
    fn call(self, inner: &dyn Cluster) -> ClusterFuture<'_, Value> {
        inner.apply(self.0)
    }
}
impl AsyncOnce for Create {
    fn call(self, inner: &dyn Cluster) -> ClusterFuture<'_, Value> {
        inner.create(self.0)
    }
}
impl AsyncOnce for Replace {
    fn call(self, inner: &dyn Cluster) -> ClusterFuture<'_, Value> {
        inner.replace(self.0)
    }
}
impl AsyncOnce for PatchIt {
    fn call(self, inner: &dyn Cluster) -> ClusterFuture<'_, Value> {
        Box::pin(async move { inner.patch(&self.0, &self.1, &self.2, self.3, self.4).await })
    }
}
impl AsyncOnce for ToExternalName {
    fn call(self, inner: &dyn Cluster) -> ClusterFuture<'_, Value> {
        Box::pin(async move { inner.to_external_name(&self.0, &self.1, &self.2).await })
    }
}
impl AsyncOnce for ToClusterIp {
    fn call(self, inner: &dyn Cluster) -> ClusterFuture<'_, Value> {
        Box::pin(async move { inner.to_cluster_ip(&self.0, &self.1).await })
    }
}

fn not_found(cluster: &str, verb: &str, kind: &str, ns: &str, name: &str) -> ClusterError {
    ClusterError {
        cluster: cluster.to_owned(),
        verb: verb.to_owned(),
        kind: kind.to_owned(),
        namespace: ns.to_owned(),
        name: name.to_owned(),
        status: Some(404),
        reason: "NotFound".into(),
        message: "the plan deletes it before this point".into(),
    }
}

/// Whether `object` matches a label selector of `k=v`, `k==v`, `k!=v`,
/// `k` and `!k` terms (set-based terms are not planned objects' concern:
/// they match nothing here, so a planned object may be missing from such
/// a list).
fn labels_match(object: &Value, selector: &str) -> bool {
    let labels = object.pointer("/metadata/labels");
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                label(k.trim()) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                label(k.trim()) == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                label(k.trim()).is_none()
            } else if term.contains(' ') || term.contains('(') {
                false
            } else {
                label(term).is_some()
            }
        })
}

fn fields_match(object: &Value, selector: &str) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            let (path, want, equal) = match term.split_once("!=") {
                Some((p, v)) => (p, v, false),
                None => match term.split_once("==").or_else(|| term.split_once('=')) {
                    Some((p, v)) => (p, v, true),
                    None => return false,
                },
            };
            let pointer = format!("/{}", path.trim().replace('.', "/"));
            let have = object
                .pointer(&pointer)
                .and_then(Value::as_str)
                .unwrap_or_default();
            (have == want.trim()) == equal
        })
}

impl PodExec for Overlay {
    fn exec<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
        command: &'a [String],
    ) -> ExecFuture<'a> {
        self.inner.exec(namespace, pod, container, command)
    }

    fn exec_stream<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
        command: &'a [String],
    ) -> ExecStreamFuture<'a> {
        self.inner.exec_stream(namespace, pod, container, command)
    }
}

impl Cluster for Overlay {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn server(&self) -> &str {
        self.inner.server()
    }

    fn dry_run(&self) -> bool {
        true
    }

    fn identity(&self) -> ClusterFuture<'_, String> {
        self.inner.identity()
    }

    fn resolve<'a>(&'a self, kind: &'a str) -> ClusterFuture<'a, Resource> {
        self.inner.resolve(kind)
    }

    fn get<'a>(
        &'a self,
        kind: &'a str,
        ns: &'a str,
        name: &'a str,
    ) -> ClusterFuture<'a, Option<Value>> {
        Box::pin(async move {
            let (_, key) = self.key(kind, ns, name).await?;
            self.before(kind, &key, ns, name).await
        })
    }

    fn list<'a>(
        &'a self,
        kind: &'a str,
        namespace: &'a str,
        options: &'a ListOptions,
    ) -> ClusterFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let r = self.inner.resolve(kind).await?;
            let live = self.inner.list(kind, namespace, options).await?;
            let planned: Vec<(Key, Planned)> = self
                .objects
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .filter(|(k, _)| k.0 == r.group && k.1 == r.plural)
                .filter(|(k, _)| namespace.is_empty() || !r.namespaced || k.2 == namespace)
                .map(|(k, p)| (k.clone(), p.clone()))
                .collect();
            let matches = |o: &Value| {
                options.labels.as_deref().is_none_or(|s| labels_match(o, s))
                    && options.fields.as_deref().is_none_or(|s| fields_match(o, s))
            };
            let mut out: Vec<Value> = live
                .into_iter()
                .filter(|o| {
                    let ns = if r.namespaced {
                        meta(o, "namespace")
                    } else {
                        ""
                    };
                    !planned
                        .iter()
                        .any(|(k, _)| k.2 == ns && k.3 == meta(o, "name"))
                })
                .collect();
            out.extend(
                planned
                    .into_iter()
                    .filter_map(|(_, p)| p.object)
                    .filter(|o| matches(o)),
            );
            Ok(out)
        })
    }

    fn apply(&self, object: Value) -> ClusterFuture<'_, Value> {
        Box::pin(async move {
            let (kind, ns, name) = located(&object);
            let desired = object.clone();
            self.write(&kind, &ns, &name, Apply(object), move |planned| {
                let mut computed = planned.unwrap_or_else(|| json!({}));
                let mut body = desired;
                strip_server_metadata(&mut body);
                merge(&mut computed, &body);
                Ok(Some(computed))
            })
            .await
        })
    }

    fn create(&self, object: Value) -> ClusterFuture<'_, Value> {
        Box::pin(async move {
            let (kind, ns, name) = located(&object);
            let desired = object.clone();
            self.write(
                &kind,
                &ns,
                &name,
                Create(object),
                move |planned| match planned {
                    // An existing one is success, as on the server.
                    Some(_) => Ok(None),
                    None => Ok(Some(desired)),
                },
            )
            .await
        })
    }

    fn replace(&self, object: Value) -> ClusterFuture<'_, Value> {
        Box::pin(async move {
            let (kind, ns, name) = located(&object);
            let desired = object.clone();
            let cluster = self.inner.name().to_owned();
            let (k, n, m) = (kind.clone(), ns.clone(), name.clone());
            self.write(
                &kind,
                &ns,
                &name,
                Replace(object),
                move |planned| match planned {
                    Some(_) => Ok(Some(desired)),
                    None => Err(not_found(&cluster, "replace", &k, &n, &m)),
                },
            )
            .await
        })
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
            let cluster = self.inner.name().to_owned();
            let first = PatchIt(
                kind.into(),
                ns.into(),
                name.into(),
                patch.clone(),
                patch_type,
            );
            self.write(kind, ns, name, first, move |planned| {
                let Some(mut computed) = planned else {
                    return Err(not_found(&cluster, "patch", kind, ns, name));
                };
                match patch_type {
                    PatchType::Json => {
                        let ops: json_patch::Patch =
                            serde_json::from_value(patch).map_err(|e| ClusterError {
                                message: format!("not a JSON patch: {e}"),
                                reason: "Invalid".into(),
                                ..not_found(&cluster, "patch", kind, ns, name)
                            })?;
                        json_patch::patch(&mut computed, &ops).map_err(|e| ClusterError {
                            message: e.to_string(),
                            reason: "Invalid".into(),
                            status: Some(422),
                            ..not_found(&cluster, "patch", kind, ns, name)
                        })?;
                    }
                    PatchType::Merge | PatchType::Strategic => merge(&mut computed, &patch),
                }
                Ok(Some(computed))
            })
            .await
        })
    }

    fn delete<'a>(
        &'a self,
        kind: &'a str,
        ns: &'a str,
        name: &'a str,
    ) -> ClusterFuture<'a, Deleted> {
        Box::pin(async move {
            let (r, key) = self.key(kind, ns, name).await?;
            let (before, live, deleted) = match self.planned(&key) {
                None => match self.inner.delete(kind, ns, name).await? {
                    Deleted::Absent => return Ok(Deleted::Absent),
                    Deleted::Gone(last) => (Some(last.clone()), true, Deleted::Gone(last)),
                },
                Some(Planned { object: None, .. }) => return Ok(Deleted::Absent),
                Some(Planned {
                    object: Some(object),
                    live,
                }) => {
                    if live {
                        // The server checks it may be deleted.
                        self.inner.delete(kind, ns, name).await?;
                    }
                    (Some(object.clone()), live, Deleted::Gone(object))
                }
            };
            self.record(&r, ns, name, before.as_ref(), None);
            self.keep(key, Planned { object: None, live });
            Ok(deleted)
        })
    }

    fn export<'a>(
        &'a self,
        kind: &'a str,
        ns: &'a str,
        name: &'a str,
    ) -> ClusterFuture<'a, Option<Value>> {
        Box::pin(async move {
            let (_, key) = self.key(kind, ns, name).await?;
            match self.planned(&key) {
                Some(planned) => Ok(planned.object.map(portable)),
                None => self.inner.export(kind, ns, name).await,
            }
        })
    }

    fn to_external_name<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
        host: &'a str,
    ) -> ClusterFuture<'a, Value> {
        Box::pin(async move {
            let cluster = self.inner.name().to_owned();
            let first = ToExternalName(ns.into(), name.into(), host.into());
            self.write("v1/Service", ns, name, first, move |planned| {
                let Some(mut svc) = planned else {
                    return Err(not_found(&cluster, "to_external_name", "Service", ns, name));
                };
                let spec = |k: &str| {
                    svc.pointer(&format!("/spec/{k}"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                let patch = if spec("type") == "ExternalName" {
                    if spec("externalName") == host {
                        return Ok(None);
                    }
                    json!({"spec": {"externalName": host}})
                } else {
                    crate::adapters::kube::external_name_patch(&svc, host)
                };
                merge(&mut svc, &patch);
                if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
                    // What the server drops when a Service stops needing an address.
                    for key in [
                        "clusterIP",
                        "clusterIPs",
                        "ipFamilies",
                        "ipFamilyPolicy",
                        "internalTrafficPolicy",
                    ] {
                        spec.remove(key);
                    }
                }
                Ok(Some(svc))
            })
            .await
        })
    }

    fn to_cluster_ip<'a>(&'a self, ns: &'a str, name: &'a str) -> ClusterFuture<'a, Value> {
        Box::pin(async move {
            let cluster = self.inner.name().to_owned();
            let first = ToClusterIp(ns.into(), name.into());
            self.write("v1/Service", ns, name, first, move |planned| {
                let Some(mut svc) = planned else {
                    return Err(not_found(&cluster, "to_cluster_ip", "Service", ns, name));
                };
                if svc.pointer("/spec/type").and_then(Value::as_str) != Some("ExternalName") {
                    return Ok(None);
                }
                let saved = svc
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get(crate::adapters::kube::SAVED_SPEC))
                    .and_then(Value::as_str)
                    .and_then(|s| serde_json::from_str::<Value>(s).ok())
                    .filter(Value::is_object);
                let Some(saved) = saved else {
                    return Err(ClusterError {
                        reason: "NoSavedSpec".into(),
                        status: None,
                        message: format!(
                            "the Service has no `{}` annotation",
                            crate::adapters::kube::SAVED_SPEC
                        ),
                        ..not_found(&cluster, "to_cluster_ip", "Service", ns, name)
                    });
                };
                merge(
                    &mut svc,
                    &crate::adapters::kube::cluster_ip_patch(&saved, true),
                );
                Ok(Some(svc))
            })
            .await
        })
    }

    fn exec_in<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
        command: &'a [String],
    ) -> ClusterFuture<'a, ExecOutput> {
        self.inner.exec_in(namespace, pod, container, command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_planned_objects_as_the_server_would() {
        let o = json!({"metadata": {"name": "a", "namespace": "n", "labels": {"app": "app1", "tier": "web"}}});
        assert!(labels_match(&o, "app=app1"));
        assert!(labels_match(&o, "app==app1,tier"));
        assert!(!labels_match(&o, "app=app2"));
        assert!(labels_match(&o, "app!=app2,!db"));
        assert!(!labels_match(&o, "!tier"));
        assert!(!labels_match(&o, "app in (app1)"));
        assert!(fields_match(&o, "metadata.name=a"));
        assert!(!fields_match(&o, "metadata.name!=a"));
        assert!(!fields_match(&o, "metadata.namespace=other"));
    }
}
