//! EndpointSlice (`discovery.k8s.io/v1`), the object ferry's bridge points
//! a Service at the ingress with: address type, addresses of that type,
//! port names and protocols; the address type never changes.
//!
//! One difference is deliberate: kube-apiserver refuses loopback addresses
//! (`127/8`), but the lab's whole network is loopback (its load balancers
//! are `127.11/16`), so the lab accepts them.

use super::{Causes, names};
use serde_json::Value;

pub fn validate(causes: &mut Causes, old: Option<&Value>, object: &Value) {
    let address_type = &object["addressType"];
    match address_type.as_str() {
        None | Some("") => causes.required("addressType", ""),
        Some("IPv4" | "IPv6" | "FQDN") => {}
        Some(_) => causes.not_supported("addressType", address_type, &["FQDN", "IPv4", "IPv6"]),
    }
    if let Some(old) = old
        && old["addressType"] != *address_type
    {
        // The addresses are then not checked against the new type.
        causes.invalid("addressType", address_type, "field is immutable");
        return;
    }
    for (i, endpoint) in object["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("endpoints[{i}].addresses");
        let addresses = endpoint["addresses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if addresses.is_empty() {
            causes.required(&field, "must contain at least 1 address");
        }
        for (j, address) in addresses.iter().enumerate() {
            let text = address.as_str().unwrap_or_default();
            match address_type.as_str() {
                Some("IPv4") | Some("IPv6") => match names::ip(text) {
                    Err(why) => causes.invalid(&format!("{field}[{j}]"), address, &why),
                    Ok(ip) if address_type == "IPv4" && !ip.is_ipv4() => {
                        causes.invalid(&field, address, "must be an IPv4 address")
                    }
                    Ok(ip) if address_type == "IPv6" && !ip.is_ipv6() => {
                        causes.invalid(&field, address, "must be an IPv6 address")
                    }
                    Ok(_) => {}
                },
                Some("FQDN") => causes.each(
                    &format!("{field}[{j}]"),
                    address,
                    names::dns1123_subdomain(text),
                ),
                _ => {}
            }
        }
    }
    let mut seen = Vec::new();
    for (i, port) in object["ports"].as_array().into_iter().flatten().enumerate() {
        let name = port["name"].as_str().unwrap_or_default();
        if !name.is_empty() {
            causes.each(
                &format!("ports[{i}].name"),
                &port["name"],
                names::dns1123_label(name),
            );
        }
        if seen.contains(&name) {
            causes.duplicate(&format!("ports[{i}].name"), &port["name"]);
        }
        seen.push(name);
        protocol(causes, &format!("ports[{i}].protocol"), &port["protocol"]);
    }
}

/// `TCP`, `UDP` or `SCTP`, as every port's protocol.
pub(super) fn protocol(causes: &mut Causes, field: &str, value: &Value) {
    match value.as_str() {
        None | Some("TCP" | "UDP" | "SCTP") => {}
        Some(_) => causes.not_supported(field, value, &["SCTP", "TCP", "UDP"]),
    }
}
