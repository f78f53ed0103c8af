//! Running scripts: the success path, failure then resume, JSON events.

use crate::common::Sandbox;

#[test]
fn a_script_runs_its_steps_and_records_their_values() {
    let sb = Sandbox::new();
    sb.write(
        "hello.rhai",
        r#"
        let greeting = step("greet", || "hello");
        let n = step("count", || #{ apps: [1, 2.5, true, ()], name: greeting });
        print(`got ${n.name}`);
        "#,
    );
    sb.ferry(["run", "hello.rhai", "--id", "r1"])
        .stdout_has("✔ greet")
        .stdout_has("✔ count")
        .stdout_has("got hello")
        .stdout_has("run r1 succeeded")
        .run();
    assert_eq!(sb.run_status("r1"), "succeeded");
    let count = sb.step("r1", "count");
    assert_eq!(count["status"], "completed");
    assert_eq!(
        count["value"],
        serde_json::json!({ "apps": [1, 2.5, true, null], "name": "hello" })
    );
    assert_eq!(count["attempts"], 1);
}

#[test]
fn a_failed_step_resumes_without_rerunning_completed_steps() {
    let sb = Sandbox::new();
    sb.write(
        "flaky.rhai",
        r#"
        step("a", || test_mutate("log", "a"));
        step("b", || {
            test_mutate("log", "b");
            if !test_exists("flag") { throw "flag missing"; }
            "b done"
        });
        step("c", || test_mutate("log", "c"));
        "#,
    );
    let failed = sb
        .ferry(["run", "flaky.rhai", "--id", "f"])
        .code(1)
        .stderr_has("error: flag missing")
        .stderr_has("flaky.rhai:5:39")
        .stderr_has("ferry resume f")
        .run();
    assert!(
        failed.stderr.contains("^"),
        "caret under the failing throw: {}",
        failed.stderr
    );
    assert_eq!(sb.run_status("f"), "failed");
    let b = sb.step("f", "b");
    assert_eq!(b["status"], "failed");
    assert!(b["error"].as_str().unwrap().contains("flag missing"));

    sb.write("flag", "");
    sb.ferry(["resume", "f"])
        .stdout_has("▶ b")
        .stdout_lacks("▶ a")
        .stdout_has("✔ c")
        .run();
    assert_eq!(
        sb.lines("log"),
        ["a", "b", "b", "c"],
        "a ran once, b twice, c once"
    );
    assert_eq!(sb.step("f", "b")["attempts"], 2);
    assert_eq!(sb.step("f", "b")["value"], "b done");
    assert_eq!(sb.run_status("f"), "succeeded");

    sb.ferry(["resume", "f"])
        .code(4)
        .stderr_has("nothing left to do")
        .run();
}

#[test]
fn json_events_carry_run_id_step_kind_and_values() {
    let sb = Sandbox::new();
    sb.write("j.rhai", r#"step("one", || 41 + 1); print("hi");"#);
    let out = sb.ferry(["--json", "run", "j.rhai", "--id", "j1"]).run();
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert!(
        events
            .iter()
            .all(|e| e["run"] == "j1" && e["ts"].is_string())
    );
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "step_started",
            "step_completed",
            "output",
            "run_finished"
        ]
    );
    assert_eq!(events[2]["step"], "one");
    assert_eq!(events[2]["value"], 42);
    assert_eq!(events[4]["status"], "succeeded");
}

#[test]
fn a_step_value_that_cannot_be_journaled_fails_the_step() {
    let sb = Sandbox::new();
    sb.write("fnval.rhai", r#"step("closure", || |x| x + 1);"#);
    sb.ferry(["run", "fnval.rhai", "--id", "c"])
        .code(1)
        .stderr_has("cannot be journaled")
        .run();
    assert_eq!(sb.step("c", "closure")["status"], "failed");
}

#[test]
fn nested_steps_replay_as_a_whole_and_values_round_trip() {
    let sb = Sandbox::new();
    sb.write(
        "nested.rhai",
        r#"
        let v = step("outer", || {
            let inner = step("inner", || { test_mutate("log", "inner"); [1, "two", 3.0, #{ k: () }] });
            inner + [4]
        });
        print(`type=${type_of(v[2])} len=${v.len()}`);
        pause("g", "check");
        "#,
    );
    sb.ferry(["run", "nested.rhai", "--id", "n"])
        .code(3)
        .stdout_has("type=f64 len=5")
        .run();
    sb.ferry(["approve", "n", "g"]).run();
    sb.ferry(["resume", "n"]).stdout_has("type=f64 len=5").run();
    assert_eq!(sb.lines("log"), ["inner"]);
}

#[test]
fn runs_and_status_list_what_happened() {
    let sb = Sandbox::new();
    sb.write("s.rhai", r#"step("x", || 1);"#);
    sb.ferry(["run", "s.rhai", "--id", "first"]).run();
    sb.ferry(["runs"])
        .stdout_has("first")
        .stdout_has("succeeded")
        .run();
    sb.ferry(["status"])
        .stdout_has("run first")
        .stdout_has("1 completed")
        .run();
}
