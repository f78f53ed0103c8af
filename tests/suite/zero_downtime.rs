//! Zero downtime where real clusters break it: the lab's cluster DNS caches
//! like CoreDNS (kubeadm's `cache 30` / `ttl 30`) and a released ClusterIP
//! stops routing at once, so the article's ExternalName flip fails callers
//! that hold a cached answer, here as on a real cluster. The default bridge
//! (an EndpointSlice behind the unchanged Service) must lose nothing: a
//! caller polling every 100 ms across every phase, finalize and rollback
//! sees no failure and the ClusterIP never changes.

use crate::common::Sandbox;
use crate::common::lab::LabFixture;
use crate::common::poller::{Call, Poller};
use ferry::lab::apiserver::Write;
use ferry::lab::apiserver::patch::PatchKind;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");
const EVERY: Duration = Duration::from_millis(100);

fn script(name: &str) -> String {
    format!("{SCRIPTS}/{name}")
}

fn cluster_ip(lab: &LabFixture, ns: &str, app: &str) -> Value {
    lab.object("old", &format!("services/{ns}/{app}")).unwrap()["spec"]["clusterIP"].clone()
}

/// A caller pod in the old cluster (`callers/caller`, started once) calling
/// `urls` every 100 ms.
fn call(lab: &LabFixture, urls: &[&str]) -> Poller {
    let caller = lab.caller("old");
    Poller::start(
        lab.lab.network.clone(),
        "old",
        "callers",
        &caller,
        urls,
        EVERY,
    )
}

fn failures(calls: &[Call]) -> Vec<&Call> {
    calls.iter().filter(|c| !c.ok()).collect()
}

/// Which cluster answered each successful call of `url`, in order, with
/// repeats folded: e.g. `["old", "new"]`.
fn answered_from(calls: &[Call], url: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for call in calls.iter().filter(|c| c.url == url && c.ok()) {
        let cluster = call
            .reply
            .rsplit("(cluster ")
            .next()
            .unwrap_or_default()
            .trim_end_matches(')')
            .to_owned();
        if seen.last() != Some(&cluster) {
            seen.push(cluster);
        }
    }
    seen
}

#[test]
fn the_externalname_flip_fails_callers_that_hold_the_cached_cluster_ip() {
    let sb = Sandbox::new();
    let lab = LabFixture::open(&sb.file("lab"));
    // A short cache keeps the test quick; the mechanism is CoreDNS's.
    lab.set_dns_cache("old", 2, 2);
    let old_lb =
        lab.object("old", "services/traefik/traefik").unwrap()["status"]["loadBalancer"]["ingress"]
            [0]["ip"]
            .clone();
    lab.lab
        .zone
        .put(ferry::lab::zone::RecordSet {
            name: "old".into(),
            rtype: "A".into(),
            ttl: 60,
            data: vec![old_lb.as_str().unwrap().to_owned()],
        })
        .unwrap();
    // The article's bridge in the old cluster: the route and its Service.
    let store = lab.lab.cluster("old").unwrap().clone();
    let services = store.resource("", "v1", "services").unwrap();
    let routes = store
        .resource("traefik.io", "v1alpha1", "ingressroutes")
        .unwrap();
    store
        .create(
            &services,
            Some("app1-ns"),
            json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "app1-internal" },
                    "spec": { "selector": { "app": "app1" }, "ports": [{ "name": "http", "port": 80, "targetPort": 80 }] } }),
            Write::default(),
        )
        .unwrap();
    store
        .create(
            &routes,
            Some("app1-ns"),
            json!({ "apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute", "metadata": { "name": "app1" },
                    "spec": { "routes": [{ "kind": "Rule", "match": "Host(`app1.app1-ns`)",
                                           "services": [{ "name": "app1-internal", "port": 80 }] }] } }),
            Write::default(),
        )
        .unwrap();
    let url = "http://app1.app1-ns/";
    let poller = call(&lab, &[url]);
    let started = Instant::now();
    // Some answers through the ClusterIP first, cached by the cluster DNS.
    std::thread::sleep(Duration::from_millis(1500));
    let flipped_at = started.elapsed();
    store
        .patch(
            &services,
            Some("app1-ns"),
            "app1",
            PatchKind::Merge,
            &json!({ "spec": { "type": "ExternalName", "externalName": "old.mycompany.internal" } }),
            Write::default(),
        )
        .unwrap();
    // Longer than the cache (2 s) plus the TTL (2 s) it hands out.
    std::thread::sleep(Duration::from_secs(6));
    let calls = poller.stop();

    let failed = failures(&calls);
    assert!(
        !failed.is_empty(),
        "callers holding the cached ClusterIP must fail after the flip: {calls:?}"
    );
    for call in &failed {
        assert!(
            call.reply.contains("Couldn't connect to server"),
            "the released ClusterIP answers nothing: {call:?}"
        );
        // A call started just before the flip may connect just after it
        // (each call may take up to curl's 2 s on a loaded machine).
        assert!(
            call.at + Duration::from_secs(2) >= flipped_at,
            "no failure before the flip: {call:?}"
        );
        assert!(
            call.at <= flipped_at + Duration::from_secs(5),
            "the outage ends when the cached answer expires: {call:?}"
        );
    }
    let last = calls.last().unwrap();
    assert!(last.ok(), "through the ExternalName afterwards: {last:?}");
    assert_eq!(answered_from(&calls, url), ["old"]);
}

#[test]
fn two_apps_moves_both_apps_without_one_failed_call_and_keeps_their_cluster_ips() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let dir = lab.dir_arg();
    let before = (
        cluster_ip(&lab, "app1-ns", "app1"),
        cluster_ip(&lab, "app2-ns", "app2"),
    );
    let urls = ["http://app1.app1-ns/", "http://app2.app2-ns/"];
    let poller = call(&lab, &urls);
    sb.ferry([
        "run",
        &script("two-apps.rhai"),
        "--id",
        "t",
        "--lab-dir",
        &dir,
    ])
    .code(3)
    .run();
    assert_eq!(cluster_ip(&lab, "app1-ns", "app1"), before.0);
    sb.ferry(["approve", "t", "app2-ready"]).run();
    sb.ferry(["resume", "t"]).run();
    // Callers left in the old cluster keep reaching both apps after finalize.
    std::thread::sleep(Duration::from_secs(1));
    let calls = poller.stop();

    assert!(calls.len() > 20, "the caller kept calling: {}", calls.len());
    assert_eq!(failures(&calls).len(), 0, "{:?}", failures(&calls));
    for url in urls {
        assert_eq!(answered_from(&calls, url), ["old", "new"], "{url}");
    }
    assert_eq!(
        (
            cluster_ip(&lab, "app1-ns", "app1"),
            cluster_ip(&lab, "app2-ns", "app2")
        ),
        before,
        "no Service in the old cluster ever gave up its address"
    );
    for app in ["app1", "app2"] {
        let cutover = sb.step("t", &format!("{app}: EndpointSlice -> new ingress"));
        let guard = &cutover["data"]["guard"];
        assert_eq!(guard["failures"], 0, "{guard}");
        assert_eq!(guard["last_path"], "new", "{guard}");
        assert!(guard["paths"]["new"].as_u64().unwrap() > 0, "{guard}");
    }
}

#[test]
fn rollback_from_every_phase_loses_no_call() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let dir = lab.dir_arg();
    // The guards watch from the caller pod, so it exists before the run.
    lab.caller("old");
    let before = cluster_ip(&lab, "app1-ns", "app1");
    let url = "http://app1.app1-ns/";
    // Paused after bridging, after preparing, and finished (cut over).
    for (run, approvals) in [("b", 0), ("p", 1), ("c", 2)] {
        let migrate = script("migrate-app.rhai");
        let mut args = vec!["run", &migrate, "--id", run, "--lab-dir", &dir];
        args.extend(["--set", "app=app1", "--set", "ns=app1-ns"]);
        args.extend([
            "--set",
            "client_ns=callers",
            "--set",
            "client_labels=app=caller",
        ]);
        sb.ferry(args).code(3).run();
        for gate in ["prepare", "cutover"].into_iter().take(approvals) {
            sb.ferry(["approve", run, gate]).run();
            sb.ferry(["resume", run]).any_code().run();
        }
        let poller = call(&lab, &[url]);
        sb.ferry(["rollback", run, "--yes"]).run();
        let calls = poller.stop();
        assert_eq!(sb.run_status(run), "rolled-back");
        assert!(!calls.is_empty());
        assert_eq!(failures(&calls).len(), 0, "{run}: {:?}", failures(&calls));
        let app1 = lab.object("old", "services/app1-ns/app1").unwrap();
        assert_eq!(app1["spec"]["clusterIP"], before, "{run}");
        assert_eq!(app1["spec"]["selector"]["app"], "app1", "{run}");
        assert!(
            lab.names("old", "endpointslices.discovery.k8s.io", "app1-ns")
                .iter()
                .all(|n| !n.contains("ferry")),
            "{run}: ferry's slice is gone"
        );
        assert_eq!(
            lab.curl_from("old", "callers", "caller", url),
            "Hello, I'm app1 (cluster old)"
        );
    }
}

#[test]
fn the_externalname_bridge_warns_watches_the_cache_and_shows_its_failures() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    lab.set_dns_cache("old", 2, 1);
    let dir = lab.dir_arg();
    let migrate = script("migrate-app.rhai");
    let mut args = vec!["run", &migrate, "--id", "x", "--lab-dir", &dir];
    args.extend([
        "--set",
        "app=app1",
        "--set",
        "ns=app1-ns",
        "--set",
        "bridge=externalname",
    ]);
    args.extend([
        "--set",
        "client_ns=app2-ns",
        "--set",
        "client_labels=app=app2",
    ]);
    sb.ferry(args)
        .code(1)
        .stdout_has("warning: app1: the ExternalName flip")
        .stdout_has("CoreDNS cache 2s + TTL 1s, from kube-system/coredns")
        .run();
    let flip = sb.step("x", "app1: ExternalName -> old.mycompany.internal");
    let guard = &flip["data"]["guard"];
    assert!(guard["failures"].as_u64().unwrap() > 0, "{guard}");
    assert!(
        guard["error_kinds"]["refused"].as_u64().unwrap() > 0,
        "{guard}"
    );
    assert!(
        guard["duration_ms"].as_u64().unwrap() >= 3000,
        "watched at least the cache window (2 s + 1 s) after the flip: {guard}"
    );
}

#[test]
fn rolling_back_a_finalize_then_the_move_loses_no_call() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let dir = lab.dir_arg();
    // The guards watch from the caller pod, so it exists before the run.
    lab.caller("old");
    let url = "http://app1.app1-ns/";
    let migrate = script("migrate-app.rhai");
    let set = [
        "--set",
        "app=app1",
        "--set",
        "ns=app1-ns",
        "--set",
        "client_ns=callers",
        "--set",
        "client_labels=app=caller",
    ];
    let mut args = vec!["run", &migrate, "--id", "m", "--lab-dir", &dir];
    args.extend(set);
    sb.ferry(args).code(3).run();
    for gate in ["prepare", "cutover"] {
        sb.ferry(["approve", "m", gate]).run();
        sb.ferry(["resume", "m"]).any_code().run();
    }
    let finalize = script("finalize-app.rhai");
    let mut args = vec!["run", &finalize, "--id", "f", "--lab-dir", &dir];
    args.extend(&set[..4]);
    sb.ferry(args).run();
    let deployment = "deployments.apps/app1-ns/app1";
    assert_eq!(
        lab.object("old", deployment).unwrap()["spec"]["replicas"],
        0
    );

    let poller = call(&lab, &[url]);
    // Finalize released the shared records: rolling back past that is
    // refused unless forced (the EndpointSlice bridge's undos need no name).
    sb.ferry(["rollback", "f", "--yes"])
        .code(4)
        .stderr_has("past step `app1: release records`")
        .run();
    sb.ferry(["rollback", "f", "--yes", "--force"]).run();
    assert_eq!(
        lab.object("old", deployment).unwrap()["spec"]["replicas"],
        1
    );
    assert!(
        lab.object("old", "services/app1-ns/app1-internal")
            .is_some()
    );
    sb.ferry(["rollback", "m", "--yes"]).run();
    let calls = poller.stop();

    assert_eq!(failures(&calls).len(), 0, "{:?}", failures(&calls));
    assert_eq!(answered_from(&calls, url), ["new", "old"]);
    let app1 = lab.object("old", "services/app1-ns/app1").unwrap();
    assert_eq!(app1["spec"]["selector"]["app"], "app1");
    assert!(app1["metadata"]["annotations"]["ferry.dev/finalized"].is_null());
}
