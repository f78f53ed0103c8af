//! The lab's EndpointSlice controller, as kube-controller-manager's runs:
//! every Service with a selector gets one slice (`<service>-<hash>`,
//! labelled `kubernetes.io/service-name` and managed by
//! `endpointslice-controller.k8s.io`) listing the running pods it selects,
//! with each Service port's name, protocol and resolved target port. A
//! Service that loses its selector (or becomes ExternalName, or is deleted)
//! loses the controller's slices; slices someone else manages (another
//! `endpointslice.kubernetes.io/managed-by`, such as ferry's bridge) are
//! never touched. The lab's kube-proxy routes by slices only, so a
//! selectorless Service with a hand-made slice routes exactly as on a real
//! cluster.

use crate::lab::apiserver::resources::{Resource, builtins};
use crate::lab::apiserver::selector::LabelSelector;
use crate::lab::apiserver::{ChangeKind, ClusterStore, Write};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER: &str = "endpointslice-controller.k8s.io";
/// Where the store keeps EndpointSlices.
pub const STORE: &str = "endpointslices.discovery.k8s.io";

fn resource() -> Option<Resource> {
    builtins()
        .into_iter()
        .find(|r| r.plural == "endpointslices")
}

pub async fn run(cluster: Arc<ClusterStore>, mut shutdown: watch::Receiver<bool>) {
    let mut changes = cluster.subscribe();
    reconcile_namespace(&cluster, None);
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match change {
            Ok(change) if change.resource == "services" || change.resource == "pods" => {
                let ns = change.object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if change.resource == "services" && change.kind == ChangeKind::Deleted {
                    let name = change.object["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default();
                    remove_managed(&cluster, &ns, name);
                } else {
                    reconcile_namespace(&cluster, Some(&ns));
                }
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => reconcile_namespace(&cluster, None),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Brings the controller's slices of every Service in `namespace` (all
/// namespaces: `None`) in line with their pods.
fn reconcile_namespace(cluster: &ClusterStore, namespace: Option<&str>) {
    let services: Vec<Value> =
        cluster.with_state(|s| s.scan("services", namespace).cloned().collect());
    for service in services {
        reconcile(cluster, &service);
    }
}

fn reconcile(cluster: &ClusterStore, service: &Value) {
    let (Some(ns), Some(name)) = (
        service["metadata"]["namespace"].as_str(),
        service["metadata"]["name"].as_str(),
    ) else {
        return;
    };
    let selector = service["spec"]["selector"]
        .as_object()
        .filter(|s| !s.is_empty())
        .map(LabelSelector::from_map);
    let Some(selector) = selector.filter(|_| service["spec"]["type"] != "ExternalName") else {
        remove_managed(cluster, ns, name);
        return;
    };
    let Some(slices) = resource() else { return };
    let slice_name = format!("{name}-{}", short_hash(service));
    let desired = desired_slice(cluster, service, &selector, &slice_name);
    let live = cluster.with_state(|s| {
        s.objects
            .get(&format!("{STORE}/{ns}/{slice_name}"))
            .cloned()
    });
    match live {
        Some(live)
            if live["endpoints"] == desired["endpoints"] && live["ports"] == desired["ports"] => {}
        Some(live) => {
            let mut next = desired;
            next["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"].clone();
            let _ = cluster.replace(&slices, Some(ns), &slice_name, next, Write::default());
        }
        None => {
            let _ = cluster.create(&slices, Some(ns), desired, Write::default());
        }
    }
}

/// Five characters that stay the same for one Service object (its uid), as
/// the controller's generated names do.
fn short_hash(service: &Value) -> String {
    let uid = service["metadata"]["uid"].as_str().unwrap_or_default();
    Sha256::digest(uid.as_bytes())
        .iter()
        .take(3)
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..5]
        .to_owned()
}

fn desired_slice(
    cluster: &ClusterStore,
    service: &Value,
    selector: &LabelSelector,
    slice_name: &str,
) -> Value {
    let ns = service["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let name = service["metadata"]["name"].as_str().unwrap_or_default();
    let pods: Vec<Value> = cluster.with_state(|s| {
        s.scan("pods", Some(ns))
            .filter(|p| {
                selector.matches(&p["metadata"]["labels"]) && p["status"]["podIP"].is_string()
            })
            .cloned()
            .collect()
    });
    let endpoints: Vec<Value> = pods
        .iter()
        .map(|pod| {
            let terminating = !pod["metadata"]["deletionTimestamp"].is_null();
            let running = pod["status"]["phase"] == "Running";
            json!({
                "addresses": [pod["status"]["podIP"]],
                "conditions": {
                    "ready": running && !terminating,
                    "serving": running,
                    "terminating": terminating,
                },
                "targetRef": {
                    "kind": "Pod",
                    "namespace": ns,
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                },
            })
        })
        .collect();
    let ports: Vec<Value> = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let port = p["port"].as_u64().and_then(|n| u16::try_from(n).ok());
            let target = pods
                .first()
                .and_then(|pod| super::network::target_port(&p["targetPort"], pod))
                .or_else(|| p["targetPort"].as_u64().and_then(|n| u16::try_from(n).ok()))
                .or(port);
            json!({
                "name": p["name"].as_str().unwrap_or_default(),
                "protocol": p["protocol"].as_str().unwrap_or("TCP"),
                "port": target,
            })
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": slice_name,
            "namespace": ns,
            "labels": { SERVICE_NAME: name, MANAGED_BY: CONTROLLER },
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "Service",
                "name": name,
                "uid": service["metadata"]["uid"],
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    })
}

/// Deletes the controller's slices of `namespace/service` (not others').
fn remove_managed(cluster: &ClusterStore, namespace: &str, service: &str) {
    let Some(slices) = resource() else { return };
    let ours: Vec<String> = cluster.with_state(|s| {
        s.scan(STORE, Some(namespace))
            .filter(|slice| {
                let labels = &slice["metadata"]["labels"];
                labels[SERVICE_NAME] == service && labels[MANAGED_BY] == CONTROLLER
            })
            .filter_map(|slice| slice["metadata"]["name"].as_str().map(str::to_owned))
            .collect()
    });
    for name in ours {
        let _ = cluster.delete(&slices, Some(namespace), &name, Write::default());
    }
}
