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

pub(super) fn check_kind(resource: &Resource, object: &Value) -> Result<(), ApiError> {
    if !object.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    if let Some(kind) = object["kind"].as_str()
        && kind != resource.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({kind}) does not match the resource ({})",
            resource.kind
        )));
    }
    if let Some(api_version) = object["apiVersion"].as_str()
        && api_version != resource.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            resource.api_version()
        )));
    }
    Ok(())
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
        return valid_name(resource, name).map(|()| name.to_owned());
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

/// Names as the API server validates them: Services are DNS-1035 labels,
/// Namespaces RFC 1123 labels, everything else RFC 1123 subdomains, with
/// the real server's messages.
fn valid_name(resource: &Resource, name: &str) -> Result<(), ApiError> {
    let lower_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let label_chars = name.chars().all(|c| lower_alnum(c) || c == '-');
    let ends_ok = name.ends_with(lower_alnum);
    let (ok, max, rule) = match (resource.group.as_str(), resource.kind.as_str()) {
        ("", "Service") => (
            label_chars && name.starts_with(|c: char| c.is_ascii_lowercase()) && ends_ok,
            63,
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        ),
        ("", "Namespace") => (
            label_chars && name.starts_with(lower_alnum) && ends_ok,
            63,
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
        _ => (
            name.split('.').all(|part| {
                !part.is_empty()
                    && part.chars().all(|c| lower_alnum(c) || c == '-')
                    && part.starts_with(lower_alnum)
                    && part.ends_with(lower_alnum)
            }),
            253,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
    };
    let invalid = |why: String| {
        Err(ApiError::invalid(
            resource,
            name,
            "metadata.name",
            format!("Invalid value: \"{name}\": {why}"),
        ))
    };
    if name.len() > max {
        return invalid(format!("must be no more than {max} characters"));
    }
    if !ok {
        return invalid(rule.to_owned());
    }
    Ok(())
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
