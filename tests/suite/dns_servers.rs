//! The DNS primitives against real BIND 9, PowerDNS and Knot servers, each
//! held to the same expectations by the same scenarios: wildcards are not
//! records, a CNAME is refused next to other data, every change is read
//! back, reads are signed, internationalized names work, and failures say
//! whether the key, the policy or the server is at fault.

use crate::common::Sandbox;
use crate::common::bind::{Bind, GRANT_ALL};
use crate::common::knot::{KEY_NAME, KEY_SECRET, Knot};
use crate::common::pdns::Pdns;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const ZONE: &str = "mycompany.internal.";
const SECRET_ENV: &str = "FERRY_TSIG_SECRET";

/// Wildcards, as zone-file lines every harness takes.
const WILD: &str = "*.wild A 10.1.1.1\n*.wild TXT \"wildtext\"\n";

enum Server {
    Knot(Knot),
    Bind(Bind),
    Pdns(Pdns),
}

impl Server {
    fn all(extra: &str) -> Vec<Server> {
        vec![
            Server::Knot(Knot::start(ZONE, extra)),
            Server::Bind(Bind::start(ZONE, extra, GRANT_ALL)),
            Server::Pdns(Pdns::start(ZONE, extra, true)),
        ]
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Server::Knot(s) => s.addr,
            Server::Bind(s) => s.addr,
            Server::Pdns(s) => s.addr,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Server::Knot(_) => "knot",
            Server::Bind(_) => "bind",
            Server::Pdns(_) => "pdns",
        }
    }

    fn log(&self) -> String {
        match self {
            Server::Knot(s) => s.log(),
            Server::Bind(s) => s.log(),
            Server::Pdns(s) => s.log(),
        }
    }
}

fn spec(addr: SocketAddr, extra: &str) -> String {
    format!(
        "#{{ provider: \"rfc2136\", server: \"{addr}\", zone: \"{ZONE}\", tsig_name: \"{KEY_NAME}\", tsig_secret_env: \"{SECRET_ENV}\"{extra} }}"
    )
}

/// What the server answers for `name`/`rtype`, asked with kdig (signed),
/// independently of ferry: `+short` lines.
fn dig(addr: SocketAddr, name: &str, rtype: &str) -> String {
    let out = std::process::Command::new("kdig")
        .arg(format!("@{}", addr.ip()))
        .arg("-p")
        .arg(addr.port().to_string())
        .arg("-y")
        .arg(format!("hmac-sha256:{KEY_NAME}:{KEY_SECRET}"))
        .args(["+tcp", "+norec", "+short", name, rtype])
        .output()
        .expect("kdig (Debian package knot-dnsutils; .ci/run installs it)");
    short(&out.stdout)
}

/// kdig's `+short` lines without its TSIG pseudosection.
fn short(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn run(sb: &Sandbox, script: &str, id: &str) -> crate::common::Finished {
    sb.write(&format!("{id}.rhai"), script);
    sb.ferry(["run", &format!("{id}.rhai"), "--id", id])
        .env(SECRET_ENV, KEY_SECRET)
        .run()
}

#[test]
fn dns_servers_wildcards_are_not_records_and_names_under_them_can_be_written() {
    for server in Server::all(WILD) {
        let sb = Sandbox::new();
        let script = format!(
            r#"let zone = dns({});
print(`synth=${{zone.get("x.wild", "A") == ()}}`);
print(`synthtxt=${{zone.get("_ferry-a.new.wild", "TXT") == ()}}`);
print(`missing=${{zone.get("nothing", "A") == ()}}`);
let r = step("new", || zone.upsert("new.wild", "A", ["10.2.2.2"], 60));
print(`changed=${{r.changed}}`);
print(`again=${{step("again", || zone.upsert("new.wild", "A", ["10.2.2.2"], 60)).changed}}`);
let got = zone.get("new.wild", "A");
print(`got=${{got.values}}`);
print(`owner=${{zone.get("_ferry-a.new.wild", "TXT").values}}`);
print(`deleted=${{step("rm", || zone.delete("new.wild", "A"))}}`);
print(`gone=${{zone.get("new.wild", "A") == ()}}`);
"#,
            spec(server.addr(), "")
        );
        let out = run(&sb, &script, "w");
        let who = server.name();
        for line in [
            "synth=true",
            "synthtxt=true",
            "missing=true",
            "changed=true",
            "again=false",
            "got=[\"10.2.2.2\"]",
            "owner=[\"heritage=ferry,ferry/owner=w\"]",
            "deleted=true",
            "gone=true",
        ] {
            assert!(
                out.stdout.contains(line),
                "{who}: no `{line}` in\n{}\n{}\n{}",
                out.stdout,
                out.stderr,
                server.log()
            );
        }
        // The wildcard still answers for the deleted name, as the zone says.
        assert_eq!(
            dig(server.addr(), "new.wild.mycompany.internal.", "A"),
            "10.1.1.1",
            "{who}"
        );
    }
}

#[test]
fn dns_servers_internationalized_names_are_written_as_punycode_and_shown_as_written() {
    for server in Server::all("") {
        let sb = Sandbox::new();
        let script = format!(
            r#"let zone = dns({});
let r = step("idn", || zone.upsert("bücher", "A", ["10.3.3.3"], 60));
print(`name=${{r.name}}`);
let got = zone.get("bücher", "A");
print(`got=${{got.name}} ${{got.values}}`);
"#,
            spec(server.addr(), "")
        );
        let out = run(&sb, &script, "i");
        let who = server.name();
        assert!(
            out.stdout
                .contains("got=bücher.mycompany.internal. [\"10.3.3.3\"]"),
            "{who}: {}\n{}",
            out.stdout,
            out.stderr
        );
        assert_eq!(
            dig(server.addr(), "xn--bcher-kva.mycompany.internal.", "A"),
            "10.3.3.3",
            "{who}"
        );
    }
}

#[test]
fn dns_servers_a_cname_next_to_other_data_is_refused_before_anything_is_sent() {
    let extra = "both A 10.0.0.1\nalias CNAME target.example.\n";
    for server in Server::all(extra) {
        let sb = Sandbox::new();
        let script = format!(
            r#"let zone = dns({});
step("try", || {{
    try {{ zone.upsert("both", "CNAME", "x.example.", 60, #{{ force: true }}); }} catch (e) {{ print(`cname: ${{e.kind}} ${{e.message}}`); }}
    try {{ zone.upsert("alias", "A", ["10.0.0.2"], 60, #{{ force: true }}); }} catch (e) {{ print(`a: ${{e.kind}} ${{e.message}}`); }}
}});
print(`owner1=${{zone.get("_ferry-cname.both", "TXT") == ()}}`);
print(`owner2=${{zone.get("_ferry-a.alias", "TXT") == ()}}`);
"#,
            spec(server.addr(), "")
        );
        let out = run(&sb, &script, "c");
        let who = server.name();
        for line in [
            "cname: invalid",
            "it holds A records, and a CNAME cannot sit next to other data",
            "a: invalid",
            "it is a CNAME, and no A record can sit next to one",
            "owner1=true",
            "owner2=true",
        ] {
            assert!(
                out.stdout.contains(line),
                "{who}: no `{line}` in {}\n{}",
                out.stdout,
                out.stderr
            );
        }
        assert_eq!(
            dig(server.addr(), "both.mycompany.internal.", "A"),
            "10.0.0.1",
            "{who}"
        );
        assert_eq!(
            dig(server.addr(), "alias.mycompany.internal.", "CNAME"),
            "target.example.",
            "{who}"
        );
        assert_eq!(
            dig(
                server.addr(),
                "_ferry-cname.both.mycompany.internal.",
                "TXT"
            ),
            "",
            "{who}"
        );
    }
}

#[test]
fn dns_servers_powerdns_keeping_the_apex_ns_is_reported_and_leaves_no_ownership_record() {
    let pdns = Pdns::start(ZONE, "", true);
    let sb = Sandbox::new();
    let script = format!(
        "let zone = dns({});\nstep(\"ns\", || zone.upsert(\"@\", \"NS\", [\"ns2.example.\"], 60, #{{ force: true }}));\n",
        spec(pdns.addr, "")
    );
    sb.write("n.rhai", &script);
    let out = sb
        .ferry(["run", "n.rhai", "--id", "n"])
        .env(SECRET_ENV, KEY_SECRET)
        .code(1)
        .stderr_has("the server did not apply the change")
        .stderr_has("PowerDNS, for one, ignores UPDATEs to the apex NS records")
        .stderr_has("ownership record _ferry-ns.mycompany.internal. TXT was put back")
        .run();
    assert!(!out.stderr.contains("kept changing"), "{}", out.stderr);
    assert_eq!(dig(pdns.addr, "_ferry-ns.mycompany.internal.", "TXT"), "");
}

#[test]
fn dns_servers_reads_are_signed_so_a_zone_answering_only_the_key_works() {
    let options = format!("{GRANT_ALL}\n    allow-query {{ key {KEY_NAME}; }};");
    let bind = Bind::start(ZONE, "app A 10.5.5.5\n", &options);
    let sb = Sandbox::new();
    let script = format!(
        r#"let zone = dns({});
print(`get=${{zone.get("app", "A").values}}`);
print(`changed=${{step("new", || zone.upsert("new", "A", ["10.0.0.1"], 60)).changed}}`);
print(`list=${{zone.list().len() > 2}}`);
print(`visible=${{zone.wait_visible("new", "A", ["10.0.0.1"], #{{ timeout: 5 }}).values}}`);
"#,
        spec(bind.addr, "")
    );
    let out = run(&sb, &script, "s");
    assert!(
        out.stdout.contains("get=[\"10.5.5.5\"]"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains("changed=true"), "{}", out.stdout);
    assert!(out.stdout.contains("list=true"), "{}", out.stdout);
    assert!(
        out.stdout.contains("visible=[\"10.0.0.1\"]"),
        "wait_visible signs its queries to the zone's server: {}\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(dig(bind.addr, "new.mycompany.internal.", "A"), "10.0.0.1");

    // Unsigned, the same zone refuses: the error says a key may be needed.
    sb.write(
        "u.rhai",
        &format!(
            "let zone = dns(#{{ provider: \"rfc2136\", server: \"{}\", zone: \"{ZONE}\" }});\nzone.get(\"app\", \"A\");\n",
            bind.addr
        ),
    );
    sb.ferry(["run", "u.rhai"])
        .code(1)
        .stderr_has("REFUSED")
        .stderr_has("signed with a TSIG key")
        .run();
}

/// A key that is not the servers'.
const WRONG: &str = "d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nd3I=";

fn failure(
    sb: &Sandbox,
    addr: SocketAddr,
    zone: &str,
    secret: &str,
    body: &str,
    id: &str,
) -> String {
    let script = format!(
        "let zone = dns(#{{ provider: \"rfc2136\", server: \"{addr}\", zone: \"{zone}\", tsig_name: \"{KEY_NAME}\", tsig_secret_env: \"{SECRET_ENV}\", timeout: 1 }});\n\
         step(\"s\", || {{ try {{ {body}; print(\"no error\"); }} catch (e) {{ print(`kind=${{e.kind}} rcode=${{e.rcode}}`); print(`message=${{e.message}}`); }} }});\n"
    );
    sb.write(&format!("{id}.rhai"), &script);
    let out = sb
        .ferry(["run", &format!("{id}.rhai"), "--id", id])
        .env(SECRET_ENV, secret)
        .run();
    assert!(
        !out.stdout.contains(secret) && !out.stderr.contains(secret),
        "secret shown: {}",
        out.stdout
    );
    assert!(
        !out.stdout.contains(KEY_SECRET),
        "secret shown: {}",
        out.stdout
    );
    // Shown with --no-capture: what a person reads.
    eprintln!("{id}: {}", out.stdout);
    out.stdout
}

#[test]
fn dns_servers_refusals_name_the_key_the_policy_or_the_zone() {
    let sb = Sandbox::new();
    let upsert = "zone.upsert(\"x\", \"A\", [\"10.0.0.1\"], 60)";

    // PowerDNS with a key it does not know.
    let pdns = Pdns::start(ZONE, "", true);
    let out = failure(&sb, pdns.addr, ZONE, WRONG, upsert, "p1");
    assert!(
        out.contains("kind=auth"),
        "pdns wrong key: {out}\n{}",
        pdns.log()
    );
    assert!(out.contains("key"), "pdns wrong key: {out}");

    let out = failure(&sb, pdns.addr, "other.internal.", KEY_SECRET, upsert, "p2");
    assert!(out.contains("kind=invalid"), "pdns unserved zone: {out}");
    assert!(
        out.contains("zone other.internal. (check `server` and `zone`)"),
        "pdns unserved zone: {out}"
    );

    // BIND whose update-policy grants only another name.
    let bind = Bind::start(
        ZONE,
        "",
        &format!("update-policy {{ grant {KEY_NAME} name only.{ZONE} A; }};"),
    );
    let out = failure(&sb, bind.addr, ZONE, KEY_SECRET, upsert, "b1");
    assert!(
        out.contains("kind=auth rcode=REFUSED"),
        "bind policy: {out}"
    );
    assert!(out.contains("update policy"), "bind policy: {out}");
    assert!(
        out.contains(&format!("TSIG key `{KEY_NAME}.`")),
        "bind policy: {out}"
    );

    // A zone the server does not serve: not the key's fault.
    let out = failure(&sb, bind.addr, "other.internal.", KEY_SECRET, upsert, "b2");
    assert!(out.contains("kind=invalid"), "unserved zone: {out}");
    assert!(
        out.contains("does not serve zone other.internal.")
            || out.contains("not authoritative for zone other.internal."),
        "unserved zone: {out}"
    );
    assert!(!out.contains("key is not allowed"), "unserved zone: {out}");

    // BIND with a wrong key: a TSIG error, named as such.
    let out = failure(&sb, bind.addr, ZONE, WRONG, upsert, "b3");
    assert!(out.contains("kind=auth"), "bind wrong key: {out}");
    assert!(
        out.contains("check the key name, secret and algorithm"),
        "bind wrong key: {out}"
    );
}

#[test]
fn dns_servers_a_server_that_never_answers_is_a_timeout_and_waits_keep_their_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts connections and holds them without a word.
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) && conns.len() < 8 {
            match listener.accept() {
                Ok((c, _)) => conns.push(c),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    let sb = Sandbox::new();
    let out = failure(&sb, addr, ZONE, KEY_SECRET, "zone.get(\"x\", \"A\")", "t1");
    assert!(out.contains("did not answer within 1s"), "{out}");
    assert!(!out.contains("closed the connection"), "{out}");

    sb.write(
        "w.rhai",
        &format!(
            "let zone = dns({});\nzone.wait_visible(\"x\", \"A\", [\"10.0.0.1\"], #{{ timeout: 3 }});\n",
            spec(addr, "")
        ),
    );
    let started = Instant::now();
    sb.ferry(["run", "w.rhai"])
        .env(SECRET_ENV, KEY_SECRET)
        .code(1)
        .stderr_has("not visible at")
        .run();
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(4500),
        "a 3 s wait took {took:?}"
    );
    drop(held);
}

#[test]
fn dns_servers_tsig_keygen_output_is_a_key_file_ferry_reads() {
    let out = std::process::Command::new("/usr/sbin/tsig-keygen")
        .args(["-a", "hmac-sha256", "keygen-key"])
        .output()
        .expect("tsig-keygen (Debian package bind9)");
    assert!(out.status.success());
    let key_conf = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(key_conf.contains("secret"), "{key_conf}");
    let bind = Bind::start_keyed(
        ZONE,
        "",
        "update-policy { grant keygen-key zonesub ANY; };",
        &key_conf,
    );
    let sb = Sandbox::new();
    let path = sb.write("ferry.key", &key_conf);
    sb.write(
        "k.rhai",
        &format!(
            "let zone = dns(#{{ provider: \"rfc2136\", server: \"{}\", zone: \"{ZONE}\", tsig_name: \"keygen-key\", tsig_secret_file: \"{}\" }});\nprint(`changed=${{step(\"k\", || zone.upsert(\"k\", \"A\", [\"10.0.0.7\"], 60)).changed}}`);\n",
            bind.addr,
            path.display()
        ),
    );
    sb.ferry(["run", "k.rhai"]).stdout_has("changed=true").run();
    let secret = key_conf.split('"').nth(3).unwrap_or_default().to_owned();
    let shown = std::process::Command::new("kdig")
        .arg(format!("@{}", bind.addr.ip()))
        .arg("-p")
        .arg(bind.addr.port().to_string())
        .arg("-y")
        .arg(format!("hmac-sha256:keygen-key:{secret}"))
        .args(["+tcp", "+short", "k.mycompany.internal.", "A"])
        .output()
        .unwrap();
    assert_eq!(short(&shown.stdout), "10.0.0.7");
}

#[test]
fn dns_servers_a_record_set_larger_than_bind_takes_is_reported_with_its_rcode() {
    let bind = Bind::start(ZONE, "", GRANT_ALL);
    let sb = Sandbox::new();
    let ips: Vec<String> = (1..=101).map(|i| format!("\"10.0.1.{i}\"")).collect();
    let script = format!(
        "let zone = dns({});\nstep(\"big\", || zone.upsert(\"big\", \"A\", [{}], 60));\n",
        spec(bind.addr, ""),
        ips.join(", ")
    );
    sb.write("b.rhai", &script);
    let out = sb
        .ferry(["run", "b.rhai", "--id", "b"])
        .env(SECRET_ENV, KEY_SECRET)
        .code(1)
        .stderr_has("the server answered SERVFAIL to each of 4 attempts")
        .stderr_has("max-records-per-type")
        .run();
    assert!(!out.stderr.contains("kept changing"), "{}", out.stderr);
    assert!(bind.log().contains("too many records"), "{}", bind.log());
    // One UPDATE: the ownership record failed with the record set.
    assert_eq!(
        dig(bind.addr, "_ferry-a.big.mycompany.internal.", "TXT"),
        ""
    );
    assert_eq!(dig(bind.addr, "big.mycompany.internal.", "A"), "");
}

#[test]
fn dns_servers_powerdns_takes_unsigned_updates_unless_the_zone_names_a_key() {
    let unsigned = |addr: SocketAddr| {
        format!(
            "let zone = dns(#{{ provider: \"rfc2136\", server: \"{addr}\", zone: \"{ZONE}\" }});\n\
             step(\"u\", || {{ try {{ zone.upsert(\"u\", \"A\", [\"10.0.0.8\"], 60); print(\"applied\"); }} catch (e) {{ print(`kind=${{e.kind}} rcode=${{e.rcode}}`); }} }});\n"
        )
    };
    // Without TSIG-ALLOW-DNSUPDATE, allow-dnsupdate-from is all it checks.
    let open = Pdns::start(ZONE, "", false);
    let sb = Sandbox::new();
    sb.write("o.rhai", &unsigned(open.addr));
    sb.ferry(["run", "o.rhai"]).stdout_has("applied").run();
    assert_eq!(dig(open.addr, "u.mycompany.internal.", "A"), "10.0.0.8");

    // With it, an unsigned update is refused and named as such.
    let keyed = Pdns::start(ZONE, "", true);
    sb.write("k.rhai", &unsigned(keyed.addr));
    sb.ferry(["run", "k.rhai"])
        .stdout_has("kind=auth rcode=REFUSED")
        .run();
    assert_eq!(dig(keyed.addr, "u.mycompany.internal.", "A"), "");
}
