//! The lab's workload controller: Deployments and StatefulSets get their
//! pods (labels from the template, owned by the workload), a changed
//! template replaces them, and deleting the workload deletes them.

use crate::lab::apiserver::resources::{Resource, builtins};
use crate::lab::apiserver::{ChangeKind, ClusterStore, Write};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

fn resource(plural: &str) -> Option<Resource> {
    builtins().into_iter().find(|r| r.plural == plural)
}

pub async fn run(cluster: Arc<ClusterStore>, mut shutdown: watch::Receiver<bool>) {
    let mut changes = cluster.subscribe();
    reconcile_all(&cluster);
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match change {
            Ok(change) => match change.resource.as_str() {
                "deployments.apps" | "statefulsets.apps" if change.kind == ChangeKind::Deleted => {
                    delete_owned(&cluster, &change.object);
                }
                "deployments.apps" | "statefulsets.apps" => reconcile(
                    &cluster,
                    &change.object,
                    change.resource.starts_with("statefulsets"),
                ),
                // A deleted pod is replaced by its workload.
                "pods" if change.kind == ChangeKind::Deleted => {
                    if let Some(owner) = owner_of(&cluster, &change.object) {
                        reconcile(&cluster, &owner.0, owner.1);
                    }
                }
                _ => {}
            },
            Err(broadcast::error::RecvError::Lagged(_)) => reconcile_all(&cluster),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn reconcile_all(cluster: &ClusterStore) {
    let workloads: Vec<(Value, bool)> = cluster.with_state(|s| {
        s.scan("deployments.apps", None)
            .map(|d| (d.clone(), false))
            .chain(s.scan("statefulsets.apps", None).map(|d| (d.clone(), true)))
            .collect()
    });
    for (workload, stateful) in workloads {
        reconcile(cluster, &workload, stateful);
    }
}

fn owned_pods(cluster: &ClusterStore, workload: &Value) -> Vec<Value> {
    let uid = workload["metadata"]["uid"].clone();
    let namespace = workload["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_owned();
    cluster.with_state(|s| {
        s.scan("pods", Some(&namespace))
            .filter(|p| {
                p["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .cloned()
            .collect()
    })
}

fn owner_of(cluster: &ClusterStore, pod: &Value) -> Option<(Value, bool)> {
    let owner = pod["metadata"]["ownerReferences"].as_array()?.first()?;
    let stateful = owner["kind"] == "StatefulSet";
    let namespace = pod["metadata"]["namespace"].as_str()?;
    let key = format!(
        "{}/{namespace}/{}",
        if stateful {
            "statefulsets.apps"
        } else {
            "deployments.apps"
        },
        owner["name"].as_str()?
    );
    cluster
        .with_state(|s| s.objects.get(&key).cloned())
        .map(|w| (w, stateful))
}

fn reconcile(cluster: &ClusterStore, workload: &Value, stateful: bool) {
    let Some(pods) = resource("pods") else { return };
    if !workload["metadata"]["deletionTimestamp"].is_null() {
        return;
    }
    let (Some(name), Some(namespace)) = (
        workload["metadata"]["name"].as_str(),
        workload["metadata"]["namespace"].as_str(),
    ) else {
        return;
    };
    let template = &workload["spec"]["template"];
    let desired = workload["spec"]["replicas"].as_u64().unwrap_or(1) as usize;
    let hash: String = Sha256::digest(template.to_string().as_bytes())
        .iter()
        .take(5)
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut current = owned_pods(cluster, workload);
    // Pods of an older template go first.
    for pod in current
        .iter()
        .filter(|p| p["metadata"]["labels"]["pod-template-hash"].as_str() != Some(&hash))
    {
        if let Some(pod_name) = pod["metadata"]["name"].as_str() {
            let _ = cluster.delete(&pods, Some(namespace), pod_name, Write::default());
        }
    }
    current.retain(|p| p["metadata"]["labels"]["pod-template-hash"].as_str() == Some(&hash));
    for extra in current.iter().skip(desired) {
        if let Some(pod_name) = extra["metadata"]["name"].as_str() {
            let _ = cluster.delete(&pods, Some(namespace), pod_name, Write::default());
        }
    }
    for i in current.len()..desired {
        let mut labels = template["metadata"]["labels"].clone();
        if !labels.is_object() {
            labels = json!({});
        }
        labels["pod-template-hash"] = json!(hash);
        let pod_name = if stateful {
            format!("{name}-{i}")
        } else {
            format!(
                "{name}-{hash}-{}",
                &crate::lab::apiserver::store::new_uid()[..5]
            )
        };
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": namespace,
                "labels": labels,
                "ownerReferences": [{
                    "apiVersion": "apps/v1",
                    "kind": if stateful { "StatefulSet" } else { "Deployment" },
                    "name": name,
                    "uid": workload["metadata"]["uid"],
                    "controller": true,
                }],
            },
            "spec": template["spec"],
        });
        let _ = cluster.create(&pods, Some(namespace), pod, Write::default());
    }
}

fn delete_owned(cluster: &ClusterStore, workload: &Value) {
    let Some(pods) = resource("pods") else { return };
    for pod in owned_pods(cluster, workload) {
        if let (Some(ns), Some(name)) = (
            pod["metadata"]["namespace"].as_str(),
            pod["metadata"]["name"].as_str(),
        ) {
            let _ = cluster.delete(&pods, Some(ns), name, Write::default());
        }
    }
}
