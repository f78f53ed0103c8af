//! Resume safety: changed scripts, the run lock, kill -9, Ctrl-C, durable sleep.

use crate::common::{Sandbox, await_condition, finish, signal};

/// `b` holds the run open until the file `go` exists.
const HOLD: &str = r#"
step("a", || test_mutate("log", "a"));
step("b", || {
    test_mutate("log", "b-start");
    test_wait_for("go");
    test_mutate("log", "b-end");
});
step("c", || test_mutate("log", "c"));
"#;

fn started_b(sb: &Sandbox) -> bool {
    sb.lines("log").contains(&"b-start".to_owned())
}

#[test]
fn kill_9_during_a_step_resumes_with_completed_steps_run_once() {
    let sb = Sandbox::new();
    sb.write("hold.rhai", HOLD);
    let mut child = sb.spawn(["run", "hold.rhai", "--id", "k"]);
    await_condition("step b to start", || started_b(&sb));
    child.kill_now();

    assert_eq!(
        sb.run_status("k"),
        "running",
        "a killed process cannot record anything"
    );
    assert_eq!(sb.step("k", "a")["status"], "completed");
    assert_eq!(sb.step("k", "b")["status"], "running");

    sb.write("go", "");
    sb.ferry(["resume", "k"]).stdout_has("(attempt 2)").run();
    assert_eq!(sb.lines("log"), ["a", "b-start", "b-start", "b-end", "c"]);
    assert_eq!(sb.run_status("k"), "succeeded");
}

#[test]
fn ctrl_c_interrupts_cleanly_with_exit_130_and_resumes() {
    let sb = Sandbox::new();
    sb.write("hold.rhai", HOLD);
    let child = sb.spawn(["run", "hold.rhai", "--id", "i"]);
    await_condition("step b to start", || started_b(&sb));
    signal(&child, libc::SIGINT);
    let out = finish(child);
    assert_eq!(out.code, 130, "stderr: {}", out.stderr);
    assert!(out.stderr.contains("ferry resume i"), "{}", out.stderr);
    assert_eq!(sb.run_status("i"), "interrupted");
    assert_eq!(sb.step("i", "b")["status"], "interrupted");

    sb.write("go", "");
    sb.ferry(["resume", "i"]).run();
    assert_eq!(sb.lines("log"), ["a", "b-start", "b-start", "b-end", "c"]);
}

#[test]
fn a_second_process_cannot_drive_a_held_run_and_a_dead_holder_releases_it() {
    let sb = Sandbox::new();
    sb.write("hold.rhai", HOLD);
    let mut child = sb.spawn(["run", "hold.rhai", "--id", "l"]);
    await_condition("step b to start", || started_b(&sb));

    sb.ferry(["resume", "l"])
        .code(4)
        .stderr_has(&format!("pid {}", child.id()))
        .run();
    sb.ferry(["rollback", "l", "--yes"])
        .code(4)
        .stderr_has("is held by")
        .run();

    child.kill_now();
    sb.write("go", "");
    sb.ferry(["resume", "l"]).run();
    assert_eq!(sb.run_status("l"), "succeeded");
}

#[test]
fn a_changed_script_is_refused_naming_the_step_unless_allowed() {
    let sb = Sandbox::new();
    let script = r#"
step("one", || test_mutate("log", "one"));
step("two", || { if !test_exists("flag") { throw "not yet"; } test_mutate("log", "two"); });
"#;
    sb.write("s.rhai", script);
    sb.ferry(["run", "s.rhai", "--id", "ch"]).code(1).run();

    // A line inserted above moves step `one`: any change is shown and refused.
    sb.write("s.rhai", &format!("// a new comment\n{script}"));
    sb.write("flag", "");
    sb.ferry(["resume", "ch"])
        .code(4)
        .stderr_has("changed since it last ran")
        .stderr_has("+++ b/s.rhai")
        .stderr_has("+// a new comment")
        .stderr_has("--allow-changed")
        .run();
    assert_eq!(sb.run_status("ch"), "failed", "a refusal changes nothing");

    sb.ferry(["resume", "ch", "--allow-changed"]).run();
    assert_eq!(sb.lines("log"), ["one", "two"]);
}

#[test]
fn a_renamed_completed_step_is_refused() {
    let sb = Sandbox::new();
    sb.write(
        "s.rhai",
        "step(\"one\", || 1);\nstep(\"two\", || { if !test_exists(\"flag\") { throw \"x\"; } });\n",
    );
    sb.ferry(["run", "s.rhai", "--id", "rn"]).code(1).run();
    sb.write(
        "s.rhai",
        "step(\"uno\", || 1);\nstep(\"two\", || { if !test_exists(\"flag\") { throw \"x\"; } });\n",
    );
    sb.ferry(["resume", "rn"])
        .code(4)
        .stderr_has("-step(\"one\", || 1);")
        .stderr_has("+step(\"uno\", || 1);")
        .run();
}

#[test]
fn a_durable_sleep_waits_only_what_remains_after_a_kill() {
    let sb = Sandbox::new();
    sb.write(
        "nap.rhai",
        "step(\"nap\", || { test_mutate(\"log\", \"nap\"); sleep(2); });\n",
    );
    let mut child = sb.spawn(["run", "nap.rhai", "--id", "z"]);
    let deadline = std::cell::Cell::new(0i64);
    await_condition("the timer to be journaled", || {
        let steps = sb.steps("z");
        let timer = steps.iter().find(|s| s["name"] == "nap/sleep#1");
        deadline.set(
            timer
                .and_then(|t| t["data"]["deadline_ms"].as_i64())
                .unwrap_or(0),
        );
        deadline.get() > 0
    });
    child.kill_now();

    let out = sb.ferry(["--json", "resume", "z"]).run();
    let wait = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["kind"] == "wait_started")
        .expect("a wait_started event");
    assert_eq!(wait["total_ms"], 2000);
    assert!(
        wait["remaining_ms"].as_u64().unwrap() < 2000,
        "resume waits only the remainder: {wait}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        now >= deadline.get(),
        "the timer ran to its recorded deadline"
    );
    let timer = sb.step("z", "nap/sleep#1");
    assert_eq!(
        timer["data"]["deadline_ms"].as_i64(),
        Some(deadline.get()),
        "the deadline is not reset"
    );
    assert_eq!(timer["status"], "completed");
}
