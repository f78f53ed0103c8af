//! Finalize drains before it takes a bridge away: with a client still
//! calling through the old route it refuses, naming the rate it saw, and
//! changes nothing; once the client stopped, it drains and retires.

use crate::common::lab::LabFixture;
use crate::common::poller::Poller;
use crate::common::{APP1_FROM_APP2, Sandbox};
use std::time::Duration;

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");

#[test]
fn finalize_refuses_while_a_client_calls_through_the_old_route_then_drains() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let dir = lab.dir_arg();
    let app = APP1_FROM_APP2;
    let migrate = format!("{SCRIPTS}/migrate-app.rhai");
    let mut args = vec!["run", migrate.as_str(), "--id", "m", "--lab-dir", &dir];
    args.extend(app);
    sb.ferry(args).code(3).run();
    for gate in ["prepare", "cutover"] {
        sb.ferry(["approve", "m", gate]).run();
        sb.ferry(["resume", "m"]).any_code().run();
    }
    assert_eq!(sb.run_status("m"), "succeeded");

    // A client that still calls app1 through the old ingress by name
    // (a cached old.<zone> answer, a hard-coded host).
    let pod = lab.names("old", "pods", "app2-ns").remove(0);
    let argv = [
        "curl",
        "-sS",
        "-m",
        "2",
        "-H",
        "Host: app1.app1-ns",
        "http://old.mycompany.internal/",
    ];
    let poller = Poller::start_commands(
        lab.lab.network.clone(),
        "old",
        "app2-ns",
        &pod,
        vec![("old".into(), argv.iter().map(|a| (*a).to_owned()).collect())],
        Duration::from_millis(100),
    );
    let finalize = format!("{SCRIPTS}/finalize-app.rhai");
    let drain = ["--set", "drain_quiet=2", "--set", "drain_timeout=3"];
    let mut args = vec!["run", finalize.as_str(), "--id", "f", "--lab-dir", &dir];
    args.extend(&app[..4]);
    args.extend(drain);
    sb.ferry(args)
        .code(1)
        .stderr_has("app1: its route through the ingress of old is still in use")
        .stderr_has("per second")
        .stderr_has("Nothing was changed")
        .run();
    let calls = poller.stop();
    assert!(calls.iter().filter(|c| c.ok()).count() > 5, "{calls:?}");
    // Nothing was retired: the old route, its Service and the pods stay.
    assert!(
        lab.object("old", "services/app1-ns/app1-internal")
            .is_some()
    );
    assert!(
        !lab.names("old", "ingressroutes.traefik.io", "app1-ns")
            .is_empty()
    );
    let deploy = lab
        .object("old", "deployments.apps/app1-ns/app1")
        .expect("deployment");
    assert_eq!(deploy["spec"]["replicas"], 1);

    // The client stopped: the same run drains and retires.
    sb.ferry(["resume", "f"]).run();
    assert_eq!(sb.run_status("f"), "succeeded");
    let drained = &sb.step("f", "app1: drain old route")["value"];
    assert_eq!(drained["quiet_s"], 2.0, "{drained}");
    assert!(drained["requests"].as_f64().unwrap() > 5.0, "{drained}");
    // The drain's polls pause with `sleep(1.0, #{ durable: false })`: no timer records.
    let timers: Vec<_> = sb
        .steps("f")
        .into_iter()
        .filter(|s| {
            s["name"]
                .as_str()
                .unwrap_or_default()
                .contains("drain old route/sleep")
        })
        .collect();
    assert!(timers.is_empty(), "{timers:?}");
    assert!(
        lab.object("old", "services/app1-ns/app1-internal")
            .is_none()
    );
    let deploy = lab
        .object("old", "deployments.apps/app1-ns/app1")
        .expect("deployment");
    assert_eq!(deploy["spec"]["replicas"], 0);
}
