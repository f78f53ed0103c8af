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

#[test]
fn a_gate_that_names_its_approvers_refuses_anyone_else() {
    let sb = Sandbox::new();
    sb.write(
        "g.rhai",
        "step(\"a\", || 1);\npause(\"prod\", \"go?\", #{ approvers: [\"alice\", \"carol@ci\"] });\nstep(\"b\", || 2);\n",
    );
    sb.ferry(["run", "g.rhai", "--id", "g"])
        .env("USER", "alice")
        .code(3)
        .run();
    sb.ferry(["status", "g"])
        .stdout_has("may approve: alice, carol@ci")
        .run();
    assert_eq!(
        sb.status("g")["approvers"],
        serde_json::json!(["alice", "carol@ci"])
    );
    sb.ferry(["approve", "g", "prod"])
        .env("USER", "bob")
        .code(4)
        .stderr_has(
            "may not approve gate `prod` of run `g`: it names its approvers (alice, carol@ci)",
        )
        .run();
    assert!(
        sb.status("g")["gates"][0]["approved_at"].is_null(),
        "nothing recorded"
    );
    sb.ferry(["approve", "g", "prod"])
        .env("USER", "alice")
        .run();
    sb.ferry(["resume", "g"]).env("USER", "bob").run();
    assert!(
        sb.status("g")["gates"][0]["approved_by"]
            .as_str()
            .unwrap()
            .starts_with("alice@")
    );

    sb.write("bad.rhai", "pause(\"x\", \"m\", #{ approvers: [] });\n");
    sb.ferry(["run", "bad.rhai"])
        .code(2)
        .stderr_has("`approvers` lists nobody")
        .run();
    sb.write(
        "typo.rhai",
        "pause(\"x\", \"m\", #{ aprovers: [\"a\"] });\n",
    );
    sb.ferry(["run", "typo.rhai"])
        .code(2)
        .stderr_has("unknown option `aprovers` for pause (known: approvers)")
        .run();
}

/// `source <(COMPLETE=bash ferry)`: the shell asks ferry for candidates,
/// which come from the journal: run ids for RUN, waiting gates for GATE.
#[test]
fn completion_offers_run_ids_and_the_gates_runs_wait_at() {
    let sb = Sandbox::new();
    sb.write("g.rhai", GATED);
    sb.ferry(["run", "g.rhai", "--id", "rollout-7"])
        .code(3)
        .run();
    let complete = |words: &[&str]| {
        let mut cmd = sb.command();
        cmd.env("COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
            .env("_CLAP_COMPLETE_COMP_TYPE", "9")
            .env("_CLAP_COMPLETE_SPACE", "true")
            .env("_CLAP_IFS", "\n")
            .arg("--")
            .args(words);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let runs = complete(&["ferry", "resume", "roll"]);
    assert!(runs.iter().any(|c| c == "rollout-7"), "{runs:?}");
    let gates = complete(&["ferry", "approve", "rollout-7", ""]);
    assert!(gates.iter().any(|c| c == "app2-ready"), "{gates:?}");
    // The registration script itself.
    let mut cmd = sb.command();
    let script = cmd.env("COMPLETE", "bash").output().unwrap();
    assert!(String::from_utf8_lossy(&script.stdout).contains("complete -o nospace"));
}
