//! One lab cluster's objects and the write semantics of a real API server:
//! uid / resourceVersion / generation / creationTimestamp bookkeeping, 409 on
//! a stale resourceVersion, finalizers that hold a deletion, namespaces that
//! must exist and take their objects with them, `dryRun=All`, and admission
//! per kind (`admission.rs`). Every change is broadcast (watches and the
//! lab's data plane follow it) and appended to a log, so the cluster survives
//! a restart of the lab (a run paused at a gate for days).
//!
//! The rules an object's metadata must follow and the fields the server
//! fills in are in `metadata.rs`; the request counters that ride along on
//! the cluster are in `traffic.rs`.

use super::admission;
use super::metadata::{
    check_kind, finalizers, has_generation, managed_fields, object_name, present,
    require_namespace, scope,
};
use super::patch::{self, PatchKind};
use super::resources::{self, Resource};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use crate::lab::persist::ChangeLog;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use tokio::sync::broadcast;

// Admission and the data plane call these `store::now_rfc3339` /
// `store::new_uid`; `Traffic` is the type of the public `ClusterStore::traffic`.
pub use super::metadata::{new_uid, now_rfc3339};
pub use super::traffic::{Throttle, Traffic};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// A committed change, as watches report it.
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: ChangeKind,
    pub resource: String,
    pub object: Value,
}

/// Everything persisted about a cluster.
#[derive(Debug, Default)]
pub struct State {
    pub rv: u64,
    /// `<group-resource>/<namespace>/<name>` -> object.
    pub objects: BTreeMap<String, Value>,
}

impl State {
    pub fn key(resource: &str, namespace: &str, name: &str) -> String {
        format!("{resource}/{namespace}/{name}")
    }

    /// Objects of one resource, optionally in one namespace.
    pub fn scan<'a>(
        &'a self,
        resource: &str,
        namespace: Option<&str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        let prefix = match namespace {
            Some(ns) => format!("{resource}/{ns}/"),
            None => format!("{resource}/"),
        };
        self.objects
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v)
    }
}

pub struct ClusterStore {
    pub name: String,
    /// 1 for `old`, 2 for `new`, ...: picks the cluster's address ranges.
    pub index: u8,
    state: Mutex<State>,
    journal: ChangeLog,
    changes: broadcast::Sender<Change>,
    /// What the API server answered, for benchmarks (`/metrics`).
    pub traffic: Traffic,
}

/// Options of one write.
#[derive(Debug, Clone, Copy, Default)]
pub struct Write<'a> {
    pub dry_run: bool,
    pub field_manager: Option<&'a str>,
}

impl ClusterStore {
    /// A cluster with the namespaces every cluster has. With `dir`, its
    /// state is loaded from and logged to `dir/<name>.json` / `.log`.
    pub fn open(name: &str, index: u8, dir: Option<&Path>) -> std::io::Result<ClusterStore> {
        let (table, journal) = ChangeLog::open(dir, name)?;
        let cluster = ClusterStore {
            name: name.to_owned(),
            index,
            state: Mutex::new(State {
                rv: table.version,
                objects: table.entries,
            }),
            journal,
            changes: broadcast::channel(4096).0,
            traffic: Traffic::default(),
        };
        for ns in ["default", "kube-system", "kube-public"] {
            let namespaces = resources::builtins()
                .into_iter()
                .next()
                .expect("namespaces come first");
            if cluster.get(&namespaces, None, ns).is_err() {
                let obj =
                    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
                cluster
                    .create(&namespaces, None, obj, Write::default())
                    .map_err(|e| std::io::Error::other(e.message))?;
            }
        }
        Ok(cluster)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows every committed change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.state().rv
    }

    /// Reads the state under the lock (for the data plane and discovery).
    pub fn with_state<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.state())
    }

    /// Built-in kinds plus the kinds of every stored CRD.
    pub fn resources(&self) -> Vec<Resource> {
        let mut all = resources::builtins();
        let state = self.state();
        for crd in state.scan("customresourcedefinitions.apiextensions.k8s.io", Some("")) {
            all.extend(Resource::from_crd(crd));
        }
        all
    }

    /// The resource served at `group/version` under `plural`.
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<Resource> {
        self.resources()
            .into_iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// The stored object, as stored (not re-versioned for presentation).
    fn stored(&self, resource: &Resource, namespace: Option<&str>, name: &str) -> Option<Value> {
        let key = State::key(&resource.group_resource(), namespace.unwrap_or(""), name);
        self.state().objects.get(&key).cloned()
    }

    pub fn get(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let state = self.state();
        let key = State::key(&resource.group_resource(), namespace.unwrap_or(""), name);
        state
            .objects
            .get(&key)
            .map(|o| present(resource, o))
            .ok_or_else(|| ApiError::not_found(resource, name))
    }

    pub fn list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Value {
        let state = self.state();
        let items: Vec<Value> = state
            .scan(&resource.group_resource(), namespace)
            .filter(|o| labels.matches(&o["metadata"]["labels"]) && fields.matches(o))
            .map(|o| present(resource, o))
            .collect();
        json!({
            "kind": format!("{}List", resource.kind),
            "apiVersion": resource.api_version(),
            "metadata": { "resourceVersion": state.rv.to_string() },
            "items": items,
        })
    }

    pub fn create(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        object: Value,
        opts: Write,
    ) -> Result<Value, ApiError> {
        self.create_as(resource, namespace, object, opts, "Update")
    }

    /// A create recorded in managedFields as `operation` (`Apply` when a
    /// server-side apply creates).
    fn create_as(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        mut object: Value,
        opts: Write,
        operation: &str,
    ) -> Result<Value, ApiError> {
        check_kind(resource, &object)?;
        let mut state = self.state();
        let name = object_name(resource, &mut object, &state)?;
        let ns = scope(resource, namespace, &object)?;
        if let Some(ns) = &ns {
            require_namespace(&state, ns)?;
        }
        let key = State::key(
            &resource.group_resource(),
            ns.as_deref().unwrap_or(""),
            &name,
        );
        if state.objects.contains_key(&key) {
            return Err(ApiError::already_exists(resource, &name));
        }
        let rv = state.rv + 1;
        let meta = object["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        meta.insert("name".into(), json!(name));
        if let Some(ns) = &ns {
            meta.insert("namespace".into(), json!(ns));
        }
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        if has_generation(resource) {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        meta.remove("deletionTimestamp");
        if let Some(manager) = opts.field_manager {
            meta.insert("managedFields".into(), managed_fields(manager, operation));
        }
        admission::admit(self, &state, resource, None, &mut object)?;
        if opts.dry_run {
            // Nothing was stored, so nothing has a version yet.
            if let Some(meta) = object["metadata"].as_object_mut() {
                meta.remove("resourceVersion");
            }
        } else {
            self.commit(
                &mut state,
                key,
                Some(object.clone()),
                ChangeKind::Added,
                resource,
            )?;
        }
        Ok(present(resource, &object))
    }

    /// PUT: a resourceVersion the caller sends must be the live one; one
    /// left out makes the update unconditional, as in kube-apiserver.
    pub fn replace(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        mut object: Value,
        opts: Write,
    ) -> Result<Value, ApiError> {
        check_kind(resource, &object)?;
        if let Some(other) = object["metadata"]["name"].as_str()
            && other != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({other}) does not match the name on the URL ({name})"
            )));
        }
        let state = self.state();
        let key = State::key(&resource.group_resource(), namespace.unwrap_or(""), name);
        let live = state
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        if let Some(rv) = object["metadata"]["resourceVersion"]
            .as_str()
            .filter(|rv| !rv.is_empty())
            && Some(rv) != live["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::conflict(resource, name));
        }
        drop(state);
        self.update(resource, namespace, name, &live, &mut object, opts, false)
    }

    /// PUT on `/status`: only the status changes.
    pub fn replace_status(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        mut object: Value,
        opts: Write,
    ) -> Result<Value, ApiError> {
        let live = self
            .stored(resource, namespace, name)
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        if object["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|rv| Some(rv) != live["metadata"]["resourceVersion"].as_str())
        {
            return Err(ApiError::conflict(resource, name));
        }
        self.update(resource, namespace, name, &live, &mut object, opts, true)
    }

    /// PATCH on `/status`: the patch applies to the status only.
    pub fn patch_status(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        kind: PatchKind,
        body: &Value,
        opts: Write,
    ) -> Result<Value, ApiError> {
        let live = self
            .stored(resource, namespace, name)
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        let mut patched = live.clone();
        patch::apply(kind, &mut patched, body)
            .map_err(|e| ApiError::invalid(resource, name, "patch", e))?;
        self.update(resource, namespace, name, &live, &mut patched, opts, true)
    }

    pub fn patch(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        kind: PatchKind,
        body: &Value,
        opts: Write,
    ) -> Result<Value, ApiError> {
        if kind == PatchKind::Apply {
            apply_request(resource, name, body, opts)?;
        }
        let Some(live) = self.stored(resource, namespace, name) else {
            // Server-side apply creates what does not exist yet.
            if kind == PatchKind::Apply {
                let mut object = body.clone();
                if !object["metadata"].is_object() {
                    object["metadata"] = json!({});
                }
                if object["metadata"]["name"].is_null() {
                    object["metadata"]["name"] = json!(name);
                }
                return self.create_as(resource, namespace, object, opts, "Apply");
            }
            return Err(ApiError::not_found(resource, name));
        };
        let mut object = live.clone();
        patch::apply(kind, &mut object, body).map_err(|_| ApiError::patch_rejected())?;
        if !object.is_object() {
            return Err(ApiError::bad_request("the patched object is no object"));
        }
        if let Some(rv) = body["metadata"]["resourceVersion"].as_str()
            && Some(rv) != live["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::conflict(resource, name));
        }
        object["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"].clone();
        if kind == PatchKind::Apply
            && let Some(manager) = opts.field_manager
        {
            // The manager's apply entry joins (or replaces) the others.
            let mut entries: Vec<Value> = live["metadata"]["managedFields"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|e| !(e["manager"] == manager && e["operation"] == "Apply"))
                .collect();
            entries.extend(
                managed_fields(manager, "Apply")
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            object["metadata"]["managedFields"] = Value::Array(entries);
        }
        self.update(resource, namespace, name, &live, &mut object, opts, false)
    }

    /// The shared tail of replace and patch. A `status_write` changes only
    /// the status; any other write keeps the live status (the status
    /// subresource owns it).
    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        live: &Value,
        object: &mut Value,
        opts: Write,
        status_write: bool,
    ) -> Result<Value, ApiError> {
        let mut state = self.state();
        let key = State::key(&resource.group_resource(), namespace.unwrap_or(""), name);
        // Someone else may have written between our read and this lock.
        if state
            .objects
            .get(&key)
            .map(|o| &o["metadata"]["resourceVersion"])
            != Some(&live["metadata"]["resourceVersion"])
        {
            return Err(ApiError::conflict(resource, name));
        }
        let meta = object["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        // Fields the server owns cannot be changed by a client.
        for field in [
            "uid",
            "creationTimestamp",
            "name",
            "namespace",
            "deletionTimestamp",
        ] {
            match live["metadata"].get(field) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
        if status_write {
            // Only the status is the caller's; a write without one clears it.
            let status = object["status"].take();
            *object = live.clone();
            object["status"] = status;
        } else if resource.subresources.iter().any(|s| s == "status") {
            match live.get("status") {
                Some(status) => object["status"] = status.clone(),
                None => {
                    if let Some(map) = object.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
        }
        // A write that leaves managedFields out keeps the live ones.
        if object["metadata"].get("managedFields").is_none()
            && let Some(fields) = live["metadata"].get("managedFields")
        {
            object["metadata"]["managedFields"] = fields.clone();
        }
        // Compare what will be stored: defaults first, as admission adds them.
        super::defaults::apply(resource, Some(live), object);
        if has_generation(resource) {
            let generation = live["metadata"]["generation"].as_i64().unwrap_or(1);
            // Anything but metadata and status is the spec (custom objects
            // and Secrets keep theirs at the top level).
            let spec_changed = object.as_object().is_some_and(|o| {
                o.iter()
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                    })
                    .any(|(k, v)| live.get(k) != Some(v))
            }) || live.as_object().is_some_and(|l| {
                l.keys()
                    .filter(|k| {
                        !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                    })
                    .any(|k| object.get(k).is_none())
            });
            object["metadata"]["generation"] = json!(if spec_changed {
                generation + 1
            } else {
                generation
            });
        } else if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("generation");
        }
        let rv = state.rv + 1;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        admission::admit(self, &state, resource, Some(live), object)?;
        // A deletion held by finalizers completes once the last one is removed.
        let finishing =
            !live["metadata"]["deletionTimestamp"].is_null() && finalizers(object).is_empty();
        // A write that changes nothing is not stored, as kube-apiserver skips
        // it: the resourceVersion stays and no watch event is sent.
        // managedFields count by who wrote how (a first server-side apply
        // by a manager is a change), not by when.
        let mut unchanged = object.clone();
        let mut before = live.clone();
        for o in [&mut unchanged, &mut before] {
            if let Some(entries) = o["metadata"]
                .get_mut("managedFields")
                .and_then(Value::as_array_mut)
            {
                for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
                    entry.remove("time");
                }
            }
        }
        match live["metadata"].get("resourceVersion") {
            Some(v) => unchanged["metadata"]["resourceVersion"] = v.clone(),
            None => {
                if let Some(meta) = unchanged["metadata"].as_object_mut() {
                    meta.remove("resourceVersion");
                }
            }
        }
        if !finishing && unchanged == before {
            return Ok(present(resource, live));
        }
        if opts.dry_run {
            // Nothing is stored: the object keeps the live version.
            object["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"].clone();
        }
        if !opts.dry_run {
            if finishing {
                self.commit(&mut state, key, None, ChangeKind::Deleted, resource)?;
            } else {
                self.commit(
                    &mut state,
                    key,
                    Some(object.clone()),
                    ChangeKind::Modified,
                    resource,
                )?;
            }
        }
        Ok(present(resource, object))
    }

    /// DELETE: returns the object as it was (or as it now waits on finalizers).
    pub fn delete(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        opts: Write,
    ) -> Result<Value, ApiError> {
        let mut state = self.state();
        let key = State::key(&resource.group_resource(), namespace.unwrap_or(""), name);
        let mut object = state
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        if !finalizers(&object).is_empty() {
            if object["metadata"]["deletionTimestamp"].is_null() {
                object["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
                object["metadata"]["resourceVersion"] = json!((state.rv + 1).to_string());
                if !opts.dry_run {
                    self.commit(
                        &mut state,
                        key,
                        Some(object.clone()),
                        ChangeKind::Modified,
                        resource,
                    )?;
                }
            }
            return Ok(present(resource, &object));
        }
        if opts.dry_run {
            return Ok(deleted(resource, &object));
        }
        if resource.group_resource() == "namespaces" {
            // The namespace takes everything in it along.
            let doomed: Vec<(String, Value)> = state
                .objects
                .iter()
                .filter(|(k, _)| k.split('/').nth(1) == Some(name))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (k, v) in doomed {
                let res = k.split('/').next().unwrap_or_default().to_owned();
                self.journal.delete(&k, state.rv + 1).map_err(unpersisted)?;
                state.rv += 1;
                state.objects.remove(&k);
                let _ = self.changes.send(Change {
                    kind: ChangeKind::Deleted,
                    resource: res,
                    object: v,
                });
            }
        }
        self.commit(&mut state, key, None, ChangeKind::Deleted, resource)?;
        object["metadata"]["resourceVersion"] = json!(state.rv.to_string());
        if resource.group_resource() == "namespaces" {
            // The lab deletes a namespace at once; kube-apiserver answers
            // with it terminating, and so does the lab.
            object["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
            object["status"]["phase"] = json!("Terminating");
        }
        Ok(deleted(resource, &object))
    }

    /// Writes one change: log, state, broadcast. The log first: a change
    /// the lab cannot persist (a full disk) fails the request with nothing
    /// changed, as etcd refuses a write it cannot store, never a silent loss.
    fn commit(
        &self,
        state: &mut State,
        key: String,
        object: Option<Value>,
        kind: ChangeKind,
        resource: &Resource,
    ) -> Result<(), ApiError> {
        let rv = state.rv + 1;
        let announced = match object {
            Some(mut object) => {
                object["metadata"]["resourceVersion"] = json!(rv.to_string());
                self.journal.put(&key, rv, &object).map_err(unpersisted)?;
                state.objects.insert(key, object.clone());
                object
            }
            None => {
                self.journal.delete(&key, rv).map_err(unpersisted)?;
                let mut gone = state.objects.remove(&key).unwrap_or(Value::Null);
                if gone.is_object() {
                    gone["metadata"]["resourceVersion"] = json!(rv.to_string());
                }
                gone
            }
        };
        state.rv = rv;
        let _ = self.changes.send(Change {
            kind,
            resource: resource.group_resource(),
            object: announced,
        });
        Ok(())
    }
}

/// What a DELETE answers: the object for the kinds kube-apiserver returns
/// it for (Namespaces, Pods, Services: `ReturnDeletedObject`), a `Status`
/// of success naming it for the others.
fn deleted(resource: &Resource, object: &Value) -> Value {
    if matches!(
        (resource.group.as_str(), resource.kind.as_str()),
        ("", "Namespace" | "Pod" | "Service")
    ) {
        return present(resource, object);
    }
    let mut details = json!({
        "name": object["metadata"]["name"],
        "kind": resource.plural,
        "uid": object["metadata"]["uid"],
    });
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    super::status::success(details)
}

/// A server-side apply request kube-apiserver takes: one naming its field
/// manager, with the object the URL names.
fn apply_request(
    resource: &Resource,
    name: &str,
    body: &Value,
    opts: Write,
) -> Result<(), ApiError> {
    if opts.field_manager.is_none_or(str::is_empty) {
        return Err(ApiError::invalid_kind(
            "meta.k8s.io",
            "PatchOptions",
            "",
            vec![super::status::Cause::new(
                "fieldManager",
                "Required value: is required for apply patch",
            )],
        ));
    }
    check_kind(resource, body)?;
    if let Some(other) = body["metadata"]["name"].as_str()
        && other != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({other}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

/// etcd's answer to a write it cannot store, with the lab's cause.
fn unpersisted(e: std::io::Error) -> ApiError {
    ApiError::internal(format!(
        "etcdserver: the lab cannot persist the change: {e}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_status() -> Resource {
        resources::builtins()
            .into_iter()
            .find(|r| r.plural == "configmaps")
            .map(|mut r| {
                // A kind with a status subresource and no admission of its own.
                r.subresources = vec!["status".into()];
                r
            })
            .unwrap()
    }

    #[test]
    fn status_writes_change_only_the_status() {
        let cluster = ClusterStore::open("old", 1, None).unwrap();
        let kind = with_status();
        let created = cluster
            .create(
                &kind,
                Some("default"),
                json!({ "metadata": { "name": "c" }, "data": { "k": "v" } }),
                Write::default(),
            )
            .unwrap();
        let rv = created["metadata"]["resourceVersion"].clone();

        let body = json!({ "metadata": { "resourceVersion": rv }, "data": { "k": "ignored" }, "status": { "phase": "up" } });
        let replaced = cluster
            .replace_status(&kind, Some("default"), "c", body, Write::default())
            .unwrap();
        assert_eq!(replaced["status"], json!({ "phase": "up" }));
        assert_eq!(
            replaced["data"],
            json!({ "k": "v" }),
            "a status write leaves the rest"
        );

        let stale = json!({ "metadata": { "resourceVersion": rv }, "status": {} });
        assert_eq!(
            cluster
                .replace_status(&kind, Some("default"), "c", stale, Write::default())
                .unwrap_err()
                .reason,
            "Conflict"
        );

        let patched = cluster
            .patch_status(
                &kind,
                Some("default"),
                "c",
                PatchKind::Merge,
                &json!({ "status": { "ready": true }, "data": { "k": "x" } }),
                Write::default(),
            )
            .unwrap();
        assert_eq!(patched["status"], json!({ "phase": "up", "ready": true }));
        assert_eq!(patched["data"], json!({ "k": "v" }));

        let cleared = cluster
            .replace_status(
                &kind,
                Some("default"),
                "c",
                json!({ "metadata": {} }),
                Write::default(),
            )
            .unwrap();
        assert!(
            cleared["status"].is_null(),
            "a status write without a status clears it"
        );
    }
}
