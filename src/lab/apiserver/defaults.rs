//! The fields kube-apiserver fills in before it validates a write (its
//! defaulting and `PrepareForCreate`/`PrepareForUpdate`), for the kinds
//! whose answers ferry reads: port protocols and target ports, a Service's
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
            for container in containers(object) {
                protocols(container.get_mut("ports"));
            }
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
    if object["metadata"].is_object() {
        object["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
    }
    if object["spec"]["finalizers"].is_null() {
        object["spec"]["finalizers"] = json!(["kubernetes"]);
    }
}
