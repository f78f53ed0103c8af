//! The whole cluster primitive set against two real clusters (kind, k3d...):
//! `FERRY_TEST_KUBECONFIG=/path/to/kubeconfig cargo test -- --ignored`, with
//! contexts `old` and `new`. Each test works in its own namespace and
//! deletes it at the end.

use crate::common::Sandbox;

fn kubeconfig() -> String {
    std::env::var("FERRY_TEST_KUBECONFIG")
        .expect("FERRY_TEST_KUBECONFIG names a kubeconfig with contexts `old` and `new`")
}

fn namespace(test: &str) -> String {
    format!("ferry-{test}-{}", std::process::id())
}

const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: { name: app1, labels: { app: app1 } }
spec:
  replicas: 1
  selector: { matchLabels: { app: app1 } }
  template:
    metadata: { labels: { app: app1 } }
    spec:
      containers:
      - name: app1
        image: busybox:1.36
        command: ["sh", "-c", "mkdir -p /www && echo 'Hello, I am app1' > /www/index.html && exec httpd -f -p 80 -h /www"]
        ports: [{ containerPort: 80 }]
---
apiVersion: v1
kind: Service
metadata: { name: app1, labels: { app: app1 } }
spec:
  selector: { app: app1 }
  ports: [{ port: 80 }]
"#;

#[test]
#[ignore = "needs cluster: FERRY_TEST_KUBECONFIG with contexts old and new"]
fn every_primitive_against_two_real_clusters() {
    let sb = Sandbox::new();
    let ns = namespace("all");
    sb.write(
        "live.rhai",
        &r#"
let old = cluster("old");
let next = cluster("new");
let ns = params.ns;
if old.identity() == next.identity() { throw "contexts old and new must be two clusters"; }
let app = yaml_all(`__APP__`).map(|o| { o.metadata.namespace = ns; o });
let namespace = #{ apiVersion: "v1", kind: "Namespace", metadata: #{ name: ns } };
step("namespaces", || { old.apply(namespace); next.create(namespace); next.create(namespace); });
step("app", || old.apply(app));
old.rollout(ns, "app1", #{ timeout: 300 });
step("copy", || {
    next.copy(old, "deploy", ns, "app1");
    next.copy(old, "svc", ns, "app1", #{ rename: "app1-internal", transform: |o| { o.metadata.labels.copied = "yes"; o } });
});
next.rollout(ns, "app1", #{ timeout: 300 });
let internal = next.get("svc", ns, "app1-internal");
if internal.metadata.labels.copied != "yes" { throw "copy did not transform"; }
if !next.exists("services", ns, "app1-internal") { throw "exists"; }

let before = old.get("svc", ns, "app1").spec.clusterIP;
step("bridge", || old.to_external_name(ns, "app1", "old.ferry-test.internal"));
step("bridge again", || old.to_external_name(ns, "app1", "old.ferry-test.internal"));
let bridged = old.get("Service", ns, "app1");
if bridged.spec.type != "ExternalName" || bridged.spec.externalName != "old.ferry-test.internal" { throw `not bridged: ${bridged.spec}`; }
step("flip", || old.to_external_name(ns, "app1", "new.ferry-test.internal"));
step("back", || old.to_cluster_ip(ns, "app1"));
let after = old.get("svc", ns, "app1");
print(`clusterIP ${before} -> ${after.spec.clusterIP} ${after.spec.type}`);

let pods = old.list("pods", ns, #{ labels: #{ app: "app1" } });
let r = old.exec(ns, pods[0].metadata.name, "app1", ["sh", "-c", "wget -qO- http://app1; echo oops >&2; exit 3"]);
print(`exec ${r.stdout.trim()}|${r.stderr.trim()}|${r.status}`);

step("patch", || old.patch("deploy", ns, "app1", #{ metadata: #{ labels: #{ moved: "yes" } } }, "merge"));
step("patch json", || old.patch("deploy", ns, "app1", [#{ op: "add", path: "/metadata/labels/json", value: "yes" }], "json"));
let d = old.get("deployments.apps", ns, "app1");
print(`labels ${d.metadata.labels.moved} ${d.metadata.labels.json}`);
step("replace", || { let cm = #{ apiVersion: "v1", kind: "ConfigMap", metadata: #{ name: "c", namespace: ns }, data: #{ a: "1" } };
    old.create(cm); cm.data.a = "2"; old.replace(cm); });
print(`configmap ${old.get("cm", ns, "c").data.a}`);
try { old.get("NoSuchKind", ns, "x"); } catch (e) { print(`unknown ${e.reason}`); }

step("cleanup", || { old.delete("ns", "", ns, #{ timeout: 300 }); next.delete("ns", "", ns, #{ timeout: 300 }); old.delete("ns", "", ns); });
"#
        .replace("__APP__", APP),
    );
    sb.ferry([
        "run",
        "live.rhai",
        "--kubeconfig",
        &kubeconfig(),
        "--set",
        &format!("ns={ns}"),
    ])
    .stdout_has("exec Hello, I am app1|oops|3")
    .stdout_has("labels yes yes")
    .stdout_has("configmap 2")
    .stdout_has("unknown UnknownKind")
    .stdout_has("ClusterIP")
    .run();
}

#[test]
#[ignore = "needs cluster: FERRY_TEST_KUBECONFIG with contexts old and new"]
fn a_dry_run_changes_nothing_and_shows_what_it_would_write() {
    let sb = Sandbox::new();
    let ns = namespace("dry");
    sb.write(
        "dry.rhai",
        r#"
let old = cluster("old");
step("cm", || old.apply(#{ apiVersion: "v1", kind: "ConfigMap", metadata: #{ name: "ferry-dry", namespace: "default" }, data: #{ a: "1" } }));
step("ns", || old.create(#{ apiVersion: "v1", kind: "Namespace", metadata: #{ name: params.ns } }));
"#,
    );
    sb.write("check.rhai", "let old = cluster(\"old\");\nprint(`exists ${old.exists(\"cm\", \"default\", \"ferry-dry\")} ${old.exists(\"ns\", \"\", params.ns)}`);\n");
    sb.ferry([
        "run",
        "--dry-run",
        "dry.rhai",
        "--kubeconfig",
        &kubeconfig(),
        "--set",
        &format!("ns={ns}"),
        "--id",
        "dry",
    ])
    .stdout_has("+ create ConfigMap default/ferry-dry on cluster `old`")
    .stdout_has("+ create Namespace")
    .run();
    sb.ferry([
        "run",
        "check.rhai",
        "--kubeconfig",
        &kubeconfig(),
        "--set",
        &format!("ns={ns}"),
    ])
    .stdout_has("exists false false")
    .run();
}

#[test]
#[ignore = "needs cluster: FERRY_TEST_KUBECONFIG with contexts old and new"]
fn an_unknown_context_lists_the_known_ones() {
    let sb = Sandbox::new();
    sb.write("x.rhai", "cluster(\"nope\");\n");
    sb.ferry(["run", "x.rhai", "--kubeconfig", &kubeconfig()])
        .code(2)
        .stderr_has("no context `nope`")
        .stderr_has("old")
        .run();
}
