//! `ferry rollback`: undo closures of every step that started, newest first.

use crate::common::Sandbox;

const WITH_UNDOS: &str = r#"
step("a", || test_mutate("log", "do a"), || test_mutate("log", "undo a"));
step("b", || test_mutate("log", "do b"));
step("c", || test_mutate("log", "do c"), || test_mutate("log", "undo c"));
step("d", || {
    test_mutate("log", "do d");
    if !test_exists("flag") { throw "d fails"; }
}, || test_mutate("log", "undo d"));
"#;

#[test]
fn rollback_runs_undos_of_completed_steps_newest_first() {
    let sb = Sandbox::new();
    sb.write("undo.rhai", WITH_UNDOS);
    sb.ferry(["run", "undo.rhai", "--id", "u"]).code(1).run();
    sb.ferry(["rollback", "u", "--yes"])
        .stdout_has("✔ undo c")
        .stdout_has("✔ undo a")
        .run();
    // d failed after changing the world: its undo runs first. b has no undo closure.
    assert_eq!(
        sb.lines("log"),
        ["do a", "do b", "do c", "do d", "undo d", "undo c", "undo a"]
    );
    assert_eq!(sb.run_status("u"), "rolled-back");
    assert_eq!(sb.step("u", "a")["undo"], "done");
    assert_eq!(sb.step("u", "c")["undo"], "done");
    assert_eq!(sb.step("u", "b")["undo"], "none");

    sb.ferry(["rollback", "u", "--yes"])
        .code(4)
        .stderr_has("already rolled back")
        .run();
    sb.ferry(["resume", "u"])
        .code(4)
        .stderr_has("rolled-back")
        .run();
}

#[test]
fn a_failed_undo_stops_and_a_second_rollback_continues() {
    let sb = Sandbox::new();
    sb.write(
        "undo2.rhai",
        r#"
        step("a", || test_mutate("log", "do a"), || test_mutate("log", "undo a"));
        step("b", || test_mutate("log", "do b"), || {
            if !test_exists("flag") { throw "cannot undo b yet"; }
            test_mutate("log", "undo b");
        });
        "#,
    );
    sb.ferry(["run", "undo2.rhai", "--id", "u2"]).run();
    sb.ferry(["rollback", "u2", "--yes"])
        .code(1)
        .stderr_has("undo of `b` failed")
        .stderr_has("cannot undo b yet")
        .run();
    assert_eq!(sb.step("u2", "b")["undo"], "failed");
    assert_eq!(
        sb.step("u2", "a")["undo"],
        "pending",
        "a is not undone before b"
    );
    sb.write("flag", "");
    sb.ferry(["rollback", "u2", "--yes"]).run();
    assert_eq!(sb.lines("log"), ["do a", "do b", "undo b", "undo a"]);
}

/// A script error after the last step that started (code between steps,
/// a part of the script that broke) does not block the way back: the undos
/// of every step that started were collected, so they run.
#[test]
fn rollback_goes_on_past_a_script_error_after_the_steps_that_started() {
    let sb = Sandbox::new();
    sb.write(
        "broken.rhai",
        r#"
step("a", || test_mutate("log", "a"), || test_mutate("log", "undo a"));
let v = step("b", || { test_mutate("log", "b"); 1 }, || test_mutate("log", "undo b"));
let broken = v.no_such_field + 1;
step("c", || test_mutate("log", "c"), || test_mutate("log", "undo c"));
"#,
    );
    sb.ferry(["run", "broken.rhai", "--id", "x"]).code(2).run();
    sb.ferry(["rollback", "x", "--yes"]).run();
    assert_eq!(sb.lines("log"), ["a", "b", "undo b", "undo a"]);
    assert_eq!(sb.run_status("x"), "rolled-back");
}

const TWO_UNDOS: &str = r#"
step("a", || test_mutate("log", "a"), || test_mutate("log", "undo a"));
step("b", || test_mutate("log", "b"), || test_mutate("log", "undo b"));
pause("g", "look");
"#;

/// `ferry rollback` lists what it would undo, newest first, and asks: on a
/// terminal it takes yes or no; without one it refuses unless `--yes`.
#[test]
fn rollback_shows_what_it_would_undo_and_asks() {
    let sb = Sandbox::new();
    sb.write("u.rhai", TWO_UNDOS);
    sb.ferry(["run", "u.rhai", "--id", "u"]).code(3).run();
    let out = sb
        .ferry(["rollback", "u"])
        .code(4)
        .stderr_has("stdin is not a terminal: pass --yes")
        .run();
    let b = out.stderr.find("  - b (completed)").expect("b listed");
    let a = out.stderr.find("  - a (completed)").expect("a listed");
    assert!(b < a, "newest first:\n{}", out.stderr);
    assert_eq!(sb.lines("log"), ["a", "b"], "nothing undone");

    let on_a_terminal = |typed: &[u8]| {
        let mut cmd = sb.command();
        cmd.args(["rollback", "u"]);
        let (code, out) = crate::common::pty::run_typing(cmd, 120, 40, typed);
        (code, String::from_utf8_lossy(&out).into_owned())
    };
    let (code, out) = on_a_terminal(b"n\n");
    assert_eq!(code, 4, "{out}");
    // On a terminal it shows the rollback's plan: each undo, newest first,
    // with what it would change.
    let b = out.find("↩ undo b").expect("undo b planned");
    let a = out.find("↩ undo a").expect("undo a planned");
    assert!(b < a, "newest first:\n{out}");
    assert!(out.contains("would append \"undo b\" to log"), "{out}");
    assert!(out.contains("undo them? [y/N]"), "{out}");
    assert!(out.contains("was not confirmed"), "{out}");
    assert_eq!(sb.lines("log"), ["a", "b"]);
    let (code, out) = on_a_terminal(b"y\n");
    assert_eq!(code, 0, "{out}");
    assert_eq!(sb.lines("log"), ["a", "b", "undo b", "undo a"]);
}

/// A step that declared it cannot be undone safely stops a rollback before
/// anything is undone, naming it and why; `--force` rolls back the rest.
#[test]
fn rollback_past_an_irreversible_step_is_refused_unless_forced() {
    let sb = Sandbox::new();
    sb.write(
        "i.rhai",
        r#"
step("a", || test_mutate("log", "a"), || test_mutate("log", "undo a"));
step("delete", || { irreversible("the old copy is deleted"); test_mutate("log", "delete"); });
pause("g", "look");
"#,
    );
    sb.ferry(["run", "i.rhai", "--id", "i"]).code(3).run();
    sb.ferry(["rollback", "i", "--yes"])
        .code(4)
        .stderr_has("cannot roll back run `i` past step `delete`: it cannot be undone safely (the old copy is deleted)")
        .run();
    assert_eq!(sb.lines("log"), ["a", "delete"]);
    sb.ferry(["rollback", "i", "--yes", "--force"]).run();
    assert_eq!(sb.lines("log"), ["a", "delete", "undo a"]);
    sb.write("bad.rhai", "irreversible(\"why\");\n");
    sb.ferry(["run", "bad.rhai"])
        .code(2)
        .stderr_has("irreversible() belongs inside the step it describes")
        .run();
}
