//! The 400 answers kube-apiserver gives a body it cannot decode into the
//! resource's type, worded as its decoder words them (Go's `encoding/json`
//! and `base64` errors included): a body that is no object, a kind or
//! apiVersion that is not the resource's, metadata that is no object,
//! ConfigMap and Secret data that are not strings or not base64. A custom
//! resource's wrong kind is a 422 instead, as the CRD handler answers.

use super::resources::Resource;
use super::status::{ApiError, Cause};
use serde_json::Value;

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
    }
}

/// `summarizeData`: an object's text, anything else in hex, cut at 30 bytes.
fn summary(body: &Value) -> String {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let cut = &bytes[..bytes.len().min(30)];
    let more = if bytes.len() > 30 { " ..." } else { "" };
    let hex: String = cut.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}{more}")
}

/// The index Go's `base64.StdEncoding` reports for the first byte it
/// cannot decode, if any.
fn bad_base64(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    let data_len = bytes.iter().position(|&b| b == b'=').unwrap_or(bytes.len());
    if let Some(i) = bytes[..data_len].iter().position(|&b| !alphabet(b)) {
        return Some(i);
    }
    let padding = &bytes[data_len..];
    if padding.iter().any(|&b| b != b'=') || padding.len() > 2 {
        return Some(data_len + padding.iter().position(|&b| b != b'=').unwrap_or(2));
    }
    if !bytes.len().is_multiple_of(4) || data_len % 4 == 1 {
        return Some(bytes.len() - bytes.len() % 4);
    }
    None
}

pub fn decode(resource: &Resource, body: &Value) -> Result<(), ApiError> {
    let kind = &resource.kind;
    if !body.is_object() {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }} ({})",
            json_type(body),
            summary(body)
        )));
    }
    let body_kind = body["kind"].as_str().filter(|k| !k.is_empty());
    let body_version = body["apiVersion"].as_str().filter(|v| !v.is_empty());
    let version_of = |api_version: &str| {
        api_version
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let shown_version = body_version.map_or(resource.version.clone(), version_of);
    let cannot = |what: String| {
        ApiError::bad_request(format!(
            "{} in version \"{shown_version}\" cannot be handled as a {kind}: {what}",
            body_kind.unwrap_or(kind)
        ))
    };
    if resource.is_custom() {
        if let Some(other) = body_kind.filter(|k| k != kind) {
            let name = body["metadata"]["name"].as_str().unwrap_or_default();
            return Err(ApiError::invalid_kind(
                &resource.group,
                other,
                name,
                vec![Cause::new(
                    "kind",
                    format!("Invalid value: \"{other}\": must be {kind}"),
                )],
            ));
        }
        if let Some(api_version) = body_version.filter(|v| *v != resource.api_version()) {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                resource.api_version()
            )));
        }
        return Ok(());
    }
    if let Some(other) = body_kind.filter(|k| k != kind) {
        let internal = if resource.group.is_empty() {
            "core"
        } else {
            resource.group.split('.').next().unwrap_or_default()
        };
        return Err(cannot(format!(
            "converting ({shown_version}.{other}) to ({internal}.{kind}): unknown conversion"
        )));
    }
    if let Some(api_version) = body_version.filter(|v| *v != resource.api_version()) {
        return Err(cannot(format!(
            "no kind \"{kind}\" is registered for version \"{api_version}\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        )));
    }
    let metadata = &body["metadata"];
    if !metadata.is_null() && !metadata.is_object() {
        return Err(cannot(format!(
            "json: cannot unmarshal {} into Go struct field {kind}.metadata of type v1.ObjectMeta",
            json_type(metadata)
        )));
    }
    let fields: &[(&str, bool)] = match kind.as_str() {
        "ConfigMap" => &[("data", false), ("binaryData", true)],
        "Secret" => &[("data", true), ("stringData", false)],
        _ => &[],
    };
    for (field, bytes) in fields {
        for value in body[*field]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, v)| v)
        {
            let go_type = if *bytes { "[]uint8" } else { "string" };
            let Some(text) = value.as_str() else {
                if value.is_null() {
                    continue;
                }
                return Err(cannot(format!(
                    "json: cannot unmarshal {} into Go struct field {kind}.{field} of type {go_type}",
                    json_type(value)
                )));
            };
            if *bytes && let Some(at) = bad_base64(text) {
                return Err(cannot(format!("illegal base64 data at input byte {at}")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::bad_base64;

    #[test]
    fn base64_errors_point_where_go_points() {
        assert_eq!(bad_base64("c2VjcmV0"), None);
        assert_eq!(bad_base64("MQ=="), None);
        assert_eq!(bad_base64("!!!"), Some(0));
        assert_eq!(bad_base64("not base64!"), Some(3));
    }
}
