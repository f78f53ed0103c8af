//! The fields kube-apiserver fills in before it validates a write (its
//! defaulting and `PrepareForCreate`/`PrepareForUpdate`), for the kinds
//! whose answers ferry reads: a Deployment's strategy and limits and its
//! pod template's policies, port protocols and target ports, a Service's
//! type and the fields its type change drops, a Secret's `stringData`
//! folded into `data`, a Namespace's finalizer and name label, and an
//! EndpointSlice endpoint's conditions.

use super::resources::Resource;
use serde_json::{Value, json};

/// Idempotent: the store runs it again where it needs the defaulted object.
pub fn apply(resource: &Resource, old: Option<&Value>, object: &mut Value) {
    match (resource.group.as_str(), resource.kind.as_str()) {
        ("", "Service") => service(old, object),
        ("", "Secret") => secret(object),
        ("", "Namespace") => namespace(object),
        ("apps", "Deployment" | "StatefulSet" | "ReplicaSet" | "DaemonSet") => {
            if resource.kind == "Deployment" {
                deployment(object);
            }
            pod_template(object);
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            for endpoint in object
                .get_mut("endpoints")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if endpoint.is_object() && endpoint["conditions"].is_null() {
                    endpoint["conditions"] = json!({});
                }
            }
            protocols(object.get_mut("ports"));
        }
        _ => {}
    }
}

/// `SetDefaults_Deployment`: a rolling update of 25% / 25%, ten old
/// ReplicaSets kept, 600 s to progress.
fn deployment(object: &mut Value) {
    let Some(spec) = object.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    if spec["strategy"].is_null() {
        spec["strategy"] = json!({});
    }
    if let Some(strategy) = spec.get_mut("strategy").filter(|s| s.is_object()) {
        if strategy["type"].is_null() {
            strategy["type"] = json!("RollingUpdate");
        }
        if strategy["type"] == "RollingUpdate" && strategy["rollingUpdate"].is_null() {
            strategy["rollingUpdate"] = json!({});
        }
        if strategy["type"] == "RollingUpdate"
            && let Some(rolling) = strategy.get_mut("rollingUpdate").filter(|r| r.is_object())
        {
            for field in ["maxSurge", "maxUnavailable"] {
                if rolling[field].is_null() {
                    rolling[field] = json!("25%");
                }
            }
        }
    }
    for (field, value) in [
        ("revisionHistoryLimit", 10),
        ("progressDeadlineSeconds", 600),
    ] {
        if spec[field].is_null() {
            spec[field] = json!(value);
        }
    }
}

/// The pod template's defaults (`SetDefaults_PodSpec`, `_Container`).
fn pod_template(object: &mut Value) {
    if let Some(pod) = object
        .pointer_mut("/spec/template/spec")
        .filter(|p| p.is_object())
    {
        for (field, value) in [
            ("restartPolicy", json!("Always")),
            ("terminationGracePeriodSeconds", json!(30)),
            ("dnsPolicy", json!("ClusterFirst")),
            ("securityContext", json!({})),
            ("schedulerName", json!("default-scheduler")),
        ] {
            if pod[field].is_null() {
                pod[field] = value;
            }
        }
    }
    for container in containers(object) {
        protocols(container.get_mut("ports"));
        let image = container["image"].as_str().unwrap_or_default();
        let last = image.rsplit('/').next().unwrap_or_default();
        let pinned =
            image.contains('@') || last.split_once(':').is_some_and(|(_, t)| t != "latest");
        let pull = if pinned { "IfNotPresent" } else { "Always" };
        for (field, value) in [
            ("imagePullPolicy", json!(pull)),
            ("resources", json!({})),
            ("terminationMessagePath", json!("/dev/termination-log")),
            ("terminationMessagePolicy", json!("File")),
        ] {
            if container[field].is_null() {
                container[field] = value;
            }
        }
    }
}

fn containers(object: &mut Value) -> impl Iterator<Item = &mut Value> {
    object
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter(|c| c.is_object())
}

fn protocols(ports: Option<&mut Value>) {
    for port in ports.and_then(Value::as_array_mut).into_iter().flatten() {
        if port.is_object() && port["protocol"].is_null() {
            port["protocol"] = json!("TCP");
        }
    }
}

fn service(old: Option<&Value>, object: &mut Value) {
    if !object["spec"].is_object() {
        object["spec"] = json!({});
    }
    let spec = &mut object["spec"];
    if spec["type"].is_null() {
        spec["type"] = json!("ClusterIP");
    }
    let kind = spec["type"].as_str().unwrap_or_default().to_owned();
    if spec["sessionAffinity"].is_null() {
        spec["sessionAffinity"] = json!("None");
    }
    protocols(spec.get_mut("ports"));
    let old_ports = old
        .and_then(|o| o["spec"]["ports"].as_array())
        .cloned()
        .unwrap_or_default();
    for (i, port) in spec
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if !port.is_object() {
            continue;
        }
        if port["targetPort"].is_null() || port["targetPort"] == 0 {
            port["targetPort"] = port["port"].clone();
        }
        // dropTypeDependentFields: a node port the update left as it was
        // goes with a type that has none.
        if matches!(kind.as_str(), "ClusterIP" | "ExternalName")
            && !port["nodePort"].is_null()
            && old_ports.get(i).map(|o| &o["nodePort"]) == Some(&port["nodePort"])
            && let Some(map) = port.as_object_mut()
        {
            map.remove("nodePort");
        }
    }
    if kind == "LoadBalancer" {
        if spec["allocateLoadBalancerNodePorts"].is_null() {
            spec["allocateLoadBalancerNodePorts"] = json!(true);
        }
    } else if let Some(map) = spec.as_object_mut() {
        map.remove("allocateLoadBalancerNodePorts");
    }
}

fn secret(object: &mut Value) {
    if object["type"].is_null() {
        object["type"] = json!("Opaque");
    }
    let Some(strings) = object.as_object_mut().and_then(|o| o.remove("stringData")) else {
        return;
    };
    if !object["data"].is_object() {
        object["data"] = json!({});
    }
    for (key, value) in strings.as_object().into_iter().flatten() {
        let text = value.as_str().unwrap_or_default();
        object["data"][key] = json!(data_encoding::BASE64.encode(text.as_bytes()));
    }
}

fn namespace(object: &mut Value) {
    let name = object["metadata"]["name"].clone();
    if let Some(meta) = object.get_mut("metadata").filter(|m| m.is_object()) {
        if meta["labels"].is_null() {
            meta["labels"] = json!({});
        }
        if let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut) {
            labels.insert("kubernetes.io/metadata.name".into(), name);
        }
    }
    if object["spec"].is_null() {
        object["spec"] = json!({});
    }
    if let Some(spec) = object.get_mut("spec").filter(|s| s.is_object())
        && spec["finalizers"].is_null()
    {
        spec["finalizers"] = json!(["kubernetes"]);
    }
}
