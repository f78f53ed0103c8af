//! Pure object logic: what a cluster owns in an object (stripped before
//! copying it elsewhere or re-applying it), and whether an existing object
//! already says everything a desired one says.

use serde_json::{Map, Value};

/// Metadata the API server sets; never part of what a script means.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Annotations that describe one cluster's copy of an object.
const CLUSTER_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.beta.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/selected-node",
];

fn object_mut<'a>(value: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    value.get_mut(key)?.as_object_mut()
}

/// Removes server-set metadata (for apply bodies: SSA refuses managedFields
/// and must not pin a resourceVersion).
pub fn strip_server_metadata(object: &mut Value) {
    if let Some(meta) = object_mut(object, "metadata") {
        for key in SERVER_METADATA {
            meta.remove(*key);
        }
    }
}

/// The object as another cluster (or namespace) could take it: without what
/// this cluster owns — identity and bookkeeping metadata, owner references,
/// status, allocated Service IPs and node ports, a PVC's bound volume, a
/// Pod's node, a Job's generated selector.
pub fn portable(mut object: Value) -> Value {
    strip_server_metadata(&mut object);
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(obj) = object.as_object_mut() {
        obj.remove("status");
    }
    if let Some(meta) = object_mut(&mut object, "metadata") {
        meta.remove("ownerReferences");
        meta.remove("finalizers");
        let empty =
            if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                for key in CLUSTER_ANNOTATIONS {
                    annotations.remove(*key);
                }
                annotations.is_empty()
            } else {
                false
            };
        if empty {
            meta.remove("annotations");
        }
    }
    let Some(spec) = object_mut(&mut object, "spec") else {
        return object;
    };
    match kind.as_str() {
        "Service" => {
            for key in ["clusterIP", "clusterIPs", "healthCheckNodePort"] {
                spec.remove(key);
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                    port.remove("nodePort");
                }
            }
        }
        "PersistentVolumeClaim" => {
            spec.remove("volumeName");
        }
        "Pod" => {
            spec.remove("nodeName");
        }
        // Generated from the Job's uid unless the user set manualSelector.
        "Job" if spec.get("manualSelector") != Some(&Value::Bool(true)) => {
            spec.remove("selector");
            if let Some(labels) = spec
                .get_mut("template")
                .and_then(|t| t.get_mut("metadata"))
                .and_then(|m| m.get_mut("labels"))
                .and_then(Value::as_object_mut)
            {
                for key in ["controller-uid", "batch.kubernetes.io/controller-uid"] {
                    labels.remove(key);
                }
            }
        }
        _ => {}
    }
    object
}

/// The first place where `live` does not say what `desired` says (fields
/// the server added are fine), as `path: wanted X, found Y`.
pub fn first_difference(desired: &Value, live: &Value) -> Option<String> {
    fn walk(path: &str, desired: &Value, live: &Value) -> Option<String> {
        match (desired, live) {
            (Value::Object(d), Value::Object(l)) => d.iter().find_map(|(k, v)| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match l.get(k) {
                    Some(lv) => walk(&p, v, lv),
                    None if v.is_null() => None,
                    None => Some(format!("{p}: wanted {v}, found nothing")),
                }
            }),
            (Value::Array(d), Value::Array(l)) if d.len() == l.len() => d
                .iter()
                .zip(l)
                .enumerate()
                .find_map(|(i, (dv, lv))| walk(&format!("{path}[{i}]"), dv, lv)),
            (Value::Number(d), Value::Number(l)) if d.as_f64() == l.as_f64() => None,
            _ if desired == live => None,
            _ => Some(format!("{path}: wanted {desired}, found {live}")),
        }
    }
    let mut desired = desired.clone();
    strip_server_metadata(&mut desired);
    walk("", &desired, live)
}

/// `metadata.<key>` as a string, or empty.
pub fn meta_str<'a>(object: &'a Value, key: &str) -> &'a str {
    object
        .get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_portable_service_loses_what_its_cluster_allocated() {
        let live = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "app1", "namespace": "app1-ns", "uid": "u", "resourceVersion": "7",
                         "creationTimestamp": "2021-01-11T00:00:00Z", "managedFields": [{}],
                         "ownerReferences": [{"uid": "x"}], "labels": {"app": "app1"},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"],
                     "healthCheckNodePort": 31000, "selector": {"app": "app1"},
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]},
            "status": {"loadBalancer": {}}
        });
        assert_eq!(
            portable(live),
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "app1", "namespace": "app1-ns", "labels": {"app": "app1"}},
                "spec": {"type": "LoadBalancer", "selector": {"app": "app1"},
                         "ports": [{"port": 80, "protocol": "TCP"}]}
            })
        );
    }

    #[test]
    fn a_portable_claim_is_not_bound_to_this_cluster_s_volume() {
        let pvc = json!({"kind": "PersistentVolumeClaim", "metadata": {"name": "d",
            "annotations": {"pv.kubernetes.io/bind-completed": "yes", "team": "a"}},
            "spec": {"volumeName": "pvc-123", "resources": {"requests": {"storage": "1Gi"}}}});
        let p = portable(pvc);
        assert_eq!(
            p["spec"],
            json!({"resources": {"requests": {"storage": "1Gi"}}})
        );
        assert_eq!(p["metadata"]["annotations"], json!({"team": "a"}));
    }

    #[test]
    fn identical_means_every_desired_field_is_live() {
        let desired = json!({"metadata": {"name": "a", "resourceVersion": "1"}, "spec": {"ports": [{"port": 80}]}});
        let live = json!({"metadata": {"name": "a", "uid": "u", "resourceVersion": "9"},
                          "spec": {"ports": [{"port": 80, "protocol": "TCP"}], "clusterIP": "10.0.0.1"}});
        assert_eq!(first_difference(&desired, &live), None);
        let other = json!({"metadata": {"name": "a"}, "spec": {"ports": [{"port": 81}]}});
        assert_eq!(
            first_difference(&other, &live).as_deref(),
            Some("spec.ports[0].port: wanted 81, found 80")
        );
        assert!(first_difference(&json!({"spec": {"x": 1}}), &json!({"spec": {}})).is_some());
    }
}
