//! Reading runs: `status` (its driver alive, dead or absent), `log` in full,
//! `describe`, `--watch`, `log -f`, `-o json|yaml`, closed pipes, read-only
//! and foreign state, and names that would act on the terminal.

use crate::common::{Sandbox, await_condition, finish};
use std::process::{Command, Stdio};

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
fn status_tells_a_live_driver_from_a_dead_one() {
    let sb = Sandbox::new();
    sb.write("hold.rhai", HOLD);
    let mut child = sb.spawn(["run", "hold.rhai", "--id", "k"]);
    await_condition("step b to start", || started_b(&sb));

    let held = sb
        .ferry(["status", "k"])
        .stdout_has("status:   running\n")
        .stdout_has(&format!("driver:   pid {}", child.id()))
        .stdout_has("(alive)")
        .stdout_has("current:  b (step, running since")
        .run();
    assert!(
        !held.stdout.contains("ferry resume"),
        "no resume for a run another process drives: {}",
        held.stdout
    );
    let json = sb.status("k");
    assert_eq!(json["driver"]["alive"], true);
    assert_eq!(json["driver"]["holder"]["pid"], child.id());
    assert_eq!(json["current_step"], "b");

    let pid = child.id();
    child.kill_now();
    sb.ferry(["status", "k"])
        .stdout_has("status:   running (driver died)")
        .stdout_has(&format!("driver:   died: pid {pid}"))
        .stdout_has("b (step, interrupted (driver died)")
        .stdout_has("next:     ferry resume k")
        .run();
    let json = sb.status("k");
    assert_eq!(json["state"], "running (driver died)");
    assert_eq!(json["driver"]["died"], true);
    sb.ferry(["runs"]).stdout_has("running (driver died)").run();
}

#[test]
fn status_counts_the_records_it_shows_and_names_the_waiting_gate() {
    let sb = Sandbox::new();
    sb.write(
        "g.rhai",
        r#"step("one", || 1); step("two", || 2); pause("ok", "look first"); step("three", || 3);"#,
    );
    sb.ferry(["run", "g.rhai", "--id", "g"])
        .code(3)
        .stdout_has("(2 steps run, 0 replayed)")
        .run();
    sb.ferry(["status", "g"])
        .stdout_has("steps:    2 recorded over every execution: 2 completed\n")
        .stdout_has("current:  ok (gate, waiting for approval")
        .stdout_has("gate:     ok WAITING since")
        .stdout_has("next:     ferry approve g ok && ferry resume g")
        .run();
    sb.ferry(["approve", "g", "ok"]).run();
    sb.ferry(["resume", "g"])
        .stdout_has("(1 steps run, 2 replayed)")
        .run();
    sb.ferry(["status", "g"])
        .stdout_has("steps:    3 recorded over every execution: 3 completed\n")
        .stdout_has("last:     three (step, completed at")
        .stdout_lacks("next:")
        .run();
}

#[test]
fn resume_and_approve_of_a_finished_run_say_so_with_the_refused_code() {
    let sb = Sandbox::new();
    sb.write("g.rhai", r#"pause("ok", "look first"); step("one", || 1);"#);
    sb.ferry(["run", "g.rhai", "--id", "f"]).code(3).run();
    sb.ferry(["approve", "f", "ok"]).run();
    sb.ferry(["resume", "f"]).run();
    sb.ferry(["resume", "f"])
        .code(4)
        .stderr_has("is succeeded: nothing left to do")
        .run();
    let again = sb
        .ferry(["approve", "f", "ok"])
        .stdout_has("already approved")
        .stdout_has("the run is succeeded: nothing to resume")
        .run();
    assert!(!again.stdout.contains("ferry resume"), "{}", again.stdout);
}

#[test]
fn log_prints_values_in_full_numbered_in_order() {
    let sb = Sandbox::new();
    let long = "x".repeat(300);
    sb.write(
        "v.rhai",
        &format!(
            r#"step("one", || #{{ text: "{long}" }}); step("two", || 2); step("three", || 3);"#
        ),
    );
    sb.ferry(["run", "v.rhai", "--id", "v"]).run();
    let out = sb.ferry(["log", "v"]).stdout_has(&long).run();
    let numbers: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(numbers, ["#1", "#2", "#3"], "{}", out.stdout);
    assert!(
        !out.stdout.contains('…'),
        "nothing truncated: {}",
        out.stdout
    );
}

#[test]
fn describe_shows_a_step_whole_and_suggests_names() {
    let sb = Sandbox::new();
    let long = "y".repeat(200);
    sb.write(
        "d.rhai",
        &format!(
            r#"
            step("fetch", || #{{ body: "{long}", n: 1 }});
            step("explode", || {{ test_mutate("log", "x"); throw "boom: the thing broke"; }});
            "#
        ),
    );
    sb.ferry(["run", "d.rhai", "--id", "d"]).code(1).run();
    sb.ferry(["describe", "d", "fetch"])
        .stdout_has("step `fetch`")
        .stdout_has("status:   completed")
        .stdout_has("attempts: 1")
        .stdout_has("(took ")
        .stdout_has(&format!("\"body\": \"{long}\""))
        .run();
    sb.ferry(["describe", "d", "explode"])
        .stdout_has("status:   failed")
        .stdout_has("boom: the thing broke")
        .stdout_has("position: d.rhai:3:")
        .run();
    sb.ferry(["describe", "d", "fetc"])
        .code(2)
        .stderr_has("run `d` has no record `fetc`; did you mean `fetch`?")
        .run();
    let all = sb.ferry(["describe", "d"]).stdout_has("hash:").run();
    assert!(
        all.stdout.contains("step `fetch`") && all.stdout.contains("step `explode`"),
        "{}",
        all.stdout
    );
    let json = sb.ferry(["describe", "d", "fetch", "-o", "json"]).run();
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["records"][0]["value"]["body"], long.as_str());
}

#[test]
fn status_runs_log_and_describe_print_json_and_yaml() {
    let sb = Sandbox::new();
    sb.write("s.rhai", r#"step("one", || #{ n: 1 });"#);
    sb.ferry(["run", "s.rhai", "--id", "s"]).run();
    for command in [
        vec!["status", "s"],
        vec!["runs"],
        vec!["log", "s"],
        vec!["describe", "s"],
    ] {
        let mut args = command.clone();
        args.extend(["-o", "json"]);
        let json: serde_json::Value =
            serde_json::from_str(&sb.ferry(&args).run().stdout).expect("one JSON document");
        let mut args = command.clone();
        args.extend(["-o", "yaml"]);
        let yaml: serde_json::Value =
            serde_yaml_ng::from_str(&sb.ferry(&args).run().stdout).expect("one YAML document");
        assert_eq!(json, yaml, "{command:?}: the same data either way");
    }
    let status: serde_json::Value =
        serde_json::from_str(&sb.ferry(["status", "s", "-o", "json"]).run().stdout).unwrap();
    assert_eq!(status["state"], "succeeded");
    assert_eq!(status["steps"][0]["value"]["n"], 1);
    let runs: serde_json::Value =
        serde_json::from_str(&sb.ferry(["runs", "-o", "json"]).run().stdout).unwrap();
    assert_eq!(runs[0]["id"], "s");
}

#[test]
fn watch_and_follow_print_changes_until_the_run_ends() {
    let sb = Sandbox::new();
    sb.write("hold.rhai", HOLD);
    let driver = sb.spawn(["run", "hold.rhai", "--id", "w"]);
    await_condition("step b to start", || started_b(&sb));
    // Their output goes to files, so the test can wait until both have
    // printed the run as it stands before letting it move on.
    let to_file = |args: &[&str], name: &str| -> crate::common::Running {
        let file = std::fs::File::create(sb.file(name)).unwrap();
        sb.command()
            .args(args)
            .stdout(Stdio::from(file))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
            .into()
    };
    let watch = to_file(&["status", "w", "--watch", "-o", "json"], "watch.out");
    let follow = to_file(&["log", "w", "-f"], "follow.out");
    await_condition("the followers to print the running run", || {
        sb.read("watch.out").contains("\"running\"")
            && sb.read("follow.out").contains("running      b")
    });
    sb.write("go", "");
    assert_eq!(finish(driver).code, 0);

    let watched = finish(watch);
    assert_eq!(watched.code, 0, "{}", watched.stderr);
    let states: Vec<String> = sb
        .read("watch.out")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line per change");
            v["state"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        states.first().map(String::as_str),
        Some("running"),
        "{states:?}"
    );
    assert_eq!(
        states.last().map(String::as_str),
        Some("succeeded"),
        "{states:?}"
    );

    let followed = finish(follow);
    assert_eq!(followed.code, 0, "{}", followed.stderr);
    let followed = crate::common::Finished {
        stdout: sb.read("follow.out"),
        ..followed
    };
    assert!(
        followed.stdout.contains("completed    c"),
        "the step run after following began: {}",
        followed.stdout
    );
    assert!(
        followed.stdout.contains("running      b") && followed.stdout.contains("completed    b"),
        "b printed again when it completed: {}",
        followed.stdout
    );
    assert!(
        followed.stdout.contains("run w is succeeded"),
        "{}",
        followed.stdout
    );
}

#[test]
fn read_commands_end_quietly_when_the_reader_goes_away() {
    let sb = Sandbox::new();
    sb.write("s.rhai", r#"for i in 0..50 { step(`s${i}`, || i); }"#);
    sb.ferry(["run", "s.rhai", "--id", "p"]).run();
    for args in [
        vec!["status", "p"],
        vec!["runs"],
        vec!["log", "p"],
        vec!["describe", "p"],
    ] {
        // A pipe whose reader is gone before ferry writes: every write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = sb
            .command()
            .args(&args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?} printed: {stderr}");
    }
}

#[test]
fn qps_out_of_range_is_a_usage_error_from_the_flag_and_the_profile() {
    let sb = Sandbox::new();
    let lab = crate::common::lab::LabFixture::serve(&sb.file("lab"));
    sb.write(
        "get.rhai",
        r#"let svc = cluster("old").get("svc", "app1-ns", "app1"); print(`got ${svc.metadata.name}`);"#,
    );
    sb.ferry([
        "--qps",
        "1e-30",
        "run",
        "get.rhai",
        "--lab-dir",
        &lab.dir_arg(),
    ])
    .code(2)
    .stderr_has("qps 0.000000000000000000000000000001 is out of range")
    .run();
    sb.ferry(["--qps=-3", "run", "get.rhai", "--lab-dir", &lab.dir_arg()])
        .code(2)
        .stderr_has("out of range")
        .run();
    sb.write(
        "env.toml",
        &format!(
            "[clusters]\nold = {{ context = \"old\", kubeconfig = \"{}\", qps = 1e-30 }}\n",
            lab.lab.kubeconfig.display()
        ),
    );
    sb.ferry(["run", "get.rhai", "--env", "env.toml"])
        .code(2)
        .stderr_has("[clusters.old]: qps")
        .run();
    sb.ferry(["runs"]).stdout_has("no runs").run();
    // In range, the same script runs.
    sb.ferry([
        "--qps",
        "0.5",
        "run",
        "get.rhai",
        "--lab-dir",
        &lab.dir_arg(),
    ])
    .stdout_has("got app1")
    .run();
}

#[test]
fn a_config_error_records_no_run() {
    let sb = Sandbox::new();
    sb.write(
        "kubeconfig",
        "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n",
    );
    sb.write("c.rhai", r#"let c = cluster("missing"); step("a", || 1);"#);
    sb.ferry(["--kubeconfig", "kubeconfig", "run", "c.rhai", "--id", "c"])
        .code(2)
        .stderr_has("missing")
        .run();
    sb.write("z.rhai", r#"let z = dns("private"); step("a", || 1);"#);
    sb.ferry(["run", "z.rhai", "--id", "z"])
        .code(2)
        .stderr_has("no DNS zone `private`")
        .run();
    sb.ferry(["runs"]).stdout_has("no runs").run();
    // Fixed, the same id starts afresh.
    sb.write("c.rhai", r#"step("a", || 1);"#);
    sb.ferry(["run", "c.rhai", "--id", "c"]).run();
}

#[test]
fn a_script_from_a_pipe_is_refused_with_why() {
    let sb = Sandbox::new();
    let mut child = sb
        .command()
        .args(["run", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"step("a", || 1);"#);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
    assert!(!stderr.contains("No such file"), "{stderr}");
}

#[test]
fn a_foreign_database_is_refused_untouched() {
    let sb = Sandbox::new();
    let state = sb.file("foreign");
    std::fs::create_dir_all(&state).unwrap();
    let with_runs = rusqlite::Connection::open(state.join("state.db")).unwrap();
    with_runs
        .execute_batch("CREATE TABLE runs (owner TEXT, payload BLOB, created TEXT);")
        .unwrap();
    drop(with_runs);
    sb.ferry(["status"])
        .env("FERRY_STATE", state.to_str().unwrap())
        .code(2)
        .stderr_has("not a ferry journal: the database holds other tables (runs)")
        .run();
    let out = sb
        .ferry(["runs"])
        .env("FERRY_STATE", state.to_str().unwrap())
        .code(2)
        .run();
    assert!(!out.stderr.contains("CREATE TABLE"), "{}", out.stderr);

    let other = sb.file("other");
    std::fs::create_dir_all(&other).unwrap();
    let notes = rusqlite::Connection::open(other.join("state.db")).unwrap();
    notes
        .execute_batch("CREATE TABLE notes (text TEXT);")
        .unwrap();
    drop(notes);
    sb.ferry(["runs"])
        .env("FERRY_STATE", other.to_str().unwrap())
        .code(2)
        .stderr_has("not a ferry journal")
        .run();
    let conn = rusqlite::Connection::open(other.join("state.db")).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["notes"], "no ferry tables added");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_ne!(mode, "wal", "not switched to WAL either");
}

#[test]
fn a_read_only_state_can_still_be_read() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new();
    sb.write("s.rhai", r#"step("one", || 1);"#);
    sb.ferry(["run", "s.rhai", "--id", "ro"]).run();
    let state = sb.file(".ferry");
    // root writes anywhere: read as `nobody` from a state it owns read-only.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        std::fs::set_permissions(sb.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let status = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(&state)
            .status()
            .unwrap();
        assert!(status.success());
    }
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o500)).unwrap();
    for args in [
        vec!["status", "ro"],
        vec!["runs"],
        vec!["log", "ro"],
        vec!["describe", "ro", "one"],
    ] {
        let mut cmd = sb.command();
        cmd.args(&args);
        if root {
            cmd.uid(65534).gid(65534);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("ro") || stdout.contains("one"),
            "{args:?}: {stdout}"
        );
    }
    let mut resume = sb.command();
    resume.args(["run", "s.rhai", "--id", "ro2"]);
    if root {
        resume.uid(65534).gid(65534);
    }
    assert_eq!(
        resume.output().unwrap().status.code(),
        Some(2),
        "writing still needs a writable state"
    );
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn names_with_control_characters_are_shown_escaped() {
    let sb = Sandbox::new();
    sb.write(
        "e.rhai",
        "step(\"evil\\x1b[31m\\nname\", || 1); pause(\"gate\", \"why\\x1b[2J\");",
    );
    let run = sb.ferry(["run", "e.rhai", "--id", "e"]).code(3).run();
    assert!(
        run.stderr.contains("why\\u{1b}[2J") && !run.stderr.contains('\u{1b}'),
        "the gate's message on stderr: {:?}",
        run.stderr
    );
    for args in [vec!["log", "e"], vec!["describe", "e"]] {
        let out = sb.ferry(&args).stdout_has("evil\\u{1b}[31m\\nname").run();
        assert!(!out.stdout.contains('\u{1b}'), "{args:?}: {:?}", out.stdout);
    }
    let status = sb.ferry(["status", "e"]).stdout_has("why\\u{1b}[2J").run();
    assert!(!status.stdout.contains('\u{1b}'), "{:?}", status.stdout);
}
