//! A real BIND 9 (`named`) for tests: authoritative for one zone on a free
//! loopback port (UDP and TCP), accepting RFC 2136 updates signed with the
//! same TSIG key as the Knot harness. The zone's options (update-policy,
//! allow-query, ...) are the test's, so one harness covers the policies
//! people deploy. `.ci/run` installs it (Debian package `bind9`). Readiness
//! is a polled SOA query; stopped when dropped.

use super::knot::{KEY_ALGORITHM, KEY_NAME, KEY_SECRET, binary, free_port, zone_file};
use std::net::SocketAddr;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What ferry needs: updates to any name in the zone (the records and their
/// `_ferry-<type>.<name>` TXT ownership records), and transfers for `list`.
pub const GRANT_ALL: &str =
    "update-policy { grant ferry-key zonesub ANY; };\n    allow-transfer { key ferry-key; };";

pub struct Bind {
    pub addr: SocketAddr,
    pub zone: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl Bind {
    /// Starts named serving `zone` with an SOA, an NS, `extra` zone-file
    /// lines and the zone statements `zone_options` (e.g. [`GRANT_ALL`]).
    pub fn start(zone: &str, extra: &str, zone_options: &str) -> Bind {
        Bind::start_keyed(zone, extra, zone_options, "")
    }

    /// Like [`Bind::start`] with another key statement `key_conf` besides
    /// the test key (e.g. what `tsig-keygen` printed).
    pub fn start_keyed(zone: &str, extra: &str, zone_options: &str, key_conf: &str) -> Bind {
        let key_conf = format!(
            "key \"{KEY_NAME}\" {{ algorithm {KEY_ALGORITHM}; secret \"{KEY_SECRET}\"; }};\n{key_conf}"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display().to_string();
        let port = free_port();
        std::fs::write(dir.path().join("zone.db"), zone_file(zone, extra)).unwrap();
        let conf = format!(
            "options {{\n    directory \"{d}\";\n    pid-file \"{d}/named.pid\";\n    session-keyfile \"{d}/session.key\";\n    \
             listen-on port {port} {{ 127.0.0.1; }};\n    listen-on-v6 {{ none; }};\n    recursion no;\n    \
             dnssec-validation no;\n    notify no;\n}};\n\
             controls {{ }};\n\
             {key_conf}\n\
             zone \"{zone}\" {{\n    type primary;\n    file \"{d}/zone.db\";\n    {zone_options}\n}};\n"
        );
        std::fs::write(dir.path().join("named.conf"), conf).unwrap();
        let log = std::fs::File::create(dir.path().join("named.log")).unwrap();
        // -g: foreground, logging to stderr. As root (CI) named keeps root
        // without -u, which is what lets it write the journal in a temp dir.
        let mut cmd = Command::new(binary("named"));
        cmd.arg("-g")
            .arg("-n")
            .arg("1")
            .arg("-c")
            .arg(dir.path().join("named.conf"))
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd
            .spawn()
            .expect("start named (install the Debian package `bind9`; .ci/run does)");
        let bind = Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            zone: zone.to_owned(),
            dir,
            child,
        };
        let addr = bind.addr;
        let origin = bind.zone.clone();
        super::await_condition("named to serve its zone", || serves_soa(addr, &origin));
        bind
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default()
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `server` answers the SOA of `zone` authoritatively over UDP to
/// a query signed with the test key.
pub fn serves_soa(server: SocketAddr, zone: &str) -> bool {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    let Ok(name) = Name::from_ascii(zone) else {
        return false;
    };
    let mut query = Message::query();
    query.add_query(Query::query(name, RecordType::SOA));
    // Signed, so that a zone answering only the key (allow-query) is ready too.
    let Ok(secret) = data_encoding::BASE64.decode(KEY_SECRET.as_bytes()) else {
        return false;
    };
    let Ok(key_name) = Name::from_ascii(KEY_NAME) else {
        return false;
    };
    let Ok(signer) = hickory_proto::rr::TSigner::new(
        secret,
        hickory_proto::rr::rdata::tsig::TsigAlgorithm::HmacSha256,
        key_name,
        300,
    ) else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if query.finalize(&signer, now).is_err() {
        return false;
    }
    let Ok(bytes) = query.to_vec() else {
        return false;
    };
    let Ok(socket) = std::net::UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(200)));
    if socket.send_to(&bytes, server).is_err() {
        return false;
    }
    let mut buf = [0u8; 4096];
    let Ok((len, _)) = socket.recv_from(&mut buf) else {
        return false;
    };
    Message::from_vec(&buf[..len]).is_ok_and(|m| {
        m.metadata.authoritative && m.answers.iter().any(|r| r.record_type() == RecordType::SOA)
    })
}
