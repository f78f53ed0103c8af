//! What a real API server (and the controllers that always run with it) do
//! to an object on its way into storage: its defaults (`defaults.rs`), its
//! field validation (`validation/`), then per kind:
//!
//! * Service: clusterIP allocation from the cluster's range, the
//!   Kubernetes >= 1.20 type-change rules (to ExternalName, unchanged
//!   allocated fields are dropped — `dropTypeDependentFields`; back to
//!   ClusterIP, a requested IP is re-allocated if free, otherwise a new one
//!   is given), node ports, and LoadBalancer status (the lab's "cloud").
//! * Pod: the lab's kubelet starts it at once (Running, Ready, a pod IP).
//! * Deployment / StatefulSet / ReplicaSet: reported available at once.
//! * CustomResourceDefinition: validated and Established, so its kind appears
//!   in discovery.
//!
//! Addresses: cluster `i` uses 127.(10i).0.0/16 for Services, 127.(10i+1)/16
//! for LoadBalancers and 127.(10i+2)/16 for pods; all of 127/8 is loopback.

use super::defaults;
use super::resources::Resource;
use super::status::ApiError;
use super::store::{ClusterStore, State};
use super::validation;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::Ipv4Addr;

pub fn admit(
    cluster: &ClusterStore,
    state: &State,
    resource: &Resource,
    old: Option<&Value>,
    object: &mut Value,
) -> Result<(), ApiError> {
    stored_size(object)?;
    defaults::apply(resource, old, object);
    validation::validate(resource, old, object)?;
    match (resource.group.as_str(), resource.kind.as_str()) {
        ("", "ConfigMap" | "Secret") => data_size(resource, object),
        ("", "Service") => service(cluster.index, state, resource, old, object),
        ("", "Namespace") => {
            if object["status"]["phase"].is_null() {
                object["status"] = json!({ "phase": "Active" });
            }
            Ok(())
        }
        ("", "Pod") => {
            pod(cluster.index, state, old, object);
            Ok(())
        }
        ("apps", "Deployment" | "StatefulSet" | "ReplicaSet") => {
            workload(object);
            Ok(())
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(resource, object),
        _ => Ok(()),
    }
}

/// The largest object etcd stores (its default `--max-request-bytes`,
/// 1.5 MiB); kube-apiserver passes etcd's refusal on as 413.
pub const MAX_OBJECT_BYTES: usize = 1536 * 1024;

/// The most a ConfigMap's or Secret's data may hold (`MaxConfigMapSize`,
/// `MaxSecretSize`): 1 MiB of keys and values together.
pub const MAX_DATA_BYTES: usize = 1 << 20;

fn stored_size(object: &Value) -> Result<(), ApiError> {
    let size = serde_json::to_vec(object).map(|b| b.len()).unwrap_or(0);
    if size > MAX_OBJECT_BYTES {
        return Err(ApiError::too_large("etcdserver: request is too large"));
    }
    Ok(())
}

/// ConfigMap and Secret validation of their total size: keys plus values of
/// `data` and `binaryData` (decoded), as `ValidateConfigMap` counts them.
fn data_size(resource: &Resource, object: &Value) -> Result<(), ApiError> {
    let mut total = 0usize;
    for (field, base64) in [
        ("data", resource.kind == "Secret"),
        ("binaryData", true),
        ("stringData", false),
    ] {
        for (key, value) in object[field].as_object().into_iter().flatten() {
            let text = value.as_str().unwrap_or_default();
            let len = if base64 {
                // Decoded length, without decoding: 3 bytes per 4 characters.
                let trimmed = text.trim_end_matches('=');
                trimmed.len() * 3 / 4
            } else {
                text.len()
            };
            total += key.len() + len;
        }
    }
    if total > MAX_DATA_BYTES {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        return Err(ApiError::invalid(
            resource,
            name,
            "[]",
            format!("Too long: must have at most {MAX_DATA_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// The range a cluster draws addresses of one kind from: (prefix, name).
fn range(index: u8, offset: u8) -> (u8, String) {
    let second = index.saturating_mul(10).saturating_add(offset);
    (second, format!("127.{second}.0.0/16"))
}

fn in_range(ip: Ipv4Addr, second: u8) -> bool {
    let o = ip.octets();
    o[0] == 127 && o[1] == second
}

/// The first free address of a /16, skipping .0.x (reserved for the lab).
fn allocate(second: u8, used: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    (256u32..65_535)
        .map(|n| Ipv4Addr::new(127, second, (n >> 8) as u8, n as u8))
        .find(|ip| ip.octets()[3] != 0 && !used.contains(ip))
}

fn used_ips(state: &State, resource: &str, pointer: &str) -> HashSet<Ipv4Addr> {
    state
        .scan(resource, None)
        .filter_map(|o| o.pointer(pointer)?.as_str()?.parse().ok())
        .collect()
}

fn service(
    index: u8,
    state: &State,
    resource: &Resource,
    old: Option<&Value>,
    object: &mut Value,
) -> Result<(), ApiError> {
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !object["spec"].is_object() {
        object["spec"] = json!({});
    }
    let kind = object["spec"]["type"]
        .as_str()
        .unwrap_or("ClusterIP")
        .to_owned();
    object["spec"]["type"] = json!(kind);
    let old_spec = old.map(|o| &o["spec"]);
    let old_type = old_spec
        .and_then(|s| s["type"].as_str())
        .unwrap_or("ClusterIP");
    let old_ip = old_spec
        .filter(|_| old_type != "ExternalName")
        .and_then(|s| s["clusterIP"].as_str())
        .map(str::to_owned);
    let spec = object["spec"]
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("spec must be an object"))?;

    match kind.as_str() {
        "ExternalName" => {
            // validation.rs checked externalName and the ports.
            let requested = spec
                .get("clusterIP")
                .and_then(Value::as_str)
                .filter(|ip| !ip.is_empty());
            // dropTypeDependentFields: an allocated IP left unchanged by the
            // type change is dropped; one the client set anew is an error.
            if let Some(ip) = requested
                && old_ip.as_deref() != Some(ip)
            {
                return Err(ApiError::invalid(
                    resource,
                    &name,
                    "spec.clusterIPs",
                    "Forbidden: may not be set for ExternalName services",
                ));
            }
            for field in [
                "clusterIP",
                "clusterIPs",
                "ipFamilies",
                "ipFamilyPolicy",
                "healthCheckNodePort",
                "externalTrafficPolicy",
                "internalTrafficPolicy",
            ] {
                spec.remove(field);
            }
            strip_node_ports(spec);
            object["status"] = json!({ "loadBalancer": {} });
        }
        "ClusterIP" | "NodePort" | "LoadBalancer" => {
            let (second, cidr) = range(index, 0);
            let requested = spec
                .get("clusterIP")
                .and_then(Value::as_str)
                .filter(|ip| !ip.is_empty())
                .map(str::to_owned);
            let ip = match (old_ip, requested) {
                // patchAllocatedValues: an update that omits the IP keeps it.
                (Some(old), None) => old,
                (Some(old), Some(new)) if old == new => old,
                (Some(_), Some(new)) => {
                    let shown = spec
                        .get("clusterIPs")
                        .filter(|ips| ips.is_array())
                        .cloned()
                        .unwrap_or_else(|| json!([new]));
                    return Err(ApiError::invalid(
                        resource,
                        &name,
                        "spec.clusterIPs[0]",
                        format!(
                            "Invalid value: {}: may not change once set",
                            validation::names::shown(&shown)
                        ),
                    ));
                }
                (None, Some(none)) if none == "None" => none,
                (None, Some(wanted)) => {
                    let parsed: Ipv4Addr = wanted.parse().map_err(|_| {
                        ApiError::invalid(
                            resource,
                            &name,
                            "spec.clusterIPs[0]",
                            format!(
                                "Invalid value: \"{wanted}\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
                            ),
                        )
                    })?;
                    if !in_range(parsed, second) {
                        return Err(ApiError::invalid(
                            resource,
                            &name,
                            "spec.clusterIPs",
                            format!(
                                "Invalid value: [\"{wanted}\"]: failed to allocate IP {wanted}: the provided network does not match the current range"
                            ),
                        ));
                    }
                    if used_ips(state, "services", "/spec/clusterIP").contains(&parsed) {
                        return Err(ApiError::invalid(
                            resource,
                            &name,
                            "spec.clusterIPs",
                            format!(
                                "Invalid value: [\"{wanted}\"]: failed to allocate IP {wanted}: provided IP is already allocated"
                            ),
                        ));
                    }
                    wanted
                }
                (None, None) => allocate(second, &used_ips(state, "services", "/spec/clusterIP"))
                    .ok_or_else(|| {
                        ApiError::internal(format!(
                            "failed to allocate a serviceIP: range {cidr} is full"
                        ))
                    })?
                    .to_string(),
            };
            spec.insert("clusterIP".into(), json!(ip));
            spec.insert("clusterIPs".into(), json!([ip]));
            spec.insert("ipFamilies".into(), json!(["IPv4"]));
            spec.insert("ipFamilyPolicy".into(), json!("SingleStack"));
            spec.entry("sessionAffinity").or_insert(json!("None"));
            spec.entry("internalTrafficPolicy")
                .or_insert(json!("Cluster"));
            if kind == "ClusterIP" {
                strip_node_ports(spec);
                spec.remove("externalTrafficPolicy");
                object["status"] = json!({ "loadBalancer": {} });
            } else {
                spec.entry("externalTrafficPolicy")
                    .or_insert(json!("Cluster"));
                assign_node_ports(resource, &name, state, old_spec, spec)?;
                if kind == "LoadBalancer" {
                    let kept = old
                        .and_then(|o| o.pointer("/status/loadBalancer/ingress/0/ip"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    let (lb_second, lb_cidr) = range(index, 1);
                    let lb_ip = match kept {
                        Some(ip) => ip,
                        None => allocate(
                            lb_second,
                            &used_ips(state, "services", "/status/loadBalancer/ingress/0/ip"),
                        )
                        .ok_or_else(|| {
                            ApiError::internal(format!("no LoadBalancer address left in {lb_cidr}"))
                        })?
                        .to_string(),
                    };
                    object["status"] = json!({ "loadBalancer": { "ingress": [{ "ip": lb_ip, "ipMode": "VIP" }] } });
                } else {
                    object["status"] = json!({ "loadBalancer": {} });
                }
            }
        }
        // Validation refused every other type.
        _ => {}
    }
    Ok(())
}

fn strip_node_ports(spec: &mut serde_json::Map<String, Value>) {
    for port in spec
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(port) = port.as_object_mut() {
            port.remove("nodePort");
        }
    }
    spec.remove("healthCheckNodePort");
}

/// kube-apiserver's default `--service-node-port-range`.
const NODE_PORTS: std::ops::RangeInclusive<i64> = 30_000..=32_767;

fn assign_node_ports(
    resource: &Resource,
    name: &str,
    state: &State,
    old_spec: Option<&Value>,
    spec: &mut serde_json::Map<String, Value>,
) -> Result<(), ApiError> {
    let mut used: HashSet<i64> = state
        .scan("services", None)
        .flat_map(|s| s["spec"]["ports"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["nodePort"].as_i64())
        .collect();
    let old_ports = old_spec
        .and_then(|s| s["ports"].as_array())
        .cloned()
        .unwrap_or_default();
    for (i, port) in spec
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(wanted) = port["nodePort"].as_i64() {
            if !NODE_PORTS.contains(&wanted) {
                return Err(ApiError::invalid(
                    resource,
                    name,
                    &format!("spec.ports[{i}].nodePort"),
                    format!(
                        "Invalid value: {wanted}: provided port is not in the valid range. The range of valid ports is 30000-32767"
                    ),
                ));
            }
            continue;
        }
        let kept = old_ports
            .iter()
            .find(|o| o["port"] == port["port"])
            .and_then(|o| o["nodePort"].as_i64());
        let node_port = kept
            .or_else(|| NODE_PORTS.clone().find(|p| !used.contains(p)))
            .unwrap_or(30_000);
        used.insert(node_port);
        port["nodePort"] = json!(node_port);
    }
    Ok(())
}

fn pod(index: u8, state: &State, old: Option<&Value>, object: &mut Value) {
    let (second, _) = range(index, 2);
    let ip = old
        .and_then(|o| o["status"]["podIP"].as_str())
        .map(str::to_owned)
        .or_else(|| {
            allocate(second, &used_ips(state, "pods", "/status/podIP")).map(|ip| ip.to_string())
        })
        .unwrap_or_default();
    let containers: Vec<Value> = object["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| json!({ "name": c["name"], "image": c["image"], "ready": true, "started": true, "restartCount": 0, "state": { "running": { "startedAt": super::store::now_rfc3339() } } }))
        .collect();
    let ready = json!({ "status": "True", "lastTransitionTime": super::store::now_rfc3339() });
    let condition = |kind: &str| {
        let mut c = ready.clone();
        c["type"] = json!(kind);
        c
    };
    object["status"] = json!({
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{ "ip": ip }],
        "hostIP": "127.0.0.1",
        "conditions": [condition("PodScheduled"), condition("Initialized"), condition("ContainersReady"), condition("Ready")],
        "containerStatuses": containers,
    });
}

fn workload(object: &mut Value) {
    let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
    if object["spec"]["replicas"].is_null() {
        object["spec"]["replicas"] = json!(1);
    }
    let generation = object["metadata"]["generation"].clone();
    object["status"] = json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "currentReplicas": replicas,
        "conditions": [
            { "type": "Available", "status": "True", "reason": "MinimumReplicasAvailable" },
            { "type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable" },
        ],
    });
}

fn crd(resource: &Resource, object: &mut Value) -> Result<(), ApiError> {
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let spec = &object["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    if group.is_empty()
        || plural.is_empty()
        || spec["names"]["kind"].as_str().is_none_or(str::is_empty)
    {
        return Err(ApiError::invalid(
            resource,
            &name,
            "spec",
            "Required value: group, names.plural and names.kind are required",
        ));
    }
    if name != format!("{plural}.{group}") {
        return Err(ApiError::invalid(
            resource,
            &name,
            "metadata.name",
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    if spec["versions"].as_array().is_none_or(Vec::is_empty) {
        return Err(ApiError::invalid(
            resource,
            &name,
            "spec.versions",
            "Invalid value: must have exactly one version marked as storage version",
        ));
    }
    let stored: Vec<Value> = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .map(|v| v["name"].clone())
        .collect();
    object["status"] = json!({
        "acceptedNames": object["spec"]["names"].clone(),
        "storedVersions": stored,
        "conditions": [
            { "type": "NamesAccepted", "status": "True", "reason": "NoConflicts" },
            { "type": "Established", "status": "True", "reason": "InitialNamesAccepted" },
        ],
    });
    Ok(())
}
