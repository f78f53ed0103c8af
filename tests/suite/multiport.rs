//! Every port of a Service crosses the bridge (issue 17). An app with
//! http 80, metrics 9090, gRPC-style h2c 50051 and plain TCP 5432 (a
//! PostgreSQL-like port) moves end to end with the stdlib recipe while a
//! caller polls every port, each the way its clients use it; and a Service
//! with a UDP port is refused in the check step with nothing changed.

use crate::common::lab::LabFixture;
use crate::common::poller::{Call, Poller};
use crate::common::{APP1_FROM_APP2, Sandbox, await_condition};
use ferry::lab::apiserver::Write;
use ferry::lab::apiserver::patch::PatchKind;
use serde_json::{Value, json};
use std::time::Duration;

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");

fn script(name: &str) -> String {
    format!("{SCRIPTS}/{name}")
}

pub(crate) fn patch(
    lab: &LabFixture,
    cluster: &str,
    group: &str,
    plural: &str,
    ns: &str,
    name: &str,
    body: Value,
) {
    let store = lab.lab.cluster(cluster).unwrap();
    let resource = store.resource(group, "v1", plural).unwrap();
    store
        .patch(
            &resource,
            Some(ns),
            name,
            PatchKind::Merge,
            &body,
            Write::default(),
        )
        .unwrap();
}

/// Both clusters' Traefik gets the entry points a multi-port app needs
/// besides `web` (e.g. `metrics` on :9090 and `grpc` on :50051), with
/// ingress Service ports of the same numbers leading to them (as the Helm
/// chart's `ports:` values would).
pub(crate) fn add_entry_points(lab: &LabFixture, extra: &[(&str, u16)]) {
    // The seeded Traefik's own, with its Prometheus metrics on an entry
    // point of their own (finalize's drain reads them; named apart from the
    // test's `metrics` entry point for the app's metrics port), then the
    // extra entry points.
    let mut args = vec![
        json!("--providers.kubernetescrd"),
        json!("--providers.kubernetescrd.allowExternalNameServices=true"),
        json!("--entryPoints.web.address=:8000"),
        json!("--metrics.prometheus=true"),
        json!("--metrics.prometheus.entryPoint=prometheus"),
        json!("--entryPoints.prometheus.address=:9100"),
    ];
    let mut ports = vec![
        json!({ "name": "web", "containerPort": 8000 }),
        json!({ "name": "prometheus", "containerPort": 9100 }),
    ];
    let mut service = vec![json!({ "name": "web", "port": 80, "targetPort": "web" })];
    for (name, port) in extra {
        args.push(json!(format!("--entryPoints.{name}.address=:{port}")));
        ports.push(json!({ "name": name, "containerPort": port }));
        service.push(json!({ "name": name, "port": port, "targetPort": name }));
    }
    for cluster in ["old", "new"] {
        patch(
            lab,
            cluster,
            "apps",
            "deployments",
            "traefik",
            "traefik",
            json!({
                "spec": { "template": { "spec": { "containers": [{
                    "name": "traefik", "image": "traefik:v3.1", "args": args, "ports": ports,
                }] } } }
            }),
        );
        patch(
            lab,
            cluster,
            "",
            "services",
            "traefik",
            "traefik",
            json!({ "spec": { "ports": service } }),
        );
    }
    let last = extra.last().map(|(name, _)| *name).unwrap_or("web");
    for cluster in ["old", "new"] {
        await_condition(
            &format!("{cluster}'s ingress pods serve the {last} entry point"),
            || {
                lab.lab.cluster(cluster).unwrap().with_state(|s| {
                    s.scan("endpointslices.discovery.k8s.io", Some("traefik"))
                        .any(|slice| {
                            slice["ports"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .any(|p| p["name"] == last)
                                && slice["endpoints"].as_array().is_some_and(|e| !e.is_empty())
                        })
                })
            },
        );
    }
}

/// app1 in the old cluster serves `ports` (its Service's) from an
/// http-echo container on 80, 9090 and 50051 and a tcp-echo container on
/// 5432.
pub(crate) fn serve_app1(lab: &LabFixture, ports: Value) {
    patch(
        lab,
        "old",
        "apps",
        "deployments",
        "app1-ns",
        "app1",
        json!({
            "spec": { "template": { "spec": { "containers": [
                { "name": "app1", "image": "hashicorp/http-echo:1.0", "args": ["-text=Hello, I'm app1", "-listen=:80"],
                  "ports": [{ "name": "http", "containerPort": 80 }, { "name": "metrics", "containerPort": 9090 },
                            { "name": "grpc", "containerPort": 50051 }] },
                { "name": "db", "image": "ferry/tcp-echo:1", "args": ["-listen=:5432"],
                  "ports": [{ "name": "postgres", "containerPort": 5432 }] },
            ] } } }
        }),
    );
    patch(
        lab,
        "old",
        "",
        "services",
        "app1-ns",
        "app1",
        json!({ "spec": { "ports": ports } }),
    );
}

/// The lab's app1 with the ports of [`multiport`], both clusters' Traefik
/// carrying them, once it answers on its metrics port.
pub(crate) fn serve_multiport_app1(lab: &LabFixture) {
    add_entry_points(lab, &[("metrics", 9090), ("grpc", 50051)]);
    serve_app1(lab, multiport());
    await_condition("app1 answers on 9090", || {
        lab.curl_from("old", "app2-ns", "app2", "http://app1.app1-ns:9090/")
            .starts_with("Hello")
    });
}

/// app2's pod in the old cluster calling every port of app1 ([`callers`])
/// every 50 ms.
fn app2_calls_every_port(lab: &LabFixture) -> Poller {
    let client = pod_of(lab, "old", "app2-ns", "app2");
    Poller::start_commands(
        lab.lab.network.clone(),
        "old",
        "app2-ns",
        &client,
        callers(),
        Duration::from_millis(50),
    )
}

fn multiport() -> Value {
    json!([
        { "name": "http", "port": 80, "targetPort": 80 },
        { "name": "metrics", "port": 9090, "targetPort": "metrics", "appProtocol": "http" },
        { "name": "grpc", "port": 50051, "targetPort": "grpc", "appProtocol": "kubernetes.io/h2c" },
        { "name": "postgres", "port": 5432, "targetPort": "postgres" },
    ])
}

fn pod_of(lab: &LabFixture, cluster: &str, ns: &str, app: &str) -> String {
    lab.lab.cluster(cluster).unwrap().with_state(|s| {
        s.scan("pods", Some(ns))
            .find(|p| {
                p["metadata"]["labels"]["app"] == app
                    && p["metadata"]["deletionTimestamp"].is_null()
            })
            .and_then(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .unwrap()
    })
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// Each port called as its clients call it, from app2's pod.
fn callers() -> Vec<(String, Vec<String>)> {
    vec![
        (
            "http".into(),
            argv(&["curl", "-sS", "-m", "2", "http://app1.app1-ns/"]),
        ),
        (
            "metrics".into(),
            argv(&["curl", "-sS", "-m", "2", "http://app1.app1-ns:9090/"]),
        ),
        (
            "grpc".into(),
            argv(&[
                "curl",
                "-sS",
                "-m",
                "2",
                "--http2-prior-knowledge",
                "http://app1.app1-ns:50051/",
            ]),
        ),
        // A TCP client that connects and sends nothing, held 0.3 s.
        (
            "postgres".into(),
            argv(&[
                "curl",
                "-sS",
                "-m",
                "0.3",
                "-w",
                "connected=%{time_connect}\\n",
                "telnet://app1.app1-ns:5432",
            ]),
        ),
    ]
}

fn answered(call: &Call) -> bool {
    if call.url == "postgres" {
        // Connected (time_connect above zero), then held to --max-time
        // (28), or closed by the far end meanwhile (0: a backend retired
        // while the connection was open; new connections are what a
        // bridge keeps), as ferry's TCP guards count it.
        return matches!(call.status, Some(0 | 28))
            && call
                .reply
                .split("connected=")
                .nth(1)
                .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
                .is_some_and(|t| t > 0.0);
    }
    call.reply.starts_with("Hello, I'm app1")
}

fn object(lab: &LabFixture, cluster: &str, key: &str) -> Value {
    lab.object(cluster, key).unwrap_or(Value::Null)
}

#[test]
fn an_app_with_http_metrics_h2c_and_tcp_ports_moves_with_no_caller_failing_on_any_port() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let dir = lab.dir_arg();
    serve_multiport_app1(&lab);
    let poller = app2_calls_every_port(&lab);
    let run = |args: &[&str], code: i32| {
        let mut all = args.to_vec();
        if args[0] == "run" {
            all.extend(["--lab-dir", &dir]);
        }
        sb.ferry(all).code(code).run()
    };
    let migrate_app = script("migrate-app.rhai");
    let migrate = [
        &["run", &migrate_app, "--id", "m"][..],
        &APP1_FROM_APP2,
        &["--set", "expect=Hello, I'm app1"],
    ]
    .concat();
    run(&migrate, 3);

    // The plan, journaled by the check step: HTTP ports on their entry
    // points, h2c too, plain TCP through the per-app LoadBalancer.
    let plan = &sb.step("m", "app1: check in old")["value"]["plan"];
    let carried: Vec<(String, String, Value)> = plan["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["label"].as_str().unwrap().to_owned(),
                p["carrier"].as_str().unwrap().to_owned(),
                p["entry_point"].clone(),
            )
        })
        .collect();
    assert_eq!(
        carried,
        [
            ("http 80/TCP".to_owned(), "ingress".to_owned(), json!("web")),
            (
                "metrics 9090/TCP".to_owned(),
                "ingress".to_owned(),
                json!("metrics")
            ),
            (
                "grpc 50051/TCP".to_owned(),
                "ingress".to_owned(),
                json!("grpc")
            ),
            (
                "postgres 5432/TCP".to_owned(),
                "loadbalancer".to_owned(),
                Value::Null
            ),
        ],
        "{plan}"
    );
    // Bridged: one route per HTTP port on its entry point, the h2c one
    // speaking h2c to the backend, and the TCP port on the app's own LB.
    let metrics = object(&lab, "old", "ingressroutes.traefik.io/app1-ns/app1-9090");
    assert_eq!(metrics["spec"]["entryPoints"], json!(["metrics"]));
    assert_eq!(metrics["spec"]["routes"][0]["services"][0]["port"], 9090);
    let grpc = object(&lab, "old", "ingressroutes.traefik.io/app1-ns/app1-50051");
    assert_eq!(grpc["spec"]["entryPoints"], json!(["grpc"]));
    assert_eq!(grpc["spec"]["routes"][0]["services"][0]["scheme"], "h2c");
    let lb = object(&lab, "old", "services/app1-ns/app1-ferry-lb");
    assert_eq!(lb["spec"]["type"], "LoadBalancer");
    let lb_ports = lb["spec"]["ports"].as_array().unwrap();
    assert_eq!(lb_ports.len(), 1, "only the TCP port: {lb}");
    assert_eq!(
        (
            &lb_ports[0]["name"],
            &lb_ports[0]["port"],
            &lb_ports[0]["targetPort"]
        ),
        (&json!("postgres"), &json!(5432), &json!("postgres"))
    );
    assert_eq!(
        lb["metadata"]["annotations"]["networking.gke.io/load-balancer-type"],
        "Internal"
    );
    let old_lb = lb["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        lab.lab.zone.get("app1.old", "A").map(|r| r.data),
        Some(vec![old_lb.clone()])
    );
    let via_lb = object(
        &lab,
        "old",
        "endpointslices.discovery.k8s.io/app1-ns/app1-ferry-bridge-lb",
    );
    assert_eq!(via_lb["endpoints"][0]["addresses"], json!([old_lb]));
    assert_eq!(
        via_lb["ports"],
        json!([{ "name": "postgres", "port": 5432, "protocol": "TCP" }])
    );
    let via_ingress = object(
        &lab,
        "old",
        "endpointslices.discovery.k8s.io/app1-ns/app1-ferry-bridge",
    );
    let names: Vec<&str> = via_ingress["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["http", "metrics", "grpc"]);

    run(&["approve", "m", "prepare"], 0);
    run(&["resume", "m"], 3);
    // Both clusters get the same shape.
    assert_eq!(
        lab.names("new", "ingressroutes.traefik.io", "app1-ns"),
        ["app1", "app1-50051", "app1-9090"]
    );
    let new_lb =
        object(&lab, "new", "services/app1-ns/app1-ferry-lb")["status"]["loadBalancer"]["ingress"]
            [0]["ip"]
            .as_str()
            .unwrap()
            .to_owned();
    assert_eq!(
        lab.lab.zone.get("app1.new", "A").map(|r| r.data),
        Some(vec![new_lb.clone()])
    );
    let proof = &sb.step("m", "app1: prove new.mycompany.internal")["value"]["ports"];
    assert_eq!(
        proof.as_object().unwrap().len(),
        4,
        "every port proven: {proof}"
    );
    assert_eq!(
        proof["postgres 5432/TCP"]["via"], "app1.new.mycompany.internal",
        "{proof}"
    );

    run(&["approve", "m", "cutover"], 0);
    run(&["resume", "m"], 0);
    let via_lb = object(
        &lab,
        "old",
        "endpointslices.discovery.k8s.io/app1-ns/app1-ferry-bridge-lb",
    );
    assert_eq!(via_lb["endpoints"][0]["addresses"], json!([new_lb]));
    await_condition("app1 answers from the new cluster on 9090", || {
        lab.curl_from("old", "app2-ns", "app2", "http://app1.app1-ns:9090/")
            .ends_with("(cluster new)")
    });

    run(
        &[
            "run",
            &script("finalize-app.rhai"),
            "--id",
            "f",
            "--set",
            "app=app1",
            "--set",
            "ns=app1-ns",
        ],
        0,
    );
    // Finalized: nothing of the bridge is left in the old cluster but the
    // Service's own slices pointing at the new cluster.
    assert!(
        lab.names("old", "ingressroutes.traefik.io", "app1-ns")
            .is_empty()
    );
    assert!(
        lab.object("old", "services/app1-ns/app1-ferry-lb")
            .is_none()
    );
    assert!(lab.lab.zone.get("app1.old", "A").is_none());
    assert!(
        lab.lab.zone.get("app1.new", "A").is_some(),
        "the new LB's record stays: the bridge still leads there"
    );

    // Every undo of it: the finalize and then the migration rolled back,
    // the callers still polling every port.
    // Finalize released the shared records: rolling back past that needs
    // --force (the EndpointSlice bridge's undos need no name).
    run(&["rollback", "f", "--yes"], 4);
    run(&["rollback", "f", "--yes", "--force"], 0);
    assert!(
        lab.object("old", "services/app1-ns/app1-ferry-lb")
            .is_some(),
        "retire undone"
    );
    run(&["rollback", "m", "--yes"], 0);
    let calls = poller.stop();
    eprintln!(
        "caller: {} calls over every phase, finalize and rollback",
        calls.len()
    );

    // Every port's callers: answered all along, none failed, and the HTTP
    // ones were answered by the old cluster, then the new one, then (rolled
    // back) the old one again.
    for (port, _) in callers() {
        let mine: Vec<&Call> = calls.iter().filter(|c| c.url == port).collect();
        assert!(mine.len() > 10, "{port}: {} calls", mine.len());
        let failed: Vec<&&Call> = mine.iter().filter(|c| !answered(c)).collect();
        assert!(
            failed.is_empty(),
            "{port}: {} of {} calls failed: {failed:?}",
            failed.len(),
            mine.len()
        );
        if port != "postgres" {
            let mut clusters: Vec<&str> = Vec::new();
            for call in &mine {
                let cluster = call.reply.rsplit("(cluster ").next().unwrap_or_default();
                if clusters.last() != Some(&cluster) {
                    clusters.push(cluster);
                }
            }
            assert_eq!(clusters, ["old)", "new)", "old)"], "{port}");
        }
    }

    // The journal: one guard per port in each flip, each without failure.
    for flip in [
        "app1: EndpointSlice -> old ingress",
        "app1: EndpointSlice -> new ingress",
    ] {
        let step = sb.step("m", flip);
        let data = step["data"].as_object().unwrap();
        let mut targets: Vec<String> = data
            .iter()
            .filter(|(k, _)| k.starts_with("guard"))
            .map(|(_, g)| {
                assert_eq!(g["failures"], 0, "{flip}: {g}");
                assert!(g["successes"].as_u64().unwrap() > 0, "{flip}: {g}");
                g["target"].as_str().unwrap().to_owned()
            })
            .collect();
        targets.sort();
        assert_eq!(targets.len(), 4, "{flip}: {targets:?}");
        assert!(
            targets
                .iter()
                .any(|t| t.starts_with("tcp app1.app1-ns:5432")),
            "{targets:?}"
        );
        assert!(
            targets
                .iter()
                .any(|t| t.starts_with("http://app1.app1-ns:50051/")),
            "{targets:?}"
        );
        let ports = &step["value"]["ports"];
        for (label, stats) in ports.as_object().unwrap() {
            eprintln!(
                "{flip}: {label}: {}",
                stats["summary"].as_str().unwrap_or_default()
            );
        }
        for label in [
            "http 80/TCP",
            "metrics 9090/TCP",
            "grpc 50051/TCP",
            "postgres 5432/TCP",
        ] {
            assert_eq!(ports[label]["failures"], 0, "{flip}: {label} in {ports}");
            assert!(
                ports[label]["requests"].as_u64().unwrap() > 0,
                "{flip}: {label} in {ports}"
            );
        }
        // The primary port's statistics stay the step's own, path and all.
        assert_eq!(
            step["data"]["guard"]["target"]
                .as_str()
                .unwrap()
                .split(" from")
                .next(),
            Some("http://app1.app1-ns/")
        );
    }
}

/// Every object of both clusters and every record of the zone.
fn dump(lab: &LabFixture) -> Vec<(String, Value)> {
    let mut all = Vec::new();
    for cluster in ["old", "new"] {
        lab.lab.cluster(cluster).unwrap().with_state(|s| {
            for (key, object) in &s.objects {
                all.push((format!("{cluster}/{key}"), object.clone()));
            }
        });
    }
    for record in lab.records() {
        all.push((
            format!("zone/{}/{}", record.name, record.rtype),
            json!(record.data),
        ));
    }
    all
}

#[test]
fn a_udp_port_nothing_can_carry_is_refused_in_the_check_step_with_nothing_changed() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let dir = lab.dir_arg();
    serve_app1(
        &lab,
        json!([
            { "name": "http", "port": 80, "targetPort": 80 },
            { "name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP" },
            { "name": "postgres", "port": 5432, "targetPort": "postgres" },
        ]),
    );
    // Settled: the new pod runs and the controller's slice lists it on every port.
    await_condition("app1's new pod behind all three ports", || {
        lab.lab.cluster("old").unwrap().with_state(|s| {
            let pods: Vec<&Value> = s.scan("pods", Some("app1-ns")).collect();
            let [pod] = pods.as_slice() else { return false };
            let name = pod["metadata"]["name"].clone();
            pod["spec"]["containers"]
                .as_array()
                .is_some_and(|c| c.len() == 2)
                && s.scan("endpointslices.discovery.k8s.io", Some("app1-ns"))
                    .any(|slice| {
                        slice["ports"].as_array().is_some_and(|p| p.len() == 3)
                            && slice["endpoints"][0]["targetRef"]["name"] == name
                    })
        })
    });
    let before = dump(&lab);
    let out = sb
        .ferry(
            [
                &["run", &script("migrate-app.rhai"), "--id", "u"][..],
                &APP1_FROM_APP2,
                &["--lab-dir", &dir],
            ]
            .concat(),
        )
        .any_code()
        .run();
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("dns 53/UDP: UDP cannot be proven from a pod"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Nothing was changed"), "{}", out.stderr);
    // The TCP port alone would have crossed (the per-app LoadBalancer): it is not named.
    assert!(!out.stderr.contains("postgres 5432"), "{}", out.stderr);
    let check = sb.step("u", "app1: check in old");
    assert_eq!(check["status"], "failed", "{check}");
    assert_eq!(
        sb.steps("u")
            .iter()
            .filter(|s| s["status"] == "completed")
            .count(),
        0,
        "no step after the check ran: {:?}",
        sb.steps("u")
    );
    let after = dump(&lab);
    // Each changed object, as it was and as it is.
    let changed: Vec<_> = before.iter().zip(&after).filter(|(b, a)| b != a).collect();
    assert_eq!(before.len(), after.len(), "objects were added or removed");
    assert!(changed.is_empty(), "changed: {changed:?}");

    // Rolled back: the old cluster as it was, nothing of ferry's anywhere.
    let app1 = object(&lab, "old", "services/app1-ns/app1");
    assert_eq!(app1["spec"]["selector"]["app"], "app1", "{app1}");
    assert!(
        app1["metadata"]["annotations"]["ferry.dev/selector"].is_null(),
        "{app1}"
    );
    for cluster in ["old", "new"] {
        assert!(
            lab.names(cluster, "ingressroutes.traefik.io", "app1-ns")
                .is_empty(),
            "{cluster}"
        );
        assert!(
            lab.names(cluster, "middlewares.traefik.io", "app1-ns")
                .is_empty(),
            "{cluster}"
        );
        assert!(
            lab.object(cluster, "services/app1-ns/app1-ferry-lb")
                .is_none(),
            "{cluster}"
        );
        assert!(
            lab.object(cluster, "services/app1-ns/app1-internal")
                .is_none(),
            "{cluster}"
        );
    }
    let slices = lab.names("old", "endpointslices.discovery.k8s.io", "app1-ns");
    assert!(slices.iter().all(|n| !n.contains("ferry")), "{slices:?}");
    for name in ["app1.old", "app1.new", "old", "new"] {
        assert!(lab.lab.zone.get(name, "A").is_none(), "{name}");
    }
}

#[test]
fn a_tls_port_crosses_the_labs_ingress_by_sni_passthrough() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    add_entry_points(&lab, &[("websecure", 8443)]);
    // app1 does its own TLS on 8443 (a certificate for its pod's name).
    patch(
        &lab,
        "old",
        "apps",
        "deployments",
        "app1-ns",
        "app1",
        json!({
            "spec": { "template": { "spec": { "containers": [
                { "name": "app1", "image": "hashicorp/http-echo:1.0", "args": ["-text=Hello, I'm app1", "-listen=:80"],
                  "ports": [{ "name": "http", "containerPort": 80 }] },
                { "name": "tls", "image": "ferry/tls-echo:1", "args": ["-text=Hello over TLS from app1", "-listen=:8443"],
                  "ports": [{ "name": "https", "containerPort": 8443 }] },
            ] } } }
        }),
    );
    patch(
        &lab,
        "old",
        "",
        "services",
        "app1-ns",
        "app1",
        json!({ "spec": { "ports": [
        { "name": "http", "port": 80, "targetPort": 80 },
        { "name": "https", "port": 8443, "targetPort": "https", "appProtocol": "https" },
    ] } }),
    );
    await_condition("app1's TLS container runs", || {
        lab.lab.cluster("old").unwrap().with_state(|s| {
            s.scan("pods", Some("app1-ns")).count() == 1
                && s.scan("pods", Some("app1-ns")).all(|p| {
                    p["spec"]["containers"]
                        .as_array()
                        .is_some_and(|c| c.len() == 2)
                })
        })
    });
    sb.ferry(
        [
            &["run", &script("migrate-app.rhai"), "--id", "m"][..],
            &APP1_FROM_APP2,
            &["--lab-dir", &lab.dir_arg()],
        ]
        .concat(),
    )
    .code(3)
    .run();
    let route = object(&lab, "old", "ingressroutetcps.traefik.io/app1-ns/app1-8443");
    assert_eq!(
        route["spec"]["entryPoints"],
        json!(["websecure"]),
        "{route}"
    );
    assert_eq!(route["spec"]["tls"]["passthrough"], true, "{route}");
    let guards = sb.step("m", "app1: EndpointSlice -> old ingress")["value"]["ports"].clone();
    assert_eq!(guards["https 8443/TCP"]["failures"], 0, "{guards}");
    assert!(
        guards["https 8443/TCP"]["target"]
            .as_str()
            .unwrap()
            .starts_with("tcp app1.app1-ns:8443"),
        "{guards}"
    );

    // From the host, through the old ingress's 8443 (where its LoadBalancer
    // sends), TLS with the app's name reaches the app's own TLS server.
    let old = lab.lab.cluster("old").unwrap();
    let lb: std::net::Ipv4Addr = object(&lab, "old", "services/traefik/traefik")["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let real = lab
        .lab
        .network
        .route(old, lb, 8443)
        .expect("the ingress serves 8443");
    sb.write(
        "tls.rhai",
        &format!(
            r#"
step("app1", || probe::http("https://app1.app1-ns.svc:{port}/", #{{ resolve: "{ip}", tls_insecure: true, expect_body: "Hello over TLS from app1 (cluster old)" }}));
step("other", || probe::http("https://app9.app9-ns:{port}/", #{{ resolve: "{ip}", tls_insecure: true }}));
"#,
            port = real.port(),
            ip = real.ip(),
        ),
    );
    sb.ferry(["run", "tls.rhai", "--id", "t"]).code(0).run();
    let app1 = sb.step("t", "app1")["value"].clone();
    assert_eq!(app1["ok"], true, "{app1}");
    let other = sb.step("t", "other")["value"].clone();
    assert_eq!(other["ok"], false, "no route for that name: {other}");
}

/// Moves the multi-port app1 with `bridge`, through cutover, a caller on
/// every port; the run's journal and the caller's calls.
fn move_through_load_balancers(bridge: &str) -> (Sandbox, LabFixture, Vec<Call>) {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    // No DNS cache: the ExternalName flip itself is what is measured elsewhere.
    lab.set_dns_cache("old", 0, 0);
    serve_multiport_app1(&lab);
    let poller = app2_calls_every_port(&lab);
    let dir = lab.dir_arg();
    let bridge = format!("bridge={bridge}");
    sb.ferry(
        [
            &["run", &script("migrate-app.rhai"), "--id", "m"][..],
            &APP1_FROM_APP2,
            &["--set", &bridge, "--lab-dir", &dir],
        ]
        .concat(),
    )
    .code(3)
    .run();
    sb.ferry(["approve", "m", "prepare"]).code(0).run();
    sb.ferry(["resume", "m"]).code(3).run();
    sb.ferry(["approve", "m", "cutover"]).code(0).run();
    sb.ferry(["resume", "m"]).code(0).run();
    await_condition("app1 answers from the new cluster on 80", || {
        lab.curl_from("old", "app2-ns", "app2", "http://app1.app1-ns/")
            .ends_with("(cluster new)")
    });
    let calls = poller.stop();
    (sb, lab, calls)
}

fn assert_every_port_answered(calls: &[Call]) {
    for (port, _) in callers() {
        let mine: Vec<&Call> = calls.iter().filter(|c| c.url == port).collect();
        assert!(mine.len() > 5, "{port}: {} calls", mine.len());
        let failed: Vec<&&Call> = mine.iter().filter(|c| !answered(c)).collect();
        assert!(
            failed.is_empty(),
            "{port}: {} of {} failed: {failed:?}",
            failed.len(),
            mine.len()
        );
    }
}

#[test]
fn every_port_through_the_apps_own_load_balancer_keeps_its_callers() {
    let (sb, lab, calls) = move_through_load_balancers("loadbalancer");
    assert_every_port_answered(&calls);
    // No ingress route: every port on the LoadBalancer, one slice to it.
    for cluster in ["old", "new"] {
        assert!(
            lab.names(cluster, "ingressroutes.traefik.io", "app1-ns")
                .is_empty()
        );
        let lb = object(&lab, cluster, "services/app1-ns/app1-ferry-lb");
        assert_eq!(lb["spec"]["ports"].as_array().unwrap().len(), 4, "{lb}");
    }
    assert!(
        lab.object(
            "old",
            "endpointslices.discovery.k8s.io/app1-ns/app1-ferry-bridge"
        )
        .is_none()
    );
    let cut = sb.step("m", "app1: EndpointSlice -> new load balancer");
    assert_eq!(cut["status"], "completed", "{cut}");
    // No answer names its path here: the bridge's state proves the flip.
    assert!(
        cut["value"]["path_proof"]
            .as_str()
            .unwrap()
            .starts_with("bridge state"),
        "{cut}"
    );
    assert_eq!(cut["value"]["ports"].as_object().unwrap().len(), 4, "{cut}");
}

#[test]
fn with_the_externalname_bridge_every_port_resolves_to_the_apps_load_balancer() {
    let (sb, lab, calls) = move_through_load_balancers("externalname");
    assert_every_port_answered(&calls);
    let app1 = object(&lab, "old", "services/app1-ns/app1");
    assert_eq!(app1["spec"]["type"], "ExternalName", "{app1}");
    assert_eq!(
        app1["spec"]["externalName"], "app1.new.mycompany.internal",
        "{app1}"
    );
    // One name carries every port: all four through the LoadBalancer.
    let plan = &sb.step("m", "app1: check in old")["value"]["plan"];
    assert!(
        plan["ports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["carrier"] == "loadbalancer"),
        "{plan}"
    );
    assert_eq!(
        sb.step("m", "app1: ExternalName -> app1.new.mycompany.internal")["status"],
        "completed"
    );
}
