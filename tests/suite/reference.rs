//! `ferry check`, `ferry docs`, `ferry completions`, `--help`.

use crate::common::Sandbox;

#[test]
fn check_passes_good_scripts_and_reports_every_problem() {
    let sb = Sandbox::new();
    sb.write("good.rhai", "import \"ferry/names\" as n;\nparams.require([\"app\"]);\nstep(\"a\", || n::hosts(params.app, \"ns\"));\n");
    sb.ferry(["check", "good.rhai"])
        .stdout_has("✔ good.rhai (needs --set app)")
        .run();

    sb.write("bad.rhai", "import \"ferry/names\" as n;\nstep(\"a\", || 1);\nstep(\"a\", || 2);\nn::hostz(1, 2);\nfrobnicate();\n");
    sb.ferry(["check", "good.rhai", "bad.rhai"])
        .code(2)
        .stderr_has("duplicate step name `a`")
        .stderr_has("module `n` has no function `hostz`; did you mean `hosts`?")
        .stderr_has("unknown function `frobnicate`")
        .stderr_has("bad.rhai:5:1")
        .run();
    // check never touches the journal
    assert!(!sb.file(".ferry").exists());
}

#[test]
fn check_covers_the_whole_stdlib() {
    let sb = Sandbox::new();
    let stdlib = concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib");
    let files: Vec<String> = std::fs::read_dir(stdlib)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".rhai"))
        .collect();
    assert!(!files.is_empty());
    let mut args = vec!["check".to_owned()];
    args.extend(files);
    sb.ferry(args).run();
}

#[test]
fn docs_lists_every_primitive_and_stdlib_module() {
    let sb = Sandbox::new();
    let out = sb
        .ferry(["docs"])
        .stdout_has("# ferry script reference")
        .stdout_has("### `step(")
        .stdout_has("### `pause(")
        .stdout_has("import \"ferry/names\"")
        .run();
    for primitive in ["parallel(", "sleep(", "require("] {
        assert!(out.stdout.contains(primitive), "docs lack {primitive}");
    }
    let json = sb.ferry(["docs", "--json"]).run();
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(
        value["functions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "step")
    );
    assert!(
        value["modules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["module"] == "ferry/names")
    );
}

#[test]
fn completions_and_help_work() {
    let sb = Sandbox::new();
    sb.ferry(["completions", "bash"])
        .stdout_has("_ferry()")
        .run();
    sb.ferry(["--help"]).stdout_has("Exit codes").run();
    for cmd in [
        "run",
        "resume",
        "approve",
        "rollback",
        "status",
        "runs",
        "log",
        "check",
        "docs",
        "completions",
    ] {
        sb.ferry([cmd, "--help"]).stdout_has("Usage: ferry").run();
    }
    sb.ferry(["--version"]).stdout_has("ferry ").run();
    sb.ferry(["frobnicate"]).code(2).run();
}
