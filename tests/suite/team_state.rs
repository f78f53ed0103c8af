//! A team shares one journal: two "machines" (separate HOME, user, working
//! directory, no script file in common) drive the same run through the
//! backend alone, claims keep a second run off an app, and `ferry state`
//! tells which journal a folder uses. Each scenario runs on every backend
//! that can run here.

use crate::common::lab::LabFixture;
use crate::common::{Invocation, Running, Sandbox, await_condition, finish};
use std::path::Path;

const TWO_APPS: &str = include_str!("../../scripts/two-apps.rhai");
const MIGRATE_APP: &str = include_str!("../../scripts/migrate-app.rhai");

/// One teammate's machine: its own folder, HOME and user name; what it
/// shares with the others is the state locator (and the lab, the clusters).
struct Machine {
    sb: Sandbox,
    user: &'static str,
    state: Shared,
}

/// What the machines share: a state locator, and what reaching it needs
/// (a kubeconfig for `kubernetes://`).
#[derive(Clone)]
pub struct Shared {
    pub state: String,
    pub env: Vec<(String, String)>,
}

impl Shared {
    pub fn state(state: &str) -> Shared {
        Shared {
            state: state.to_owned(),
            env: Vec::new(),
        }
    }
}

impl Machine {
    fn new(user: &'static str, state: &Shared) -> Machine {
        let sb = Sandbox::new();
        std::fs::create_dir_all(sb.file("home")).unwrap();
        Machine {
            sb,
            user,
            state: state.clone(),
        }
    }

    fn env<'a>(&self, invocation: Invocation<'a>) -> Invocation<'a> {
        let mut invocation = invocation
            .env("FERRY_STATE", &self.state.state)
            .env("HOME", &self.sb.file("home").display().to_string())
            .env("USER", self.user);
        for (k, v) in &self.state.env {
            invocation = invocation.env(k, v);
        }
        invocation
    }

    fn ferry<'a>(&'a self, args: &[&str]) -> Invocation<'a> {
        self.env(self.sb.ferry(args))
    }

    fn spawn(&self, args: &[&str]) -> Running {
        let mut cmd = self.sb.command();
        cmd.args(args)
            .env("FERRY_STATE", &self.state.state)
            .env("HOME", self.sb.file("home"))
            .env("USER", self.user)
            .envs(self.state.env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().expect("spawn ferry").into()
    }

    fn status(&self, run: &str) -> serde_json::Value {
        let out = self.ferry(&["status", run, "-o", "json"]).run();
        serde_json::from_str(&out.stdout).expect("status json")
    }
}

/// A runs two-apps.rhai to its gate; a third run moving app1 is refused
/// naming A's run; A's script goes away; B approves and resumes from the
/// journal's copy; A's resume meanwhile is refused naming B; the run ends
/// with its claims released and who did what recorded.
pub fn teammates_share_a_run(choose: impl FnOnce(&LabFixture) -> Shared) {
    let lab_home = Sandbox::new();
    let lab = LabFixture::serve(&lab_home.file("lab"));
    let lab_dir = lab.dir_arg();
    let state = choose(&lab);
    let a = Machine::new("alice", &state);
    let b = Machine::new("bob", &state);
    let c = Machine::new("carol", &state);

    let script = a.sb.write("repo/two-apps.rhai", TWO_APPS);
    a.ferry(&[
        "run",
        &script.display().to_string(),
        "--id",
        "team",
        "--lab-dir",
        &lab_dir,
    ])
    .code(3)
    .run();

    // Carol moves app1 too, from her own copy of a recipe: refused, naming the holder.
    let other = c.sb.write("migrate-app.rhai", MIGRATE_APP);
    c.ferry(&[
        "run",
        &other.display().to_string(),
        "--id",
        "third",
        "--lab-dir",
        &lab_dir,
        "--set",
        "app=app1",
        "--set",
        "ns=app1-ns",
    ])
    .code(4)
    .stderr_has("app1-ns/app1` is claimed by run `team` (paused, started by alice@")
    .run();
    c.ferry(&["status", "third"])
        .code(2)
        .stderr_has("no run `third`")
        .run();

    // Alice's checkout goes away: Bob works from the journal alone.
    std::fs::remove_dir_all(a.sb.file("repo")).unwrap();
    b.ferry(&["approve", "team", "app2-ready"]).run();
    let resume = b.spawn(&["resume", "team"]);
    await_condition("bob's resume to hold the run", || {
        b.status("team")["driver"]["alive"] == true
    });
    a.ferry(&["resume", "team"])
        .code(4)
        .stderr_has("is held by pid")
        .stderr_has("by bob since")
        .run();
    let done = finish(resume);
    assert_eq!(
        done.code, 0,
        "bob's resume:\n{}\n{}",
        done.stdout, done.stderr
    );
    assert!(
        done.stdout.contains("using the copy run team recorded")
            || done.stderr.contains("using the copy run team recorded"),
        "{}\n{}",
        done.stdout,
        done.stderr
    );

    let status = a.status("team");
    assert_eq!(status["run"]["status"], "succeeded");
    assert_eq!(status["claims"], serde_json::json!([]), "claims released");
    let actions: Vec<(String, String)> = status["run"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_owned(),
                a["by"]
                    .as_str()
                    .unwrap()
                    .split('@')
                    .next()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("start".to_owned(), "alice".to_owned()),
            ("resume".to_owned(), "bob".to_owned())
        ]
    );
    let gate = &status["gates"][0];
    assert!(
        gate["approved_by"].as_str().unwrap().starts_with("bob@"),
        "{gate}"
    );
    // With app1 free again, Carol's run may claim it (it stops at its check:
    // app1 is already moved, which is the recipe's business, not the claim's).
    let runs = c.ferry(&["runs"]).run();
    assert!(runs.stdout.contains("alice@"), "{}", runs.stdout);
}

#[test]
fn teammates_share_a_run_through_sqlite() {
    let shared = tempfile::tempdir().unwrap();
    teammates_share_a_run(|_| {
        Shared::state(&format!("sqlite:{}", shared.path().join("state").display()))
    });
}

#[test]
fn teammates_share_a_run_through_postgres() {
    let pg = crate::common::postgres::PgServer::start();
    let url = pg.database("team");
    teammates_share_a_run(|_| Shared::state(&url));
}

/// The journal in a namespace of the lab's `old` cluster: the API server is
/// all the machines share.
pub fn in_the_lab(lab: &LabFixture) -> Shared {
    let cluster = lab.lab.cluster("old").unwrap();
    let namespaces = cluster.resource("", "v1", "namespaces").unwrap();
    cluster
        .create(
            &namespaces,
            None,
            serde_json::json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "ferry" } }),
            ferry::lab::apiserver::Write::default(),
        )
        .unwrap();
    let kubeconfig = lab
        .lab
        .environment()
        .kubeconfig
        .expect("the lab names its kubeconfig");
    Shared {
        state: "kubernetes://old/ferry".into(),
        env: vec![("KUBECONFIG".into(), kubeconfig.display().to_string())],
    }
}

#[test]
fn teammates_share_a_run_through_kubernetes() {
    teammates_share_a_run(in_the_lab);
}

#[test]
fn ferry_toml_upwards_chooses_the_state_for_every_subfolder() {
    let sb = Sandbox::new();
    sb.write("repo/ferry.toml", "[state]\nurl = \"team-state\"\n");
    sb.write("repo/apps/one/a.rhai", "step(\"a\", || 1);\n");
    let deep = sb.file("repo/apps/one");
    let run = |dir: &Path, args: &[&str]| {
        let mut cmd = sb.command();
        cmd.env_remove("FERRY_STATE").current_dir(dir).args(args);
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&deep, &["run", "a.rhai", "--id", "up"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        sb.file("repo/team-state/state.db").is_file(),
        "the state is where [state] says, relative to ferry.toml"
    );
    let (code, out, err) = run(&sb.file("repo"), &["status", "up"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("journal:  "), "{out}");
    assert!(out.contains("team-state"), "{out}");
    let (code, out, _) = run(&sb.file("repo/apps"), &["state", "show", "-o", "json"]);
    assert_eq!(code, 0);
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["backend"], "sqlite");
    assert!(
        shown["chosen_by"]
            .as_str()
            .unwrap()
            .starts_with("[state] of "),
        "{shown}"
    );
    // Outside the repo: not this state.
    let (_, out, _) = run(sb.path(), &["runs"]);
    assert!(!out.contains("up "), "{out}");

    // A state URL of an unknown kind is refused, not taken as a folder.
    let (code, _, err) = run(&deep, &["--state", "mysql://u:hunter2@db/x", "runs"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown scheme `mysql://`"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(!deep.join("mysql:").exists());
    // A bad [state] table names the file.
    sb.write("repo/ferry.toml", "[state]\npath = \"x\"\n");
    let (code, _, err) = run(&deep, &["runs"]);
    assert_eq!(code, 2);
    assert!(err.contains("ferry.toml: [state] takes one key"), "{err}");
}

#[test]
fn state_copy_moves_history_and_can_be_repeated() {
    let sb = Sandbox::new();
    sb.write(
        "a.rhai",
        "step(\"a\", || 1);\npause(\"g\", \"look\");\nstep(\"b\", || 2);\n",
    );
    sb.ferry(["run", "a.rhai", "--id", "one"]).code(3).run();
    sb.write(
        "b.rhai",
        "claim(\"k/ns/app\");\nstep(\"x\", || 1);\npause(\"h\", \"look\");\n",
    );
    sb.ferry(["run", "b.rhai", "--id", "two"]).code(3).run();
    let target = sb.file("elsewhere");
    let to = format!("sqlite:{}", target.display());
    sb.ferry(["state", "copy", "--to", &to])
        .stdout_has("copied 2 runs (4 records, 1 claims)")
        .run();
    sb.ferry(["state", "copy", "--to", &to])
        .stdout_has("copied 0 runs")
        .stdout_has("left alone (already there): one, two")
        .run();
    // The copy is a journal like any other: resume from it.
    sb.ferry(["approve", "one", "g"])
        .env("FERRY_STATE", &to)
        .run();
    sb.ferry(["resume", "one"]).env("FERRY_STATE", &to).run();
    let steps = sb.steps("one");
    assert_eq!(steps.len(), 2, "the original is untouched");
    let copy = sb
        .ferry(["status", "two", "-o", "json"])
        .env("FERRY_STATE", &to)
        .run();
    let copy: serde_json::Value = serde_json::from_str(&copy.stdout).unwrap();
    assert_eq!(copy["claims"][0]["key"], "k/ns/app");
    sb.ferry(["state", "copy", "--from", &to, "--to", &to])
        .code(2)
        .stderr_has("the same state")
        .run();
}

/// A's driver is killed (`kill -9`) mid-step; B resumes from its own
/// folder: every completed step ran once, the killed one again. Where the
/// lock outlives its holder until it expires (a Lease), B is refused until
/// then, and only then takes over.
pub fn killed_driver_is_resumed_elsewhere(state: &Shared, lock_outlives_holder: bool) {
    let shared = Sandbox::new();
    let log = shared.file("log");
    let go = shared.file("go");
    let a = Machine::new("alice", state);
    let b = Machine::new("bob", state);
    let script = a.sb.write(
        "kill.rhai",
        &format!(
            r#"
step("a", || test_mutate("{log}", "a"));
step("b", || {{
    test_mutate("{log}", "b-start");
    test_wait_for("{go}");
    test_mutate("{log}", "b-end");
}});
step("c", || test_mutate("{log}", "c"));
"#,
            log = log.display(),
            go = go.display()
        ),
    );
    let mut driver = a.spawn(&["run", &script.display().to_string(), "--id", "k"]);
    await_condition("step b to start", || {
        shared.read("log").lines().any(|l| l == "b-start")
    });
    driver.kill_now();
    std::fs::remove_file(&script).unwrap();
    std::fs::write(&go, "").unwrap();
    let mut refused = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let out = b.ferry(&["resume", "k"]).any_code().run();
        if out.code == 0 {
            break;
        }
        assert_eq!(out.code, 4, "only a held lock may refuse:\n{}", out.stderr);
        assert!(out.stderr.contains("by alice"), "{}", out.stderr);
        refused += 1;
        assert!(std::time::Instant::now() < deadline, "never taken over");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    if lock_outlives_holder {
        assert!(
            refused > 0,
            "a dead holder's lease is taken over only once expired"
        );
    } else {
        assert_eq!(refused, 0, "the lock died with its holder");
    }
    assert_eq!(
        shared.read("log").lines().collect::<Vec<_>>(),
        ["a", "b-start", "b-start", "b-end", "c"]
    );
    assert_eq!(b.status("k")["run"]["status"], "succeeded");
}

#[test]
fn killed_driver_is_resumed_elsewhere_through_sqlite() {
    let shared = tempfile::tempdir().unwrap();
    killed_driver_is_resumed_elsewhere(
        &Shared::state(&format!("sqlite:{}", shared.path().join("state").display())),
        false,
    );
}

#[test]
fn killed_driver_is_resumed_elsewhere_through_postgres() {
    let pg = crate::common::postgres::PgServer::start();
    // The advisory lock dies with the killed driver's session.
    killed_driver_is_resumed_elsewhere(&Shared::state(&pg.database("kill")), false);
}

#[test]
fn killed_driver_is_resumed_elsewhere_through_kubernetes() {
    let home = Sandbox::new();
    let lab = LabFixture::serve(&home.file("lab"));
    // The Lease outlives its killed holder until it expires.
    killed_driver_is_resumed_elsewhere(&in_the_lab(&lab), true);
}

/// A claim lasts across gates and resumes, and ends with the run: aborted
/// (or succeeded, or rolled back), the key is free for the next run.
#[test]
fn claims_last_until_the_run_ends() {
    let sb = Sandbox::new();
    sb.write(
        "a.rhai",
        "claim(\"uid/app1-ns/app1\");\nstep(\"a\", || 1);\npause(\"g\", \"look\");\nstep(\"b\", || 2);\n",
    );
    sb.ferry(["run", "a.rhai", "--id", "first"]).code(3).run();
    sb.ferry(["run", "a.rhai", "--id", "second"])
        .code(4)
        .stderr_has("`uid/app1-ns/app1` is claimed by run `first` (paused")
        .run();
    sb.ferry(["status", "first"])
        .stdout_has("holds:    uid/app1-ns/app1")
        .run();
    sb.ferry(["abort", "first"]).run();
    sb.ferry(["run", "a.rhai", "--id", "third"]).code(3).run();
    sb.ferry(["approve", "third", "g"]).run();
    sb.ferry(["resume", "third"]).run();
    assert_eq!(sb.status("third")["claims"], serde_json::json!([]));
    // A claim inside a try/catch cannot be swallowed.
    sb.write("b.rhai", "claim(\"k\");\npause(\"g\", \"look\");\n");
    sb.write(
        "c.rhai",
        "try { claim(\"k\"); } catch (e) { print(\"caught\"); }\nstep(\"x\", || 1);\n",
    );
    sb.ferry(["run", "b.rhai", "--id", "holder"]).code(3).run();
    sb.ferry(["run", "c.rhai", "--id", "sneaky"])
        .code(4)
        .stdout_lacks("caught")
        .run();
}
