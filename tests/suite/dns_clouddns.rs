//! DNS primitives against the in-process Cloud DNS fake (`ferry::lab`),
//! through the real `google-cloud-dns-v1` client with anonymous credentials.

use crate::common::Sandbox;
use ferry::lab::clouddns::{Failure, FakeCloudDns, RecordedRequest};
use serde_json::json;

const ZONE_PATH: &str = "/dns/v1/projects/p/managedZones/mycompany-internal";

struct Lab {
    fake: FakeCloudDns,
    _rt: tokio::runtime::Runtime,
}

fn lab() -> Lab {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = rt
        .block_on(FakeCloudDns::start(
            "p",
            "mycompany-internal",
            "mycompany.internal.",
        ))
        .unwrap();
    Lab { fake, _rt: rt }
}

impl Lab {
    fn script(&self, sb: &Sandbox, name: &str, extra: &str, body: &str) {
        sb.write(
            name,
            &format!(
                "let zone = dns(#{{ provider: \"clouddns\", project: \"p\", zone: \"mycompany-internal\", endpoint: \"{}\", credentials: \"anonymous\"{extra} }});\n{body}",
                self.fake.base_url()
            ),
        );
    }

    fn calls(&self, method: &str, suffix: &str) -> Vec<RecordedRequest> {
        self.fake
            .requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == format!("{ZONE_PATH}{suffix}"))
            .collect()
    }
}

#[test]
fn upsert_is_one_change_with_deletion_and_addition_waits_for_done_and_is_idempotent() {
    let lab = lab();
    lab.fake.set_pending_polls(2);
    let sb = Sandbox::new();
    lab.script(
        &sb,
        "a.rhai",
        ", owner: \"team-x\"",
        r#"
let ip = params.ip;
let r = step("record", || zone.upsert("old", "A", [ip], 60));
print(`changed=${r.changed} origin=${zone.origin}`);
let seen = zone.wait_visible("old", "A", [ip], #{ timeout: 10 });
print(`visible=${seen.values}`);
print(`txt=${zone.get("_ferry-a.old", "TXT").values}`);
"#,
    );
    sb.ferry(["run", "a.rhai", "--id", "a1", "--set", "ip=192.168.100.16"])
        .stdout_has("changed=true origin=mycompany.internal.")
        .stdout_has("visible=[\"192.168.100.16\"]")
        .stdout_has("txt=[\"heritage=ferry,ferry/owner=team-x\"]")
        .run();
    assert_eq!(
        lab.fake.rrset("old.mycompany.internal.", "A"),
        Some((60, vec!["192.168.100.16".to_owned()]))
    );
    assert_eq!(
        lab.fake
            .rrset("_ferry-a.old.mycompany.internal.", "TXT")
            .unwrap()
            .1,
        vec!["\"heritage=ferry,ferry/owner=team-x\""]
    );
    assert_eq!(
        lab.calls("GET", "").len(),
        1,
        "the managed zone is read once"
    );
    assert_eq!(
        lab.calls("GET", "/rrsets/old.mycompany.internal./A").len(),
        2,
        "read before planning, then by wait_visible"
    );
    let posts = lab.calls("POST", "/changes");
    assert_eq!(posts.len(), 1);
    let body = posts[0].body.clone().unwrap();
    assert!(
        body.get("deletions")
            .is_none_or(|d| d.as_array().is_some_and(|a| a.is_empty())),
        "{body}"
    );
    assert_eq!(
        body["additions"],
        json!([
            { "kind": "dns#resourceRecordSet", "name": "old.mycompany.internal.", "type": "A", "ttl": 60, "rrdatas": ["192.168.100.16"] },
            { "kind": "dns#resourceRecordSet", "name": "_ferry-a.old.mycompany.internal.", "type": "TXT", "ttl": 60, "rrdatas": ["\"heritage=ferry,ferry/owner=team-x\""] },
        ])
    );
    assert_eq!(
        lab.calls("GET", "/changes/0").len(),
        3,
        "polled until done (pending twice)"
    );
    assert!(lab.fake.requests().iter().all(|r| !r.authorized));

    // Another run of the same team replaces the value: deletion of exactly
    // what the zone holds plus the addition, in one change.
    lab.fake.clear_requests();
    lab.fake.set_pending_polls(0);
    sb.ferry(["run", "a.rhai", "--id", "a2", "--set", "ip=10.0.0.2"])
        .stdout_has("changed=true")
        .run();
    let posts = lab.calls("POST", "/changes");
    assert_eq!(posts.len(), 1);
    let body = posts[0].body.clone().unwrap();
    assert_eq!(
        body["deletions"],
        json!([{ "kind": "dns#resourceRecordSet", "name": "old.mycompany.internal.", "type": "A", "ttl": 60, "rrdatas": ["192.168.100.16"] }])
    );
    assert_eq!(body["additions"][0]["rrdatas"], json!(["10.0.0.2"]));
    assert_eq!(
        body["additions"].as_array().unwrap().len(),
        1,
        "same owner: no ownership change"
    );

    // Same value again: nothing to change, nothing sent.
    lab.fake.clear_requests();
    sb.ferry(["run", "a.rhai", "--id", "a3", "--set", "ip=10.0.0.2"])
        .stdout_has("changed=false")
        .run();
    assert!(lab.calls("POST", "/changes").is_empty());
}

#[test]
fn list_reads_every_page_and_delete_removes_record_and_ownership() {
    let lab = lab();
    lab.fake.set_page_size(2);
    for i in 1..=5 {
        lab.fake
            .put_rrset(
                &format!("h{i}.mycompany.internal."),
                "A",
                300,
                &["10.0.0.9"],
            )
            .unwrap();
    }
    let sb = Sandbox::new();
    lab.script(
        &sb,
        "l.rhai",
        "",
        r#"
print(`count=${zone.list().len()}`);
print(`one=${zone.list(#{ name: "h3" })[0].name}`);
step("mine", || zone.upsert("mine", "CNAME", "h1.mycompany.internal", 300));
print(`cname=${zone.get("mine", "CNAME").values}`);
print(`deleted=${step("rm", || zone.delete("mine", "CNAME"))}`);
print(`after=${zone.get("mine", "CNAME") == ()}`);
"#,
    );
    sb.ferry(["run", "l.rhai", "--id", "l"])
        .stdout_has("count=7")
        .stdout_has("one=h3.mycompany.internal.")
        .stdout_has("cname=[\"h1.mycompany.internal.\"]")
        .stdout_has("deleted=true")
        .stdout_has("after=true")
        .run();
    let pages: Vec<_> = lab
        .calls("GET", "/rrsets")
        .into_iter()
        .map(|r| r.query.get("pageToken").cloned().unwrap_or_default())
        .collect();
    assert_eq!(pages[..4], ["", "2", "4", "6"], "{pages:?}");
    assert!(
        lab.fake
            .rrset("mine.mycompany.internal.", "CNAME")
            .is_none()
    );
    assert!(
        lab.fake
            .rrset("_ferry-cname.mine.mycompany.internal.", "TXT")
            .is_none()
    );
    let delete = lab.calls("POST", "/changes").pop().unwrap().body.unwrap();
    assert_eq!(delete["deletions"].as_array().unwrap().len(), 2, "{delete}");
}

#[test]
fn conflicts_are_re_read_and_re_planned_and_transient_errors_retried() {
    let lab = lab();
    lab.fake.set_pending_polls(0);
    lab.fake.fail(Failure::new("POST", "/changes", 412, 1));
    lab.fake.fail(Failure::new("POST", "/changes", 409, 1));
    lab.fake.fail(Failure::new("GET", "/rrsets/", 500, 1));
    lab.fake.fail(Failure::new("POST", "/changes", 429, 1));
    let sb = Sandbox::new();
    lab.script(
        &sb,
        "c.rhai",
        "",
        "step(\"rec\", || zone.upsert(\"old\", \"A\", [\"10.0.0.1\"], 60));\n",
    );
    sb.ferry(["run", "c.rhai", "--id", "c"]).run();
    assert_eq!(
        lab.fake.rrset("old.mycompany.internal.", "A").unwrap().1,
        vec!["10.0.0.1"]
    );
    assert_eq!(
        lab.calls("POST", "/changes").len(),
        4,
        "412, 409, 429, then ok"
    );
    // Each attempt read the zone again before planning.
    assert_eq!(
        lab.calls("GET", "/rrsets/old.mycompany.internal./A").len(),
        5,
        "a 500 retried, then one read per attempt"
    );
}

#[test]
fn permission_errors_are_not_retried_and_name_zone_record_and_status() {
    let lab = lab();
    lab.fake.fail(Failure::new("POST", "/changes", 403, 10));
    let sb = Sandbox::new();
    lab.script(
        &sb,
        "f.rhai",
        "",
        r#"
step("caught", || {
    try { zone.upsert("old", "A", ["10.0.0.1"], 60); } catch (e) { print(`status=${e.status} kind=${e.kind} zone=${e.zone}`); }
});
step("rec", || zone.upsert("old", "A", ["10.0.0.1"], 60));
"#,
    );
    sb.ferry(["run", "f.rhai", "--id", "f"])
        .code(1)
        .stdout_has("status=403 kind=auth zone=Cloud DNS zone p/mycompany-internal")
        .stderr_has("Cloud DNS zone p/mycompany-internal: upsert `old.mycompany.internal. A`: HTTP 403: Forbidden: the caller does not have permission")
        .run();
    assert_eq!(
        lab.calls("POST", "/changes").len(),
        2,
        "one per call, no retries"
    );
}

#[test]
fn foreign_records_are_refused_and_a_recreated_zone_refuses_resume() {
    let lab = lab();
    lab.fake
        .put_rrset("legacy.mycompany.internal.", "A", 300, &["10.9.9.9"])
        .unwrap();
    let sb = Sandbox::new();
    lab.script(
        &sb,
        "o.rhai",
        "",
        "pause(\"look\", \"check the zone\");\nstep(\"rec\", || zone.upsert(\"legacy\", \"A\", [\"10.0.0.1\"], 60));\n",
    );
    sb.ferry(["run", "o.rhai", "--id", "o"]).code(3).run();
    sb.ferry(["approve", "o", "look"]).run();
    sb.ferry(["resume", "o"])
        .code(1)
        .stderr_has(
            "refusing to overwrite `legacy.mycompany.internal.` A: it was not created by ferry",
        )
        .run();
    assert!(lab.calls("POST", "/changes").is_empty());
    assert_eq!(
        lab.fake.rrset("legacy.mycompany.internal.", "A").unwrap().1,
        vec!["10.9.9.9"]
    );

    lab.fake.set_zone_id(7);
    sb.ferry(["resume", "o"])
        .code(4)
        .stderr_has("dns:mycompany.internal.")
        .run();
}

#[test]
fn a_missing_zone_names_the_zone_and_the_server_message() {
    let lab = lab();
    let sb = Sandbox::new();
    sb.write(
        "m.rhai",
        &format!(
            "dns(#{{ provider: \"clouddns\", project: \"p\", zone: \"nope\", endpoint: \"{}\", credentials: \"anonymous\" }});\n",
            lab.fake.base_url()
        ),
    );
    sb.ferry(["run", "m.rhai"])
        .code(2)
        .stderr_has("Cloud DNS zone p/nope: cannot open: HTTP 404")
        .stderr_has("does not exist")
        .run();
}
