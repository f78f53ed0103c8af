//! The step ledger: what replays, what runs, what rollback undoes and when a
//! resume refuses. In-process tests start from journal histories; binary
//! tests cover each edge found by trying ferry as a user would (rollback
//! interrupted by SIGINT or kill -9, nested undos, guard re-runs, deep
//! values, timer names, exit(), changed scripts, ids, import cycles).

use crate::common::history::{History, drive};
use crate::common::{Sandbox, await_condition, finish, signal};
use ferry::error::Error;
use ferry::journal::{RunStatus, StepKind, StepStatus};
use ferry::runner::Outcome;
use serde_json::json;

// ---------------------------------------------------------------- histories

#[test]
fn completed_steps_replay_and_the_interrupted_one_runs_again() {
    let h = History::new(
        r#"
        let a = step("a", || { print("ran a"); 1 });
        step("b", || { print("ran b with " + a); 2 });
        "#,
    )
    .completed("a", json!(41))
    .running("b");
    let store = h.store();
    let (outcome, events) = drive(&store, "resume", false);
    assert!(matches!(outcome, Ok(Outcome::Succeeded)), "{outcome:?}");
    assert_eq!(events.replayed(), ["a"]);
    assert_eq!(events.started(), ["b"]);
    assert_eq!(events.printed(), ["ran b with 41"]);
    let b = store
        .steps("h")
        .unwrap()
        .into_iter()
        .find(|s| s.name == "b")
        .unwrap();
    assert_eq!(b.attempts, 2);
    assert_eq!(b.value, Some(json!(2)));
    // Attempt 1 died with its process; the record says so.
    assert_eq!(b.data.unwrap()["previous_attempts"][0]["status"], "stopped");
}

#[test]
fn rollback_undoes_nested_steps_innermost_and_newest_first() {
    let h = History::new(
        r#"
        step("outer", || {
            step("inner1", || 1, || print("undo inner1"));
            step("inner2", || 2, || print("undo inner2"));
        }, || print("undo outer"));
        step("last", || 3, || print("undo last"));
        pause("g", "m");
        "#,
    )
    .completed("outer", json!(null))
    .with_undo()
    .completed("inner1", json!(1))
    .inside("outer")
    .with_undo()
    .completed("inner2", json!(2))
    .inside("outer")
    .with_undo()
    .completed("last", json!(3))
    .with_undo()
    .gate("g", false)
    .status(RunStatus::Paused);
    let store = h.store();
    let (outcome, events) = drive(&store, "rollback", false);
    assert!(matches!(outcome, Ok(Outcome::RolledBack)), "{outcome:?}");
    assert_eq!(
        events.printed(),
        ["undo last", "undo inner2", "undo inner1", "undo outer"]
    );
    assert_eq!(
        store.run("h").unwrap().unwrap().status,
        RunStatus::RolledBack
    );
}

#[test]
fn rollback_undoes_the_failed_step_first() {
    let h = History::new(
        r#"
        step("a", || 1, || print("undo a"));
        step("b", || throw "half-way", || print("undo b"));
        "#,
    )
    .completed("a", json!(1))
    .with_undo()
    .failed("b", "half-way")
    .with_undo();
    let store = h.store();
    let (outcome, events) = drive(&store, "rollback", false);
    assert!(matches!(outcome, Ok(Outcome::RolledBack)), "{outcome:?}");
    assert_eq!(events.printed(), ["undo b", "undo a"]);
}

#[test]
fn a_rollback_that_began_refuses_resume_and_continues_where_it_stopped() {
    let h = History::new(
        r#"
        step("a", || 1, || print("undo a"));
        step("b", || 2, || print("undo b"));
        step("c", || 3, || print("undo c"));
        "#,
    )
    .completed("a", json!(1))
    .with_undo()
    .completed("b", json!(2))
    .with_undo()
    .completed("c", json!(3))
    .with_undo()
    .undone()
    .status(RunStatus::RollingBack);
    let store = h.store();
    let (outcome, events) = drive(&store, "resume", false);
    assert!(
        matches!(outcome, Err(Error::RollbackUnderway { .. })),
        "{outcome:?}"
    );
    assert_eq!(outcome.unwrap_err().exit_code(), 4);
    assert!(events.started().is_empty());

    let (outcome, events) = drive(&store, "rollback", false);
    assert!(matches!(outcome, Ok(Outcome::RolledBack)), "{outcome:?}");
    // c was undone by the first rollback: not again.
    assert_eq!(events.printed(), ["undo b", "undo a"]);
}

#[test]
fn an_undo_that_ran_refuses_resume_even_if_the_status_was_lost() {
    let h = History::new("step(\"a\", || 1, || print(\"undo a\"));\nstep(\"b\", || 2);\n")
        .completed("a", json!(1))
        .with_undo()
        .undone()
        .status(RunStatus::Interrupted);
    let (outcome, _) = drive(&h.store(), "resume", false);
    assert!(
        matches!(outcome, Err(Error::RollbackUnderway { .. })),
        "{outcome:?}"
    );
}

#[test]
fn a_changed_script_is_refused_with_a_diff_even_when_no_step_moved() {
    let before = "let rate = 200;\nstep(\"a\", || rate);\nstep(\"b\", || rate);\n";
    let after = "let rate = 1;\nstep(\"a\", || rate);\nstep(\"b\", || rate);\n";
    let h = History::new(before)
        .completed("a", json!(200))
        .edited(after);
    let store = h.store();
    let (outcome, events) = drive(&store, "resume", false);
    let err = outcome.unwrap_err();
    assert_eq!(err.exit_code(), 4);
    let text = err.to_string();
    assert!(text.contains("-let rate = 200;"), "{text}");
    assert!(text.contains("+let rate = 1;"), "{text}");
    assert!(text.contains("--allow-changed"), "{text}");
    assert!(events.started().is_empty());

    let (outcome, events) = drive(&store, "resume", true);
    assert!(matches!(outcome, Ok(Outcome::Succeeded)), "{outcome:?}");
    assert_eq!(events.replayed(), ["a"]);
    assert_eq!(events.started(), ["b"]);
    // The run now records what it executed: a plain resume is silent again.
    let run = store.run("h").unwrap().unwrap();
    assert_eq!(run.sources["script.rhai"], after);
}

#[test]
fn a_moved_step_is_a_divergence_with_allow_changed_matching_by_name() {
    let before = "step(\"a\", || 1);\nstep(\"b\", || 2);\n";
    let after = "step(\"b\", || 2);\nstep(\"a\", || 1);\n";
    let h = History::new(before).completed("a", json!(1)).edited(after);
    let store = h.store();
    let (outcome, events) = drive(&store, "resume", true);
    assert!(matches!(outcome, Ok(Outcome::Succeeded)), "{outcome:?}");
    assert_eq!(events.replayed(), ["a"]);
    assert_eq!(events.started(), ["b"]);
}

#[test]
fn a_timer_record_never_collides_with_a_step_of_the_same_name() {
    let h = History::new("step(\"x\", || { sleep(0); 1 });\nstep(\"x/sleep#1\", || 2);\n");
    let store = h.store();
    let (outcome, events) = drive(&store, "resume", false);
    assert!(matches!(outcome, Ok(Outcome::Succeeded)), "{outcome:?}");
    assert_eq!(events.started(), ["x", "x/sleep#1"]);
    let steps = store.steps("h").unwrap();
    let kinds: Vec<(StepKind, &str, StepStatus)> = steps
        .iter()
        .map(|s| (s.kind, s.name.as_str(), s.status))
        .collect();
    assert!(kinds.contains(&(StepKind::Sleep, "x/sleep#1", StepStatus::Completed)));
    assert!(kinds.contains(&(StepKind::Step, "x/sleep#1", StepStatus::Completed)));
    let user = steps
        .iter()
        .find(|s| s.kind == StepKind::Step && s.name == "x/sleep#1")
        .unwrap();
    assert_eq!(user.value, Some(json!(2)));
}

#[test]
fn nested_steps_record_their_parent() {
    let h = History::new("step(\"outer\", || step(\"inner\", || 1));\n");
    let store = h.store();
    let (outcome, _) = drive(&store, "resume", false);
    assert!(matches!(outcome, Ok(Outcome::Succeeded)), "{outcome:?}");
    let inner = store
        .steps("h")
        .unwrap()
        .into_iter()
        .find(|s| s.name == "inner")
        .unwrap();
    assert_eq!(inner.parent.as_deref(), Some("outer"));
}

// ------------------------------------------------------------------ binary

const UNDO_WAITS: &str = r#"
step("a", || test_mutate("log", "do a"), || test_mutate("log", "undo a"));
step("b", || test_mutate("log", "do b"), || {
    test_mutate("log", "undo b started");
    test_wait_for("go");
    test_mutate("log", "undo b");
});
step("c", || test_mutate("log", "do c"), || test_mutate("log", "undo c"));
pause("g", "m");
"#;

fn rollback_stopped_by(sig: i32) {
    let sb = Sandbox::new();
    sb.write("u.rhai", UNDO_WAITS);
    sb.ferry(["run", "u.rhai", "--id", "u"]).code(3).run();
    let mut child = sb.spawn(["rollback", "u", "--yes"]);
    await_condition("undo b started", || {
        sb.lines("log").contains(&"undo b started".to_owned())
    });
    if sig == libc::SIGKILL {
        child.kill_now();
    } else {
        signal(&child, sig);
        let done = finish(child);
        assert_eq!(done.code, 130, "{}", done.stderr);
    }
    assert_eq!(sb.run_status("u"), "rolling-back");
    assert_eq!(sb.step("u", "c")["undo"], "done");
    sb.ferry(["status", "u"])
        .stdout_has("rolling-back")
        .stdout_has("ferry rollback u")
        .run();
    // Resuming would replay undone steps as completed: refused.
    sb.ferry(["resume", "u"])
        .code(4)
        .stderr_has("finish it with `ferry rollback u`")
        .run();
    sb.write("go", "");
    sb.ferry(["rollback", "u", "--yes"]).run();
    assert_eq!(
        sb.lines("log"),
        [
            "do a",
            "do b",
            "do c",
            "undo c",
            "undo b started",
            "undo b started",
            "undo b",
            "undo a"
        ]
    );
    assert_eq!(sb.run_status("u"), "rolled-back");
}

#[test]
fn a_rollback_stopped_by_sigint_is_rolling_back_and_a_second_rollback_finishes_it() {
    rollback_stopped_by(libc::SIGINT);
}

#[test]
fn a_rollback_killed_with_sigkill_is_rolling_back_and_a_second_rollback_finishes_it() {
    rollback_stopped_by(libc::SIGKILL);
}

#[test]
fn nested_undos_run_innermost_first() {
    let sb = Sandbox::new();
    sb.write(
        "n.rhai",
        r#"step("outer", || { step("inner", || 1, || print("UNDO inner")); }, || print("UNDO outer")); pause("g","m");"#,
    );
    sb.ferry(["run", "n.rhai", "--id", "n"]).code(3).run();
    let out = sb.ferry(["rollback", "n", "--yes"]).run();
    let inner = out.stdout.find("UNDO inner").expect("inner undone");
    let outer = out.stdout.find("UNDO outer").expect("outer undone");
    assert!(inner < outer, "{}", out.stdout);
    assert_eq!(sb.run_status("n"), "rolled-back");
}

#[test]
fn the_undo_of_a_step_that_failed_after_changing_the_world_runs_first() {
    let sb = Sandbox::new();
    sb.write(
        "f.rhai",
        r#"
        step("a", || test_mutate("log", "do a"), || test_mutate("log", "undo a"));
        step("flip", || { test_mutate("log", "flipped"); throw "guard broke its limits"; },
                     || test_mutate("log", "unflip"));
        "#,
    );
    sb.ferry(["run", "f.rhai", "--id", "f"]).code(1).run();
    sb.ferry(["rollback", "f", "--yes"])
        .stdout_has("✔ undo flip")
        .run();
    assert_eq!(sb.lines("log"), ["do a", "flipped", "unflip", "undo a"]);
}

#[test]
fn a_step_inside_an_undo_is_refused_at_its_position_and_the_rollback_can_finish() {
    let sb = Sandbox::new();
    let bad = "step(\"a\", || 1, || {\n    step(\"inner\", || 2);\n});\npause(\"g\", \"m\");\n";
    sb.write("s.rhai", bad);
    sb.ferry(["run", "s.rhai", "--id", "s"]).code(3).run();
    let out = sb
        .ferry(["rollback", "s", "--yes"])
        .code(1)
        .stderr_has("undo of `a` failed")
        .stderr_has("cannot contain steps or gates")
        .run();
    assert!(out.stderr.contains("s.rhai:2:"), "{}", out.stderr);
    assert_eq!(sb.run_status("s"), "rollback-failed");
    sb.ferry(["status", "s"])
        .stdout_has("rollback-failed")
        .stdout_has("undo failed: a")
        .run();
    sb.ferry(["resume", "s"]).code(4).run();
    // Fixed, the rollback finishes.
    sb.write(
        "s.rhai",
        "step(\"a\", || 1, || {\n    print(\"undo a\");\n});\npause(\"g\", \"m\");\n",
    );
    sb.ferry(["rollback", "s", "--allow-changed", "--yes"])
        .stdout_has("undo a")
        .run();
    assert_eq!(sb.run_status("s"), "rolled-back");
}

#[test]
fn a_guarded_step_run_again_watches_its_windows_afresh() {
    let app = crate::common::backend::Backend::start("app1");
    let sb = Sandbox::new();
    sb.write(
        "g.rhai",
        &format!(
            "step(\"flip\", || guard(#{{ http: \"{}\" }}, #{{ rate: 50 }}, || {{\n    test_mutate(\"log\", \"flipping\");\n    sleep(1.5);\n    \"flipped\"\n}}));\n",
            app.url("/")
        ),
    );
    let mut child = sb.spawn(["run", "g.rhai", "--id", "g"]);
    await_condition("the flip under way", || {
        sb.lines("log").contains(&"flipping".to_owned())
    });
    child.kill_now();
    sb.ferry(["resume", "g"]).run();
    let step = sb.step("g", "flip");
    // The watch window is no durable timer: the second attempt watched it whole.
    assert!(
        step["data"]["guard"]["duration_ms"].as_u64().unwrap_or(0) >= 1500,
        "{step}"
    );
    assert_eq!(step["attempts"], 2);
    assert_eq!(step["data"]["previous_attempts"][0]["status"], "stopped");
    assert!(
        sb.steps("g").iter().all(|s| s["kind"] != "sleep"),
        "{:?}",
        sb.steps("g")
    );
}

#[test]
fn deep_values_replay_identically_and_too_deep_or_non_finite_ones_fail_their_step() {
    let sb = Sandbox::new();
    sb.write(
        "d.rhai",
        r#"
        let v = step("deep", || { let v = 1; for i in 0..300 { v = [v]; } v });
        pause("g", "m");
        let depth = 0;
        while type_of(v) == "array" { v = v[0]; depth += 1; }
        print(`depth ${depth} leaf ${v}`);
        "#,
    );
    sb.ferry(["run", "d.rhai", "--id", "d"]).code(3).run();
    sb.ferry(["approve", "d", "g"]).run();
    sb.ferry(["resume", "d"])
        .stdout_has("depth 300 leaf 1")
        .run();

    sb.write(
        "deeper.rhai",
        "step(\"deeper\", || { let v = 1; for i in 0..600 { v = [v]; } v });\n",
    );
    sb.ferry(["run", "deeper.rhai", "--id", "e"])
        .code(1)
        .stderr_has("nests deeper than 512 levels")
        .stderr_has("deeper.rhai:1:1")
        .run();
    sb.write("nan.rhai", "step(\"nan\", || #{ a: [0.0 / 0.0] });\n");
    sb.ferry(["run", "nan.rhai", "--id", "x"])
        .code(1)
        .stderr_has("NaN cannot be journaled at `a[0]`")
        .run();
}

#[test]
fn timer_records_never_collide_with_step_names() {
    let sb = Sandbox::new();
    sb.write(
        "t.rhai",
        "print(step(\"x\", || { sleep(0); 1 }));\nprint(step(\"x/sleep#1\", || 2));\n",
    );
    sb.ferry(["run", "t.rhai", "--id", "t"])
        .stdout_has("✔ x/sleep#1")
        .run();
    let steps = sb.steps("t");
    let named: Vec<_> = steps.iter().filter(|s| s["name"] == "x/sleep#1").collect();
    assert_eq!(named.len(), 2, "{steps:?}");
    let user = named
        .iter()
        .find(|s| s["kind"] == "step")
        .expect("the user's step");
    assert_eq!(user["value"], 2);
}

#[test]
fn exit_inside_a_step_fails_the_run() {
    let sb = Sandbox::new();
    sb.write(
        "e.rhai",
        "step(\"a\", || { exit(); });\nstep(\"b\", || test_mutate(\"log\", \"b\"));\n",
    );
    sb.ferry(["run", "e.rhai", "--id", "e"])
        .code(1)
        .stderr_has("called exit()")
        .run();
    assert_eq!(sb.run_status("e"), "failed");
    assert_eq!(sb.step("e", "a")["status"], "failed");
    assert!(sb.lines("log").is_empty());
}

#[test]
fn a_changed_script_is_shown_and_refused_unless_allowed() {
    let sb = Sandbox::new();
    let before = "let guard = #{ rate: 200, max_failures: 0 };\nstep(\"a\", || guard.rate);\npause(\"g\", \"m\");\nstep(\"b\", || guard.rate);\n";
    sb.write("c.rhai", before);
    sb.ferry(["run", "c.rhai", "--id", "c"]).code(3).run();
    sb.ferry(["approve", "c", "g"]).run();
    sb.write(
        "c.rhai",
        &before.replace("rate: 200, max_failures: 0", "rate: 1, max_failures: 1000"),
    );
    sb.ferry(["resume", "c"])
        .code(4)
        .stderr_has("-let guard = #{ rate: 200, max_failures: 0 };")
        .stderr_has("+let guard = #{ rate: 1, max_failures: 1000 };")
        .run();
    sb.ferry(["resume", "c", "--allow-changed"]).run();
    assert_eq!(sb.step("c", "b")["value"], 1);
}

#[test]
fn a_changed_module_is_refused_too() {
    let sb = Sandbox::new();
    sb.write("lib/m.rhai", "fn rate() { 200 }\n");
    sb.write(
        "m.rhai",
        "import \"lib/m\" as m;\nstep(\"a\", || m::rate());\npause(\"g\", \"m\");\n",
    );
    sb.ferry(["run", "m.rhai", "--id", "m"]).code(3).run();
    sb.ferry(["approve", "m", "g"]).run();
    sb.write("lib/m.rhai", "fn rate() { 1 }\n");
    sb.ferry(["resume", "m"])
        .code(4)
        .stderr_has("a/lib/m.rhai")
        .stderr_has("+fn rate() { 1 }")
        .run();
}

#[test]
fn generated_ids_work_for_every_script_name() {
    let sb = Sandbox::new();
    for name in ["_deploy.rhai", ".rhai"] {
        sb.write(name, "pause(\"g\", \"m\");\n");
        sb.ferry(["run", name]).code(3).run();
        let id = sb.status_newest_id();
        assert!(!id.starts_with('-') && !id.starts_with('.'), "{id}");
        sb.ferry(["approve", &id, "g"]).run();
        sb.ferry(["resume", &id]).run();
    }
}

#[test]
fn import_cycles_are_script_errors_naming_the_cycle() {
    let sb = Sandbox::new();
    sb.write("a.rhai", "import \"b\" as b;\nstep(\"s\", || 1);\n");
    sb.write("b.rhai", "import \"a\" as a;\nfn f() { 1 }\n");
    sb.ferry(["run", "a.rhai", "--id", "a"])
        .code(2)
        .stderr_has("import cycle: a.rhai -> b.rhai -> a.rhai")
        .run();
    sb.ferry(["check", "a.rhai"])
        .code(2)
        .stderr_has("import cycle")
        .run();
    sb.write("self.rhai", "import \"self\" as me;\n");
    sb.ferry(["check", "self.rhai"])
        .code(2)
        .stderr_has("import cycle: self.rhai -> self.rhai")
        .run();
}

#[test]
fn rollback_refuses_when_an_undo_cannot_be_collected_and_repeats_no_mutation() {
    // The nested step comes after a mutation in its parent's body: replaying
    // the body must not repeat the mutation, so it cannot reach the inner
    // undo, and rollback says so instead of skipping it.
    let sb = Sandbox::new();
    sb.write(
        "c.rhai",
        r#"
        step("outer", || {
            test_mutate("log", "outer");
            step("inner", || test_mutate("log", "inner"), || test_mutate("log", "undo inner"));
        });
        pause("g", "m");
        "#,
    );
    sb.ferry(["run", "c.rhai", "--id", "c"]).code(3).run();
    sb.ferry(["rollback", "c", "--yes"])
        .code(4)
        .stderr_has("the undo of `inner` could not be collected")
        .stderr_has("`test_mutate` at c.rhai:3:")
        .stderr_has("nothing was undone")
        .run();
    assert_eq!(sb.lines("log"), ["outer", "inner"]);
    assert_eq!(sb.run_status("c"), "paused");
}

#[test]
fn a_step_failure_is_told_from_a_script_error_by_the_error_itself() {
    let sb = Sandbox::new();
    // Uncaught through a function: the step's failure (exit 1, resumable).
    sb.write(
        "f.rhai",
        "fn flip() { step(\"a\", || { throw \"boom\"; }); }\nflip();\n",
    );
    sb.ferry(["run", "f.rhai", "--id", "f"])
        .code(1)
        .stderr_has("step `a` failed")
        .run();
    // Caught, then the script fails on its own with the same words: a
    // script error (exit 2), not the step's failure.
    sb.write(
        "g.rhai",
        "try { step(\"a\", || { throw \"boom\"; }); } catch (e) { }\nthrow \"boom\";\n",
    );
    let out = sb.ferry(["run", "g.rhai", "--id", "g"]).code(2).run();
    assert!(!out.stderr.contains("step `a` failed"), "{}", out.stderr);
}
