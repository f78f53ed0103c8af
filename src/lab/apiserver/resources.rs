//! The kinds a lab cluster serves: built-in resources plus every
//! CustomResourceDefinition stored in the cluster, and the discovery
//! documents (`/api`, `/apis`, resource lists) that describe them.

use serde_json::{Value, json};

/// One served resource (a kind at a group/version).
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub subresources: Vec<String>,
    /// Groups of resources kubectl expands a category name to (`kubectl get
    /// all` asks for every resource in `all`), as a real server lists them.
    pub categories: Vec<String>,
}

/// The built-in resources kube-apiserver puts in the category `all`.
const IN_ALL: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "deployments",
    "replicasets",
    "statefulsets",
    "daemonsets",
    "jobs",
    "cronjobs",
    "horizontalpodautoscalers",
];

impl Resource {
    fn builtin(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
        short: &[&str],
        subs: &[&str],
    ) -> Self {
        Resource {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            namespaced,
            short_names: short.iter().map(|s| s.to_string()).collect(),
            subresources: subs.iter().map(|s| s.to_string()).collect(),
            categories: if IN_ALL.contains(&plural) {
                vec!["all".into()]
            } else {
                Vec::new()
            },
        }
    }

    /// Whether a CRD defines it (custom resources take no strategic merge
    /// patch and always carry a generation).
    pub fn is_custom(&self) -> bool {
        !builtins()
            .iter()
            .any(|b| b.group == self.group && b.plural == self.plural)
    }

    /// Whether a PUT that finds no object creates it (kube-apiserver's
    /// `AllowCreateOnUpdate`): Services, Endpoints and Leases.
    pub fn creates_on_update(&self) -> bool {
        matches!(
            (self.group.as_str(), self.kind.as_str()),
            ("", "Service" | "Endpoints") | ("coordination.k8s.io", "Lease")
        )
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The store key part that does not depend on the version.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The resource described by a CustomResourceDefinition, one per served version.
    pub fn from_crd(crd: &Value) -> Vec<Resource> {
        let spec = &crd["spec"];
        let names = &spec["names"];
        let (Some(group), Some(kind), Some(plural)) = (
            spec["group"].as_str(),
            names["kind"].as_str(),
            names["plural"].as_str(),
        ) else {
            return Vec::new();
        };
        let singular = names["singular"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| kind.to_lowercase());
        let short_names: Vec<String> = names["shortNames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect();
        let categories: Vec<String> = names["categories"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect();
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        spec["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["served"].as_bool().unwrap_or(true))
            .filter_map(|v| v["name"].as_str())
            .map(|version| Resource {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
                plural: plural.into(),
                singular: singular.clone(),
                namespaced,
                short_names: short_names.clone(),
                subresources: vec!["status".into()],
                categories: categories.clone(),
            })
            .collect()
    }

    /// Whether the resource is a review: a request answered at once and
    /// never stored (`SelfSubjectReview`), so `create` is its only verb.
    pub fn create_only(&self) -> bool {
        matches!(
            (self.group.as_str(), self.plural.as_str()),
            ("authentication.k8s.io", "selfsubjectreviews")
        )
    }

    fn discovery_entry(&self) -> Vec<Value> {
        let verbs: &[&str] = if self.create_only() {
            &["create"]
        } else {
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        };
        let mut entry = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
            "shortNames": self.short_names,
        });
        if !self.categories.is_empty() {
            entry["categories"] = json!(self.categories);
        }
        let mut entries = vec![entry];
        for sub in &self.subresources {
            let (kind, verbs): (&str, Vec<&str>) = match sub.as_str() {
                "exec" => ("PodExecOptions", vec!["create", "get"]),
                _ => (&self.kind, vec!["get", "patch", "update"]),
            };
            entries.push(json!({ "name": format!("{}/{sub}", self.plural), "singularName": "", "namespaced": self.namespaced, "kind": kind, "verbs": verbs }));
        }
        entries
    }
}

/// The built-in kinds every lab cluster serves.
/// Whether kube-apiserver itself serves `group` (`""` is the core group).
pub fn is_builtin_group(group: &str) -> bool {
    builtins().iter().any(|r| r.group == group)
}

pub fn builtins() -> Vec<Resource> {
    vec![
        Resource::builtin(
            "",
            "v1",
            "Namespace",
            "namespaces",
            false,
            &["ns"],
            &["status", "finalize"],
        ),
        Resource::builtin("", "v1", "Service", "services", true, &["svc"], &["status"]),
        Resource::builtin(
            "",
            "v1",
            "Pod",
            "pods",
            true,
            &["po"],
            &["status", "exec", "log"],
        ),
        Resource::builtin("", "v1", "ConfigMap", "configmaps", true, &["cm"], &[]),
        Resource::builtin("", "v1", "Secret", "secrets", true, &[], &[]),
        Resource::builtin("", "v1", "Endpoints", "endpoints", true, &["ep"], &[]),
        Resource::builtin(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            true,
            &[],
            &[],
        ),
        Resource::builtin(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            true,
            &["sa"],
            &[],
        ),
        Resource::builtin(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            &["pvc"],
            &["status"],
        ),
        Resource::builtin("", "v1", "Event", "events", true, &["ev"], &[]),
        Resource::builtin(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            true,
            &["deploy"],
            &["status", "scale"],
        ),
        Resource::builtin(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            true,
            &["sts"],
            &["status", "scale"],
        ),
        Resource::builtin(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            true,
            &["rs"],
            &["status", "scale"],
        ),
        Resource::builtin(
            "apps",
            "v1",
            "DaemonSet",
            "daemonsets",
            true,
            &["ds"],
            &["status"],
        ),
        Resource::builtin("batch", "v1", "Job", "jobs", true, &[], &["status"]),
        Resource::builtin(
            "batch",
            "v1",
            "CronJob",
            "cronjobs",
            true,
            &["cj"],
            &["status"],
        ),
        Resource::builtin(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            true,
            &["ing"],
            &["status"],
        ),
        // Leader election and ferry's run locks (`kubernetes://` journals).
        Resource::builtin(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            &[],
            &[],
        ),
        // "Who am I" (`kubectl auth whoami`): answered with the lab's user.
        Resource::builtin(
            "authentication.k8s.io",
            "v1",
            "SelfSubjectReview",
            "selfsubjectreviews",
            false,
            &[],
            &[],
        ),
        Resource::builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
            &["status"],
        ),
    ]
}

/// `/api`
pub fn core_versions() -> Value {
    json!({ "kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1" }] })
}

/// `/apis`: every group with its versions, the first listed preferred.
pub fn group_list(resources: &[Resource]) -> Value {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for r in resources.iter().filter(|r| !r.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => {
                versions.push(r.version.clone())
            }
            Some(_) => {}
            None => groups.push((r.group.clone(), vec![r.version.clone()])),
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| json!({ "groupVersion": format!("{group}/{v}"), "version": v }))
                .collect();
            json!({ "name": group, "versions": versions, "preferredVersion": versions[0] })
        })
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// `/api/v1` or `/apis/{group}/{version}`; `None` if nothing is served there.
pub fn resource_list(resources: &[Resource], group: &str, version: &str) -> Option<Value> {
    let served: Vec<&Resource> = resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    let entries: Vec<Value> = served.iter().flat_map(|r| r.discovery_entry()).collect();
    Some(
        json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries }),
    )
}

/// `/openapi/v3`: one document per group-version.
pub fn openapi_index(resources: &[Resource]) -> Value {
    let mut paths = serde_json::Map::new();
    for r in resources {
        let path = if r.group.is_empty() {
            format!("api/{}", r.version)
        } else {
            format!("apis/{}/{}", r.group, r.version)
        };
        paths.insert(
            path.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{path}") }),
        );
    }
    json!({ "paths": paths })
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/{group}/{version}`: the operations
/// of every resource there, each tagged with its group-version-kind and the
/// `fieldValidation` parameter, which is what kubectl reads to choose
/// server-side field validation. Schemas are open (the lab validates kinds
/// it knows itself).
pub fn openapi_document(resources: &[Resource], group: &str, version: &str) -> Option<Value> {
    let served: Vec<&Resource> = resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for r in served {
        let gvk = json!({ "group": r.group, "version": r.version, "kind": r.kind });
        let param = |name: &str| json!({ "name": name, "in": "query", "schema": { "type": "string", "uniqueItems": true } });
        let schema_name = format!(
            "io.ferry.lab.{}.{}.{}",
            if r.group.is_empty() { "core" } else { &r.group },
            r.version,
            r.kind
        );
        let body = json!({ "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema_name}") } } } });
        let op = |verb: &str| {
            let mut op = json!({ "x-kubernetes-action": verb, "x-kubernetes-group-version-kind": gvk, "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation")], "responses": { "200": body } });
            if verb != "get" && verb != "delete" {
                op["requestBody"] = body.clone();
            }
            op
        };
        let object = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        let collection = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{prefix}/{}", r.plural)
        };
        paths.insert(object, json!({ "get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete") }));
        paths.insert(collection, json!({ "post": op("post") }));
        schemas.insert(schema_name, json!({ "type": "object", "x-kubernetes-group-version-kind": [gvk], "x-kubernetes-preserve-unknown-fields": true }));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "ferry lab", "version": "v1.33.0" },
        "paths": paths,
        "components": { "schemas": schemas },
    }))
}
