//! Imports: the embedded stdlib, the script's folder, --lib and FERRY_PATH.

use crate::common::Sandbox;

#[test]
fn stdlib_modules_are_embedded() {
    let sb = Sandbox::new();
    sb.write(
        "s.rhai",
        "import \"ferry/names\" as names;\nprint(names::hosts(\"app1\", \"app1-ns\"));\n",
    );
    sb.ferry(["run", "s.rhai"])
        .stdout_has("[\"app1.app1-ns\", \"app1.app1-ns.svc\", \"app1.app1-ns.svc.cluster.local\"]")
        .run();
    sb.write("t.rhai", "import \"ferry/nope\" as n;\n");
    sb.ferry(["run", "t.rhai"])
        .code(2)
        .stderr_has("no stdlib module `ferry/nope`")
        .stderr_has("ferry/names")
        .run();
}

#[test]
fn imports_resolve_relative_to_the_importing_file_then_lib_then_ferry_path() {
    let sb = Sandbox::new();
    sb.write(
        "recipes/team/db.rhai",
        "import \"util\" as u;\nfn name() { `db-${u::suffix()}` }\n",
    );
    sb.write("recipes/team/util.rhai", "fn suffix() { \"team\" }\n");
    sb.write("shared/common.rhai", "fn common_name() { \"shared\" }\n");
    sb.write("scripts/go.rhai", "import \"team/db\" as db;\nimport \"common\" as c;\nprint(`${db::name()} ${c::common_name()}`);\n");

    sb.ferry(["run", "scripts/go.rhai"])
        .code(2)
        .stderr_has("cannot find module `team/db`")
        .run();
    let shared = sb.file("shared");
    sb.ferry(["--lib", "recipes", "run", "scripts/go.rhai"])
        .env("FERRY_PATH", shared.to_str().unwrap())
        .stdout_has("db-team shared")
        .run();
}

#[test]
fn a_run_remembers_its_lib_folders_for_resume() {
    let sb = Sandbox::new();
    sb.write("recipes/r.rhai", "fn v() { 7 }\n");
    sb.write("go.rhai", "import \"r\" as r;\nstep(\"v\", || r::v());\npause(\"g\", \"ok?\");\nprint(`v=${r::v()}`);\n");
    sb.ferry(["--lib", "recipes", "run", "go.rhai", "--id", "l"])
        .code(3)
        .run();
    sb.ferry(["approve", "l", "g"]).run();
    sb.ferry(["resume", "l"]).stdout_has("v=7").run();
}

#[test]
fn symlinks_cannot_lead_out_of_a_root() {
    let sb = Sandbox::new();
    sb.write("outside/evil.rhai", "fn f() { 1 }\n");
    std::fs::create_dir_all(sb.file("scripts")).unwrap();
    std::os::unix::fs::symlink(sb.file("outside/evil.rhai"), sb.file("scripts/evil.rhai")).unwrap();
    sb.write("scripts/s.rhai", "import \"evil\" as e;\n");
    sb.ferry(["run", "scripts/s.rhai"])
        .code(2)
        .stderr_has("leads outside the allowed folders")
        .run();
}
