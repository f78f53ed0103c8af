//! Field validation as kube-apiserver 1.36 does it for the kinds ferry
//! writes, with its messages and causes (held to recorded answers by the
//! `lab_recorded` test): object metadata for every kind here, then per kind
//! in its own file. Validation runs after defaulting and before the lab's
//! allocation (cluster IPs, node ports), as in the real server; every
//! problem found is reported at once, as one 422 with one cause each.

mod config;
mod endpointslice;
mod lease;
pub mod names;
mod service;
mod workload;

use super::resources::Resource;
use super::status::{ApiError, Cause};
use serde_json::Value;

/// The causes found so far, in the real server's wording.
#[derive(Default)]
pub struct Causes(Vec<Cause>);

impl Causes {
    /// `Invalid value: <value>: <why>`.
    pub fn invalid(&mut self, field: &str, value: &Value, why: &str) {
        self.0.push(Cause::new(
            field,
            format!("Invalid value: {}: {why}", names::shown(value)),
        ));
    }

    /// One `invalid` per message of a format check.
    pub fn each(&mut self, field: &str, value: &Value, errors: Vec<String>) {
        for why in errors {
            self.invalid(field, value, &why);
        }
    }

    pub fn required(&mut self, field: &str, detail: &str) {
        let message = if detail.is_empty() {
            "Required value".to_owned()
        } else {
            format!("Required value: {detail}")
        };
        self.0.push(Cause::new(field, message));
    }

    pub fn forbidden(&mut self, field: &str, detail: &str) {
        self.0
            .push(Cause::new(field, format!("Forbidden: {detail}")));
    }

    pub fn duplicate(&mut self, field: &str, value: &Value) {
        self.0.push(Cause::new(
            field,
            format!("Duplicate value: {}", names::shown(value)),
        ));
    }

    pub fn not_supported(&mut self, field: &str, value: &Value, supported: &[&str]) {
        let listed: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        self.0.push(Cause::new(
            field,
            format!(
                "Unsupported value: {}: supported values: {}",
                names::shown(value),
                listed.join(", ")
            ),
        ));
    }

    /// A port number field: 1-65535.
    pub fn port(&mut self, field: &str, value: &Value) {
        if let Some(n) = value.as_i64()
            && !(1..=65535).contains(&n)
        {
            self.invalid(field, value, "must be between 1 and 65535, inclusive");
        }
    }

    /// Labels as `ValidateLabels` checks them: keys, then values.
    pub fn labels(&mut self, field: &str, labels: &Value) {
        for (key, value) in labels.as_object().into_iter().flatten() {
            self.each(field, &Value::String(key.clone()), names::label_key(key));
            let text = value.as_str().unwrap_or_default();
            self.each(field, value, names::label_value(text));
        }
    }

    /// An object's name: Namespaces and Services are RFC 1123 labels
    /// (1.36 relaxed Services from DNS-1035 labels), everything else RFC
    /// 1123 subdomains.
    fn name(&mut self, resource: &Resource, name: &str) {
        if name.is_empty() {
            // generateName filled it in, or object_name refused it already.
            return;
        }
        let errors = match (resource.group.as_str(), resource.kind.as_str()) {
            ("", "Service" | "Namespace") => names::dns1123_label(name),
            _ => names::dns1123_subdomain(name),
        };
        self.each("metadata.name", &Value::String(name.to_owned()), errors);
    }

    fn into_result(self, resource: &Resource, name: &str) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid_causes(resource, name, self.0))
        }
    }
}

/// Checks `object` (with `old`, the live object, on an update) as
/// kube-apiserver validates the kind.
pub fn validate(resource: &Resource, old: Option<&Value>, object: &Value) -> Result<(), ApiError> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let mut causes = Causes::default();
    if old.is_none() {
        causes.name(resource, name);
    }
    metadata(&mut causes, object, old.is_some());
    match (resource.group.as_str(), resource.kind.as_str()) {
        ("", "Service") => service::validate(&mut causes, object),
        ("", "ConfigMap") => config::configmap(&mut causes, old, object),
        ("", "Secret") => config::secret(&mut causes, old, object),
        ("apps", "Deployment" | "StatefulSet" | "ReplicaSet" | "DaemonSet") => {
            workload::validate(&mut causes, &resource.kind, old, object)
        }
        ("discovery.k8s.io", "EndpointSlice") => endpointslice::validate(&mut causes, old, object),
        ("coordination.k8s.io", "Lease") => lease::validate(&mut causes, object),
        _ => {}
    }
    causes.into_result(resource, name)
}

/// Labels and annotation keys. kube-apiserver 1.36 reports a bad label or
/// annotation four times over on an update (its update validation runs the
/// metadata checks four times); the recorded answers say so, and so does
/// the lab.
fn metadata(causes: &mut Causes, object: &Value, update: bool) {
    let mut found = Causes::default();
    found.labels("metadata.labels", &object["metadata"]["labels"]);
    for key in object["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        found.each(
            "metadata.annotations",
            &Value::String(key.clone()),
            names::label_key(key),
        );
    }
    let times = if update { 4 } else { 1 };
    for _ in 0..times {
        causes.0.extend(found.0.iter().cloned());
    }
}
