//! ConfigMap and Secret: key names, a key in both `data` and `binaryData`,
//! `immutable` objects, a Secret's type (immutable, and the keys a
//! `kubernetes.io/tls` Secret must hold).

use super::{Causes, names};
use serde_json::Value;

fn keys(causes: &mut Causes, field: &str, map: &Value) {
    for key in map.as_object().into_iter().flatten().map(|(k, _)| k) {
        causes.each(
            &format!("{field}[{key}]"),
            &Value::String(key.clone()),
            names::config_key(key),
        );
    }
}

/// An `immutable: true` object keeps its data and stays immutable.
fn immutable(causes: &mut Causes, old: Option<&Value>, object: &Value, fields: &[&str]) {
    let Some(old) = old else { return };
    if old["immutable"] != true {
        return;
    }
    const WHY: &str = "field is immutable when `immutable` is set";
    for field in fields {
        if old[*field] != object[*field] {
            causes.forbidden(field, WHY);
        }
    }
    if object["immutable"] != true {
        causes.forbidden("immutable", WHY);
    }
}

pub fn configmap(causes: &mut Causes, old: Option<&Value>, object: &Value) {
    keys(causes, "data", &object["data"]);
    keys(causes, "binaryData", &object["binaryData"]);
    for key in object["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        if object["binaryData"].get(key).is_some() {
            causes.invalid(
                &format!("data[{key}]"),
                &Value::String(key.clone()),
                "duplicate of key present in binaryData",
            );
        }
    }
    immutable(causes, old, object, &["data", "binaryData"]);
}

pub fn secret(causes: &mut Causes, old: Option<&Value>, object: &Value) {
    keys(causes, "data", &object["data"]);
    let kind = object["type"].as_str().unwrap_or("Opaque");
    if let Some(old) = old
        && old["type"] != object["type"]
    {
        causes.invalid("type", &object["type"], "field is immutable");
    }
    if kind == "kubernetes.io/tls" {
        for key in ["tls.crt", "tls.key"] {
            if object["data"].get(key).is_none() {
                causes.required(&format!("data[{key}]"), "");
            }
        }
    }
    immutable(causes, old, object, &["data"]);
}
