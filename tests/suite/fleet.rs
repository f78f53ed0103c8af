//! Safety under scale (issue 8): a fleet run killed with `kill -9` half-way
//! resumes and moves every app exactly once; `parallel` branches keep to the
//! client-side rate limit and ride out 429s as retries.

use crate::common::{Sandbox, await_condition};
use ferry::lab::seed::App;
use ferry::lab::{Lab, LabOptions};
use serde_json::Value;
use std::collections::HashMap;

const FLEET: &str = include_str!("../../scripts/fleet.rhai");

/// A lab served from this test process for as long as the value lives.
struct Running {
    lab: Lab,
    _rt: tokio::runtime::Runtime,
}

fn start(dir: &std::path::Path, apps: Vec<App>) -> Running {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut options = LabOptions::new(dir);
    options.apps = apps;
    let lab = rt.block_on(Lab::start(options)).expect("the lab starts");
    Running { lab, _rt: rt }
}

fn completed(sb: &Sandbox, run: &str) -> HashMap<String, Value> {
    sb.steps(run)
        .into_iter()
        .filter(|s| s["status"] == "completed")
        .map(|s| (s["name"].as_str().unwrap().to_owned(), s))
        .collect()
}

#[test]
fn a_fleet_killed_half_way_resumes_and_moves_every_app_exactly_once() {
    const APPS: usize = 20;
    let sb = Sandbox::new();
    let running = start(&sb.file("lab"), App::fleet(APPS));
    let lab = &running.lab;
    sb.write("ferry.toml", &lab.environment().to_toml());
    sb.write("fleet.rhai", FLEET);

    let mut child = sb.spawn([
        "run",
        "fleet.rhai",
        "--id",
        "f",
        "--set",
        &format!("apps={APPS}"),
        "--set",
        "limit=4",
    ]);
    let finalized = |sb: &Sandbox| {
        completed(sb, "f")
            .keys()
            .filter(|n| n.ends_with(": retire in old"))
            .count()
    };
    await_condition("half the apps finalized", || finalized(&sb) >= APPS / 2);
    child.kill_now();
    assert_eq!(
        sb.run_status("f"),
        "running",
        "killed half-way, the run had not ended"
    );
    let before = completed(&sb, "f");

    let out = sb.ferry(["--json", "resume", "f"]).run();
    let events: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON event"))
        .collect();
    let started: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "step_started")
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    for name in &started {
        assert!(
            !before.contains_key(*name),
            "step `{name}` completed before the kill and ran again"
        );
    }
    assert!(!started.is_empty(), "the resume finished the fleet");
    assert_eq!(sb.run_status("f"), "succeeded");

    // Every app's steps completed once: those completed before the kill are
    // untouched (same attempt, same end); a step cut off by the kill ran
    // again (attempt 2) and nothing ran a third time.
    let after = completed(&sb, "f");
    for (name, step) in &before {
        assert_eq!(&after[name], step, "step `{name}` changed on resume");
    }
    for step in sb.steps("f") {
        assert_eq!(step["status"], "completed", "{step}");
        assert!(step["attempts"].as_u64().unwrap() <= 2, "{step}");
    }
    for i in 1..=APPS {
        for phase in ["EndpointSlice -> new ingress", "retire in old"] {
            assert!(
                after.contains_key(&format!("app{i}: {phase}")),
                "app{i}: {phase}"
            );
        }
    }
    assert!(after.contains_key("fleet: release records"));

    // The lab: every app answers from the new cluster, retired in the old
    // one behind the Service that still bridges there, its address kept.
    let old = lab.cluster("old").unwrap();
    let new = lab.cluster("new").unwrap();
    for i in 1..=APPS {
        let svc = old.with_state(|s| s.objects[&format!("services/app{i}-ns/app{i}")].clone());
        assert_eq!(svc["spec"]["type"], "ClusterIP", "app{i}");
        let slice = old.with_state(|s| {
            s.objects[&format!("endpointslices.discovery.k8s.io/app{i}-ns/app{i}-ferry-bridge")]
                .clone()
        });
        assert_eq!(
            slice["metadata"]["annotations"]["ferry.dev/points-at"],
            "new"
        );
        assert_eq!(
            svc["metadata"]["annotations"]["ferry.dev/finalized"],
            "true"
        );
        new.with_state(|s| {
            assert!(
                s.objects
                    .contains_key(&format!("deployments.apps/app{i}-ns/app{i}"))
            );
            assert!(
                s.objects
                    .contains_key(&format!("services/app{i}-ns/app{i}"))
            );
            // Kept: the old cluster's callers still arrive through it.
            assert!(
                s.objects
                    .contains_key(&format!("services/app{i}-ns/app{i}-internal"))
            );
        });
    }
    for side in ["old", "new"] {
        assert!(lab.zone.get(side, "A").is_none(), "{side} record released");
    }
}

#[test]
fn parallel_branches_keep_to_the_rate_limit_and_retry_429s() {
    const WRITES: usize = 20;
    const QPS: f64 = 10.0;
    const BURST: usize = 1;
    const REFUSED: u64 = 1;
    let sb = Sandbox::new();
    let running = start(&sb.file("lab"), App::article());
    let lab = &running.lab;
    let mut env = lab.environment();
    for target in env.clusters.values_mut() {
        target.qps = Some(QPS);
        target.burst = Some(BURST as u32);
    }
    sb.write("ferry.toml", &env.to_toml());
    sb.write(
        "writes.rhai",
        &format!(
            r#"
            let old = cluster("old");
            let items = [];
            for i in 0..{WRITES} {{ items.push(i); }}
            parallel(items, |i| {{
                let c = old; // a branch's own handle: methods of a captured one would share it
                step(`cm ${{i}}`, || c.apply(#{{
                    apiVersion: "v1", kind: "ConfigMap",
                    metadata: #{{ name: `cm-${{i}}`, namespace: "app1-ns" }},
                    data: #{{ i: `${{i}}` }},
                }}))
            }}, #{{ limit: 8 }});
            "#
        ),
    );
    let old = lab.cluster("old").unwrap();
    old.traffic.throttle("/configmaps/", REFUSED);

    let out = sb.ferry(["run", "writes.rhai", "--id", "w"]).run();
    assert!(
        out.stdout.contains("429"),
        "retries announced: {}",
        out.stdout
    );

    let seen = old.traffic.throttled().unwrap();
    assert_eq!(
        seen.refused, REFUSED,
        "the server refused {REFUSED} requests"
    );
    assert_eq!(
        seen.arrivals.len(),
        WRITES + REFUSED as usize,
        "each refused write was sent again"
    );
    for i in 0..WRITES {
        let cm = old.with_state(|s| {
            s.objects
                .get(&format!("configmaps/app1-ns/cm-{i}"))
                .cloned()
        });
        assert_eq!(cm.expect("written")["data"]["i"], i.to_string());
        assert_eq!(
            sb.step("w", &format!("cm {i}"))["attempts"],
            1,
            "no step failed"
        );
    }
    // A token bucket (QPS, BURST) lets at most BURST + QPS * t requests
    // through in any t seconds, so these requests (every one took a token)
    // cannot have arrived in less than (n - BURST) / QPS, less the spread of
    // the network between client and server (one token's worth).
    let span = *seen.arrivals.last().unwrap() - seen.arrivals[0];
    let n = seen.arrivals.len();
    let least = (n - BURST - 1) as f64 / QPS;
    assert!(
        span.as_secs_f64() >= least,
        "{n} requests in {span:?}: the limit of {QPS}/s (burst {BURST}) lets them through in no less than {least}s"
    );
}
