//! Deployments (and the other `apps/v1` workloads): replicas, a selector
//! that is set, not empty, matches the template's labels and never
//! changes, and the pod template's containers (names, images, ports).

use super::endpointslice::protocol;
use super::{Causes, names};
use serde_json::{Value, json};

pub fn validate(causes: &mut Causes, kind: &str, old: Option<&Value>, object: &Value) {
    let spec = &object["spec"];
    if let Some(n) = spec["replicas"].as_i64()
        && n < 0
    {
        causes.invalid(
            "spec.replicas",
            &spec["replicas"],
            "must be greater than or equal to 0",
        );
    }
    let selector = &spec["selector"];
    let labels = &spec["template"]["metadata"]["labels"];
    let match_labels = selector["matchLabels"].as_object();
    let expressions = selector["matchExpressions"].as_array();
    if selector.is_null() {
        causes.required("spec.selector", "");
    } else if match_labels.is_none_or(|m| m.is_empty()) && expressions.is_none_or(Vec::is_empty) {
        causes.invalid(
            "spec.selector",
            &json!({}),
            &format!("empty selector is invalid for {}", kind.to_lowercase()),
        );
    } else {
        causes.labels("spec.selector.matchLabels", &selector["matchLabels"]);
    }
    let matches = match_labels
        .is_some_and(|wanted| wanted.iter().all(|(k, v)| labels.get(k) == Some(v)))
        && expressions.is_none_or(Vec::is_empty);
    let empty_selector = !selector.is_null()
        && match_labels.is_none_or(|m| m.is_empty())
        && expressions.is_none_or(Vec::is_empty);
    if !matches && !empty_selector {
        causes.invalid(
            "spec.template.metadata.labels",
            labels,
            "`selector` does not match template `labels`",
        );
    }
    if let Some(old) = old
        && old["spec"]["selector"] != *selector
    {
        causes.invalid("spec.selector", selector, "field is immutable");
    }
    containers(causes, &spec["template"]["spec"]);
}

fn containers(causes: &mut Causes, pod: &Value) {
    let list = pod["containers"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        causes.required("spec.template.spec.containers", "");
    }
    let mut seen: Vec<String> = Vec::new();
    for (i, container) in list.iter().enumerate() {
        let at = format!("spec.template.spec.containers[{i}]");
        let name = container["name"].as_str().unwrap_or_default();
        if name.is_empty() {
            causes.required(&format!("{at}.name"), "");
        } else {
            causes.each(
                &format!("{at}.name"),
                &container["name"],
                names::dns1123_label(name),
            );
        }
        if seen.iter().any(|s| s == name) {
            causes.duplicate(&format!("{at}.name"), &container["name"]);
        }
        seen.push(name.to_owned());
        if container["image"]
            .as_str()
            .is_none_or(|i| i.trim().is_empty())
        {
            causes.required(&format!("{at}.image"), "");
        }
        for (j, port) in container["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let field = format!("{at}.ports[{j}].containerPort");
            match port["containerPort"].as_i64() {
                None | Some(0) => causes.required(&field, ""),
                Some(_) => causes.port(&field, &port["containerPort"]),
            }
            protocol(
                causes,
                &format!("{at}.ports[{j}].protocol"),
                &port["protocol"],
            );
        }
    }
}
