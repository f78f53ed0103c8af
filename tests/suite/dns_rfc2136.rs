//! DNS primitives against a real Knot DNS server over RFC 2136 with TSIG.

use crate::common::knot::{KEY_NAME, KEY_SECRET, Knot};
use crate::common::{Sandbox, await_condition, finish, signal};

const ZONE: &str = "mycompany.internal.";
const SECRET_ENV: &str = "FERRY_TSIG_SECRET";

fn spec(knot: &Knot, extra: &str) -> String {
    format!(
        "#{{ provider: \"rfc2136\", server: \"{}\", zone: \"{ZONE}\", tsig_name: \"{KEY_NAME}\", tsig_secret_env: \"{SECRET_ENV}\"{extra} }}",
        knot.addr
    )
}

fn script(sb: &Sandbox, name: &str, knot: &Knot, extra: &str, body: &str) {
    sb.write(
        name,
        &format!("let zone = dns({});\n{body}", spec(knot, extra)),
    );
}

#[test]
fn upsert_creates_replaces_and_is_idempotent_and_delete_cleans_up() {
    let knot = Knot::start(ZONE, "");
    let sb = Sandbox::new();
    script(
        &sb,
        "a.rhai",
        &knot,
        "",
        r#"
let ip = params.get("ip", "192.168.100.16");
let r = step("old record", || zone.upsert("old", "A", [ip], 60));
print(`changed=${r.changed}`);
let again = step("again", || zone.upsert("old.mycompany.internal.", "A", ip, 60));
print(`again=${again.changed}`);
let seen = zone.wait_visible("old", "A", [ip], #{ timeout: 10 });
print(`visible=${seen.values}`);
let got = zone.get("old", "A");
print(`get=${got.name}/${got.type}/${got.ttl}/${got.values}`);
print(`none=${zone.get("nothing", "A") == ()}`);
let names = zone.list().map(|r| `${r.name} ${r.type}`);
print(`list=${names}`);
print(`filtered=${zone.list(#{ name: "old", type: "A" }).len()}`);
"#,
    );
    let out = sb
        .ferry(["run", "a.rhai", "--id", "one"])
        .env(SECRET_ENV, KEY_SECRET)
        .stdout_has("changed=true")
        .stdout_has("again=false")
        .stdout_has("visible=[\"192.168.100.16\"]")
        .stdout_has("get=old.mycompany.internal./A/60/[\"192.168.100.16\"]")
        .stdout_has("none=true")
        .stdout_has("filtered=1")
        .run();
    assert!(
        out.stdout.contains("old.mycompany.internal. A"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("_ferry-a.old.mycompany.internal. TXT"),
        "{}",
        out.stdout
    );
    assert!(knot.read("old", "A").contains("192.168.100.16"));
    assert!(
        knot.read("_ferry-a.old", "TXT")
            .contains("heritage=ferry,ferry/owner=one"),
        "{}",
        knot.read("_ferry-a.old", "TXT")
    );

    // The same run id replaces the value: one atomic UPDATE, old value gone.
    sb.write(
        "b.rhai",
        &format!(
            "let zone = dns({});\nstep(\"flip\", || zone.upsert(\"old\", \"A\", [\"10.0.0.2\", \"10.0.0.3\"], 30, #{{ force: false }}));\nzone.wait_visible(\"old\", \"A\", [\"10.0.0.3\", \"10.0.0.2\"]);\n",
            spec(&knot, ", owner: \"one\"")
        ),
    );
    sb.ferry(["run", "b.rhai", "--id", "two"])
        .env(SECRET_ENV, KEY_SECRET)
        .run();
    let a = knot.read("old", "A");
    assert!(a.contains("10.0.0.2") && a.contains("10.0.0.3"), "{a}");
    assert!(!a.contains("192.168.100.16"), "{a}");
    assert!(a.contains(" 30 "), "ttl replaced: {a}");

    sb.write(
        "c.rhai",
        &format!(
            "let zone = dns({});\nprint(`deleted=${{step(\"rm\", || zone.delete(\"old\", \"A\"))}}`);\nprint(`again=${{step(\"rm again\", || zone.delete(\"old\", \"A\"))}}`);\nzone.wait_visible(\"old\", \"A\", []);\n",
            spec(&knot, ", owner: \"one\"")
        ),
    );
    sb.ferry(["run", "c.rhai", "--id", "three"])
        .env(SECRET_ENV, KEY_SECRET)
        .stdout_has("deleted=true")
        .stdout_has("again=false")
        .run();
    assert!(
        !knot.read("old", "A").contains("10.0.0"),
        "{}",
        knot.read("old", "A")
    );
    assert!(!knot.read("_ferry-a.old", "TXT").contains("heritage"));
}

#[test]
fn foreign_records_are_refused_naming_the_owner_unless_forced_and_teams_share_ownership() {
    let knot = Knot::start(ZONE, "legacy A 10.9.9.9\n");
    let sb = Sandbox::new();
    script(
        &sb,
        "legacy.rhai",
        &knot,
        "",
        r#"
step("try", || {
    try { zone.upsert("legacy", "A", ["10.0.0.1"], 60); } catch (e) { print(`caught ${e.kind} ${e.source}: ${e.message}`); }
    try { zone.delete("legacy", "A"); } catch (e) { print(`delete ${e.kind}`); }
});
step("force", || zone.upsert("legacy", "A", ["10.0.0.1"], 60, #{ force: true }));
"#,
    );
    sb.ferry(["run", "legacy.rhai", "--id", "l"])
        .env(SECRET_ENV, KEY_SECRET)
        .stdout_has("caught not_owner dns")
        .stdout_has("was not created by ferry")
        .stdout_has("delete not_owner")
        .run();
    assert!(knot.read("legacy", "A").contains("10.0.0.1"));
    assert!(
        knot.read("_ferry-a.legacy", "TXT")
            .contains("ferry/owner=l")
    );

    // Another run (owner = its run id) is refused and told who owns it.
    script(
        &sb,
        "other.rhai",
        &knot,
        "",
        "step(\"steal\", || zone.upsert(\"legacy\", \"A\", [\"10.0.0.9\"], 60));\n",
    );
    sb.ferry(["run", "other.rhai", "--id", "other"])
        .env(SECRET_ENV, KEY_SECRET)
        .code(1)
        .stderr_has("is owned by `l`")
        .stderr_has("`legacy.mycompany.internal.` A")
        .stderr_has("RFC 2136 zone mycompany.internal.")
        .run();
    assert!(knot.read("legacy", "A").contains("10.0.0.1"));

    // A team owner lets a later run clean up without force.
    script(
        &sb,
        "migrate.rhai",
        &knot,
        ", owner: \"team-x\"",
        "step(\"new\", || zone.upsert(\"new\", \"A\", [\"10.1.0.1\"], 60));\n",
    );
    sb.ferry(["run", "migrate.rhai", "--id", "migrate"])
        .env(SECRET_ENV, KEY_SECRET)
        .run();
    script(
        &sb,
        "finalize.rhai",
        &knot,
        ", owner: \"team-x\"",
        "print(`gone=${step(\"rm\", || zone.delete(\"new\", \"A\"))}`);\n",
    );
    sb.ferry(["run", "finalize.rhai", "--id", "finalize"])
        .env(SECRET_ENV, KEY_SECRET)
        .stdout_has("gone=true")
        .run();
    assert!(!knot.read("new", "A").contains("10.1.0.1"));
}

#[test]
fn a_wrong_key_gives_notauth_and_the_secret_appears_nowhere() {
    let knot = Knot::start(ZONE, "");
    let sb = Sandbox::new();
    let wrong = "d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nd3I=";
    script(
        &sb,
        "w.rhai",
        &knot,
        "",
        "step(\"rec\", || zone.upsert(\"old\", \"A\", [\"10.0.0.1\"], 60));\n",
    );
    let out = sb
        .ferry(["run", "w.rhai", "--id", "w"])
        .env(SECRET_ENV, wrong)
        .code(1)
        .stderr_has("NOTAUTH")
        .stderr_has("upsert `old.mycompany.internal. A`")
        .run();
    let json = sb
        .ferry(["run", "w.rhai", "--id", "w2", "--json"])
        .env(SECRET_ENV, wrong)
        .code(1)
        .run();
    let log = sb.ferry(["log", "w", "--json"]).run();
    assert!(
        log.stdout.contains("NOTAUTH"),
        "the journal records why: {}",
        log.stdout
    );
    let mut db = Vec::new();
    for entry in std::fs::read_dir(sb.file(".ferry")).unwrap().flatten() {
        if entry.path().is_file() {
            db.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    for (what, text) in [
        ("stdout", &out.stdout),
        ("stderr", &out.stderr),
        ("json stdout", &json.stdout),
        ("json stderr", &json.stderr),
        ("log", &log.stdout),
    ] {
        assert!(!text.contains(wrong), "secret in {what}: {text}");
        assert!(!text.contains(KEY_SECRET), "secret in {what}: {text}");
    }
    let db = String::from_utf8_lossy(&db);
    assert!(
        !db.contains(wrong) && !db.contains(KEY_SECRET),
        "secret in the state files"
    );
    assert!(!knot.read("old", "A").contains("10.0.0.1"));

    // A missing variable is named, before anything is sent.
    sb.ferry(["run", "w.rhai", "--id", "w3"])
        .code(2)
        .stderr_has("environment variable FERRY_TSIG_SECRET")
        .run();
}

#[test]
fn mutations_need_a_step_and_the_spec_never_takes_a_secret() {
    let knot = Knot::start(ZONE, "");
    let sb = Sandbox::new();
    script(
        &sb,
        "m.rhai",
        &knot,
        "",
        "zone.upsert(\"old\", \"A\", [\"10.0.0.1\"], 60);\n",
    );
    sb.ferry(["run", "m.rhai"])
        .env(SECRET_ENV, KEY_SECRET)
        .code(2)
        .stderr_has("`upsert` changes the world and must run inside a step")
        .stderr_has("m.rhai:2:")
        .run();
    sb.write(
        "s.rhai",
        &format!(
            "dns(#{{ provider: \"rfc2136\", server: \"{}\", zone: \"{ZONE}\", tsig_name: \"k\",\n      tsig_secret: \"c2VjcmV0\" }});\n",
            knot.addr
        ),
    );
    let out = sb
        .ferry(["run", "s.rhai"])
        .code(2)
        .stderr_has("secrets are never read from the script")
        .run();
    assert!(!out.stderr.contains("c2VjcmV0"));
}

#[test]
fn wait_visible_times_out_with_the_last_answer_and_resolve_queries_a_server() {
    let knot = Knot::start(ZONE, "app A 10.5.5.5\n");
    let sb = Sandbox::new();
    script(
        &sb,
        "t.rhai",
        &knot,
        "",
        &format!(
            "let r = zone.resolve(\"app\", \"A\", #{{ nameserver: \"{}\" }});\nprint(`resolved=${{r.values}}`);\nprint(`missing=${{zone.resolve(\"nope\", \"A\", #{{ nameserver: \"{}\" }}) == ()}}`);\nzone.wait_visible(\"app\", \"A\", [\"10.6.6.6\"], #{{ timeout: 1, interval: 0.2 }});\n",
            knot.addr, knot.addr
        ),
    );
    sb.ferry(["run", "t.rhai"])
        .env(SECRET_ENV, KEY_SECRET)
        .code(1)
        .stdout_has("resolved=[\"10.5.5.5\"]")
        .stdout_has("missing=true")
        .stderr_has("not visible at")
        .stderr_has("last answer: [\"10.5.5.5\"]")
        .run();
}

#[test]
fn ctrl_c_ends_a_wait_promptly() {
    let knot = Knot::start(ZONE, "");
    let sb = Sandbox::new();
    script(
        &sb,
        "c.rhai",
        &knot,
        "",
        "step(\"wait\", || zone.wait_visible(\"never\", \"A\", [\"10.0.0.1\"], #{ timeout: 600 }));\n",
    );
    let mut cmd = sb.command();
    cmd.args(["run", "c.rhai", "--id", "c"])
        .env(SECRET_ENV, KEY_SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = crate::common::Running::from(cmd.spawn().expect("spawn"));
    await_condition("the step to start", || {
        sb.steps("c")
            .iter()
            .any(|s| s["name"] == "wait" && s["status"] == "running")
    });
    signal(&child, libc::SIGINT);
    let done = finish(child);
    assert_eq!(done.code, 130, "{}\n{}", done.stdout, done.stderr);
    // Interrupted, not failed: the 600 s wait ended on Ctrl-C, not its timeout.
    assert_eq!(sb.step("c", "wait")["status"], "interrupted");
}

#[test]
fn a_server_without_tcp_is_asked_over_udp() {
    use hickory_proto::op::{Message, MessageType};
    use hickory_proto::rr::{RData, Record, rdata::A};
    let port = crate::common::knot::free_port();
    let socket = std::net::UdpSocket::bind(("127.0.0.1", port)).unwrap();
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let (len, peer) = socket.recv_from(&mut buf).unwrap();
        let query = Message::from_vec(&buf[..len]).unwrap();
        let mut answer = query.clone();
        answer.metadata.message_type = MessageType::Response;
        let name = query.queries[0].name().clone();
        answer.add_answer(Record::from_rdata(name, 42, RData::A(A::new(10, 7, 7, 7))));
        socket.send_to(&answer.to_vec().unwrap(), peer).unwrap();
    });
    let sb = Sandbox::new();
    sb.write(
        "u.rhai",
        &format!(
            "let zone = dns(#{{ provider: \"rfc2136\", server: \"127.0.0.1:{port}\", zone: \"{ZONE}\" }});\nlet r = zone.resolve(\"app\", \"A\", #{{ nameserver: \"127.0.0.1:{port}\" }});\nprint(`udp=${{r.values}} ttl=${{r.ttl}}`);\n"
        ),
    );
    sb.ferry(["run", "u.rhai"])
        .stdout_has("udp=[\"10.7.7.7\"] ttl=42")
        .run();
    server.join().unwrap();
}

#[test]
fn waits_report_progress_events_and_a_plan_changes_nothing() {
    let knot = Knot::start(ZONE, "app A 10.5.5.5\n");
    let sb = Sandbox::new();
    script(
        &sb,
        "e.rhai",
        &knot,
        "",
        "zone.wait_visible(\"app\", \"A\", [\"10.5.5.5\"]);\nstep(\"rec\", || zone.upsert(\"new\", \"A\", [\"10.0.0.1\"], 60));\n",
    );
    sb.ferry(["run", "e.rhai", "--json", "--id", "w"])
        .env(SECRET_ENV, KEY_SECRET)
        .stdout_has("\"kind\":\"wait_started\"")
        .stdout_has("\"kind\":\"wait_ended\"")
        .stdout_has("app.mycompany.internal. A visible at")
        .run();
    sb.write("p.rhai", &sb.read("e.rhai").replace("\"new\"", "\"newer\""));
    let out = sb
        .ferry(["plan", "p.rhai"])
        .env(SECRET_ENV, KEY_SECRET)
        .stdout_has("+ create record newer.mycompany.internal. A in zone")
        .stdout_has("+ 60 A 10.0.0.1")
        .run();
    assert!(
        out.stdout
            .contains("would wait for app.mycompany.internal. A"),
        "{}",
        out.stdout
    );
    assert!(
        !knot.read("newer", "A").contains("10.0.0.1"),
        "a plan changes nothing"
    );
}
