//! Service fields, after defaulting and before the lab allocates cluster
//! IPs and node ports: the type, an ExternalName's host, ports (required
//! unless ExternalName, named when several, unique names, protocols,
//! numbers, target ports by number or IANA name, no node port on a
//! ClusterIP Service) and the selector's labels.

use super::endpointslice::protocol;
use super::{Causes, names};
use serde_json::Value;

pub fn validate(causes: &mut Causes, object: &Value) {
    let spec = &object["spec"];
    let kind = spec["type"].as_str().unwrap_or("ClusterIP");
    if !matches!(
        kind,
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        causes.not_supported(
            "spec.type",
            &spec["type"],
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        );
    }
    if kind == "ExternalName" {
        match spec["externalName"].as_str().filter(|n| !n.is_empty()) {
            None => causes.required("spec.externalName", ""),
            Some(host) => causes.each(
                "spec.externalName",
                &spec["externalName"],
                names::dns1123_subdomain(host.trim_end_matches('.')),
            ),
        }
    }
    let ports = spec["ports"].as_array().cloned().unwrap_or_default();
    if ports.is_empty() && kind != "ExternalName" {
        causes.required("spec.ports", "");
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        match port["name"].as_str().filter(|n| !n.is_empty()) {
            None if ports.len() > 1 => causes.required(&format!("{at}.name"), ""),
            None => {}
            Some(name) => {
                causes.each(
                    &format!("{at}.name"),
                    &port["name"],
                    names::dns1123_label(name),
                );
                if seen.contains(&name) {
                    causes.duplicate(&format!("{at}.name"), &port["name"]);
                }
                seen.push(name);
            }
        }
        causes.port(&format!("{at}.port"), &port["port"]);
        protocol(causes, &format!("{at}.protocol"), &port["protocol"]);
        match &port["targetPort"] {
            Value::String(name) => causes.each(
                &format!("{at}.targetPort"),
                &port["targetPort"],
                names::port_name(name),
            ),
            number => causes.port(&format!("{at}.targetPort"), number),
        }
        if kind == "ClusterIP" && port["nodePort"].as_i64().is_some_and(|n| n != 0) {
            causes.forbidden(
                &format!("{at}.nodePort"),
                "may not be used when `type` is 'ClusterIP'",
            );
        }
    }
    causes.labels("spec.selector", &spec["selector"]);
}
