//! The cluster primitives as scripts see them: `Runner` driven in process,
//! each kubeconfig context answered by a fake API server (tower_test mock)
//! through a connector placed in `Settings::clusters`.

use crate::kube_mock::{Expect, FakeApi, app1_service, expect, kube_system, ok, status};
use ferry::adapters::kube::{KubeCluster, KubeParams};
use ferry::error::Error;
use ferry::events::{Event, EventSink};
use ferry::journal::{MemoryStore, Store};
use ferry::ports::cluster::{
    Cluster, ClusterConnector, ClusterError, ClusterFuture, ConnectOptions,
};
use ferry::runner::{Outcome, Runner, StartRequest};
use ferry::settings::Settings;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const SVC: &str = "/api/v1/namespaces/app1-ns/services/app1";

#[derive(Default)]
struct Capture(Mutex<Vec<Event>>);

impl EventSink for Capture {
    fn emit(&self, _: &str, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Capture {
    fn output(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Output { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    fn has(&self, needle: &str) -> bool {
        self.output().iter().any(|l| l.contains(needle))
    }
}

/// Opens contexts on fake API servers, as `KubeConnector` opens real ones.
struct Fakes {
    clients: HashMap<String, kube::Client>,
}

impl ClusterConnector for Fakes {
    fn connect(&self, options: ConnectOptions) -> ClusterFuture<'_, Arc<dyn Cluster>> {
        Box::pin(async move {
            let name = options.context.clone().unwrap_or_else(|| "old".into());
            let client = self
                .clients
                .get(&name)
                .cloned()
                .ok_or_else(|| ClusterError {
                    cluster: name.clone(),
                    verb: "open".into(),
                    reason: "NoContext".into(),
                    message: "no such context in the test".into(),
                    ..Default::default()
                })?;
            let cluster: Arc<dyn Cluster> = Arc::new(KubeCluster::new(KubeParams {
                server: format!("https://{name}.example:6443"),
                name,
                client,
                qps: options.qps,
                burst: options.burst,
                dry_run: options.dry_run,
                retry: FakeApi::fast_retries(),
                notify: options.notify,
                secrets: vec![],
            }));
            Ok(cluster)
        })
    }
}

struct World {
    /// Runs the fake API servers.
    _rt: tokio::runtime::Runtime,
    apis: HashMap<String, FakeApi>,
    connector: Arc<Fakes>,
    dir: tempfile::TempDir,
    store: Arc<dyn Store>,
}

fn world(clusters: Vec<(&str, Vec<Expect>)>) -> World {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let mut apis = HashMap::new();
    let mut clients = HashMap::new();
    for (name, expected) in clusters {
        let (client, api) = FakeApi::start(expected);
        clients.insert(name.to_owned(), client);
        apis.insert(name.to_owned(), api);
    }
    drop(_guard);
    World {
        _rt: rt,
        apis,
        connector: Arc::new(Fakes { clients }),
        dir: tempfile::tempdir().unwrap(),
        store: Arc::new(MemoryStore::new()),
    }
}

impl World {
    fn runner(&self, sink: &Arc<Capture>) -> Runner {
        let backends = ferry::ports::Backends {
            clusters: self.connector.clone(),
            ..ferry::adapters::real()
        };
        Runner::new(
            self.store.clone(),
            sink.clone(),
            vec![],
            Settings::default(),
        )
        .unwrap()
        .with_backends(backends)
    }

    fn run(&self, script: &str) -> (Result<Outcome, Error>, Arc<Capture>) {
        let path = self.dir.path().join("s.rhai");
        std::fs::write(&path, script).unwrap();
        let sink = Arc::new(Capture::default());
        let outcome = self
            .runner(&sink)
            .start(StartRequest {
                script: path,
                params: Default::default(),
                id: Some("r".into()),
                environment: Default::default(),
                allow_unknown_params: false,
            })
            .map(|(_, o)| o);
        (outcome, sink)
    }

    /// `ferry plan` of `script`.
    fn plan(&self, script: &str) -> ferry::runner::Planned {
        let path = self.dir.path().join("s.rhai");
        std::fs::write(&path, script).unwrap();
        let sink = Arc::new(Capture::default());
        self.runner(&sink)
            .plan(
                ferry::runner::PlanOf::Start {
                    script: path,
                    params: Default::default(),
                    environment: Default::default(),
                    allow_unknown_params: false,
                },
                None,
            )
            .expect("the plan runs")
    }

    fn api(&self, name: &str) -> &FakeApi {
        &self.apis[name]
    }
}

fn succeeded(outcome: &Result<Outcome, Error>, sink: &Capture) {
    assert!(
        matches!(outcome, Ok(Outcome::Succeeded)),
        "{outcome:?}\n{:#?}",
        sink.output()
    );
}

#[test]
fn the_article_s_bridge_as_a_script() {
    let mut converted = app1_service();
    converted["spec"] = json!({"type": "ExternalName", "externalName": "old.mycompany.internal"});
    let w = world(vec![(
        "old",
        vec![
            kube_system("uid-old"),
            expect("GET", SVC, ok(app1_service())),
            expect("GET", SVC, ok(app1_service())),
            expect(
                "PATCH",
                "/api/v1/namespaces/app1-ns/services/app1-internal",
                ok(json!({"metadata": {"name": "app1-internal"}})),
            ),
            expect("GET", SVC, ok(app1_service())),
            expect("PATCH", SVC, ok(converted)),
        ],
    )]);
    let (outcome, sink) = w.run(
        r#"
let old = cluster("old");
let again = cluster("old");
print(`opened ${old.context()} ${old.identity()} ${again.identity()}`);
print(old.get("svc", "app1-ns", "app1").spec.clusterIP);
step("internal", || old.copy(old, "svc", "app1-ns", "app1",
    #{ rename: "app1-internal", transform: |o| { o.metadata.labels.bridge = "ferry"; o } }));
let svc = step("bridge", || old.to_external_name("app1-ns", "app1", "old.mycompany.internal"));
print(svc.spec.externalName);
"#,
    );
    succeeded(&outcome, &sink);
    let api = w.api("old");
    api.assert_done();
    assert!(
        sink.has("opened old uid-old uid-old"),
        "{:?}",
        sink.output()
    );
    assert!(sink.has("10.96.12.34"));
    assert!(sink.has("old.mycompany.internal"));
    let run = w.store.run("r").unwrap().unwrap();
    assert_eq!(run.identities["old"]["id"], "uid-old");
    assert_eq!(run.identities["old"]["server"], "https://old.example:6443");
    let reqs = api.requests();
    let copy = &reqs[3];
    assert_eq!(copy.q("fieldManager"), Some("ferry"));
    assert_eq!(copy.q("force"), Some("true"));
    assert_eq!(
        copy.body,
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "app1-internal", "namespace": "app1-ns", "labels": {"app": "app1", "bridge": "ferry"}},
               "spec": {"type": "ClusterIP", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                        "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
                        "selector": {"app": "app1"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}}),
        "copy strips uid, resourceVersion, managedFields, status and the clusterIP(s)"
    );
    assert_eq!(reqs[5].body["spec"]["type"], "ExternalName");
}

#[test]
fn a_plan_sends_dry_run_writes_and_shows_the_diff() {
    let mut converted = app1_service();
    converted["spec"] = json!({"type": "ExternalName", "externalName": "old.mycompany.internal",
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster"});
    let w = world(vec![(
        "old",
        vec![
            kube_system("uid-old"),
            // The overlay reads the object before the write, then the
            // adapter reads it again and sends the write with dry run.
            expect("GET", SVC, ok(app1_service())),
            expect("GET", SVC, ok(app1_service())),
            expect("PATCH", SVC, ok(converted)),
            expect(
                "DELETE",
                "/api/v1/namespaces/app1-ns/services/app1-internal",
                ok(json!({"kind": "Status", "status": "Success"})),
            ),
        ],
    )]);
    let planned = w.plan(
        r#"
let old = cluster("old");
step("bridge", || old.to_external_name("app1-ns", "app1", "old.mycompany.internal"));
// The planned object, not the live one: no request.
step("read back", || if old.get("svc", "app1-ns", "app1").spec.type != "ExternalName" { throw "the plan's read missed its write" });
step("cleanup", || old.delete("svc", "app1-ns", "app1-internal"));
"#,
    );
    assert!(
        matches!(planned.outcome, Outcome::Succeeded),
        "{:?}",
        planned.outcome
    );
    let api = w.api("old");
    api.assert_done();
    let patch = &api.requests()[3];
    assert_eq!(patch.method, "PATCH");
    assert_eq!(patch.q("dryRun"), Some("All"));
    assert_eq!(api.requests()[4].body["dryRun"], json!(["All"]));
    let out = planned.report.text();
    for line in [
        "~ change Service app1-ns/app1 on cluster `old`",
        "~ spec.type: \"ClusterIP\" → \"ExternalName\"",
        "+ spec.externalName: \"old.mycompany.internal\"",
        "- spec.clusterIP: \"10.96.12.34\"",
        "- delete Service app1-ns/app1-internal on cluster `old`",
        "Plan: 0 to create, 1 to change, 1 to delete",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    // The team's journal gained no run.
    assert!(w.store.runs().unwrap().is_empty());
}

#[test]
fn api_errors_are_catchable_maps_and_mutations_need_a_step() {
    let w = world(vec![(
        "old",
        vec![
            kube_system("uid-old"),
            expect(
                "GET",
                SVC,
                status(
                    403,
                    "Forbidden",
                    "services \"app1\" is forbidden: User \"bob\" cannot get",
                ),
            ),
        ],
    )]);
    let (outcome, sink) = w.run(
        r#"
let old = cluster("old");
try { old.get("svc", "app1-ns", "app1"); }
catch (e) { print(`${e.source}|${e.status}|${e.reason}|${e.cluster}|${e.verb}|${e.kind}|${e.namespace}|${e.name}`); print(e.message); }
old.apply(#{ apiVersion: "v1", kind: "ConfigMap", metadata: #{ name: "x" } });
"#,
    );
    assert!(
        sink.has("cluster|403|Forbidden|old|get|Service|app1-ns|app1"),
        "{:?}",
        sink.output()
    );
    assert!(sink.has("cluster `old`: get Service app1-ns/app1 failed: 403 Forbidden: services \"app1\" is forbidden"));
    match outcome {
        Err(Error::Script { rendered }) => {
            assert!(
                rendered.contains("`apply` changes the world and must run inside a step"),
                "{rendered}"
            );
            assert!(rendered.contains("s.rhai:5:"), "{rendered}");
        }
        other => panic!("{other:?}"),
    }
    w.api("old").assert_done();
}

#[test]
fn a_resume_against_another_cluster_under_the_same_name_is_refused() {
    let w = world(vec![("old", vec![kube_system("uid-1")])]);
    let (outcome, sink) =
        w.run("let old = cluster(\"old\");\npause(\"gate\", \"look\");\nstep(\"a\", || 1);\n");
    assert!(
        matches!(outcome, Ok(Outcome::Paused { .. })),
        "{outcome:?} {:?}",
        sink.output()
    );

    // Same journal, but `old` now points at another cluster.
    let other = world(vec![("old", vec![kube_system("uid-2")])]);
    let other = World {
        store: w.store.clone(),
        dir: w.dir,
        ..other
    };
    let sink = Arc::new(Capture::default());
    let runner = other.runner(&sink);
    runner.approve("r", "gate").unwrap();
    match runner.resume("r", false) {
        Err(e @ Error::IdentityMismatch { .. }) => {
            let text = e.to_string();
            assert!(text.contains("uid-1") && text.contains("uid-2"), "{text}");
            assert_eq!(e.exit_code(), 4);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        other
            .store
            .steps("r")
            .unwrap()
            .iter()
            .all(|s| s.name != "a"),
        "nothing ran"
    );
}

#[test]
fn rollout_ingress_address_and_wait_poll_until_done() {
    let deploy = |updated: i64, available: i64| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app1", "generation": 2},
               "spec": {"replicas": 2},
               "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": updated, "availableReplicas": available}})
    };
    let lb = |ingress: Value| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "traefik"},
               "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": ingress}})
    };
    let pod = |phase: &str| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app1"}, "status": {"phase": phase}});
    let d = "/apis/apps/v1/namespaces/app1-ns/deployments/app1";
    let t = "/api/v1/namespaces/traefik/services/traefik";
    let p = "/api/v1/namespaces/app1-ns/pods/app1";
    let w = world(vec![(
        "new",
        vec![
            kube_system("uid-new"),
            expect("GET", d, ok(deploy(1, 1))),
            expect("GET", d, ok(deploy(1, 1))),
            expect("GET", d, ok(deploy(2, 2))),
            expect("GET", t, ok(lb(json!({})))),
            expect(
                "GET",
                t,
                ok(lb(json!({"ingress": [{"ip": "192.168.100.16"}]}))),
            ),
            expect("GET", p, status(404, "NotFound", "pods \"app1\" not found")),
            expect("GET", p, ok(pod("Pending"))),
            expect("GET", p, ok(pod("Running"))),
            expect("GET", p, ok(pod("Pending"))),
        ],
    )]);
    let (outcome, sink) = w.run(
        r#"
let next = cluster("new");
let d = next.rollout("app1-ns", "app1", #{ interval: 0.01 });
let ip = next.ingress_address("traefik", "traefik", #{ interval: 0.01 });
let p = next.wait("pod", "app1-ns", "app1", |p| p != () && p.status.phase == "Running", #{ interval: 0.01 });
print(`${d.metadata.name} ${ip} ${p.status.phase}`);
try {
    next.wait("pod", "app1-ns", "app1", |p| false, #{ timeout: 0 });
} catch (e) {
    print(`${e.reason}: ${e.message}`);
}
"#,
    );
    succeeded(&outcome, &sink);
    w.api("new").assert_done();
    assert!(
        sink.has("app1 192.168.100.16 Running"),
        "{:?}",
        sink.output()
    );
    assert!(
        sink.has("rollout Deployment app1-ns/app1: 1/2 updated, 1/2 available, 1 old"),
        "{:?}",
        sink.output()
    );
    assert!(
        sink.has("Timeout: cluster `new`: wait for Pod app1-ns/app1: timed out after 0ms"),
        "{:?}",
        sink.output()
    );
    let events = sink.0.lock().unwrap();
    let started = events
        .iter()
        .filter(|e| matches!(e, Event::WaitStarted { .. }))
        .count();
    let ended = events
        .iter()
        .filter(|e| matches!(e, Event::WaitEnded { .. }))
        .count();
    assert_eq!(
        (started, ended),
        (4, 4),
        "every wait that waited shows a countdown and ends it"
    );
}

#[test]
fn delete_waits_for_finalizers_and_absence_is_success() {
    let path = "/api/v1/namespaces/app1-ns/persistentvolumeclaims/data";
    let claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "uid": "pvc-1", "finalizers": ["kubernetes.io/pvc-protection"], "deletionTimestamp": "2024-01-01T00:00:00Z"}});
    let w = world(vec![(
        "old",
        vec![
            kube_system("uid-old"),
            expect("DELETE", path, ok(claim.clone())),
            expect("GET", path, ok(claim)),
            expect("GET", path, status(404, "NotFound", "gone")),
            expect("DELETE", path, status(404, "NotFound", "gone")),
        ],
    )]);
    let (outcome, sink) = w.run(
        r#"
let old = cluster("old");
let first = step("delete", || old.delete("pvc", "app1-ns", "data"));
let again = step("delete again", || old.delete("pvc", "app1-ns", "data", #{ wait: false }));
print(`${first} ${again}`);
"#,
    );
    succeeded(&outcome, &sink);
    w.api("old").assert_done();
    assert!(sink.has("true false"), "{:?}", sink.output());
    assert!(
        sink.has("finalizers [\"kubernetes.io/pvc-protection\"]"),
        "{:?}",
        sink.output()
    );
}

#[test]
fn retries_show_under_the_step() {
    let w = world(vec![(
        "old",
        vec![
            kube_system("uid-old"),
            expect(
                "PATCH",
                SVC,
                status(503, "ServiceUnavailable", "etcd leader changed"),
            ),
            expect("PATCH", SVC, ok(app1_service())),
        ],
    )]);
    let (outcome, sink) = w.run(
        "let old = cluster(\"old\");\nstep(\"label\", || old.patch(\"svc\", \"app1-ns\", \"app1\", #{ metadata: #{ labels: #{ moved: \"yes\" } } }));\n",
    );
    succeeded(&outcome, &sink);
    w.api("old").assert_done();
    let events = sink.0.lock().unwrap();
    let retry = events.iter().find_map(|e| match e {
        Event::Output { step, text, .. } if text.contains("↻ PATCH") => {
            Some((step.clone(), text.clone()))
        }
        _ => None,
    });
    let (step, text) = retry.expect("a retry line");
    assert_eq!(step.as_deref(), Some("label"));
    assert!(
        text.contains("503 ServiceUnavailable") && text.contains("retry 1/3"),
        "{text}"
    );
}

#[test]
fn yaml_helpers_round_trip_objects() {
    let w = world(vec![(
        "old",
        vec![
            kube_system("uid-old"),
            expect(
                "PATCH",
                "/api/v1/namespaces/app1-ns/configmaps/a",
                ok(json!({"metadata": {"name": "a"}})),
            ),
            expect(
                "PATCH",
                "/api/v1/namespaces/app1-ns/configmaps/b",
                ok(json!({"metadata": {"name": "b"}})),
            ),
        ],
    )]);
    let (outcome, sink) = w.run(
        r#"
let svc = yaml("apiVersion: v1\nkind: Service\nmetadata: { name: app1 }\nspec:\n  ports: [{ port: 80 }]\n");
print(`${svc.spec.ports[0].port + 1}`);
print(to_yaml(#{ kind: "Service", spec: #{ ports: [#{ port: 80 }] } }));
let docs = yaml_all("kind: ConfigMap\napiVersion: v1\nmetadata: { name: a, namespace: app1-ns }\n---\n---\nkind: ConfigMap\napiVersion: v1\nmetadata: { name: b, namespace: app1-ns }\n");
let old = cluster("old");
let live = step("apply both", || old.apply(docs));
print(`${docs.len()} ${live[1].metadata.name}`);
try { yaml("a: 1\n---\nb: 2\n"); } catch (e) { print(e); }
"#,
    );
    succeeded(&outcome, &sink);
    w.api("old").assert_done();
    assert!(sink.has("81"), "{:?}", sink.output());
    assert!(
        sink.has("kind: Service\nspec:\n  ports:\n  - port: 80"),
        "{:?}",
        sink.output()
    );
    assert!(sink.has("2 b"));
    assert!(sink.has("use yaml_all(text)"));
}
