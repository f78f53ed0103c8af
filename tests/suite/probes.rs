//! One-shot probes and `probe::until` against real HTTP(S) servers on loopback.

use crate::common::backend::Backend;
use crate::common::{Sandbox, await_condition, finish, signal};
use serde_json::Value;
use std::io::BufRead;
use std::sync::{Arc, Mutex};

/// Runs `script` as run `r` and returns the journaled value of each named step.
fn values<'a>(sb: &'a Sandbox, script: &str, code: i32) -> impl Fn(&str) -> Value + 'a {
    sb.write("p.rhai", script);
    sb.ferry(["run", "p.rhai", "--id", "r"]).code(code).run();
    move |name: &str| sb.step("r", name)["value"].clone()
}

#[test]
fn http_probe_sends_the_host_header_and_connects_where_resolve_says() {
    let app = Backend::start("app1");
    let port = app.port;
    let sb = Sandbox::new();
    let value = values(
        &sb,
        &format!(
            r#"
step("routed", || probe::http("http://old.mycompany.internal/", #{{ host: "app1.app1-ns", resolve: "127.0.0.1:{port}", expect_status: 200, expect_body: "Hello from app1" }}));
step("url host", || probe::http("http://old.mycompany.internal/", #{{ resolve: "127.0.0.1:{port}" }}));
step("plain", || probe::http("http://127.0.0.1:{port}/"));
"#
        ),
        0,
    );
    let routed = value("routed");
    assert_eq!(routed["ok"], true, "{routed}");
    assert_eq!(routed["status"], 200);
    assert_eq!(routed["error"], Value::Null);
    assert!(
        routed["body"]
            .as_str()
            .unwrap()
            .contains("(Host: app1.app1-ns)"),
        "{routed}"
    );
    assert_eq!(routed["address"], format!("127.0.0.1:{port}"));
    assert!(routed["latency_ms"].as_f64().unwrap() >= 0.0);
    // Without `host`, the URL's host goes in the header, yet the connection still goes to `resolve`.
    let url_host = value("url host");
    assert!(
        url_host["body"]
            .as_str()
            .unwrap()
            .contains("(Host: old.mycompany.internal)"),
        "{url_host}"
    );
    assert_eq!(value("plain")["ok"], true);
    assert!(app.requests() >= 3);
}

#[test]
fn status_and_body_expectations_decide_ok_and_say_why() {
    let app = Backend::start("app1");
    let base = app.url("");
    let sb = Sandbox::new();
    let value = values(
        &sb,
        &format!(
            r#"
step("503", || probe::http("{base}/status/503"));
step("503 expected", || probe::http("{base}/status/503", #{{ expect_status: [200, 503] }}));
step("404 vs 200", || probe::http("{base}/status/404", #{{ expect_status: 200 }}));
step("body", || probe::http("{base}/", #{{ expect_body: "Goodbye" }}));
"#
        ),
        0,
    );
    let v = value("503");
    assert_eq!(
        (
            v["ok"].clone(),
            v["status"].clone(),
            v["error_kind"].clone()
        ),
        (false.into(), 503.into(), "status".into())
    );
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("{base}/status/503"))
            && error.contains("status 503, expected 2xx or 3xx"),
        "{error}"
    );
    assert_eq!(value("503 expected")["ok"], true);
    let v = value("404 vs 200");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("status 404, expected 200"),
        "{v}"
    );
    let v = value("body");
    assert_eq!(v["ok"], false);
    assert_eq!(v["error_kind"], "body");
    assert!(
        v["error"].as_str().unwrap().contains("lacks \"Goodbye\""),
        "{v}"
    );
    assert!(
        v["body"].as_str().unwrap().starts_with("Hello from app1"),
        "the body is still returned: {v}"
    );
}

#[test]
fn timeouts_and_refused_connections_are_failures_not_errors() {
    let app = Backend::start("slow");
    let slow = app.url("/slow");
    let down = Backend::start("down");
    let refused = down.url("/");
    down.stop();
    let sb = Sandbox::new();
    let value = values(
        &sb,
        &format!(
            r#"
step("slow", || probe::http("{slow}", #{{ timeout_ms: 300 }}));
step("refused", || probe::http("{refused}"));
"#
        ),
        0,
    );
    let v = value("slow");
    assert_eq!(v["ok"], false);
    assert_eq!(v["error_kind"], "timeout", "{v}");
    assert!(v["error"].as_str().unwrap().contains("300ms"), "{v}");
    assert!(
        v["latency_ms"].as_f64().unwrap() >= 300.0,
        "a timeout waits for it: {v}"
    );
    let v = value("refused");
    assert_eq!(v["error_kind"], "refused", "{v}");
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains(&refused) && error.to_lowercase().contains("refused"),
        "{error}"
    );
}

#[test]
fn https_with_a_self_signed_certificate_needs_tls_insecure() {
    let app = Backend::start_tls("secure");
    let port = app.port;
    let sb = Sandbox::new();
    let value = values(
        &sb,
        &format!(
            r#"
step("strict", || probe::http("https://tls.test:{port}/", #{{ resolve: "127.0.0.1" }}));
step("insecure", || probe::http("https://tls.test/", #{{ resolve: "127.0.0.1:{port}", host: "app1.app1-ns", tls_insecure: true, expect_body: "Hello from secure" }}));
"#
        ),
        0,
    );
    let v = value("strict");
    assert_eq!(v["ok"], false);
    assert_eq!(v["error_kind"], "tls", "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("https://tls.test"),
        "{v}"
    );
    let v = value("insecure");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["status"], 200);
    assert!(
        v["body"].as_str().unwrap().contains("(Host: app1.app1-ns)"),
        "{v}"
    );
    assert!(
        app.cert_pem
            .as_deref()
            .is_some_and(|p| p.contains("BEGIN CERTIFICATE"))
    );
}

#[test]
fn tcp_probe_connects_or_says_why() {
    let app = Backend::start("tcp");
    let down = Backend::start("gone");
    let gone = down.port;
    down.stop();
    let port = app.port;
    let sb = Sandbox::new();
    let value = values(
        &sb,
        &format!(
            r#"
step("up", || probe::tcp("127.0.0.1:{port}"));
step("down", || probe::tcp("127.0.0.1:{gone}", #{{ timeout_ms: 2000 }}));
"#
        ),
        0,
    );
    let v = value("up");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["address"], format!("127.0.0.1:{port}"));
    let v = value("down");
    assert_eq!(
        (v["ok"].clone(), v["error_kind"].clone()),
        (false.into(), "refused".into()),
        "{v}"
    );
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{gone}")),
        "{v}"
    );
    assert!(app.connections() >= 1);
}

#[test]
fn bad_specs_and_options_are_script_errors_naming_the_key() {
    let sb = Sandbox::new();
    sb.write(
        "a.rhai",
        "probe::http(\"http://a.internal/\", #{ hots: \"x\" });\n",
    );
    sb.ferry(["run", "a.rhai"])
        .code(2)
        .stderr_has("unknown option `hots` for an http probe")
        .stderr_has("a.rhai:1:")
        .run();
    sb.write(
        "b.rhai",
        "probe::until(#{ tcp: \"a:1\", expect_body: \"x\" });\n",
    );
    sb.ferry(["run", "b.rhai"])
        .code(2)
        .stderr_has("unknown option `expect_body` for a tcp probe")
        .run();
    sb.write(
        "c.rhai",
        "probe::until(#{ http: \"http://a/\" }, #{ succeses: 3 });\n",
    );
    sb.ferry(["run", "c.rhai"])
        .code(2)
        .stderr_has("unknown option `succeses` for probe::until")
        .run();
    sb.write(
        "d.rhai",
        "probe::http(\"http://a/\", #{ resolve: \"not an ip\" });\n",
    );
    sb.ferry(["run", "d.rhai"])
        .code(2)
        .stderr_has("`resolve` must be an IP address")
        .run();
    // `until` stays a keyword everywhere else.
    sb.write(
        "e.rhai",
        "let n = 0; do { n += 1; } until n >= 3; print(`n=${n}`);\n",
    );
    sb.ferry(["run", "e.rhai"]).stdout_has("n=3").run();
    sb.ferry(["check", "a.rhai", "e.rhai"]).run();
}

/// Collects a child's stdout lines as they come.
fn collect_lines(child: &mut std::process::Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().expect("piped stdout");
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

fn has_line(lines: &Mutex<Vec<String>>, needle: &str) -> bool {
    lines.lock().unwrap().iter().any(|l| l.contains(needle))
}

#[test]
fn until_waits_for_consecutive_successes_of_a_backend_that_becomes_ready() {
    let app = Backend::start("late");
    app.force_status(Some(503));
    let url = app.url("/");
    let sb = Sandbox::new();
    sb.write(
        "u.rhai",
        &format!(
            "step(\"ready\", || probe::until(#{{ http: \"{url}\", expect_status: 200 }}, #{{ successes: 3, interval_ms: 20, timeout_s: 120 }}));\n"
        ),
    );
    let child = sb.spawn(["run", "u.rhai", "--id", "u"]);
    // Not ready yet: the first attempts get 503 and must not count.
    await_condition("two failed attempts", || app.requests() >= 2);
    app.force_status(None);
    let done = finish(child);
    assert_eq!(done.code, 0, "{}", done.stderr);
    let value = sb.step("u", "ready")["value"].clone();
    assert_eq!(value["ok"], true);
    assert_eq!(value["status"], 200);
    assert!(
        value["attempts"].as_i64().unwrap() >= 5,
        "2 failures, then 3 successes: {value}"
    );
}

#[test]
fn until_gives_up_at_its_deadline_showing_the_last_failure() {
    let down = Backend::start("never");
    let url = down.url("/");
    down.stop();
    let sb = Sandbox::new();
    sb.write(
        "t.rhai",
        &format!(
            "try {{ probe::until(#{{ http: \"{url}\" }}, #{{ successes: 2, timeout_s: 0.4, interval_ms: 50 }}); }} catch (e) {{ print(`caught ${{e.source}} ${{e.last.error_kind}} ${{e.attempts > 1}}`); }}\nstep(\"wait\", || probe::until(#{{ tcp: \"{}\" }}, #{{ timeout_s: 0.2, interval_ms: 50 }}));\n",
            url.trim_start_matches("http://").trim_end_matches('/')
        ),
    );
    let out = sb
        .ferry(["run", "t.rhai", "--id", "t"])
        .code(1)
        .stderr_has("0 of 1 consecutive successes")
        .stderr_has("last failure: tcp 127.0.0.1:")
        .run();
    assert!(
        out.stderr.to_lowercase().contains("refused"),
        "{}",
        out.stderr
    );
    // The last attempt before the deadline is refused, or cut short by the
    // deadline itself when the machine is slow: either is the last failure.
    assert!(
        out.stdout.contains("caught probe refused true")
            || out.stdout.contains("caught probe timeout true"),
        "{}",
        out.stdout
    );
    let step = sb.step("t", "wait");
    assert_eq!(step["status"], "failed");
    assert!(
        step["error"].as_str().unwrap().contains("last failure"),
        "{step}"
    );
}

#[test]
fn ctrl_c_ends_a_long_until_promptly() {
    let down = Backend::start("never");
    let url = down.url("/");
    down.stop();
    let sb = Sandbox::new();
    sb.write(
        "c.rhai",
        &format!("step(\"wait\", || probe::until(#{{ http: \"{url}\" }}, #{{ timeout_s: 3600, interval_ms: 100 }}));\n"),
    );
    let mut child = sb.spawn(["run", "c.rhai", "--id", "c", "--json"]);
    let lines = collect_lines(&mut child);
    await_condition("the wait to start", || has_line(&lines, "\"wait_started\""));
    signal(&child, libc::SIGINT);
    // Bounded by await_condition's limit, far below the hour the probe would wait.
    let mut code = None;
    await_condition("ferry to stop after Ctrl-C", || {
        code = child.try_wait().unwrap().map(|s| s.code());
        code.is_some()
    });
    assert_eq!(code.flatten(), Some(130));
    assert_eq!(sb.step("c", "wait")["status"], "interrupted");
}
