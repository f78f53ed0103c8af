//! Ending and removing runs: `abort`, `delete`, `prune`, and `runs` filters.

use crate::common::{Sandbox, await_condition, finish};

const HOLD: &str = r#"
step("a", || test_mutate("log", "a"));
step("b", || {
    test_mutate("log", "b-start");
    test_wait_for("go");
});
"#;

const GATED: &str = r#"
step("before", || test_mutate("log", "before"));
pause("ok", "look first");
step("after", || test_mutate("log", "after"));
"#;

#[test]
fn abort_ends_a_paused_run_and_keeps_its_journal() {
    let sb = Sandbox::new();
    sb.write("gated.rhai", GATED);
    sb.ferry(["run", "gated.rhai", "--id", "p"]).code(3).run();
    sb.ferry(["abort", "p"])
        .stdout_has("run p aborted (was paused)")
        .run();
    let status = sb.status("p");
    assert_eq!(status["run"]["status"], "aborted");
    assert!(
        status["run"]["error"]
            .as_str()
            .unwrap()
            .starts_with("aborted by "),
        "{status}"
    );
    assert_eq!(
        sb.step("p", "before")["status"],
        "completed",
        "journal kept"
    );
    sb.ferry(["resume", "p"])
        .code(4)
        .stderr_has("is aborted")
        .run();
    sb.ferry(["approve", "p", "ok"])
        .code(4)
        .stderr_has("nothing waits at gate `ok`")
        .run();
    sb.ferry(["abort", "p"])
        .code(4)
        .stderr_has("nothing to abort")
        .run();
    sb.ferry(["abort", "ghost"])
        .code(2)
        .stderr_has("no run `ghost`")
        .run();
    // Its lock is free: delete takes it.
    sb.ferry(["delete", "p"]).stdout_has("deleted run p").run();
}

#[test]
fn abort_refuses_a_live_driver_unless_forced() {
    let sb = Sandbox::new();
    sb.write("hold.rhai", HOLD);
    let child = sb.spawn(["run", "hold.rhai", "--id", "h"]);
    await_condition("step b to start", || {
        sb.lines("log").contains(&"b-start".to_owned())
    });
    sb.ferry(["abort", "h"])
        .code(4)
        .stderr_has(&format!("cannot abort run `h`: pid {}", child.id()))
        .stderr_has("--force")
        .run();
    sb.ferry(["delete", "h", "--force"])
        .code(4)
        .stderr_has("cannot delete run `h`")
        .run();
    assert_eq!(sb.run_status("h"), "running");

    sb.ferry(["abort", "h", "--force"])
        .stdout_has("run h aborted (was interrupted)")
        .run();
    let driver = finish(child);
    assert_eq!(
        driver.code, 130,
        "the driver was stopped: {}",
        driver.stderr
    );
    assert_eq!(sb.run_status("h"), "aborted");
    assert_eq!(sb.step("h", "b")["status"], "interrupted");
}

#[test]
fn abort_of_a_run_whose_driver_died_needs_no_force() {
    let sb = Sandbox::new();
    sb.write("hold.rhai", HOLD);
    let mut child = sb.spawn(["run", "hold.rhai", "--id", "d"]);
    await_condition("step b to start", || {
        sb.lines("log").contains(&"b-start".to_owned())
    });
    child.kill_now();
    sb.ferry(["abort", "d"])
        .stdout_has("aborted (was running)")
        .run();
    assert_eq!(sb.run_status("d"), "aborted");
}

#[test]
fn runs_filter_by_status_script_and_age() {
    let sb = Sandbox::new();
    sb.write("ok.rhai", r#"step("a", || 1);"#);
    sb.write("bad.rhai", r#"step("a", || throw "no");"#);
    sb.write("gated.rhai", GATED);
    sb.ferry(["run", "ok.rhai", "--id", "r-ok"]).run();
    sb.ferry(["run", "bad.rhai", "--id", "r-bad"]).code(1).run();
    sb.ferry(["run", "gated.rhai", "--id", "r-gated"])
        .code(3)
        .run();

    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["runs", "-o", "json"];
        all.extend(args);
        let out = sb.ferry(&all).run();
        let runs: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        runs.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&["--status", "failed"]), ["r-bad"]);
    assert_eq!(
        ids(&["--status", "failed", "--status", "paused"]),
        ["r-gated", "r-bad"]
    );
    assert_eq!(ids(&["--script", "ok.rhai"]), ["r-ok"]);
    assert_eq!(ids(&["--since", "1h"]).len(), 3);
    assert!(ids(&["--since", "2999-01-01T00:00:00Z"]).is_empty());
    sb.ferry(["runs", "--status", "failed"])
        .stdout_has("r-bad")
        .stdout_lacks("r-ok")
        .run();
    sb.ferry(["runs", "--script", "nothing-like-it"])
        .stdout_has("no runs match")
        .run();
    sb.ferry(["runs", "--status", "done"])
        .code(2)
        .stderr_has("not a run state")
        .run();
    sb.ferry(["runs", "--since", "yesterday-ish"])
        .code(2)
        .stderr_has("neither a duration")
        .run();
}

#[test]
fn delete_removes_finished_runs_and_refuses_live_ones_unless_forced() {
    let sb = Sandbox::new();
    sb.write("ok.rhai", r#"step("a", || 1);"#);
    sb.write("bad.rhai", r#"step("a", || throw "no");"#);
    sb.ferry(["run", "ok.rhai", "--id", "done"]).run();
    sb.ferry(["run", "bad.rhai", "--id", "broken"])
        .code(1)
        .run();
    sb.ferry(["delete", "done"])
        .stdout_has("deleted run done (succeeded)")
        .run();
    sb.ferry(["status", "done"])
        .code(2)
        .stderr_has("no run `done`")
        .run();
    assert!(sb.steps("done").is_empty());
    sb.ferry(["delete", "broken"])
        .code(4)
        .stderr_has("can still be resumed")
        .run();
    sb.ferry(["delete", "broken", "--force"]).run();
    sb.ferry(["runs"]).stdout_has("no runs").run();
    sb.ferry(["delete", "broken"]).code(2).run();
}

#[test]
fn prune_deletes_old_finished_runs_only_unless_told() {
    let sb = Sandbox::new();
    sb.write("ok.rhai", r#"step("a", || 1);"#);
    sb.write("bad.rhai", r#"step("a", || throw "no");"#);
    sb.ferry(["run", "ok.rhai", "--id", "old-ok"]).run();
    sb.ferry(["run", "bad.rhai", "--id", "old-bad"])
        .code(1)
        .run();
    sb.ferry(["run", "ok.rhai", "--id", "new-ok"]).run();
    // Age two runs by ten days.
    let conn = rusqlite::Connection::open(sb.file(".ferry/state.db")).unwrap();
    let ten_days_ago = ferry::journal::now_ms() - 10 * 24 * 3600 * 1000;
    conn.execute(
        "UPDATE runs SET updated_at = ?1 WHERE id IN ('old-ok', 'old-bad')",
        [ten_days_ago],
    )
    .unwrap();
    drop(conn);

    sb.ferry(["prune", "--older-than", "7d", "--dry-run"])
        .stdout_has("would delete run old-ok (succeeded")
        .stdout_has("would delete 1 run not updated within 7days")
        .run();
    assert_eq!(
        sb.run_status("old-ok"),
        "succeeded",
        "a dry run deletes nothing"
    );
    sb.ferry(["prune", "--older-than", "7d"])
        .stdout_has("deleted run old-ok")
        .stdout_lacks("old-bad")
        .run();
    sb.ferry(["prune", "--older-than", "7d", "--any-status"])
        .stdout_has("deleted run old-bad (failed")
        .stdout_lacks("new-ok")
        .run();
    sb.ferry(["runs"])
        .stdout_has("new-ok")
        .stdout_lacks("old-")
        .run();
    sb.ferry(["prune", "--older-than", "soon"])
        .code(2)
        .stderr_has("not a duration")
        .run();
}
