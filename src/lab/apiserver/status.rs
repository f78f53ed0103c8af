//! API errors as a real API server returns them: a `Status` object with the
//! HTTP code, a reason clients switch on (`NotFound`, `AlreadyExists`,
//! `Conflict`, `Invalid`, ...) and kubectl's familiar message text.

use super::resources::Resource;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// `details` naming the object; the core group is left out, as the
    /// real server omits empty fields.
    fn about(mut self, resource: &Resource, name: &str) -> Self {
        let mut details = json!({ "name": name, "kind": resource.plural });
        if !resource.group.is_empty() {
            details["group"] = json!(resource.group);
        }
        self.details = Some(details);
        self
    }

    pub fn not_found(resource: &Resource, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", resource.group_resource()),
        )
        .about(resource, name)
    }

    pub fn namespace_not_found(namespace: &str) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            format!("namespaces \"{namespace}\" not found"),
        );
        e.details = Some(json!({ "name": namespace, "kind": "namespaces" }));
        e
    }

    pub fn already_exists(resource: &Resource, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", resource.group_resource()),
        )
        .about(resource, name)
    }

    pub fn conflict(resource: &Resource, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                resource.group_resource()
            ),
        )
        .about(resource, name)
    }

    /// 422 with one cause: `Service "app1" is invalid: spec.clusterIP: Invalid value: ...`.
    pub fn invalid(
        resource: &Resource,
        name: &str,
        field: &str,
        detail: impl Into<String>,
    ) -> Self {
        Self::invalid_causes(resource, name, vec![Cause::new(field, detail)])
    }

    /// 422 with every cause validation found, worded as kube-apiserver
    /// words them: one cause after a colon, several in brackets.
    pub fn invalid_causes(resource: &Resource, name: &str, causes: Vec<Cause>) -> Self {
        Self::invalid_kind(&resource.group, &resource.kind, name, causes)
    }

    /// 422 about an object of `kind` in `group` (a request's options are
    /// `PatchOptions.meta.k8s.io`, not the object patched).
    pub fn invalid_kind(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        // The message names each distinct cause once (Go's aggregate
        // dedups), the details list them all.
        let mut listed: Vec<String> = Vec::new();
        for cause in &causes {
            let line = format!("{}: {}", cause.field, cause.message);
            if !listed.contains(&line) {
                listed.push(line);
            }
        }
        let summary = match listed.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let qualified = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{qualified} \"{name}\" is invalid: {summary}"),
        );
        let mut details = json!({ "kind": kind });
        if !name.is_empty() {
            details["name"] = json!(name);
        }
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        details["causes"] = causes
            .iter()
            .map(|c| json!({ "reason": c.reason, "message": c.message, "field": c.field }))
            .collect();
        e.details = Some(details);
        e
    }

    /// 422 for a JSON patch that cannot be applied (a failed `test`, a
    /// missing path): kube-apiserver says no more than this.
    pub fn patch_rejected() -> Self {
        let mut e = Self::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        );
        e.details = Some(json!({}));
        e
    }

    /// 413, as kube-apiserver answers a body over its request limit or an
    /// object etcd refuses to store (over 1.5 MiB).
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, "RequestEntityTooLarge", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn too_many_requests() -> Self {
        Self::new(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 404 for a path the server does not serve (kubectl adds the path).
    pub fn not_found_path() -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        e.details = Some(json!({}));
        e
    }

    pub fn method_not_allowed() -> Self {
        let mut e = Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        );
        e.details = Some(json!({}));
        e
    }

    /// 415 for a body type the server does not read at all.
    pub fn unsupported_media_type() -> Self {
        let mut e = Self::new(415, "UnsupportedMediaType", "415: Unsupported Media Type");
        e.details = Some(json!({}));
        e
    }

    /// 415 for a patch type the resource does not take (strategic merge
    /// on a custom resource).
    pub fn unsupported_patch(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// One thing validation found wrong: the field's path and the message
/// (`Invalid value: 70000: must be between 1 and 65535, inclusive`), whose
/// opening words give the reason clients read (`FieldValueInvalid`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}

impl Cause {
    pub fn new(field: &str, message: impl Into<String>) -> Cause {
        let message = message.into();
        let reason = [
            ("Required value", "FieldValueRequired"),
            ("Forbidden", "FieldValueForbidden"),
            ("Duplicate value", "FieldValueDuplicate"),
            ("Unsupported value", "FieldValueNotSupported"),
            ("Too long", "FieldValueTooLong"),
            ("Too many", "FieldValueTooMany"),
        ]
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
        .map_or("FieldValueInvalid", |(_, reason)| reason);
        Cause {
            reason,
            field: field.to_owned(),
            message,
        }
    }
}

/// The `Status` a successful delete of a collection-less object returns.
pub fn success(details: Value) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details })
}
