//! The article's starting point: in both clusters a Traefik-style ingress
//! (a LoadBalancer Service in `traefik`) and the IngressRoute CRDs of
//! Traefik 3 (`traefik.io`) and Traefik 2 (`traefik.containo.us`); in the
//! old cluster each app running as an http-echo Deployment behind its
//! ClusterIP Service; in the new cluster the apps' namespaces, empty. Both
//! clusters' CoreDNS is configured as kubeadm does (`ttl 30`, `cache 30`).

use crate::lab::apiserver::resources::{Resource, builtins};
use crate::lab::apiserver::{ClusterStore, Write};
use serde_json::{Value, json};

/// An app to seed: its name and namespace (`app1:app1-ns`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub name: String,
    pub namespace: String,
}

impl App {
    /// `app1:app1-ns,app2:app2-ns`, or a count `N` for a fleet:
    /// `app1:app1-ns` .. `appN:appN-ns`.
    pub fn parse_list(text: &str) -> Result<Vec<App>, String> {
        if let Ok(count) = text.trim().parse::<usize>() {
            return Ok(App::fleet(count));
        }
        text.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|pair| {
                let (name, namespace) = pair
                    .trim()
                    .split_once(':')
                    .ok_or_else(|| format!("`{pair}` is not app:namespace"))?;
                if name.is_empty() || namespace.is_empty() {
                    return Err(format!("`{pair}` is not app:namespace"));
                }
                Ok(App {
                    name: name.to_owned(),
                    namespace: namespace.to_owned(),
                })
            })
            .collect()
    }

    /// `app1` in `app1-ns` .. `appN` in `appN-ns`.
    pub fn fleet(count: usize) -> Vec<App> {
        (1..=count)
            .map(|i| App {
                name: format!("app{i}"),
                namespace: format!("app{i}-ns"),
            })
            .collect()
    }

    pub fn article() -> Vec<App> {
        vec![
            App {
                name: "app1".into(),
                namespace: "app1-ns".into(),
            },
            App {
                name: "app2".into(),
                namespace: "app2-ns".into(),
            },
        ]
    }
}

fn kind(plural: &str) -> Resource {
    builtins()
        .into_iter()
        .find(|r| r.plural == plural)
        .expect("a built-in kind")
}

fn create(
    cluster: &ClusterStore,
    plural: &str,
    namespace: Option<&str>,
    object: Value,
) -> std::io::Result<()> {
    match cluster.create(&kind(plural), namespace, object, Write::default()) {
        Ok(_) => Ok(()),
        Err(e) if e.reason == "AlreadyExists" => Ok(()),
        Err(e) => Err(std::io::Error::other(format!(
            "seeding the {} cluster: {}",
            cluster.name, e.message
        ))),
    }
}

fn crd(group: &str, kind: &str, plural: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{plural}.{group}") },
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": { "kind": kind, "plural": plural, "singular": kind.to_ascii_lowercase(), "listKind": format!("{kind}List") },
            "versions": [{ "name": "v1alpha1", "served": true, "storage": true, "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } }],
        },
    })
}

fn namespace(name: &str) -> Value {
    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } })
}

pub fn seed(cluster: &ClusterStore, apps: &[App], with_apps: bool) -> std::io::Result<()> {
    let crds = kind("customresourcedefinitions");
    for group in ["traefik.io", "traefik.containo.us"] {
        for (kind, plural) in [
            ("IngressRoute", "ingressroutes"),
            ("IngressRouteTCP", "ingressroutetcps"),
            ("Middleware", "middlewares"),
            ("TraefikService", "traefikservices"),
        ] {
            match cluster.create(&crds, None, crd(group, kind, plural), Write::default()) {
                Ok(_) => {}
                Err(e) if e.reason == "AlreadyExists" => {}
                Err(e) => return Err(std::io::Error::other(e.message)),
            }
        }
    }
    // CoreDNS as kubeadm configures it: what the lab's cluster DNS caches by.
    create(
        cluster,
        "configmaps",
        Some("kube-system"),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "coredns", "namespace": "kube-system" },
            "data": { "Corefile": crate::corefile::KUBEADM_COREFILE },
        }),
    )?;
    create(cluster, "namespaces", None, namespace("traefik"))?;
    create(
        cluster,
        "deployments",
        Some("traefik"),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "traefik", "namespace": "traefik", "labels": { "app.kubernetes.io/name": "traefik" } },
            "spec": {
                "replicas": 1,
                "selector": { "matchLabels": { "app.kubernetes.io/name": "traefik" } },
                "template": {
                    "metadata": { "labels": { "app.kubernetes.io/name": "traefik" } },
                    "spec": { "containers": [{ "name": "traefik", "image": "traefik:v3.1", "args": ["--providers.kubernetescrd", "--providers.kubernetescrd.allowExternalNameServices=true", "--entryPoints.web.address=:8000", "--metrics.prometheus=true", "--metrics.prometheus.entryPoint=metrics", "--entryPoints.metrics.address=:9100"], "ports": [{ "name": "web", "containerPort": 8000 }, { "name": "metrics", "containerPort": 9100 }] }] },
                },
            },
        }),
    )?;
    create(
        cluster,
        "services",
        Some("traefik"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": { "name": "traefik", "namespace": "traefik" },
            "spec": { "type": "LoadBalancer", "selector": { "app.kubernetes.io/name": "traefik" }, "ports": [{ "name": "web", "port": 80, "targetPort": "web" }] },
        }),
    )?;
    for app in apps {
        create(cluster, "namespaces", None, namespace(&app.namespace))?;
        if !with_apps {
            continue;
        }
        create(
            cluster,
            "deployments",
            Some(&app.namespace),
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": app.name, "namespace": app.namespace, "labels": { "app": app.name } },
                "spec": {
                    "replicas": 1,
                    "selector": { "matchLabels": { "app": app.name } },
                    "template": {
                        "metadata": { "labels": { "app": app.name } },
                        "spec": { "containers": [{
                            "name": app.name,
                            "image": "hashicorp/http-echo:1.0",
                            "args": [format!("-text=Hello, I'm {}", app.name), "-listen=:80"],
                            "ports": [{ "name": "http", "containerPort": 80 }],
                        }] },
                    },
                },
            }),
        )?;
        create(
            cluster,
            "services",
            Some(&app.namespace),
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": { "name": app.name, "namespace": app.namespace, "labels": { "app": app.name } },
                "spec": { "selector": { "app": app.name }, "ports": [{ "name": "http", "port": 80, "targetPort": 80 }] },
            }),
        )?;
    }
    Ok(())
}
