//! `kill -9` at every step boundary and in the middle of every step of
//! `two-apps.rhai` (lab included: it runs inside the killed process), then
//! resume: the lab ends exactly as after an uninterrupted run, with no
//! duplicate or orphan objects or records.

use crate::common::Sandbox;
use crate::common::lab::LabFixture;
use serde_json::{Value, json};
use std::io::BufRead;

const TWO_APPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/two-apps.rhai");

/// The lab's state that matters, independent of uids, timestamps and pod names.
fn snapshot(dir: &std::path::Path) -> Value {
    let lab = LabFixture::open(dir);
    let mut clusters = serde_json::Map::new();
    for cluster in ["old", "new"] {
        let state = lab.lab.cluster(cluster).unwrap().with_state(|s| {
            let mut out = serde_json::Map::new();
            for (key, object) in &s.objects {
                let resource = key.split('/').next().unwrap_or_default();
                let kept = match resource {
                    "services" => json!({
                        "type": object["spec"]["type"],
                        "externalName": object["spec"]["externalName"],
                        "selector": object["spec"]["selector"],
                        "ports": object["spec"]["ports"],
                        "finalized": object["metadata"]["annotations"]["ferry.dev/finalized"],
                    }),
                    "deployments.apps"
                    | "ingressroutes.traefik.io"
                    | "ingressroutes.traefik.containo.us"
                    | "configmaps" => json!(true),
                    _ => continue,
                };
                out.insert(key.clone(), kept);
            }
            out
        });
        clusters.insert(cluster.into(), Value::Object(state));
    }
    let records: Vec<String> = lab
        .records()
        .into_iter()
        .map(|r| format!("{} {} {}", r.name, r.rtype, r.data.join(",")))
        .collect();
    json!({ "clusters": clusters, "records": records })
}

fn lab_dir(sb: &Sandbox, run: &str) -> std::path::PathBuf {
    sb.status(run)["run"]["environment"]["lab"]
        .as_str()
        .expect("a lab run")
        .into()
}

#[test]
fn kill_9_anywhere_in_two_apps_then_resume_ends_like_an_uninterrupted_run() {
    // The reference: the same script, never interrupted.
    let reference = Sandbox::new();
    reference
        .ferry(["run", TWO_APPS, "--lab", "--id", "ok"])
        .code(3)
        .run();
    let reference_gate = snapshot(&lab_dir(&reference, "ok"));
    reference.ferry(["approve", "ok", "app2-ready"]).run();
    reference.ferry(["resume", "ok"]).run();
    let reference_end = snapshot(&lab_dir(&reference, "ok"));

    let sb = Sandbox::new();
    let mut started = false;
    let mut kill_mid_step = true;
    let (mut kills, mut gate) = (0, None);
    loop {
        let args: Vec<&str> = if started {
            vec!["--json", "resume", "k"]
        } else {
            vec!["--json", "run", TWO_APPS, "--lab", "--id", "k"]
        };
        started = true;
        let mut child = sb.spawn(args);
        let stdout = child.stdout.take().expect("piped stdout");
        let mut killed = false;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(event) = serde_json::from_str::<Value>(&line.unwrap_or_default()) else {
                continue;
            };
            let at = if kill_mid_step {
                "step_started"
            } else {
                "step_completed"
            };
            if event["kind"] == at {
                child.kill_now();
                killed = true;
                kills += 1;
                kill_mid_step = !kill_mid_step;
                break;
            }
        }
        if killed {
            continue;
        }
        let out = crate::common::finish(child);
        match out.code {
            3 => {
                gate = Some(snapshot(&lab_dir(&sb, "k")));
                sb.ferry(["approve", "k", "app2-ready"]).run();
            }
            0 => break,
            code => panic!("resume exited {code}: {}", out.stderr),
        }
    }
    assert!(kills >= 40, "killed at every step, twice: {kills} kills");
    assert_eq!(
        gate.expect("the run reached the gate"),
        reference_gate,
        "state at the gate"
    );
    assert_eq!(snapshot(&lab_dir(&sb, "k")), reference_end, "final state");

    // Each step completed once; its reruns are attempts, not duplicates.
    let steps = sb.steps("k");
    let names: std::collections::HashSet<&str> =
        steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), steps.len());
    assert!(
        steps.iter().all(|s| s["status"] == "completed"),
        "{steps:?}"
    );
    assert!(
        steps.iter().any(|s| s["attempts"].as_u64() > Some(1)),
        "some steps ran again after a kill"
    );
}
