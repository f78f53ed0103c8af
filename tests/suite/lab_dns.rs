//! The lab's DNS fronts against ferry's real adapters: the private zone's
//! server over RFC 2136 (TSIG, prerequisites, AXFR), the Cloud DNS front
//! over the same zone, and a cluster's DNS following a Service from
//! ClusterIP to ExternalName.

use crate::common::Sandbox;
use ferry::lab::apiserver::Write;
use ferry::lab::apiserver::patch::PatchKind;
use ferry::lab::zone::RecordSet;
use ferry::lab::{Lab, LabOptions};
use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RecordType};
use serde_json::json;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

struct Running {
    lab: Lab,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn lab() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let lab = rt
        .block_on(Lab::start(LabOptions::new(dir.path().join("lab"))))
        .unwrap();
    Running { lab, rt, _dir: dir }
}

impl Running {
    fn rfc2136(&self, extra: &str) -> String {
        format!(
            "dns(#{{ provider: \"rfc2136\", server: \"{}\", zone: \"mycompany.internal.\", tsig_name: \"ferry-lab\", tsig_secret_file: \"{}\"{extra} }})",
            self.lab.dns,
            self.lab.tsig_secret_file().display()
        )
    }

    fn clouddns(&self, extra: &str) -> String {
        format!(
            "dns(#{{ provider: \"clouddns\", project: \"ferry-lab\", zone: \"mycompany-internal\", endpoint: \"{}\", credentials: \"anonymous\"{extra} }})",
            self.lab.clouddns
        )
    }

    fn values(&self, name: &str, rtype: &str) -> Vec<String> {
        self.lab
            .zone
            .get(name, rtype)
            .map(|r| r.data)
            .unwrap_or_default()
    }

    /// One plain query over UDP with hickory's client.
    fn query(
        &self,
        server: SocketAddr,
        name: &str,
        rtype: RecordType,
    ) -> (ResponseCode, Vec<String>) {
        self.rt.block_on(async {
            let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
                .with_timeout(Some(Duration::from_secs(5)))
                .build();
            let (mut client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
            let bg = tokio::spawn(bg);
            let response = client
                .query(Name::from_str(name).unwrap(), DNSClass::IN, rtype)
                .await
                .unwrap();
            bg.abort();
            let answers = response
                .answers
                .iter()
                .map(|r| format!("{} {}", r.record_type(), r.data))
                .collect();
            (response.response_code, answers)
        })
    }
}

#[test]
fn rfc2136_upserts_replaces_lists_and_deletes_with_the_lab_key() {
    let lab = lab();
    let sb = Sandbox::new();
    sb.write(
        "a.rhai",
        &format!(
            r#"let zone = {};
let r = step("old record", || zone.upsert("old", "A", ["192.168.100.16"], 60));
print(`changed=${{r.changed}}`);
print(`again=${{step("again", || zone.upsert("old", "A", ["192.168.100.16"], 60)).changed}}`);
print(`visible=${{zone.wait_visible("old", "A", ["192.168.100.16"], #{{ timeout: 10 }}).values}}`);
let got = zone.get("old", "A");
print(`get=${{got.name}}/${{got.ttl}}/${{got.values}}`);
print(`none=${{zone.get("nothing", "A") == ()}}`);
print(`list=${{zone.list().map(|r| `${{r.name}} ${{r.type}}`)}}`);
"#,
            lab.rfc2136("")
        ),
    );
    let out = sb
        .ferry(["run", "a.rhai", "--id", "one"])
        .stdout_has("changed=true")
        .stdout_has("again=false")
        .stdout_has("visible=[\"192.168.100.16\"]")
        .stdout_has("get=old.mycompany.internal./60/[\"192.168.100.16\"]")
        .stdout_has("none=true")
        .run();
    for listed in [
        "old.mycompany.internal. A",
        "_ferry-a.old.mycompany.internal. TXT",
        "mycompany.internal. SOA",
        "mycompany.internal. NS",
    ] {
        assert!(out.stdout.contains(listed), "{listed}: {}", out.stdout);
    }
    assert_eq!(lab.values("old", "A"), ["192.168.100.16"]);
    assert_eq!(
        lab.values("_ferry-a.old", "TXT"),
        ["\"heritage=ferry,ferry/owner=one\""]
    );

    // The owner replaces the values (one UPDATE, prerequisites on what it read).
    let serial = lab.lab.zone.serial();
    sb.write(
        "b.rhai",
        &format!(
            "let zone = {};\nstep(\"flip\", || zone.upsert(\"old\", \"A\", [\"10.0.0.2\", \"10.0.0.3\"], 30));\n",
            lab.rfc2136(", owner: \"one\"")
        ),
    );
    sb.ferry(["run", "b.rhai", "--id", "two"]).run();
    assert_eq!(lab.values("old", "A"), ["10.0.0.2", "10.0.0.3"]);
    assert_eq!(lab.lab.zone.get("old", "A").unwrap().ttl, 30);
    assert_eq!(lab.lab.zone.serial(), serial + 1, "one UPDATE, one serial");

    // Another run is refused: the ownership record names the owner.
    sb.write(
        "c.rhai",
        &format!(
            "let zone = {};\nstep(\"steal\", || zone.upsert(\"old\", \"A\", [\"10.9.9.9\"], 60));\n",
            lab.rfc2136("")
        ),
    );
    sb.ferry(["run", "c.rhai", "--id", "other"])
        .code(1)
        .stderr_has("is owned by `one`")
        .run();

    sb.write(
        "d.rhai",
        &format!(
            "let zone = {};\nprint(`deleted=${{step(\"rm\", || zone.delete(\"old\", \"A\"))}}`);\nzone.wait_visible(\"old\", \"A\", []);\n",
            lab.rfc2136(", owner: \"one\"")
        ),
    );
    sb.ferry(["run", "d.rhai", "--id", "three"])
        .stdout_has("deleted=true")
        .run();
    assert!(lab.lab.zone.get("old", "A").is_none());
    assert!(lab.lab.zone.get("_ferry-a.old", "TXT").is_none());
}

#[test]
fn a_wrong_key_gives_notauth_badsig_and_changes_nothing() {
    let lab = lab();
    let sb = Sandbox::new();
    let wrong = "d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nd3I=";
    let secret = std::fs::read_to_string(lab.lab.tsig_secret_file()).unwrap();
    sb.write("wrong.key", wrong);
    sb.write(
        "w.rhai",
        &format!(
            "let zone = dns(#{{ provider: \"rfc2136\", server: \"{}\", zone: \"mycompany.internal.\", tsig_name: \"ferry-lab\", tsig_secret_file: \"wrong.key\" }});\nstep(\"rec\", || zone.upsert(\"old\", \"A\", [\"10.0.0.1\"], 60));\n",
            lab.lab.dns
        ),
    );
    let out = sb
        .ferry(["run", "w.rhai", "--id", "w"])
        .code(1)
        .stderr_has("NOTAUTH")
        .stderr_has("BADSIG")
        .run();
    assert!(!out.stderr.contains(wrong) && !out.stderr.contains(secret.trim()));
    assert!(lab.lab.zone.get("old", "A").is_none());

    // An unknown key name is BADKEY.
    sb.write(
        "k.rhai",
        &format!(
            "let zone = dns(#{{ provider: \"rfc2136\", server: \"{}\", zone: \"mycompany.internal.\", tsig_name: \"someone\", tsig_secret_file: \"{}\" }});\nstep(\"rec\", || zone.upsert(\"old\", \"A\", [\"10.0.0.1\"], 60));\n",
            lab.lab.dns,
            lab.lab.tsig_secret_file().display()
        ),
    );
    sb.ferry(["run", "k.rhai", "--id", "k"])
        .code(1)
        .stderr_has("NOTAUTH")
        .stderr_has("BADKEY")
        .run();
    assert!(lab.lab.zone.get("old", "A").is_none());
}

#[test]
fn cloud_dns_and_rfc2136_are_two_fronts_of_one_zone() {
    let lab = lab();
    let sb = Sandbox::new();
    // Written through Cloud DNS, read and resolved over DNS.
    sb.write(
        "cloud.rhai",
        &format!(
            "let zone = {};\nstep(\"rec\", || zone.upsert(\"old\", \"A\", [\"127.11.1.1\"], 60));\n",
            lab.clouddns(", owner: \"team-x\"")
        ),
    );
    sb.ferry(["run", "cloud.rhai", "--id", "c1"]).run();
    sb.write(
        "read.rhai",
        &format!(
            r#"let zone = {};
print(`get=${{zone.get("old", "A").values}}`);
print(`owner=${{zone.get("_ferry-a.old", "TXT").values}}`);
print(`resolved=${{zone.resolve("old", "A", #{{ nameserver: "{}" }}).values}}`);
"#,
            lab.rfc2136(""),
            lab.lab.dns
        ),
    );
    sb.ferry(["run", "read.rhai", "--id", "r1"])
        .stdout_has("get=[\"127.11.1.1\"]")
        .stdout_has("owner=[\"heritage=ferry,ferry/owner=team-x\"]")
        .stdout_has("resolved=[\"127.11.1.1\"]")
        .run();

    // The same team replaces it over RFC 2136 (reading Cloud DNS's
    // ownership record), then deletes it back through Cloud DNS.
    sb.write(
        "flip.rhai",
        &format!(
            "let zone = {};\nstep(\"flip\", || zone.upsert(\"old\", \"A\", [\"127.22.1.1\"], 60));\n",
            lab.rfc2136(", owner: \"team-x\"")
        ),
    );
    sb.ferry(["run", "flip.rhai", "--id", "f1"]).run();
    assert_eq!(lab.values("old", "A"), ["127.22.1.1"]);
    let got = lab
        .lab
        .cloud_dns()
        .rrset("old.mycompany.internal.", "A")
        .unwrap();
    assert_eq!(got, (60, vec!["127.22.1.1".to_owned()]));
    sb.write(
        "rm.rhai",
        &format!(
            "let zone = {};\nprint(`cloud sees ${{zone.get(\"old\", \"A\").values}}`);\nprint(`deleted=${{step(\"rm\", || zone.delete(\"old\", \"A\"))}}`);\n",
            lab.clouddns(", owner: \"team-x\"")
        ),
    );
    sb.ferry(["run", "rm.rhai", "--id", "d1"])
        .stdout_has("cloud sees [\"127.22.1.1\"]")
        .stdout_has("deleted=true")
        .run();
    let (rcode, answers) = lab.query(lab.lab.dns, "old.mycompany.internal.", RecordType::A);
    assert_eq!((rcode, answers.len()), (ResponseCode::NXDomain, 0));
    assert!(lab.lab.zone.get("_ferry-a.old", "TXT").is_none());
}

#[test]
fn a_cluster_dns_follows_a_service_from_cluster_ip_to_external_name() {
    let lab = lab();
    let cluster = lab.lab.cluster("old").unwrap().clone();
    let dns = lab.lab.cluster_dns("old").unwrap();
    lab.lab
        .zone
        .put(RecordSet {
            name: "old.mycompany.internal.".into(),
            rtype: "A".into(),
            ttl: 60,
            data: vec!["127.11.1.1".into()],
        })
        .unwrap();
    let cluster_ip = cluster.with_state(|s| {
        s.objects["services/app1-ns/app1"]["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    let sb = Sandbox::new();
    let script = format!(
        r#"let ns = "{dns}";
step("svc", || probe::dns("app1.app1-ns.svc.cluster.local", "A", #{{ nameserver: ns }}));
step("short", || probe::dns("app1.app1-ns", "A", #{{ nameserver: ns }}));
step("missing", || probe::dns("nope.app1-ns.svc.cluster.local", "A", #{{ nameserver: ns }}));
step("upstream", || probe::dns("old.mycompany.internal", "A", #{{ nameserver: ns }}));
let zone = {};
print(`resolved=${{zone.resolve("old", "A", #{{ nameserver: ns }}).values}}`);
"#,
        lab.rfc2136("")
    );
    sb.write("before.rhai", &script);
    sb.ferry(["run", "before.rhai", "--id", "b"])
        .stdout_has("resolved=[\"127.11.1.1\"]")
        .run();
    let value = |run: &str, step: &str| sb.step(run, step)["value"].clone();
    assert_eq!(value("b", "svc")["answers"], json!([cluster_ip]));
    assert_eq!(value("b", "short")["answers"], json!([cluster_ip]));
    assert_eq!(value("b", "missing")["status"], "NXDOMAIN");
    assert_eq!(value("b", "upstream")["answers"], json!(["127.11.1.1"]));

    // The cutover: the Service becomes an alias of the old cluster's name.
    let services = cluster.resource("", "v1", "services").unwrap();
    cluster
        .patch(
            &services,
            Some("app1-ns"),
            "app1",
            PatchKind::Merge,
            &json!({ "spec": { "type": "ExternalName", "externalName": "old.mycompany.internal" } }),
            Write::default(),
        )
        .unwrap();
    // CoreDNS (kubeadm: cache 30, ttl 30) still hands out the cached address,
    // its TTL counting down: what makes the article's flip fail callers.
    let (rcode, cached) = lab.query(dns, "app1.app1-ns.svc.cluster.local.", RecordType::A);
    assert_eq!(rcode, ResponseCode::NoError);
    assert_eq!(cached, [format!("A {cluster_ip}")]);
    assert_eq!(
        lab.lab
            .network
            .resolve(&cluster, "app1.app1-ns.svc.cluster.local")
            .unwrap()
            .to_string(),
        cluster_ip,
        "the pods ask the same cache"
    );
    // Once the cached answers are gone (as when their 30 s end), the alias.
    for cache in &lab.lab.network.dns {
        cache.flush();
    }
    sb.write("after.rhai", &script);
    sb.ferry(["run", "after.rhai", "--id", "a"]).run();
    assert_eq!(
        value("a", "svc")["answers"],
        json!(["old.mycompany.internal.", "127.11.1.1"])
    );
    // The data plane agrees with the cluster's DNS.
    let resolved = lab
        .lab
        .network
        .resolve(&cluster, "app1.app1-ns.svc.cluster.local")
        .unwrap();
    assert_eq!(resolved.to_string(), "127.11.1.1");
    let (rcode, answers) = lab.query(dns, "app1.app1-ns.svc.", RecordType::CNAME);
    assert_eq!(rcode, ResponseCode::NoError);
    assert_eq!(answers, ["CNAME old.mycompany.internal."]);
}

#[test]
fn garbage_does_not_stop_the_servers() {
    let lab = lab();
    let servers = [lab.lab.dns, lab.lab.cluster_dns("new").unwrap()];
    lab.rt.block_on(async {
        use tokio::io::AsyncWriteExt;
        for server in servers {
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            for packet in [&b""[..], b"\xff", &[0x55; 700], b"\x12\x34\x01\x00\x00\x01"] {
                udp.send_to(packet, server).await.unwrap();
            }
            let mut tcp = tokio::net::TcpStream::connect(server).await.unwrap();
            // A frame claiming more than follows, then the connection drops.
            tcp.write_all(b"\x00\x20garbage").await.unwrap();
            drop(tcp);
            let mut tcp = tokio::net::TcpStream::connect(server).await.unwrap();
            tcp.write_all(b"\x00\x05\xde\xad\xbe\xef\x00")
                .await
                .unwrap();
            drop(tcp);
        }
    });
    let (rcode, _) = lab.query(lab.lab.dns, "mycompany.internal.", RecordType::SOA);
    assert_eq!(rcode, ResponseCode::NoError);
    let (rcode, _) = lab.query(servers[1], "example.com.", RecordType::A);
    assert_eq!(rcode, ResponseCode::NXDomain);
    let (rcode, _) = lab.query(lab.lab.dns, "example.com.", RecordType::A);
    assert_eq!(rcode, ResponseCode::Refused, "outside the zone");
}

#[test]
fn knots_own_clients_transfer_and_update_with_the_lab_key() {
    let lab = lab();
    // Enough records for a transfer of several TSIG-chained messages.
    for i in 0..300 {
        lab.lab
            .zone
            .put(RecordSet {
                name: format!("h{i}"),
                rtype: "A".into(),
                ttl: 60,
                data: vec![format!("10.0.{}.{}", i / 200, i % 200)],
            })
            .unwrap();
    }
    let secret = std::fs::read_to_string(lab.lab.tsig_secret_file()).unwrap();
    let key = format!("hmac-sha256:ferry-lab:{}", secret.trim());
    let (ip, port) = (lab.lab.dns.ip().to_string(), lab.lab.dns.port().to_string());
    let axfr = |key: &str| {
        let out = std::process::Command::new("kdig")
            .args([
                &format!("@{ip}"),
                "-p",
                &port,
                "-y",
                key,
                "AXFR",
                "mycompany.internal.",
            ])
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let out = axfr(&key);
    assert!(out.contains("(2 messages, 304 records)"), "{out}");
    assert!(!out.contains(";; ERROR"), "{out}");
    let out = axfr("hmac-sha256:ferry-lab:d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nd3I=");
    assert!(out.contains("error 'BADSIG'"), "{out}");

    let mut child = std::process::Command::new("knsupdate")
        .args(["-y", &key])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let stdin = child.stdin.as_mut().unwrap();
        write!(
            stdin,
            "server {ip} {port}\nzone mycompany.internal.\norigin mycompany.internal.\n\
             prereq nxrrset new A\nupdate add new 60 A 10.9.9.9\nupdate add new 60 TXT \"hello world\" \"two\"\nsend\n\
             prereq yxrrset new A\nupdate delete h1 A\nsend\n\
             prereq nxdomain new\nupdate add z 60 A 10.1.1.1\nsend\n"
        )
        .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("YXDOMAIN"), "the third update: {stderr}");
    assert_eq!(lab.values("new", "A"), ["10.9.9.9"]);
    assert_eq!(lab.values("new", "TXT"), ["\"hello world\" \"two\""]);
    assert!(lab.lab.zone.get("h1", "A").is_none());
    assert!(lab.lab.zone.get("z", "A").is_none());
}

#[test]
fn stopping_the_lab_closes_its_dns_fronts() {
    let lab = lab();
    let clouddns: SocketAddr = lab
        .lab
        .clouddns
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let mut fronts = vec![lab.lab.dns, clouddns];
    fronts.extend(lab.lab.cluster_dns.iter().map(|(_, addr)| *addr));
    assert_eq!(fronts.len(), 4);
    for addr in &fronts {
        assert!(std::net::TcpStream::connect(addr).is_ok(), "{addr} serves");
    }
    lab.lab.stop();
    for addr in fronts {
        crate::common::await_condition(&format!("{addr} to close"), || {
            std::net::TcpStream::connect(addr).is_err()
        });
    }
}
