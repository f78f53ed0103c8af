//! `parallel`: bounded concurrency, input order, first failure.

use crate::common::Sandbox;

#[test]
fn parallel_respects_the_limit_and_returns_results_in_input_order() {
    let sb = Sandbox::new();
    sb.write(
        "par.rhai",
        r#"
        let out = parallel([1, 2, 3, 4, 5, 6], |i| step(`item ${i}`, || {
            test_mutate("log", `+${i}`);
            sleep(0.05);
            test_mutate("log", `-${i}`);
            i * 10
        }), #{ limit: 2 });
        print(`out=${out}`);
        "#,
    );
    sb.ferry(["run", "par.rhai", "--id", "p"])
        .stdout_has("out=[10, 20, 30, 40, 50, 60]")
        .run();
    let mut running = 0;
    let mut peak = 0;
    for line in sb.lines("log") {
        running += if line.starts_with('+') { 1 } else { -1 };
        peak = peak.max(running);
    }
    assert!(peak <= 2, "at most 2 branches at once, saw {peak}");
    assert_eq!(
        sb.steps("p")
            .iter()
            .filter(|s| s["kind"] == "step" && s["status"] == "completed")
            .count(),
        6
    );
}

#[test]
fn the_first_failure_fails_the_call_after_running_branches_finish() {
    let sb = Sandbox::new();
    sb.write(
        "parfail.rhai",
        r#"
        parallel([1, 2, 3, 4], |i| step(`item ${i}`, || {
            test_mutate("log", `+${i}`);
            if i == 2 { test_mutate("started2", "yes"); test_wait_for("release"); }
            if i == 1 && !test_exists("flag") { test_wait_for("started2"); throw "item 1 broke"; }
            test_mutate("log", `-${i}`);
        }), #{ limit: 2 });
        "#,
    );
    // Item 1 fails only once item 2 runs, and item 2 holds until item 1 has
    // failed: item 2 is running when the failure happens, whatever the timing.
    let child = sb.spawn(["run", "parfail.rhai", "--id", "pf"]);
    crate::common::await_condition("item 1 to fail", || {
        sb.steps("pf")
            .iter()
            .any(|s| s["name"] == "item 1" && s["status"] == "failed")
    });
    sb.write("release", "");
    let out = crate::common::finish(child);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("item 1 broke"), "{}", out.stderr);
    let log = sb.lines("log");
    assert!(
        log.contains(&"-2".to_owned()),
        "the running branch finished: {log:?}"
    );
    assert!(
        !log.contains(&"+3".to_owned()) && !log.contains(&"+4".to_owned()),
        "no branch started after the failure: {log:?}"
    );

    sb.write("flag", "");
    sb.ferry(["resume", "pf"]).run();
    let log = sb.lines("log");
    assert_eq!(
        log.iter().filter(|l| *l == "+2").count(),
        1,
        "completed item 2 is not rerun: {log:?}"
    );
    assert_eq!(sb.run_status("pf"), "succeeded");
}

#[test]
fn duplicate_step_names_across_branches_are_an_error() {
    let sb = Sandbox::new();
    sb.write("dup.rhai", r#"parallel([1, 2], |i| step("same", || i));"#);
    sb.ferry(["run", "dup.rhai"])
        .code(2)
        .stderr_has("duplicate step name `same`")
        .run();
}

#[test]
fn mutations_inside_a_branch_of_a_step_count_as_inside_the_step() {
    let sb = Sandbox::new();
    sb.write(
        "inner.rhai",
        r#"step("all", || parallel([1, 2], |i| test_mutate("log", `${i}`)));"#,
    );
    sb.ferry(["run", "inner.rhai"]).run();
    let mut log = sb.lines("log");
    log.sort();
    assert_eq!(log, ["1", "2"]);
}

#[test]
fn branches_may_call_methods_on_captured_variables() {
    // Method calls take the receiver mutably; branches running at once must
    // not share one captured value (Rhai reports a data race if they do).
    let sb = Sandbox::new();
    sb.write(
        "captured.rhai",
        r#"
        let names = ["a", "b", "c"];
        let config = #{ prefix: "app" };
        let items = [];
        for i in 0..32 { items.push(i); }
        let out = parallel(items, |i| {
            let total = 0;
            for k in 0..200 { total += names.len() + config.keys().len(); }
            `${config.prefix}${i}:${total}`
        }, #{ limit: 8 });
        print(`${out.len()} ${out[31]} names=${names.len()}`);
        "#,
    );
    sb.ferry(["run", "captured.rhai"])
        .stdout_has("32 app31:800 names=3")
        .run();
}
