//! `ferry plan` on the lab: every script in `scripts/` planned against a
//! running lab leaves every object and record as it was; the plan of the
//! article's script reads step by step as the run would go; a failing
//! precondition is reported at its step; `--run` plans what a resume would
//! do next.

use crate::common::lab::LabFixture;
use crate::common::{APP1_FROM_APP2, Sandbox};

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");

/// Everything the lab holds that a plan could touch: both clusters'
/// objects, the zone's records, and the lab's files (its persistence log).
fn dump(lab: &LabFixture) -> String {
    let mut out = String::new();
    for cluster in ["old", "new"] {
        let objects = lab
            .lab
            .cluster(cluster)
            .unwrap()
            .with_state(|s| serde_json::to_string_pretty(&s.objects).unwrap());
        out.push_str(&format!("== {cluster}\n{objects}\n"));
    }
    out.push_str(&format!("== records\n{:?}\n", lab.records()));
    let mut files: Vec<_> = walk(&lab.dir);
    files.sort();
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        out.push_str(&format!(
            "== {} {} bytes {:x?}\n",
            file.display(),
            bytes.len(),
            sha(&bytes)
        ));
    }
    out
}

fn sha(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_plan_of_every_script_changes_nothing_in_the_lab() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let before = dump(&lab);
    let app = ["--set", "app=app1", "--set", "ns=app1-ns"];
    let plans: [(&str, &[&str], i32); 5] = [
        ("two-apps.rhai", &[], 0),
        ("migrate-app.rhai", &app, 0),
        ("tour.rhai", &app, 0),
        ("fleet.rhai", &["--set", "apps=2", "--set", "limit=2"], 0),
        // Nothing was moved yet: its check refuses, at its step.
        ("finalize-app.rhai", &app, 1),
    ];
    for (script, params, code) in plans {
        let path = format!("{SCRIPTS}/{script}");
        let mut args = vec!["plan", path.as_str(), "--lab-dir"];
        let dir = lab.dir_arg();
        args.push(&dir);
        args.extend(params.iter().copied());
        let out = sb.ferry(args).code(code).run();
        assert!(
            out.stdout.contains("nothing was changed"),
            "{script}: {}",
            out.stdout
        );
        assert_eq!(dump(&lab), before, "planning {script} changed the lab");
    }
    // The team's journal gained no run.
    sb.ferry(["runs"]).stdout_has("no runs").run();
}

#[test]
fn the_plan_of_the_article_reads_step_by_step() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let script = format!("{SCRIPTS}/migrate-app.rhai");
    let out = sb
        .ferry(
            [
                &["plan", &script, "--lab-dir", &lab.dir_arg()][..],
                &APP1_FROM_APP2,
                &["--set", "bridge=externalname"],
            ]
            .concat(),
        )
        .run();
    let text = out.stdout;
    // The steps and gates in the order the run takes them, each once.
    let order = [
        "· app1: check in old",
        "~ app1: expose in old",
        "~ app1: record old.mycompany.internal",
        "· app1: prove old.mycompany.internal",
        "~ app1: ExternalName -> old.mycompany.internal",
        "⏸ gate prepare",
        "~ app1: deploy in new",
        "~ app1: record new.mycompany.internal",
        "⏸ gate cutover",
        "· app1: check cutover",
        "~ app1: ExternalName -> new.mycompany.internal",
    ];
    let mut at = 0;
    for line in order {
        let found = text[at..]
            .find(&format!("{line}\n"))
            .unwrap_or_else(|| panic!("{line:?} missing after byte {at}:\n{text}"));
        at += found + line.len();
    }
    // The first flip, field by field, as the server's dry run answered it.
    let first = text
        .find("~ app1: ExternalName -> old.mycompany.internal")
        .unwrap();
    let flip = &text[first..text[first..].find("⏸ gate prepare").unwrap() + first];
    for line in [
        "⛨ guarded: http://app1.app1-ns/ from pod app2-ns/",
        "~ change Service app1-ns/app1 on cluster `old`",
        "~ spec.type: \"ClusterIP\" → \"ExternalName\"",
        "+ spec.externalName: \"old.mycompany.internal\"",
        "- spec.selector: {\"app\":\"app1\"}",
    ] {
        assert!(flip.contains(line), "{line:?} missing in the flip:\n{flip}");
    }
    // The cutover sees the planned ExternalName and re-points it.
    let cut = text
        .find("~ app1: ExternalName -> new.mycompany.internal")
        .unwrap();
    assert!(
        text[cut..].contains(
            "~ spec.externalName: \"old.mycompany.internal\" → \"new.mycompany.internal\""
        ),
        "{}",
        &text[cut..]
    );
    assert!(
        text.contains("would wait for probe::until http://old.mycompany.internal/"),
        "{text}"
    );
    assert!(text.contains("Plan: "), "{text}");
    assert!(text.contains("2 gate(s); 2 guarded flip(s)"), "{text}");

    // The same plan for machines.
    let json = sb
        .ferry([
            "plan",
            &script,
            "--lab-dir",
            &lab.dir_arg(),
            "--set",
            "app=app1",
            "--set",
            "ns=app1-ns",
            "--json",
        ])
        .run();
    let plan: serde_json::Value =
        serde_json::from_str(json.stdout.trim()).expect("one JSON document");
    assert_eq!(plan["ended"], "complete");
    assert_eq!(plan["summary"]["gates"], 2);
    assert!(plan["summary"]["created"].as_u64().unwrap() >= 6, "{plan}");
    let steps = plan["steps"].as_array().unwrap();
    assert_eq!(steps[0]["name"], "app1: check in old");
    assert!(
        steps
            .iter()
            .any(|s| s["state"] == "gate" && s["name"] == "cutover")
    );
}

#[test]
fn a_plan_reports_a_failing_precondition_at_its_step() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    // app1 has no running pod any more: nothing for the bridge to carry.
    sb.write(
        "gone.rhai",
        r#"
let old = cluster("old");
step("gone", || {
    old.delete("deployment", "app1-ns", "app1");
    for p in old.list("pods", "app1-ns", #{ labels: "app=app1" }) { old.delete("pod", "app1-ns", p.metadata.name); }
});
"#,
    );
    sb.ferry(["run", "gone.rhai", "--lab-dir", &lab.dir_arg()])
        .run();
    assert!(lab.names("old", "pods", "app1-ns").is_empty());
    let before = dump(&lab);
    let out = sb
        .ferry([
            "plan",
            &format!("{SCRIPTS}/migrate-app.rhai"),
            "--lab-dir",
            &lab.dir_arg(),
            "--set",
            "app=app1",
            "--set",
            "ns=app1-ns",
        ])
        .code(1)
        .stdout_has("✘ app1: check in old")
        .stdout_has("has no endpoints (no running pod matches app=app1)")
        .stdout_has("Plan step `app1: check in old` would fail; nothing was changed.")
        .run();
    assert!(
        !out.stdout.contains("expose in old"),
        "the plan stops there:\n{}",
        out.stdout
    );
    assert_eq!(dump(&lab), before);
}

#[test]
fn a_plan_of_a_paused_run_shows_what_resume_would_do_next() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let script = format!("{SCRIPTS}/migrate-app.rhai");
    sb.ferry([
        "run",
        &script,
        "--lab-dir",
        &lab.dir_arg(),
        "--set",
        "app=app1",
        "--set",
        "ns=app1-ns",
        "--id",
        "m",
    ])
    .code(3)
    .run();
    let before = dump(&lab);
    let out = sb
        .ferry(["plan", "--run", "m", "--until-gate", "cutover"])
        .stdout_has("= app1: check in old (done: replayed from the journal)")
        .stdout_has("⏸ gate prepare")
        .stdout_has("+ create Deployment app1-ns/app1 on cluster `new`")
        .stdout_has("Plan stopped at gate `cutover`; nothing was changed.")
        .run();
    assert!(!out.stdout.contains("check cutover"), "{}", out.stdout);
    assert_eq!(dump(&lab), before);
    // The run itself is as it was: still waiting at its gate.
    assert_eq!(sb.run_status("m"), "paused");
}
