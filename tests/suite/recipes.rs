//! The recipes on the lab, end to end: after each phase the lab's objects,
//! records and routing are exactly as expected, guards see no failure, and a
//! rollback after cutover puts everything back while app2 keeps answers.

use crate::common::lab::LabFixture;
use crate::common::poller::Poller;
use crate::common::{APP1_FROM_APP2, Sandbox};
use serde_json::{Value, json};
use std::time::Duration;

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");

fn script(name: &str) -> String {
    format!("{SCRIPTS}/{name}")
}

fn svc(lab: &LabFixture, cluster: &str, ns: &str, name: &str) -> Value {
    lab.object(cluster, &format!("services/{ns}/{name}"))
        .unwrap_or(Value::Null)
}

fn record(lab: &LabFixture, name: &str, rtype: &str) -> Option<Vec<String>> {
    lab.lab.zone.get(name, rtype).map(|r| r.data)
}

fn slice(lab: &LabFixture, cluster: &str, ns: &str, name: &str) -> Value {
    lab.object(
        cluster,
        &format!("endpointslices.discovery.k8s.io/{ns}/{name}"),
    )
    .unwrap_or(Value::Null)
}

/// The address of the ingress controller's pod in `cluster`.
fn ingress_pod(lab: &LabFixture, cluster: &str) -> String {
    lab.lab.cluster(cluster).unwrap().with_state(|s| {
        s.scan("pods", Some("traefik"))
            .find_map(|p| p["status"]["podIP"].as_str().map(str::to_owned))
            .unwrap()
    })
}

fn lb(lab: &LabFixture, cluster: &str) -> String {
    svc(lab, cluster, "traefik", "traefik")["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every guard in a run: requests and failures, per step.
fn guards(sb: &Sandbox, run: &str) -> Vec<(String, Value)> {
    sb.steps(run)
        .into_iter()
        .filter(|s| !s["data"]["guard"].is_null())
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["data"]["guard"].clone(),
            )
        })
        .collect()
}

fn assert_clean_guards(sb: &Sandbox, run: &str, expected: usize) {
    let guards = guards(sb, run);
    assert_eq!(guards.len(), expected, "{guards:?}");
    for (step, g) in guards {
        assert_eq!(g["failures"], 0, "{step}: {g}");
        assert_eq!(g["rate"], 200.0, "{step}: {g}");
        // The watch windows (1 s before, 2 s after) are a lower bound on
        // the guard's time; how many requests fit in it depends on the load
        // of the machine, so only "some, all answered" is asserted.
        assert!(
            g["duration_ms"].as_u64().unwrap() >= 3000,
            "{step} watched the flip for 3 s: {g}"
        );
        assert!(g["requests"].as_u64().unwrap() > 0, "{step}: {g}");
        assert!(g["successes"].as_u64().unwrap() > 0, "{step}: {g}");
    }
}

#[test]
fn migrate_app_leaves_exactly_the_expected_state_after_each_phase() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let dir = lab.dir_arg();
    let run = |args: &[&str], code: i32| {
        let mut all = args.to_vec();
        if args[0] == "run" {
            all.extend(["--lab-dir", &dir]);
        }
        sb.ferry(all).code(code).run()
    };
    let (old_lb, new_lb) = (lb(&lab, "old"), lb(&lab, "new"));
    let cluster_ip = svc(&lab, "old", "app1-ns", "app1")["spec"]["clusterIP"].clone();
    assert_eq!(
        lab.curl_from("old", "app2-ns", "app2", "http://app1.app1-ns"),
        "Hello, I'm app1 (cluster old)"
    );

    // Phase 1: bridged through the old ingress.
    run(
        &[
            &["run", &script("migrate-app.rhai"), "--id", "m"][..],
            &APP1_FROM_APP2,
            &["--set", "expect=Hello, I'm app1"],
        ]
        .concat(),
        3,
    );
    // The Service kept its address and ports; only its endpoints moved.
    let app1 = svc(&lab, "old", "app1-ns", "app1");
    assert_eq!(app1["spec"]["type"], "ClusterIP");
    assert_eq!(app1["spec"]["clusterIP"], cluster_ip);
    assert!(app1["spec"]["selector"].is_null(), "{app1}");
    assert_eq!(
        app1["metadata"]["annotations"]["ferry.dev/selector"],
        "app=app1"
    );
    let bridge = slice(&lab, "old", "app1-ns", "app1-ferry-bridge");
    assert_eq!(
        bridge["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "ferry.dev"
    );
    assert_eq!(
        bridge["metadata"]["annotations"]["ferry.dev/points-at"],
        "old"
    );
    assert_eq!(
        bridge["endpoints"][0]["addresses"],
        json!([ingress_pod(&lab, "old")])
    );
    assert_eq!(
        bridge["ports"],
        json!([{ "name": "http", "port": 8000, "protocol": "TCP" }])
    );
    let internal = svc(&lab, "old", "app1-ns", "app1-internal");
    assert_eq!(internal["spec"]["type"], "ClusterIP");
    assert_eq!(internal["spec"]["selector"]["app"], "app1");
    assert_eq!(
        lab.names("old", "ingressroutes.traefik.io", "app1-ns"),
        ["app1"]
    );
    assert_eq!(
        lab.names("old", "middlewares.traefik.io", "app1-ns"),
        ["app1-ferry-via"]
    );
    assert_eq!(record(&lab, "old", "A"), Some(vec![old_lb.clone()]));
    let owner = record(&lab, "_ferry-a.old", "TXT").expect("an ownership record");
    assert!(
        owner.iter().any(|v| v.contains("ferry/owner=lab")),
        "{owner:?}"
    );
    assert!(lab.names("new", "deployments.apps", "app1-ns").is_empty());
    assert_eq!(
        lab.curl_from("old", "app2-ns", "app2", "http://app1.app1-ns"),
        "Hello, I'm app1 (cluster old)",
        "through the Service's ClusterIP, ferry's EndpointSlice and the old ingress"
    );

    // Phase 2: running in the new cluster, not yet used.
    run(&["approve", "m", "prepare"], 0);
    run(&["resume", "m"], 3);
    assert_eq!(lab.names("new", "deployments.apps", "app1-ns"), ["app1"]);
    assert_eq!(
        svc(&lab, "new", "app1-ns", "app1")["spec"]["type"],
        "ClusterIP"
    );
    assert_eq!(
        svc(&lab, "new", "app1-ns", "app1")["spec"]["selector"]["app"],
        "app1"
    );
    assert_eq!(
        svc(&lab, "new", "app1-ns", "app1-internal")["spec"]["type"],
        "ClusterIP"
    );
    assert_eq!(
        lab.names("new", "ingressroutes.traefik.io", "app1-ns"),
        ["app1"]
    );
    assert_eq!(record(&lab, "new", "A"), Some(vec![new_lb.clone()]));
    assert_eq!(
        lab.curl_from("old", "app2-ns", "app2", "http://app1.app1-ns"),
        "Hello, I'm app1 (cluster old)"
    );

    // Phase 3: cut over; app2, still in the old cluster, now reaches the new one.
    run(&["approve", "m", "cutover"], 0);
    run(&["resume", "m"], 0);
    let bridge = slice(&lab, "old", "app1-ns", "app1-ferry-bridge");
    assert_eq!(
        bridge["metadata"]["annotations"]["ferry.dev/points-at"],
        "new"
    );
    assert_eq!(bridge["endpoints"][0]["addresses"], json!([new_lb]));
    assert_eq!(bridge["ports"][0]["port"], 80);
    assert_eq!(
        svc(&lab, "old", "app1-ns", "app1")["spec"]["clusterIP"],
        cluster_ip
    );
    assert_eq!(
        lab.curl_from("old", "app2-ns", "app2", "http://app1.app1-ns"),
        "Hello, I'm app1 (cluster new)"
    );
    assert_clean_guards(&sb, "m", 2);
    let paths: Vec<(String, Value)> = guards(&sb, "m")
        .into_iter()
        .map(|(step, g)| (step, g["last_path"].clone()))
        .collect();
    assert_eq!(
        paths,
        [
            (
                "app1: EndpointSlice -> old ingress".to_owned(),
                json!("old")
            ),
            (
                "app1: EndpointSlice -> new ingress".to_owned(),
                json!("new")
            )
        ],
        "each guard's last answers came through the path its flip opened"
    );
}

#[test]
fn two_apps_runs_the_article_and_finalizes_both() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let dir = lab.dir_arg();
    sb.ferry([
        "run",
        &script("two-apps.rhai"),
        "--id",
        "t",
        "--lab-dir",
        &dir,
    ])
    .code(3)
    .stderr_has("ferry approve t app2-ready")
    .run();
    assert_eq!(
        slice(&lab, "old", "app1-ns", "app1-ferry-bridge")["metadata"]["annotations"]["ferry.dev/points-at"],
        "new"
    );
    assert_eq!(
        svc(&lab, "old", "app2-ns", "app2")["spec"]["selector"]["app"],
        "app2",
        "app2 waits for its team"
    );
    assert_eq!(
        lab.curl_from("old", "app2-ns", "app2", "http://app1.app1-ns"),
        "Hello, I'm app1 (cluster new)"
    );

    sb.ferry(["approve", "t", "app2-ready"]).run();
    let out = sb
        .ferry(["resume", "t"])
        .stdout_has("summary:")
        .stdout_has("app2: bridged")
        .run();
    assert!(
        out.stdout.contains("0 failures") && !out.stdout.contains(" 1 failures"),
        "{}",
        out.stdout
    );

    for (ns, app) in [("app1-ns", "app1"), ("app2-ns", "app2")] {
        let moved = svc(&lab, "new", ns, app);
        assert_eq!(
            (
                moved["spec"]["type"].as_str(),
                moved["spec"]["selector"]["app"].as_str()
            ),
            (Some("ClusterIP"), Some(app))
        );
        // Retired in old: scaled to zero, its route there gone, its Service
        // still bridged to the new cluster for any caller left behind.
        let retired = svc(&lab, "old", ns, app);
        assert_eq!(
            retired["metadata"]["annotations"]["ferry.dev/finalized"],
            "true"
        );
        assert_eq!(
            slice(&lab, "old", ns, &format!("{app}-ferry-bridge"))["metadata"]["annotations"]["ferry.dev/points-at"],
            "new"
        );
        let deployment = lab
            .object("old", &format!("deployments.apps/{ns}/{app}"))
            .unwrap();
        assert_eq!(deployment["spec"]["replicas"], 0);
        assert_eq!(
            deployment["metadata"]["annotations"]["ferry.dev/replicas"],
            "1"
        );
        assert!(svc(&lab, "old", ns, &format!("{app}-internal")).is_null());
        assert!(lab.names("old", "ingressroutes.traefik.io", ns).is_empty());
        assert_eq!(lab.names("new", "ingressroutes.traefik.io", ns), [app]);
    }
    let left: Vec<String> = lab
        .records()
        .into_iter()
        .map(|r| format!("{} {}", r.name, r.rtype))
        .collect();
    assert_eq!(
        left,
        ["mycompany.internal. NS", "ns1.mycompany.internal. A"],
        "the bridge records and their owners are released"
    );
    assert_eq!(
        lab.curl_from("new", "app2-ns", "app2", "http://app1.app1-ns"),
        "Hello, I'm app1 (cluster new)"
    );
    assert_clean_guards(&sb, "t", 4);

    // `ferry status` shows the board: every app through every phase, with
    // each flip's guard.
    let out = sb.ferry(["status", "t"]).run();
    let row = |app: &str| {
        out.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(app))
            .unwrap_or_else(|| panic!("no row for {app}: {}", out.stdout))
            .to_owned()
    };
    for app in ["app1", "app2"] {
        let row = row(app);
        assert_eq!(row.matches('✔').count(), 4, "{row}");
        assert_eq!(row.matches(" 0/").count(), 2, "{row}");
    }
    let json = sb.ferry(["status", "t", "-o", "json"]).run();
    let status: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        status["apps"]["app1"]["cut over"]["failures"], 0,
        "{status}"
    );
    assert_eq!(status["apps"]["app1"]["cut over"]["last_path"], "new");
    assert_eq!(status["apps"]["app2"]["finalized"], true);

    // Finalized with its shared records released: a rollback would point
    // callers at names that no longer resolve, so it refuses unless forced.
    sb.ferry(["rollback", "t", "--yes"])
        .code(4)
        .stderr_has("past step `app2: release records`")
        .stderr_has("no longer resolve")
        .run();
    assert_eq!(sb.run_status("t"), "succeeded");
}

#[test]
fn rollback_after_cutover_restores_the_lab_while_app2_keeps_answers() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let dir = lab.dir_arg();
    let before_ip = svc(&lab, "old", "app1-ns", "app1")["spec"]["clusterIP"].clone();
    let base = APP1_FROM_APP2;
    let migrate = script("migrate-app.rhai");
    let mut args = vec!["run", &migrate, "--id", "r", "--lab-dir", &dir];
    args.extend(base);
    sb.ferry(args).code(3).run();
    let mut last = String::new();
    for gate in ["prepare", "cutover"] {
        sb.ferry(["approve", "r", gate]).run();
        let out = sb.ferry(["resume", "r"]).any_code().run();
        last = format!("{}\n{}", out.stdout, out.stderr);
    }
    assert_eq!(sb.run_status("r"), "succeeded", "{last}");
    assert_eq!(
        lab.curl_from("old", "app2-ns", "app2", "http://app1.app1-ns"),
        "Hello, I'm app1 (cluster new)"
    );

    // app2 calls app1 continuously while the run is rolled back.
    let pod = lab.names("old", "pods", "app2-ns").remove(0);
    let url = "http://app1.app1-ns";
    let poller = Poller::start(
        lab.lab.network.clone(),
        "old",
        "app2-ns",
        &pod,
        &[url],
        Duration::from_millis(20),
    );
    sb.ferry(["rollback", "r", "--yes"]).run();
    let calls = poller.stop();
    let failures: Vec<_> = calls.iter().filter(|c| !c.ok()).collect();
    assert!(
        failures.is_empty(),
        "app2 lost app1 during the rollback: {failures:?}"
    );
    assert!(!calls.is_empty());

    assert_eq!(sb.run_status("r"), "rolled-back");
    // The undos that moved live routing ran under guards, journaled with
    // the steps they undid, each proven on the path it restored.
    for (step, path) in [
        ("app1: EndpointSlice -> new ingress", "old"),
        ("app1: EndpointSlice -> old ingress", "direct"),
    ] {
        let record = sb.step("r", step);
        assert!(
            record["value"].is_object(),
            "the step keeps its value: {record}"
        );
        let guard = &record["data"]["undo"]["guard"];
        assert!(
            guard["requests"].as_u64().unwrap_or(0) > 0,
            "{step}: {guard}"
        );
        assert_eq!(guard["failures"], 0, "{step}: {guard}");
        assert_eq!(guard["last_path"], path, "{step}: {guard}");
    }
    let app1 = svc(&lab, "old", "app1-ns", "app1");
    assert_eq!(app1["spec"]["type"], "ClusterIP");
    assert_eq!(app1["spec"]["selector"]["app"], "app1");
    assert_eq!(
        app1["spec"]["clusterIP"], before_ip,
        "the old clusterIP is requested again"
    );
    for cluster in ["old", "new"] {
        assert!(svc(&lab, cluster, "app1-ns", "app1-internal").is_null());
        assert!(
            lab.names(cluster, "ingressroutes.traefik.io", "app1-ns")
                .is_empty()
        );
    }
    assert!(svc(&lab, "new", "app1-ns", "app1").is_null());
    assert!(lab.names("new", "deployments.apps", "app1-ns").is_empty());
    assert!(record(&lab, "old", "A").is_none() && record(&lab, "new", "A").is_none());
    assert!(
        record(&lab, "_ferry-a.old", "TXT").is_none()
            && record(&lab, "_ferry-a.new", "TXT").is_none()
    );
    assert_eq!(
        lab.curl_from("old", "app2-ns", "app2", "http://app1.app1-ns"),
        "Hello, I'm app1 (cluster old)"
    );
}

#[test]
fn every_script_and_stdlib_module_passes_check() {
    let sb = Sandbox::new();
    let mut args = vec!["check".to_owned()];
    for dir in [SCRIPTS, concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rhai") {
                args.push(path.display().to_string());
            }
        }
    }
    assert!(args.len() >= 8, "{args:?}");
    sb.ferry(args).run();
}
