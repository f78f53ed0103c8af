//! `to_external_name` and `to_cluster_ip`: the heart of the migration
//! pattern. A ClusterIP Service becomes an ExternalName Service (clients keep
//! calling `app1.app1-ns` and are sent to `old.<zone>`, later `new.<zone>`),
//! and back again when the move is over.
//!
//! How the API server behaves (pkg/registry/core/service/storage,
//! `dropTypeDependentFields`, since Kubernetes 1.20): on an update that
//! changes `type` to one that needs no cluster IP, fields the update left
//! *unchanged* — `clusterIP`, `clusterIPs`, `ipFamilies`, `ipFamilyPolicy`,
//! node ports, `healthCheckNodePort` — are cleared and their allocations
//! released. So ClusterIP -> ExternalName is one merge patch that sets
//! `type` and `externalName`, drops the `selector` (never wiped by the
//! server) and records the old spec in an annotation. The way back is one
//! merge patch restoring that spec; the server allocates the old clusterIP
//! again when it is still free. If it was taken meanwhile (422), a second
//! write lets the server pick a new one.

use super::KubeCluster;
use super::errors::{Failure, Target};
use crate::ports::cluster::{ClusterError, PatchType};
use serde_json::{Value, json};

/// Where `to_external_name` keeps the spec `to_cluster_ip` restores.
pub const SAVED_SPEC: &str = "ferry.dev/cluster-ip-spec";

/// The spec fields `to_cluster_ip` puts back (with what was allocated:
/// clusterIP(s) and node ports, requested again).
const SAVED_FIELDS: &[&str] = &[
    "type",
    "ports",
    "selector",
    "clusterIP",
    "clusterIPs",
    "ipFamilies",
    "ipFamilyPolicy",
    "sessionAffinity",
    "sessionAffinityConfig",
    "internalTrafficPolicy",
    "externalTrafficPolicy",
    "healthCheckNodePort",
    "publishNotReadyAddresses",
    "loadBalancerClass",
    "loadBalancerSourceRanges",
    "allocateLoadBalancerNodePorts",
    "externalIPs",
];

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn spec_str<'a>(svc: &'a Value, key: &str) -> &'a str {
    svc.pointer(&format!("/spec/{key}"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The merge patch that turns `live` (not an ExternalName) into an
/// ExternalName Service pointing at `host`, remembering its spec.
pub fn external_name_patch(live: &Value, host: &str) -> Value {
    let mut saved = serde_json::Map::new();
    if let Some(spec) = live.get("spec").and_then(Value::as_object) {
        for key in SAVED_FIELDS {
            if let Some(v) = spec.get(*key) {
                saved.insert((*key).to_owned(), v.clone());
            }
        }
    }
    json!({
        "metadata": {"annotations": {SAVED_SPEC: Value::Object(saved).to_string()}},
        "spec": {"type": "ExternalName", "externalName": host, "selector": null}
    })
}

/// The merge patch that restores the spec saved by [`external_name_patch`];
/// `reuse_ips: false` leaves the cluster IP and node ports to the server.
pub fn cluster_ip_patch(saved: &Value, reuse_ips: bool) -> Value {
    let mut spec = saved.as_object().cloned().unwrap_or_default();
    spec.insert("externalName".into(), Value::Null);
    spec.entry("type").or_insert_with(|| json!("ClusterIP"));
    if !reuse_ips {
        for key in ["clusterIP", "clusterIPs", "healthCheckNodePort"] {
            spec.remove(key);
        }
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                port.remove("nodePort");
            }
        }
    }
    json!({
        "metadata": {"annotations": {SAVED_SPEC: null}},
        "spec": Value::Object(spec)
    })
}

async fn live_service(
    c: &KubeCluster,
    verb: &str,
    ns: &str,
    name: &str,
) -> Result<(crate::ports::cluster::Resource, String, Target, Value), ClusterError> {
    let (r, ns, target) = c.target(verb, "v1/Service", ns, name).await?;
    let Some(live) = c.get_at(&r, &ns, name, &target).await? else {
        return Err(target.error(c.cluster(), Some(404), "NotFound", "no such Service".into()));
    };
    Ok((r, ns, target, live))
}

pub async fn to_external_name(
    c: &KubeCluster,
    ns: &str,
    name: &str,
    host: &str,
) -> Result<Value, ClusterError> {
    if !valid_host(host) {
        let target = Target::new("to_external_name", "Service", ns, name);
        return Err(target.error(
            c.cluster(),
            None,
            "Invalid",
            format!("`{host}` is no DNS name an ExternalName Service can point at"),
        ));
    }
    let (r, ns, target, live) = live_service(c, "to_external_name", ns, name).await?;
    let patch = if spec_str(&live, "type") == "ExternalName" {
        if spec_str(&live, "externalName") == host {
            return Ok(live); // already done: a rerun writes nothing
        }
        // Already bridged: point it elsewhere (old.<zone> -> new.<zone>).
        json!({"spec": {"externalName": host}})
    } else {
        external_name_patch(&live, host)
    };
    let req = c.patch_request(&r, &ns, name, &patch, PatchType::Merge, &target)?;
    c.t.send(&target, &req).await
}

pub async fn to_cluster_ip(c: &KubeCluster, ns: &str, name: &str) -> Result<Value, ClusterError> {
    let (r, ns, target, live) = live_service(c, "to_cluster_ip", ns, name).await?;
    if spec_str(&live, "type") != "ExternalName" {
        return Ok(live); // already done
    }
    let saved = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(SAVED_SPEC))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .filter(Value::is_object);
    let Some(saved) = saved else {
        return Err(target.error(
            c.cluster(),
            None,
            "NoSavedSpec",
            format!(
                "the Service has no `{SAVED_SPEC}` annotation (to_external_name did not convert it); apply the ClusterIP Service you want instead"
            ),
        ));
    };
    let asked_ip = saved
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let patch = cluster_ip_patch(&saved, true);
    let req = c.patch_request(&r, &ns, name, &patch, PatchType::Merge, &target)?;
    match c.t.send_raw(&req).await {
        Ok(v) => Ok(v),
        Err(f @ Failure::Status { status: 422, .. })
            if !asked_ip.is_empty() && asked_ip != "None" =>
        {
            (c.t.notify)(format!(
                "clusterIP {asked_ip} of Service {ns}/{name} on cluster `{}` is no longer free ({}); letting the server allocate a new one",
                c.cluster(),
                f.short()
            ));
            let patch = cluster_ip_patch(&saved, false);
            let req = c.patch_request(&r, &ns, name, &patch, PatchType::Merge, &target)?;
            c.t.send(&target, &req).await
        }
        Err(f) => Err(c.t.error(&target, &f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_name_patch_saves_the_spec_and_leaves_ips_to_the_server() {
        let live = json!({"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "selector": {"app": "app1"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            "sessionAffinity": "None", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}});
        let patch = external_name_patch(&live, "old.mycompany.internal");
        assert_eq!(
            patch["spec"],
            json!({"type": "ExternalName", "externalName": "old.mycompany.internal", "selector": null})
        );
        let saved: Value = serde_json::from_str(
            patch["metadata"]["annotations"][SAVED_SPEC]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(saved["clusterIP"], "10.96.0.10");
        assert_eq!(saved["selector"], json!({"app": "app1"}));
        let back = cluster_ip_patch(&saved, true);
        assert_eq!(back["spec"]["clusterIPs"], json!(["10.96.0.10"]));
        assert_eq!(back["spec"]["externalName"], Value::Null);
        assert_eq!(back["metadata"]["annotations"][SAVED_SPEC], Value::Null);
        let fresh = cluster_ip_patch(&saved, false);
        assert!(fresh["spec"].get("clusterIP").is_none());
        assert_eq!(
            fresh["spec"]["ports"],
            json!([{"port": 80, "protocol": "TCP", "targetPort": 80}])
        );
    }

    #[test]
    fn hosts_are_checked() {
        assert!(valid_host("old.mycompany.internal"));
        assert!(valid_host("new.zone."));
        assert!(!valid_host(""));
        assert!(!valid_host("a b"));
        assert!(!valid_host("http://x"));
    }
}
