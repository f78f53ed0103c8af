//! `probe::dns` against a real Knot server authoritative for the private zone.

use crate::common::Sandbox;
use crate::common::knot::Knot;

#[test]
fn dns_probes_read_records_from_the_zone_and_check_expectations() {
    let knot = Knot::start(
        "mycompany.internal.",
        "old A 10.1.2.3\nnew A 10.4.5.6\nnew AAAA fd00::6\napp1 CNAME old\nnote TXT \"moved by ferry\"",
    );
    let ns = knot.addr;
    let sb = Sandbox::new();
    sb.write(
        "d.rhai",
        &format!(
            r#"
let ns = "{ns}";
step("old", || probe::dns("old.mycompany.internal", "A", #{{ nameserver: ns, expect: "10.1.2.3" }}));
step("wrong", || probe::dns("old.mycompany.internal", "A", #{{ nameserver: ns, expect: ["10.9.9.9"] }}));
step("missing", || probe::dns("gone.mycompany.internal", "A", #{{ nameserver: ns }}));
step("cname", || probe::dns("app1.mycompany.internal", "CNAME", #{{ nameserver: ns, expect: "old.mycompany.internal" }}));
step("aaaa", || probe::dns("new.mycompany.internal", "aaaa", #{{ nameserver: ns, expect: "fd00::6" }}));
step("txt", || probe::dns("note.mycompany.internal", "TXT", #{{ nameserver: ns, expect: "moved by ferry" }}));
step("until", || probe::until(#{{ dns: "new.mycompany.internal", nameserver: ns, expect: "10.4.5.6" }}, #{{ successes: 2, interval_ms: 10 }}));
step("guarded", || guard(#{{ dns: "old.mycompany.internal", nameserver: ns, expect: "10.1.2.3" }}, #{{ rate: 50 }}, || probe::until(#{{ tcp: "{ns}" }}, #{{ successes: 3, interval_ms: 20 }})));
"#
        ),
    );
    sb.ferry(["run", "d.rhai", "--id", "d"]).run();
    let value = |name: &str| sb.step("d", name)["value"].clone();

    let v = value("old");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["status"], "NOERROR");
    assert_eq!(v["answers"], serde_json::json!(["10.1.2.3"]));
    assert_eq!(v["address"], ns.to_string());

    let v = value("wrong");
    assert_eq!(
        (v["ok"].clone(), v["error_kind"].clone()),
        (false.into(), "answer".into()),
        "{v}"
    );
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains("old.mycompany.internal")
            && error.contains("expected 10.9.9.9, got 10.1.2.3"),
        "{error}"
    );

    let v = value("missing");
    assert_eq!(v["ok"], false);
    assert_eq!(v["status"], "NXDOMAIN", "{v}");

    assert_eq!(
        value("cname")["answers"],
        serde_json::json!(["old.mycompany.internal."])
    );
    assert_eq!(value("aaaa")["ok"], true, "{}", value("aaaa"));
    assert_eq!(value("txt")["ok"], true, "{}", value("txt"));
    assert!(value("until")["attempts"].as_i64().unwrap() >= 2);
    let guard = &sb.step("d", "guarded")["data"]["guard"];
    assert_eq!(guard["failures"], 0, "{guard}");
    assert!(guard["requests"].as_u64().unwrap() >= 1);
    assert!(
        guard["target"]
            .as_str()
            .unwrap()
            .contains("dns old.mycompany.internal A")
    );
}

#[test]
fn a_dns_server_that_does_not_answer_is_a_timeout_naming_it() {
    // A UDP port nobody answers on.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ns = silent.local_addr().unwrap();
    let sb = Sandbox::new();
    sb.write(
        "s.rhai",
        &format!("step(\"q\", || probe::dns(\"old.mycompany.internal\", \"A\", #{{ nameserver: \"{ns}\", timeout_ms: 300 }}));\n"),
    );
    sb.ferry(["run", "s.rhai", "--id", "s"]).run();
    let v = sb.step("s", "q")["value"].clone();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error_kind"], "timeout", "{v}");
    assert!(
        v["error"].as_str().unwrap().contains(&ns.to_string()),
        "{v}"
    );
}
