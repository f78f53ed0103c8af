//! `pause` gates: stop, approve, resume.

use crate::common::Sandbox;

const GATED: &str = r#"
step("before", || test_mutate("log", "before"));
pause("app2-ready", "app2's team confirms");
step("after", || test_mutate("log", "after"));
"#;

#[test]
fn a_gate_pauses_until_approved() {
    let sb = Sandbox::new();
    sb.write("gated.rhai", GATED);
    sb.ferry(["run", "gated.rhai", "--id", "g"])
        .code(3)
        .stderr_has("paused at gate `app2-ready`: app2's team confirms")
        .stderr_has("ferry approve g app2-ready")
        .run();
    assert_eq!(sb.run_status("g"), "paused");

    sb.ferry(["resume", "g"])
        .code(3)
        .stderr_has("waits at gate `app2-ready`")
        .run();
    sb.ferry(["approve", "g", "nope"])
        .code(2)
        .stderr_has("no gate `nope`")
        .stderr_has("waiting: app2-ready")
        .run();
    sb.ferry(["approve", "g", "app2-ready"])
        .stdout_has("ferry resume g")
        .run();
    let status = sb.status("g");
    assert!(status["gates"][0]["approved_at"].is_i64());

    sb.ferry(["resume", "g"]).stdout_has("✔ after").run();
    assert_eq!(sb.lines("log"), ["before", "after"]);
    assert_eq!(sb.run_status("g"), "succeeded");
    assert_eq!(sb.step("g", "app2-ready")["status"], "completed");
}

#[test]
fn approving_twice_is_harmless() {
    let sb = Sandbox::new();
    sb.write("gated.rhai", GATED);
    sb.ferry(["run", "gated.rhai", "--id", "g"]).code(3).run();
    sb.ferry(["approve", "g", "app2-ready"]).run();
    sb.ferry(["approve", "g", "app2-ready"]).run();
    sb.ferry(["resume", "g"]).run();
    assert_eq!(sb.lines("log"), ["before", "after"]);
}
