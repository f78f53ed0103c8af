//! Patch types a real API server accepts. JSON Patch and JSON Merge Patch
//! come from the `json-patch` crate; strategic merge patch (what `kubectl
//! apply` sends for built-in kinds) is merge patch plus merging of keyed
//! lists (`ports` by `port`, `containers` by `name`, ...) and dropping of the
//! `$`-directives kubectl adds. Server-side apply merges the applied config
//! into the live object (ownership conflicts are not modelled).

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type.split(';').next().unwrap_or_default().trim() {
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }

    /// The shape kube-apiserver decodes a patch into before applying it:
    /// a list of operations for JSON patch, an object for the others. The
    /// error is its 400 message.
    pub fn check_body(self, patch: &Value) -> Result<(), String> {
        let json_type = match patch {
            Value::Object(_) => "object",
            Value::Array(_) => "array",
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "bool",
            Value::Null => return Ok(()),
        };
        match (self, patch) {
            (PatchKind::Json, Value::Array(_)) => Ok(()),
            (PatchKind::Json, _) => Err(format!(
                "error decoding patch: json: cannot unmarshal {json_type} into Go value of type []handlers.jsonPatchOp"
            )),
            (_, Value::Object(_)) => Ok(()),
            (_, _) => Err(format!(
                "error decoding patch: json: cannot unmarshal {json_type} into Go value of type map[string]interface {{}}"
            )),
        }
    }
}

/// Applies `patch` to `target`; the error is the reason a 422 reports.
pub fn apply(kind: PatchKind, target: &mut Value, patch: &Value) -> Result<(), String> {
    match kind {
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| format!("invalid JSON patch: {e}"))?;
            json_patch::patch(target, &ops).map_err(|e| e.to_string())
        }
        PatchKind::Merge | PatchKind::Apply => {
            json_patch::merge(target, patch);
            Ok(())
        }
        PatchKind::Strategic => {
            strategic_merge(target, patch);
            Ok(())
        }
    }
}

/// Keys that identify list elements in built-in kinds' strategic merge.
const MERGE_KEYS: &[&str] = &["name", "port", "containerPort", "mountPath", "ip", "type"];

fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let Value::Object(target_map) = target else {
        return;
    };
    for (key, value) in patch_map {
        if key.starts_with('$') {
            continue;
        }
        match value {
            Value::Null => {
                target_map.remove(key);
            }
            Value::Array(items) => {
                let current = target_map.remove(key).unwrap_or(Value::Array(Vec::new()));
                let order = patch_map.get(&format!("$setElementOrder/{key}"));
                target_map.insert(key.clone(), merge_list(key, current, items, order));
            }
            Value::Object(_) => {
                strategic_merge(target_map.entry(key.clone()).or_insert(Value::Null), value)
            }
            _ => {
                target_map.insert(key.clone(), value.clone());
            }
        }
    }
}

/// The key that identifies elements of the list `field`, as the built-in
/// kinds' patch strategies name it (Service ports merge by `port`).
fn merge_key(field: &str, patch: &[Value], current: &[Value]) -> Option<&'static str> {
    let preferred: &[&str] = if field == "ports" {
        &["port", "containerPort", "name"]
    } else {
        MERGE_KEYS
    };
    preferred.iter().copied().find(|k| {
        !patch.is_empty()
            && patch.iter().all(|p| p.get(*k).is_some())
            && current.iter().all(|c| c.get(*k).is_some())
    })
}

/// Merges a keyed list element-wise, as kube-apiserver orders the result:
/// the patch's elements first (or `$setElementOrder`'s order), then the
/// ones only the server had. Anything else is replaced, as merge patch does.
fn merge_list(field: &str, current: Value, patch: &[Value], order: Option<&Value>) -> Value {
    let Value::Array(current) = current else {
        return Value::Array(patch.to_vec());
    };
    let Some(key) = merge_key(field, patch, &current) else {
        return Value::Array(patch.iter().filter(|p| !is_directive(p)).cloned().collect());
    };
    let mut merged = Vec::new();
    for item in patch {
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            continue;
        }
        let mut element = current
            .iter()
            .find(|c| c[key] == item[key])
            .cloned()
            .unwrap_or(Value::Null);
        strategic_merge(&mut element, item);
        merged.push(element);
    }
    for element in current {
        if !patch.iter().any(|p| p[key] == element[key]) {
            merged.push(element);
        }
    }
    if let Some(Value::Array(order)) = order {
        let rank = |e: &Value| {
            order
                .iter()
                .position(|o| o[key] == e[key])
                .unwrap_or(order.len())
        };
        merged.sort_by_key(rank);
    }
    Value::Array(merged)
}

fn is_directive(item: &Value) -> bool {
    item.as_object()
        .is_some_and(|m| m.keys().all(|k| k.starts_with('$')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_keyed_lists_and_drops_directives() {
        let mut svc = json!({ "spec": { "ports": [{ "port": 80, "protocol": "TCP", "targetPort": 80 }, { "port": 443, "protocol": "TCP" }] } });
        let patch = json!({ "spec": { "$setElementOrder/ports": [{ "port": 80 }, { "port": 443 }], "ports": [{ "port": 80, "targetPort": 8080 }] } });
        apply(PatchKind::Strategic, &mut svc, &patch).unwrap();
        assert_eq!(
            svc["spec"]["ports"][0],
            json!({ "port": 80, "protocol": "TCP", "targetPort": 8080 })
        );
        assert_eq!(svc["spec"]["ports"][1]["port"], 443);
        assert!(svc["spec"].get("$setElementOrder/ports").is_none());

        let delete = json!({ "spec": { "ports": [{ "port": 443, "$patch": "delete" }] } });
        apply(PatchKind::Strategic, &mut svc, &delete).unwrap();
        assert_eq!(svc["spec"]["ports"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn json_and_merge_patches_follow_their_rfcs() {
        let mut obj = json!({ "a": 1, "b": { "c": 2 } });
        apply(
            PatchKind::Merge,
            &mut obj,
            &json!({ "b": { "c": null, "d": 3 } }),
        )
        .unwrap();
        assert_eq!(obj, json!({ "a": 1, "b": { "d": 3 } }));
        apply(
            PatchKind::Json,
            &mut obj,
            &json!([{ "op": "replace", "path": "/a", "value": 5 }]),
        )
        .unwrap();
        assert_eq!(obj["a"], 5);
        let err = apply(
            PatchKind::Json,
            &mut obj,
            &json!([{ "op": "remove", "path": "/nope" }]),
        )
        .unwrap_err();
        assert!(!err.is_empty());
    }
}
