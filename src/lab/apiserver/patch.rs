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
                target_map.insert(key.clone(), merge_list(current, items));
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

/// Merges a keyed list element-wise; anything else is replaced, as merge patch does.
fn merge_list(current: Value, patch: &[Value]) -> Value {
    let Value::Array(mut current) = current else {
        return Value::Array(patch.to_vec());
    };
    let key = MERGE_KEYS.iter().find(|k| {
        !patch.is_empty()
            && patch.iter().all(|p| p.get(**k).is_some())
            && current.iter().all(|c| c.get(**k).is_some())
    });
    let Some(key) = key else {
        return Value::Array(patch.iter().filter(|p| !is_directive(p)).cloned().collect());
    };
    for item in patch {
        let id = &item[*key];
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match current.iter().position(|c| &c[*key] == id) {
            Some(i) if delete => {
                current.remove(i);
            }
            Some(i) => strategic_merge(&mut current[i], item),
            None if delete => {}
            None => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, item);
                current.push(fresh);
            }
        }
    }
    Value::Array(current)
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
