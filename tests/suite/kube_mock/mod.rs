//! A fake Kubernetes API server behind kube's `Client`, in the
//! `tower_test::mock` pattern of kube-rs' `ApiServerVerifier`: discovery
//! documents are served from a fixture (core v1, apps/v1 and, once
//! "installed", the Traefik `IngressRoute` CRD); every other request must
//! match the next expectation (method and path) and gets its scripted reply.
//! Everything is recorded so tests can assert verb, path, query, content
//! type and body.
#![allow(dead_code)]

use ferry::adapters::kube::{KubeCluster, KubeParams, Notify, RetryPolicy};
use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub content_type: String,
    pub body: Value,
}

impl Recorded {
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn qs(&self, key: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
}

pub fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        body,
        headers: vec![],
    }
}

/// A `metav1.Status` error reply, as the API server sends them.
pub fn status(code: u16, reason: &str, message: &str) -> Reply {
    Reply {
        status: code,
        body: json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                     "message": message, "reason": reason, "code": code}),
        headers: vec![],
    }
}

impl Reply {
    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_owned()));
        self
    }
}

pub struct Expect {
    pub method: &'static str,
    pub path: String,
    pub reply: Reply,
}

pub fn expect(method: &'static str, path: &str, reply: Reply) -> Expect {
    Expect {
        method,
        path: path.to_owned(),
        reply,
    }
}

fn resources(list: &[(&str, &str, &str, bool, &[&str])]) -> Vec<Value> {
    list.iter()
        .map(|(name, singular, kind, namespaced, short)| {
            json!({"name": name, "singularName": singular, "kind": kind, "namespaced": namespaced,
                   "shortNames": short, "verbs": ["get", "list", "create", "update", "patch", "delete"]})
        })
        .collect()
}

fn discovery(path: &str, crd: bool) -> Option<Value> {
    let core = resources(&[
        ("namespaces", "namespace", "Namespace", false, &["ns"]),
        ("services", "service", "Service", true, &["svc"]),
        ("pods", "pod", "Pod", true, &["po"]),
        ("configmaps", "configmap", "ConfigMap", true, &["cm"]),
        (
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            "PersistentVolumeClaim",
            true,
            &["pvc"],
        ),
    ]);
    let mut core = core;
    core.push(json!({"name": "pods/exec", "singularName": "", "kind": "PodExecOptions", "namespaced": true, "verbs": ["create", "get"]}));
    let apps = resources(&[
        ("deployments", "deployment", "Deployment", true, &["deploy"]),
        ("statefulsets", "statefulset", "StatefulSet", true, &["sts"]),
        ("daemonsets", "daemonset", "DaemonSet", true, &["ds"]),
    ]);
    let traefik = resources(&[("ingressroutes", "ingressroute", "IngressRoute", true, &[])]);
    let group = |name: &str, v: &str| {
        json!({"name": name, "versions": [{"groupVersion": format!("{name}/{v}"), "version": v}],
               "preferredVersion": {"groupVersion": format!("{name}/{v}"), "version": v}})
    };
    match path {
        "/api" => Some(json!({"kind": "APIVersions", "versions": ["v1"]})),
        "/api/v1" => {
            Some(json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": core}))
        }
        "/apis" => {
            let mut groups = vec![group("apps", "v1")];
            if crd {
                groups.push(group("traefik.io", "v1alpha1"));
            }
            Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        "/apis/apps/v1" => {
            Some(json!({"kind": "APIResourceList", "groupVersion": "apps/v1", "resources": apps}))
        }
        "/apis/traefik.io/v1alpha1" if crd => Some(
            json!({"kind": "APIResourceList", "groupVersion": "traefik.io/v1alpha1", "resources": traefik}),
        ),
        _ => None,
    }
}

#[derive(Clone)]
pub struct FakeApi {
    pub log: Arc<Mutex<Vec<Recorded>>>,
    pub discovery_log: Arc<Mutex<Vec<String>>>,
    pub unexpected: Arc<Mutex<Vec<String>>>,
    pub expected: Arc<Mutex<VecDeque<Expect>>>,
    /// Whether the IngressRoute CRD is served.
    pub crd: Arc<AtomicBool>,
    pub notes: Arc<Mutex<Vec<String>>>,
}

impl FakeApi {
    /// Starts the fake on the current tokio runtime; returns a client to it.
    pub fn start(expected: Vec<Expect>) -> (kube::Client, FakeApi) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api = FakeApi {
            log: Default::default(),
            discovery_log: Default::default(),
            unexpected: Default::default(),
            expected: Arc::new(Mutex::new(expected.into())),
            crd: Arc::new(AtomicBool::new(true)),
            notes: Default::default(),
        };
        let me = api.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let (parts, body) = req.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let path = parts.uri.path().to_owned();
                let reply = if parts.method == http::Method::GET
                    && let Some(doc) = discovery(&path, me.crd.load(Ordering::SeqCst))
                {
                    me.discovery_log.lock().unwrap().push(path.clone());
                    ok(doc)
                } else if parts.method == http::Method::GET && (path == "/apis/traefik.io/v1alpha1")
                {
                    me.discovery_log.lock().unwrap().push(path.clone());
                    status(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    )
                } else {
                    let query = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                        .into_owned()
                        .collect();
                    let content_type = parts
                        .headers
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    me.log.lock().unwrap().push(Recorded {
                        method: parts.method.to_string(),
                        path: path.clone(),
                        query,
                        content_type,
                        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                    });
                    let next = me.expected.lock().unwrap().pop_front();
                    match next {
                        Some(e) if e.method == parts.method.as_str() && e.path == path => e.reply,
                        Some(e) => {
                            me.unexpected.lock().unwrap().push(format!(
                                "{} {path} while expecting {} {}",
                                parts.method, e.method, e.path
                            ));
                            status(500, "InternalError", "unexpected request")
                        }
                        None => {
                            me.unexpected
                                .lock()
                                .unwrap()
                                .push(format!("{} {path} after every expectation", parts.method));
                            status(500, "InternalError", "unexpected request")
                        }
                    }
                };
                let mut res = Response::builder().status(reply.status);
                for (k, v) in &reply.headers {
                    res = res.header(*k, v);
                }
                let res = res
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&reply.body).unwrap()))
                    .unwrap();
                send.send_response(res);
            }
        });
        (kube::Client::new(service, "default"), api)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    pub fn discoveries(&self) -> Vec<String> {
        self.discovery_log.lock().unwrap().clone()
    }

    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap().clone()
    }

    /// Every expectation was met, nothing else was asked.
    pub fn assert_done(&self) {
        let unexpected = self.unexpected.lock().unwrap().clone();
        assert!(
            unexpected.is_empty(),
            "unexpected requests: {unexpected:#?}"
        );
        let left: Vec<String> = self
            .expected
            .lock()
            .unwrap()
            .iter()
            .map(|e| format!("{} {}", e.method, e.path))
            .collect();
        assert!(left.is_empty(), "expected requests never came: {left:?}");
    }

    /// Fast retries for tests (delays of a few milliseconds).
    pub fn fast_retries() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(2),
            cap: Duration::from_millis(20),
            max_retry_after: Duration::from_millis(50),
        }
    }

    /// A cluster handle on this fake, as the kube connector builds one.
    pub fn cluster(&self, client: kube::Client, name: &str, dry_run: bool) -> KubeCluster {
        self.limited(client, name, dry_run, 0.0, 1)
    }

    /// A handle with a client-side rate limit.
    pub fn limited(
        &self,
        client: kube::Client,
        name: &str,
        dry_run: bool,
        qps: f64,
        burst: u32,
    ) -> KubeCluster {
        let notes = self.notes.clone();
        let notify: Notify = Arc::new(move |line| notes.lock().unwrap().push(line));
        KubeCluster::new(KubeParams {
            name: name.to_owned(),
            server: format!("https://{name}.example:6443"),
            client,
            qps,
            burst,
            dry_run,
            retry: Self::fast_retries(),
            notify,
            secrets: vec!["s3cr3t-token".into()],
        })
    }
}

/// `kube-system` with the given uid.
pub fn kube_system(uid: &str) -> Expect {
    expect(
        "GET",
        "/api/v1/namespaces/kube-system",
        ok(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system", "uid": uid}}),
        ),
    )
}

/// The article's app1 Service, as the old cluster serves it.
pub fn app1_service() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "app1", "namespace": "app1-ns", "uid": "svc-uid-1", "resourceVersion": "100",
                     "creationTimestamp": "2021-01-11T10:00:00Z", "labels": {"app": "app1"},
                     "managedFields": [{"manager": "kubectl", "operation": "Update"}]},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.12.34", "clusterIPs": ["10.96.12.34"],
                 "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
                 "internalTrafficPolicy": "Cluster", "selector": {"app": "app1"},
                 "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]},
        "status": {"loadBalancer": {}}
    })
}
