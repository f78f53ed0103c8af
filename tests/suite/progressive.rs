//! Progressive cutover on the lab (`scripts/progressive.rhai`, `ferry/progressive`):
//! app1's traffic moves to the new cluster at 10%, then 50%, then all,
//! with no failed request from app2's pod at any weight and the observed
//! split next to the asked one; a breach at 50% steps back to 10% and
//! fails the step, and a resume after the fix completes; `kill -9`
//! between weights resumes from the last good weight; a rollback from 50%
//! walks the weights back down to none.

use crate::common::lab::LabFixture;
use crate::common::{Running, Sandbox};
use serde_json::{Value, json};
use std::io::BufRead;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/progressive.rhai");
/// Short holds: the figures come from the analysis, not from how long it watched.
const HOLDS: [&str; 4] = ["--set", "hold=2", "--set", "baseline=1"];

fn run_args<'a>(lab: &'a str, id: &'a str) -> Vec<&'a str> {
    let mut args = vec!["--json", "run", SCRIPT, "--id", id, "--lab-dir", lab];
    args.extend(HOLDS);
    args
}

/// The TraefikService splitting app1's route in the old cluster, if any.
fn split(lab: &LabFixture) -> Option<Value> {
    lab.object("old", "traefikservices.traefik.io/app1-ns/app1-ferry-split")
}

/// `(old, new)` weights of the split in the old cluster.
fn weights(lab: &LabFixture) -> (i64, i64) {
    let split = split(lab).expect("a split in the old cluster");
    let legs = split["spec"]["weighted"]["services"].as_array().unwrap();
    assert_eq!(legs[0]["name"], "app1-internal", "{split}");
    assert_eq!(legs[1]["name"], "app1-next", "{split}");
    (
        legs[0]["weight"].as_i64().unwrap(),
        legs[1]["weight"].as_i64().unwrap(),
    )
}

/// What the old cluster's route for app1 sends to.
fn route_service(lab: &LabFixture) -> Value {
    let route = lab
        .object("old", "ingressroutes.traefik.io/app1-ns/app1")
        .expect("app1's route in old");
    route["spec"]["routes"][0]["services"][0].clone()
}

/// Runs until `step` completes, then kills the run with SIGKILL.
fn kill_after(mut child: Running, step: &str) {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut failed = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(event) = serde_json::from_str::<Value>(&line.unwrap_or_default()) else {
            continue;
        };
        if event["kind"] == "step_completed" && event["step"] == step {
            child.kill_now();
            return;
        }
        if event["kind"] == "step_failed" {
            failed.push(event);
        }
    }
    panic!("the run ended before `{step}` completed: {failed:?}");
}

/// The split's evidence at a weight step: asked vs observed, no failure.
fn assert_weight_step(sb: &Sandbox, run: &str, weight: i64) {
    let step = sb.step(run, &format!("app1: weight {weight}%"));
    assert_eq!(step["status"], "completed", "{step}");
    let value = &step["value"];
    assert_eq!(
        value["asked"],
        json!({ "old": 100 - weight, "new": weight })
    );
    assert_eq!(value["failures"], 0, "{value}");
    let observed = &value["observed"];
    let (old, new) = (
        observed["old"].as_f64().unwrap(),
        observed["new"].as_f64().unwrap(),
    );
    assert!(
        old + new > 100.0,
        "enough answers to judge a split: {value}"
    );
    // The lab splits as Traefik does (smooth weighted round robin): exact
    // over every round of 100, whatever the guard's rate was.
    let percent = observed["new_percent"].as_f64().unwrap();
    assert!(
        (percent - weight as f64).abs() <= 3.0,
        "asked {weight}%, saw {percent}%: {value}"
    );
    let guard = &step["data"]["guard"];
    assert_eq!(guard["failures"], 0, "{guard}");
    assert_eq!(guard["paths"]["new"].as_f64(), Some(new), "{guard}");
    assert_eq!(guard["paths"]["old"].as_f64(), Some(old), "{guard}");
}

#[test]
fn progressive_script_moves_app1_at_10_50_and_100_percent_with_no_failed_request() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let dir = lab.dir_arg();
    let mut args = run_args(&dir, "p");
    args.remove(0);
    sb.ferry(args).run();

    let names: Vec<String> = sb
        .steps("p")
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .skip_while(|n| n != "app1: check cutover")
        .collect();
    assert_eq!(
        names,
        [
            "app1: check cutover",
            "app1: baseline",
            "app1: weight 10%",
            "app1: weight 50%",
            "app1: EndpointSlice -> new ingress",
            "app1: remove split",
            "app1: cut over",
        ]
    );
    let baseline = &sb.step("p", "app1: baseline")["value"]["http 80/TCP"];
    assert_eq!(baseline["failures"], 0, "{baseline}");
    assert_eq!(baseline["observed"]["new"], 0, "{baseline}");
    assert!(baseline["requests"].as_u64().unwrap() > 0, "{baseline}");
    assert_weight_step(&sb, "p", 10);
    assert_weight_step(&sb, "p", 50);
    // Every guard of the run, from app2's pod: no failed request.
    for step in sb.steps("p") {
        let guard = &step["data"]["guard"];
        if !guard.is_null() {
            assert_eq!(guard["failures"], 0, "{}: {guard}", step["name"]);
        }
    }
    let flip = &sb.step("p", "app1: EndpointSlice -> new ingress")["data"]["guard"];
    assert_eq!(flip["last_path"], "new", "{flip}");

    // The split is gone: the old route is as before, the bridge points at new.
    assert!(split(&lab).is_none());
    assert!(lab.object("old", "services/app1-ns/app1-next").is_none());
    assert_eq!(
        route_service(&lab),
        json!({ "kind": "Service", "name": "app1-internal", "namespace": "app1-ns", "port": 80 })
    );
    let slice = lab
        .object(
            "old",
            "endpointslices.discovery.k8s.io/app1-ns/app1-ferry-bridge",
        )
        .expect("the bridge's slice");
    assert_eq!(
        slice["metadata"]["annotations"]["ferry.dev/points-at"],
        "new"
    );
    assert_eq!(
        lab.curl_from("old", "app2-ns", "app2", "http://app1.app1-ns"),
        "Hello, I'm app1 (cluster new)"
    );
}

/// Scales the new cluster's app1 to `replicas` (0: its ingress answers 503).
fn scale_new(lab: &LabFixture, replicas: i64) {
    crate::multiport::patch(
        lab,
        "new",
        "apps",
        "deployments",
        "app1-ns",
        "app1",
        json!({ "spec": { "replicas": replicas } }),
    )
}

/// Runs until `step` completes, then breaks the new side; returns the
/// run's exit code once it ends.
fn break_new_after(sb: &Sandbox, lab: &LabFixture, run: &str, step: &str) -> i32 {
    let mut child = sb.spawn(run_args(&lab.dir_arg(), run));
    let stdout = child.stdout.take().expect("piped stdout");
    // Read to the end: the run keeps writing its events.
    for line in std::io::BufReader::new(stdout).lines() {
        let event: Value = serde_json::from_str(&line.unwrap_or_default()).unwrap_or_default();
        if event["kind"] == "step_completed" && event["step"] == step {
            scale_new(lab, 0);
        }
    }
    crate::common::finish(child).code
}

#[test]
fn a_breach_at_50_percent_steps_back_to_10_and_a_resume_after_the_fix_completes() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let scale = |replicas| scale_new(&lab, replicas);
    assert_eq!(break_new_after(&sb, &lab, "b", "app1: weight 10%"), 1);
    let failed = sb.step("b", "app1: weight 50%");
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("error rate"), "{error}");
    assert!(error.contains("Stepped back to 10%"), "{error}");
    // The failed step keeps the guard's statistics: the failures it saw.
    assert!(
        failed["data"]["guard"]["failures"].as_u64().unwrap() > 0,
        "{failed}"
    );
    assert_eq!(
        weights(&lab),
        (90, 10),
        "stepped back to the last good weight"
    );
    assert_eq!(route_service(&lab)["kind"], "TraefikService");

    scale(1);
    sb.ferry(["resume", "b"]).run();
    let retried = sb.step("b", "app1: weight 50%");
    assert_eq!(retried["attempts"], 2, "{retried}");
    assert_weight_step(&sb, "b", 50);
    assert_eq!(sb.step("b", "app1: weight 10%")["attempts"], 1);
    assert!(split(&lab).is_none());
}

#[test]
fn kill_between_weights_resumes_from_the_last_good_weight_and_rollback_walks_them_down() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let dir = lab.dir_arg();
    kill_after(sb.spawn(run_args(&dir, "k")), "app1: weight 10%");
    assert_eq!(weights(&lab), (90, 10));
    kill_after(sb.spawn(["--json", "resume", "k"]), "app1: weight 50%");
    assert_eq!(weights(&lab), (50, 50));
    assert_eq!(sb.step("k", "app1: weight 10%")["attempts"], 1);
    assert_weight_step(&sb, "k", 50);

    sb.ferry(["rollback", "k", "--yes"]).run();
    assert_eq!(sb.run_status("k"), "rolled-back");
    // Each weight's undo went one weight down, watched from app2's pod.
    let down_to_10 = &sb.step("k", "app1: weight 50%")["data"]["undo"]["guard"];
    let percent = |stats: &Value| {
        let (old, new) = (
            stats["paths"]["old"].as_f64().unwrap_or_default(),
            stats["paths"]["new"].as_f64().unwrap_or_default(),
        );
        100.0 * new / (old + new)
    };
    assert_eq!(down_to_10["failures"], 0, "{down_to_10}");
    // The guard watched the change from 50% to 10%: between the two.
    let seen = percent(down_to_10);
    assert!((5.0..=30.0).contains(&seen), "{seen}%: {down_to_10}");
    let down_to_0 = &sb.step("k", "app1: weight 10%")["data"]["undo"]["guard"];
    assert_eq!(down_to_0["failures"], 0, "{down_to_0}");
    assert_eq!(down_to_0["last_path"], "old", "{down_to_0}");
    for step in ["app1: weight 50%", "app1: weight 10%"] {
        assert_eq!(sb.step("k", step)["undo"], "done", "{step}");
    }
    // Nothing of the split is left, nor of the rest of the run.
    assert!(split(&lab).is_none());
    assert!(lab.object("old", "services/app1-ns/app1-next").is_none());
    assert!(
        lab.object("old", "ingressroutes.traefik.io/app1-ns/app1")
            .is_none()
    );
    assert_eq!(
        lab.curl_from("old", "app2-ns", "app2", "http://app1.app1-ns"),
        "Hello, I'm app1 (cluster old)"
    );
}

#[test]
fn progressive_options_are_checked_before_anything_changes() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let dir = lab.dir_arg();
    for (steps, says) in [
        ("10,50", "must end at 100"),
        ("50,10,100", "must rise"),
        ("0,100", "must rise from above 0"),
    ] {
        let out = sb
            .ferry([
                "run",
                SCRIPT,
                "--lab-dir",
                &dir,
                "--set",
                &format!("steps={steps}"),
            ])
            .any_code()
            .run();
        assert_ne!(out.code, 0);
        assert!(out.stderr.contains(says), "{steps}: {}", out.stderr);
        assert!(out.stderr.contains("progressive.steps"), "{}", out.stderr);
    }
    // Traefik without ExternalName Services cannot reach the new side.
    crate::multiport::patch(
        &lab,
        "old",
        "apps",
        "deployments",
        "traefik",
        "traefik",
        json!({ "spec": { "template": { "spec": { "containers": [{ "name": "traefik", "image": "traefik:v3.1", "args": ["--providers.kubernetescrd", "--entryPoints.web.address=:8000"], "ports": [{ "name": "web", "containerPort": 8000 }] }] } } } }),
    );
    let out = sb
        .ferry(["run", SCRIPT, "--lab-dir", &dir, "--id", "x"])
        .code(1)
        .run();
    assert!(
        out.stderr
            .contains("allowExternalNameServices=true (Helm: providers.kubernetesCRD.allowExternalNameServices=true)"),
        "{}",
        out.stderr
    );
    assert_eq!(sb.step("x", "app1: check cutover")["status"], "failed");
    assert!(split(&lab).is_none());
    assert_eq!(route_service(&lab)["name"], "app1-internal");

    // Why: such a Traefik drops a route whose service is an ExternalName
    // (the lab's ingress does as Traefik does), so the split would fail
    // every caller it sent there.
    sb.write(
        "force.rhai",
        r#"
import "ferry/migrate" as migrate;
import "ferry/ports" as ports;
import "ferry/progressive" as progressive;
let old = cluster("old");
let app = migrate::app("app1", "app1-ns");
let plan = ports::plan(old, app, old.get("svc", "app1-ns", "app1-internal"));
step("split anyway", || progressive::set_weight(old, dns("private"), app, plan, 50));
"#,
    );
    sb.ferry(["run", "force.rhai", "--lab-dir", &dir]).run();
    assert_eq!(weights(&lab), (50, 50));
    assert_eq!(
        lab.curl_from("old", "app2-ns", "app2", "http://app1.app1-ns"),
        "404 page not found"
    );
}

#[test]
fn every_http_port_is_split_and_the_others_move_with_the_flip() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let dir = lab.dir_arg();
    crate::multiport::serve_multiport_app1(&lab);
    // TCP connect guards hold each connection up to their 1 s timeout:
    // watch windows of 2 s at least, so their probes complete.
    let args = [
        "--json",
        "run",
        SCRIPT,
        "--id",
        "m",
        "--lab-dir",
        &dir,
        "--set",
        "hold=2",
        "--set",
        "baseline=2",
    ];
    kill_after(sb.spawn(args), "app1: weight 50%");
    // One split per HTTP route, h2c spoken on both legs of the gRPC port's.
    for (name, h2c) in [("app1", false), ("app1-9090", false), ("app1-50051", true)] {
        let split = lab
            .object(
                "old",
                &format!("traefikservices.traefik.io/app1-ns/{name}-ferry-split"),
            )
            .unwrap_or_else(|| panic!("no split for {name}"));
        let legs = split["spec"]["weighted"]["services"].as_array().unwrap();
        assert_eq!(
            legs.iter()
                .map(|l| (l["weight"].as_i64().unwrap(), l["scheme"] == "h2c"))
                .collect::<Vec<_>>(),
            [(50, h2c), (50, h2c)],
            "{split}"
        );
    }
    let value = &sb.step("m", "app1: weight 50%")["value"];
    for port in ["http 80/TCP", "metrics 9090/TCP", "grpc 50051/TCP"] {
        let seen = &value["ports"][port];
        assert_eq!(seen["failures"], 0, "{port}: {value}");
        let percent = seen["observed"]["new_percent"].as_f64().unwrap();
        assert!((percent - 50.0).abs() <= 5.0, "{port}: {value}");
    }
    // Plain TCP goes through the per-app LoadBalancer: not split, still old.
    let db = &value["ports"]["postgres 5432/TCP"];
    assert_eq!(db["failures"], 0, "{value}");
    assert_eq!(db["observed"]["new"], 0, "{value}");

    sb.ferry(["resume", "m"]).run();
    assert_eq!(
        sb.step("m", "app1: EndpointSlice -> new ingress")["data"]["guard"]["failures"],
        0
    );
    for name in ["app1", "app1-9090", "app1-50051"] {
        assert!(
            lab.object(
                "old",
                &format!("traefikservices.traefik.io/app1-ns/{name}-ferry-split")
            )
            .is_none()
        );
    }
    assert_eq!(
        lab.curl_from("old", "app2-ns", "app2", "http://app1.app1-ns:9090/"),
        "Hello, I'm app1 (cluster new)"
    );
}

#[test]
fn the_analysis_judges_error_rate_latency_and_the_baseline_ratio() {
    let sb = Sandbox::new();
    sb.write(
        "judge.rhai",
        r#"
import "ferry/progressive" as progressive;
let limits = #{ max_error_rate: 0.01, max_p99_ms: 150.0, max_p99_ratio: 1.5 };
let stats = |requests, failures, p99, before, after| #{ requests: requests, failures: failures, latency_ms: #{ p99: p99 }, paths: #{ old: before, "new": after } };
let base = #{ p99_ms: 100.0 };
step("healthy", || progressive::judge(limits, stats.call(1000, 10, 140.0, 500, 490), base, 50));
step("failing", || progressive::judge(limits, stats.call(1000, 11, 140.0, 500, 489), base, 50));
step("slow", || progressive::judge(limits, stats.call(1000, 0, 160.0, 500, 500), #{ p99_ms: 110.0 }, 50));
step("slower than the baseline", || progressive::judge(limits, stats.call(1000, 0, 140.0, 500, 500), #{ p99_ms: 90.0 }, 50));
step("not split", || progressive::judge(limits, stats.call(1000, 0, 10.0, 1000, 0), base, 10));
step("off", || progressive::judge(#{ max_error_rate: (), max_p99_ms: (), max_p99_ratio: () }, stats.call(10, 9, 900.0, 1, 0), base, 0));
"#,
    );
    sb.ferry(["run", "judge.rhai", "--id", "j"]).run();
    let reasons = |step: &str| -> Vec<String> {
        sb.step("j", step)["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(reasons("healthy"), Vec::<String>::new());
    assert_eq!(
        reasons("failing"),
        ["error rate 1.1% (11 of 1000) above 1.0%"]
    );
    assert_eq!(reasons("slow"), ["p99 160.0 ms above 150.0 ms"]);
    assert_eq!(
        reasons("slower than the baseline"),
        ["p99 140.0 ms above 1.5 × the baseline's 90.0 ms"]
    );
    assert_eq!(
        reasons("not split"),
        [
            "no answer came from the new cluster at 10% (#{\"new\": 0, \"old\": 1000}): the split is not in effect"
        ]
    );
    assert_eq!(reasons("off"), Vec::<String>::new());
}

#[test]
fn a_failing_flip_at_100_percent_steps_back_to_the_last_split() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    assert_eq!(break_new_after(&sb, &lab, "f", "app1: weight 50%"), 1);
    let flip = sb.step("f", "app1: EndpointSlice -> new ingress");
    assert_eq!(flip["status"], "failed", "{flip}");
    let error = flip["error"].as_str().unwrap();
    assert!(error.contains("Stepped back to 50%"), "{error}");
    // The bridge is back on the old ingress, whose route splits 50/50.
    let slice = lab
        .object(
            "old",
            "endpointslices.discovery.k8s.io/app1-ns/app1-ferry-bridge",
        )
        .expect("the bridge's slice");
    assert_eq!(
        slice["metadata"]["annotations"]["ferry.dev/points-at"],
        "old"
    );
    assert_eq!(weights(&lab), (50, 50));

    scale_new(&lab, 1);
    sb.ferry(["resume", "f"]).run();
    assert_eq!(
        sb.step("f", "app1: EndpointSlice -> new ingress")["attempts"],
        2
    );
    assert!(split(&lab).is_none());
}

#[test]
fn with_the_externalname_bridge_the_split_is_the_same_and_the_flip_is_dns() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    // A short DNS cache: the ExternalName flips are watched as long as it lives.
    lab.set_dns_cache("old", 2, 1);
    let dir = lab.dir_arg();
    let mut args = run_args(&dir, "e");
    args.remove(0);
    // Its first flip strands the callers that cached app1's ClusterIP.
    args.extend([
        "--set",
        "bridge=externalname",
        "--set",
        "max_failures=100000",
    ]);
    sb.ferry(args).run();
    // Once bridged, the split moves callers with no failure.
    assert_weight_step(&sb, "e", 10);
    assert_weight_step(&sb, "e", 50);
    let flip = sb.step("e", "app1: ExternalName -> new.mycompany.internal");
    assert_eq!(flip["data"]["guard"]["failures"], 0, "{flip}");
    assert_eq!(flip["data"]["guard"]["last_path"], "new", "{flip}");
    let svc = lab.object("old", "services/app1-ns/app1").unwrap();
    assert_eq!(svc["spec"]["externalName"], "new.mycompany.internal");
    assert!(split(&lab).is_none());
}
