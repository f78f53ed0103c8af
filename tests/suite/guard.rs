//! `guard(...)`: a background prober around a closure, against a real
//! backend that the test stops and restarts while the closure waits.

use crate::common::backend::Backend;
use crate::common::{Sandbox, await_condition, finish, signal};
use serde_json::Value;
use std::io::BufRead;
use std::sync::{Arc, Mutex};

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

/// JSON events of `kind` seen so far.
fn events(lines: &Mutex<Vec<String>>, kind: &str) -> Vec<Value> {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == kind)
        .collect()
}

fn guard_script(url: &str, options: &str) -> String {
    format!(
        "step(\"flip\", || guard(#{{ http: \"{url}\", expect_status: 200 }}, {options}, || {{ test_wait_for(\"done\"); \"flipped\" }}));\n"
    )
}

#[test]
fn a_guard_around_nothing_sees_no_failure_at_200_per_second_on_fresh_connections() {
    let app = Backend::start("app1");
    let sb = Sandbox::new();
    sb.write("g.rhai", &guard_script(&app.url("/"), "#{ rate: 200 }"));
    let mut child = sb.spawn(["run", "g.rhai", "--id", "g", "--json"]);
    let lines = collect_lines(&mut child);
    await_condition("200 requests", || app.requests() >= 200);
    std::fs::write(sb.file("done"), "").unwrap();
    let done = finish(child);
    assert_eq!(done.code, 0, "{}", done.stderr);

    let step = sb.step("g", "flip");
    let stats = &step["data"]["guard"];
    assert_eq!(stats["failures"], 0, "{stats}");
    assert_eq!(stats["longest_failure_ms"], 0);
    assert_eq!(stats["error_kinds"], serde_json::json!({}));
    assert_eq!(stats["ok"], true);
    let requests = stats["requests"].as_u64().unwrap();
    assert!(requests >= 200, "{stats}");
    // Every request reached the backend, each on its own connection.
    assert_eq!(app.requests(), requests);
    assert_eq!(app.connections(), requests, "connection reuse must be off");
    assert!(
        stats["latency_ms"]["max"].as_f64().unwrap()
            >= stats["latency_ms"]["p50"].as_f64().unwrap()
    );
    // The guard returns its statistics with the closure's value.
    assert_eq!(step["value"]["value"], "flipped");
    assert_eq!(step["value"]["requests"], requests);

    // --json carries the start, live counts and the final statistics.
    assert_eq!(events(&lines, "guard_started").len(), 1);
    assert!(!events(&lines, "guard_progress").is_empty());
    let finished = events(&lines, "guard_finished");
    assert_eq!(finished[0]["stats"]["requests"], requests);
    assert_eq!(finished[0]["ok"], true);
    assert_eq!(finished[0]["step"], "flip");

    // `ferry log` shows them.
    sb.ferry(["log", "g"])
        .stdout_has(&format!("guard: {} {requests} requests", app.url("/")))
        .stdout_has("0 failures")
        .run();
}

#[test]
fn a_guard_around_a_backend_restart_shows_failures_and_the_gap_and_fails_the_step() {
    let app = Backend::start("app1");
    let sb = Sandbox::new();
    sb.write(
        "g.rhai",
        &guard_script(&app.url("/"), "#{ rate: 200, max_failures: 0 }"),
    );
    let mut child = sb.spawn(["run", "g.rhai", "--id", "g", "--json"]);
    let lines = collect_lines(&mut child);
    await_condition("requests while up", || app.requests() >= 20);
    app.stop();
    await_condition("the guard to see failures", || {
        events(&lines, "guard_progress")
            .iter()
            .any(|e| e["failures"].as_u64() > Some(0))
    });
    app.restart();
    let served = app.requests();
    await_condition("requests after the restart", || {
        app.requests() >= served + 20
    });
    std::fs::write(sb.file("done"), "").unwrap();
    let done = finish(child);
    assert_eq!(
        done.code, 1,
        "the broken guard fails the step: {}",
        done.stderr
    );
    assert!(done.stderr.contains("broke its limits"), "{}", done.stderr);

    let step = sb.step("g", "flip");
    assert_eq!(step["status"], "failed");
    let error = step["error"].as_str().unwrap();
    assert!(
        error.contains("failures, at most 0 allowed") && error.contains("refused"),
        "{error}"
    );
    let stats = &step["data"]["guard"];
    let failures = stats["failures"].as_u64().unwrap();
    assert!(failures > 0, "{stats}");
    assert!(
        stats["successes"].as_u64().unwrap() >= 40,
        "before and after: {stats}"
    );
    // Refused while the backend is down; a request in flight when it stopped
    // may be reset instead. Every failure has its kind.
    let kinds: u64 = stats["error_kinds"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|n| n.as_u64())
        .sum();
    assert_eq!(kinds, failures, "{stats}");
    assert!(
        stats["error_kinds"]["refused"].as_u64() > Some(0),
        "{stats}"
    );
    assert!(stats["longest_failure_ms"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["failure_runs"].as_u64().unwrap() >= 1);
    assert_eq!(stats["ok"], false);
    assert!(stats["last_error"].as_str().unwrap().contains("refused"));
    let finished = events(&lines, "guard_finished");
    assert_eq!(finished[0]["ok"], false);
    assert_eq!(finished[0]["stats"]["failures"], failures);
}

#[test]
fn limits_can_allow_a_short_gap_and_the_body_error_wins() {
    let app = Backend::start("app1");
    let url = app.url("/");
    let sb = Sandbox::new();
    // Outside a step the statistics are returned; a failing body keeps its own error.
    sb.write(
        "l.rhai",
        &format!(
            r#"
let s = guard(#{{ http: "{url}" }}, #{{ rate: 50, max_failures: 1000, max_gap_ms: 60000 }}, || {{ test_wait_for("done"); 7 }});
print(`value=${{s.value}} failures=${{s.failures}} ok=${{s.ok}}`);
step("body fails", || guard(#{{ tcp: "127.0.0.1:{}" }}, #{{ rate: 50 }}, || {{ throw "flip failed"; }}));
"#,
            app.port
        ),
    );
    std::fs::write(sb.file("done"), "").unwrap();
    sb.ferry(["run", "l.rhai", "--id", "l"])
        .code(1)
        .stdout_has("value=7 failures=0 ok=true")
        .stderr_has("flip failed")
        .run();
    let step = sb.step("l", "body fails");
    assert!(step["error"].as_str().unwrap().contains("flip failed"));
    assert_eq!(
        step["data"]["guard"]["target"],
        format!("tcp 127.0.0.1:{}", app.port)
    );

    sb.write(
        "bad.rhai",
        "guard(#{ tcp: \"a:1\" }, #{ rate: 50, max_fail: 1 }, || 1);\n",
    );
    sb.ferry(["run", "bad.rhai"])
        .code(2)
        .stderr_has("unknown option `max_fail` for guard")
        .run();
}

#[test]
fn ctrl_c_stops_a_guard_promptly_even_with_requests_hanging() {
    let app = Backend::start("slow");
    let sb = Sandbox::new();
    // Every request hangs for 30s: stopping must not wait for them after Ctrl-C.
    sb.write(
        "c.rhai",
        &guard_script(&app.url("/slow"), "#{ rate: 20 }")
            .replace("expect_status: 200", "timeout_ms: 600000"),
    );
    let mut child = sb.spawn(["run", "c.rhai", "--id", "c", "--json"]);
    let lines = collect_lines(&mut child);
    await_condition("the guard to fire", || app.requests() >= 3);
    assert_eq!(events(&lines, "guard_started").len(), 1);
    signal(&child, libc::SIGINT);
    let mut code = None;
    await_condition("ferry to stop after Ctrl-C", || {
        code = child.try_wait().unwrap().map(|s| s.code());
        code.is_some()
    });
    assert_eq!(code.flatten(), Some(130));
    await_condition("the guard's final event", || {
        events(&lines, "guard_finished").len() == 1
    });
    let step = sb.step("c", "flip");
    assert_eq!(step["status"], "interrupted");
}

/// `stop_early`: a guard whose failures pass its budget ends its body's
/// waits (a watch window's `sleep`, a `probe::until`) at once, and fails
/// with its own statistics, instead of sitting out the wait.
#[test]
fn stop_early_cuts_the_bodys_waits_short_at_the_failure_budget() {
    let app = Backend::start("app1");
    app.force_status(Some(503));
    let sb = Sandbox::new();
    let url = app.url("/");
    sb.write(
        "g.rhai",
        &format!(
            r#"
let watched = #{{ http: "{url}", expect_status: 200 }};
let slept = ();
try {{
    step("sleep", || guard(watched, #{{ rate: 50, max_failures: 3, stop_early: true }}, || {{ sleep(120); "slept" }}));
}} catch (e) {{ slept = e.to_map(); }}
let waited = ();
try {{
    step("until", || guard(watched, #{{ rate: 50, max_failures: 3, stop_early: true }}, || probe::until(watched, #{{ timeout_s: 120, interval_ms: 50 }})));
}} catch (e) {{ waited = e.to_map(); }}
step("seen", || #{{ slept: slept, waited: waited }});
"#
        ),
    );
    sb.ferry(["run", "g.rhai", "--id", "g"]).run();
    let seen = sb.step("g", "seen")["value"].clone();
    for step in ["slept", "waited"] {
        let e = &seen[step];
        assert_eq!(e["source"], "guard", "{step}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains("broke its limits"),
            "{step}: {e}"
        );
        assert!(e["failures"].as_u64().unwrap() > 3, "{step}: {e}");
        // Cut short: nowhere near the 120 s the body would have waited.
        assert!(e["duration_ms"].as_u64().unwrap() < 60_000, "{step}: {e}");
    }
}
