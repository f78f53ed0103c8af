//! What the API server checks on and fills into an object's identity when
//! it is written or served: kind and apiVersion, a valid name (or one from
//! `generateName`), the namespace it lands in and whether that namespace
//! exists, finalizers, managedFields, uids and timestamps. Kept apart from
//! the store so the write paths there read as the bookkeeping they do.

use super::resources::Resource;
use super::status::ApiError;
use super::store::State;
use serde_json::{Value, json};

/// The object as served at `resource`'s version.
pub(super) fn present(resource: &Resource, object: &Value) -> Value {
    let mut object = object.clone();
    object["apiVersion"] = json!(resource.api_version());
    object["kind"] = json!(resource.kind);
    object
}

/// The body decodes as the resource's type (`decode.rs` has the 400s).
pub(super) fn check_kind(resource: &Resource, object: &Value) -> Result<(), ApiError> {
    super::decode::decode(resource, object)
}

/// Whether kube-apiserver keeps a `metadata.generation` for the kind: the
/// workloads, EndpointSlices, Ingresses, Pods, CRDs and custom resources
/// do; Services, ConfigMaps, Secrets, Namespaces and Leases do not.
pub(super) fn has_generation(resource: &Resource) -> bool {
    resource.is_custom()
        || matches!(
            (resource.group.as_str(), resource.kind.as_str()),
            ("", "Pod")
                | ("apps" | "batch", _)
                | ("discovery.k8s.io", "EndpointSlice")
                | ("networking.k8s.io", "Ingress")
                | ("apiextensions.k8s.io", "CustomResourceDefinition")
        )
}

pub(super) fn object_name(
    resource: &Resource,
    object: &mut Value,
    state: &State,
) -> Result<String, ApiError> {
    if object.get("metadata").is_none_or(|m| !m.is_object()) {
        object["metadata"] = json!({});
    }
    if let Some(name) = object["metadata"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
    {
        // Its format is checked with the rest of the object (`validation`).
        return Ok(name.to_owned());
    }
    if let Some(prefix) = object["metadata"]["generateName"].as_str() {
        let suffix: String = new_uid()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(5)
            .collect();
        let _ = state;
        return Ok(format!("{prefix}{suffix}"));
    }
    Err(ApiError::invalid(
        resource,
        "",
        "metadata.name",
        "Required value: name or generateName is required",
    ))
}

/// The namespace a write lands in: the URL's, which the body may repeat but not contradict.
pub(super) fn scope(
    resource: &Resource,
    namespace: Option<&str>,
    object: &Value,
) -> Result<Option<String>, ApiError> {
    if !resource.namespaced {
        return Ok(None);
    }
    let url = namespace.unwrap_or("default");
    match object["metadata"]["namespace"].as_str() {
        Some(body) if !body.is_empty() && body != url => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(Some(url.to_owned())),
    }
}

pub(super) fn require_namespace(state: &State, namespace: &str) -> Result<(), ApiError> {
    let key = State::key("namespaces", "", namespace);
    match state.objects.get(&key) {
        Some(ns) if ns["metadata"]["deletionTimestamp"].is_null() => Ok(()),
        Some(_) => Err(ApiError::bad_request(format!(
            "namespace {namespace} is being terminated"
        ))),
        None => Err(ApiError::namespace_not_found(namespace)),
    }
}

pub(super) fn finalizers(object: &Value) -> Vec<Value> {
    object["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub(super) fn managed_fields(manager: &str, operation: &str) -> Value {
    json!([{ "manager": manager, "operation": operation, "apiVersion": "v1", "time": now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": {} }])
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// A random (version 4) UUID.
pub fn new_uid() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Never expected on Linux; fall back to time-derived bytes.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = nanos.to_le_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
