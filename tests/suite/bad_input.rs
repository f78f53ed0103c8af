//! Every bad input gets its exit code and a message naming the problem.

use crate::common::Sandbox;

#[test]
fn syntax_error_shows_file_line_column_source_and_caret() {
    let sb = Sandbox::new();
    sb.write("syn.rhai", "let x = 1;\nlet y = (x +;\n");
    let out = sb
        .ferry(["run", "syn.rhai"])
        .code(2)
        .stderr_has("syn.rhai:2:13")
        .stderr_has("let y = (x +;")
        .run();
    assert!(
        out.stderr.contains("|             ^"),
        "caret under column 13: {}",
        out.stderr
    );
    sb.ferry(["runs"]).stdout_has("no runs").run();
}

#[test]
fn unknown_function_is_reported_before_anything_runs() {
    let sb = Sandbox::new();
    sb.write(
        "unk.rhai",
        "step(\"a\", || test_mutate(\"log\", \"a\"));\nlet v = stepp(\"b\", || 1);\n",
    );
    sb.ferry(["run", "unk.rhai"])
        .code(2)
        .stderr_has("unknown function `stepp`")
        .stderr_has("did you mean `step`?")
        .stderr_has("unk.rhai:2:9")
        .run();
    assert!(sb.lines("log").is_empty(), "nothing ran");
}

#[test]
fn missing_param_is_a_usage_error_before_anything_runs() {
    let sb = Sandbox::new();
    sb.write(
        "p.rhai",
        "params.require([\"app\", \"ns\"]);\nstep(\"a\", || test_mutate(\"log\", params.app));\n",
    );
    sb.ferry(["run", "p.rhai", "--set", "app=app1"])
        .code(2)
        .stderr_has("missing parameter `ns`: pass --set ns=...")
        .run();
    assert!(sb.lines("log").is_empty());
    sb.ferry(["runs"]).stdout_has("no runs").run();
    sb.ferry(["run", "p.rhai", "--set", "app=app1", "--set", "ns=app1-ns"])
        .run();
    assert_eq!(sb.lines("log"), ["app1"]);
}

#[test]
fn reading_an_unset_param_names_it() {
    let sb = Sandbox::new();
    sb.write("q.rhai", "let a = params.app;\n");
    sb.ferry(["run", "q.rhai"])
        .code(2)
        .stderr_has("parameter `app` is not set: pass --set app=...")
        .stderr_has("q.rhai:1:")
        .run();
}

#[test]
fn params_are_read_only() {
    let sb = Sandbox::new();
    sb.write("ro.rhai", "params.app = \"x\";\n");
    sb.ferry(["run", "ro.rhai", "--set", "app=a"])
        .code(2)
        .stderr_has("ro.rhai:1:")
        .run();
}

#[test]
fn bad_set_is_a_usage_error() {
    let sb = Sandbox::new();
    sb.write("a.rhai", "1;");
    sb.ferry(["run", "a.rhai", "--set", "novalue"])
        .code(2)
        .stderr_has("`novalue` is not KEY=VALUE")
        .run();
    sb.ferry(["run", "a.rhai", "--set", "9x=1"])
        .code(2)
        .stderr_has("`9x` is not a parameter name")
        .run();
}

#[test]
fn unknown_run_id_is_named() {
    let sb = Sandbox::new();
    sb.ferry(["resume", "ghost"])
        .code(2)
        .stderr_has("no run `ghost`")
        .run();
    sb.ferry(["approve", "ghost", "g"])
        .code(2)
        .stderr_has("no run `ghost`")
        .run();
    sb.ferry(["log", "ghost"])
        .code(2)
        .stderr_has("no run `ghost`")
        .run();
    sb.ferry(["resume", "../etc"])
        .code(2)
        .stderr_has("bad run id")
        .run();
}

#[test]
fn corrupt_state_file_is_named_and_left_alone() {
    let sb = Sandbox::new();
    let garbage =
        "this is not a database, it is a text file that happens to sit where state.db should be\n";
    sb.write(".ferry/state.db", garbage);
    sb.write("a.rhai", "step(\"a\", || 1);");
    sb.ferry(["run", "a.rhai"])
        .code(2)
        .stderr_has("state.db")
        .stderr_has("not a ferry state file")
        .run();
    assert_eq!(
        sb.read(".ferry/state.db"),
        garbage,
        "nothing was overwritten"
    );
}

#[test]
fn unwritable_state_dir_is_named() {
    let sb = Sandbox::new();
    sb.write("blocker", "a file where a directory should be");
    sb.write("a.rhai", "step(\"a\", || 1);");
    sb.ferry(["--state", "blocker/state", "run", "a.rhai"])
        .code(2)
        .stderr_has("blocker/state")
        .stderr_has("cannot create the state directory")
        .run();
}

#[test]
fn imports_cannot_leave_the_allowed_folders() {
    let sb = Sandbox::new();
    sb.write("secret.rhai", "fn f() { 1 }");
    sb.write("scripts/esc.rhai", "import \"../secret\" as s;\ns::f();\n");
    sb.ferry(["run", "scripts/esc.rhai"])
        .code(2)
        .stderr_has("leads outside the allowed folders")
        .stderr_has("esc.rhai:1:1")
        .run();
    sb.write("scripts/abs.rhai", "import \"/etc/hostname\" as s;\n");
    sb.ferry(["run", "scripts/abs.rhai"])
        .code(2)
        .stderr_has("not an absolute one")
        .run();
}

#[test]
fn a_mutation_outside_a_step_is_refused_with_its_position() {
    let sb = Sandbox::new();
    sb.write("m.rhai", "let x = 1;\ntest_mutate(\"log\", \"oops\");\n");
    sb.ferry(["run", "m.rhai"])
        .code(2)
        .stderr_has("`test_mutate` changes the world and must run inside a step")
        .stderr_has("m.rhai:2:1")
        .run();
    assert!(sb.lines("log").is_empty());
}

#[test]
fn duplicate_literal_step_names_are_reported_before_running() {
    let sb = Sandbox::new();
    sb.write(
        "d.rhai",
        "step(\"a\", || test_mutate(\"log\", \"1\"));\nstep(\"a\", || 2);\n",
    );
    sb.ferry(["run", "d.rhai"])
        .code(2)
        .stderr_has("duplicate step name `a`: already used at d.rhai:1:1")
        .run();
    assert!(sb.lines("log").is_empty());
}

#[test]
fn a_missing_script_is_named() {
    let sb = Sandbox::new();
    sb.ferry(["run", "nope.rhai"])
        .code(2)
        .stderr_has("cannot read script nope.rhai")
        .run();
}

#[test]
fn errors_inside_modules_show_the_call_chain() {
    let sb = Sandbox::new();
    sb.write(
        "lib/helper.rhai",
        "fn explode(x) {\n    x.no_such_method()\n}\n",
    );
    sb.write("main.rhai", "import \"lib/helper\" as h;\nh::explode(1);\n");
    sb.ferry(["run", "main.rhai"])
        .code(2)
        .stderr_has("no_such_method")
        .stderr_has("lib/helper.rhai:2:")
        .stderr_has("in call to `explode` at main.rhai:2:")
        .run();
}

#[test]
fn check_names_misspelt_methods_and_probe_functions_with_a_suggestion() {
    let sb = Sandbox::new();
    sb.write(
        "typos.rhai",
        "let old = cluster(\"old\");\nlet zone = dns(\"private\");\nstep(\"a\", || old.to_externalname(\"ns\", \"app\", \"old.x\"));\nstep(\"b\", || zone.upsrt(\"old\", \"A\", [\"1.2.3.4\"], 60));\nlet r = probe::htp(\"http://x/\");\nlet m = #{ later: || 1 };\nm.later();\n",
    );
    let out = sb
        .ferry(["check", "typos.rhai"])
        .code(2)
        .stderr_has("unknown method `to_externalname`; did you mean `to_external_name`?")
        .stderr_has("typos.rhai:3:18")
        .stderr_has("unknown method `upsrt`; did you mean `upsert`?")
        .stderr_has("module `probe` has no function `htp`; did you mean `http`?")
        .run();
    assert!(
        !out.stderr.contains("`later`"),
        "a closure kept in a map is called as a method: {}",
        out.stderr
    );
}

#[test]
fn a_set_key_the_script_never_reads_is_refused_with_a_suggestion() {
    let sb = Sandbox::new();
    sb.write(
        "p.rhai",
        "let ns = params.get(\"client_ns\", \"default\");\nstep(\"a\", || test_mutate(\"log\", ns));\nif params.has(\"app\") { print(params.app); }\n",
    );
    sb.ferry(["run", "p.rhai", "--set", "clinet_ns=app2-ns"])
        .code(2)
        .stderr_has("--set clinet_ns: the script never reads it (it reads: app, client_ns); did you mean `client_ns`?")
        .run();
    assert!(sb.lines("log").is_empty(), "nothing ran");
    sb.ferry(["runs"]).stdout_has("no runs").run();
    sb.ferry([
        "run",
        "p.rhai",
        "--set",
        "client_ns=a",
        "--set",
        "client_ns=b",
    ])
    .code(2)
    .stderr_has("--set client_ns is given twice (`client_ns=a` and `client_ns=b`)")
    .run();
    sb.ferry(["run", "p.rhai", "--id", "ok", "--set", "client_ns=app2-ns"])
        .run();
    assert_eq!(sb.lines("log"), ["app2-ns"]);
    sb.ferry([
        "run",
        "p.rhai",
        "--id",
        "allowed",
        "--set",
        "extra=1",
        "--allow-unknown-params",
    ])
    .run();
}

#[test]
fn params_handed_on_whole_switch_the_unknown_key_check_off() {
    let sb = Sandbox::new();
    sb.write(
        "whole.rhai",
        "fn pick(p, key) { p[key] }\nlet key = \"colour\";\nstep(\"a\", || test_mutate(\"log\", pick(params.to_map(), key)));\n",
    );
    sb.ferry(["run", "whole.rhai", "--set", "colour=blue"])
        .run();
    assert_eq!(sb.lines("log"), ["blue"]);
}
