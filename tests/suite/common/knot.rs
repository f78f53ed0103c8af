//! A real Knot DNS server for tests: authoritative for one zone on a loopback
//! port, accepting RFC 2136 updates signed with a TSIG key. `.ci/run`
//! installs it (Debian package `knot`). Stopped when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const KEY_NAME: &str = "ferry-key";
/// base64 of 32 bytes; tests pass it through the environment like users do.
pub const KEY_SECRET: &str = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE=";
pub const KEY_ALGORITHM: &str = "hmac-sha256";

pub struct Knot {
    pub addr: SocketAddr,
    pub zone: String,
    dir: tempfile::TempDir,
    child: Child,
}

/// A server binary where Debian puts it (sbin is not on every PATH).
pub fn binary(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    PathBuf::from(name)
}

/// A zone file for `zone`: an SOA, an NS and `extra` lines.
pub fn zone_file(zone: &str, extra: &str) -> String {
    format!(
        "$ORIGIN {zone}\n$TTL 60\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n{extra}\n"
    )
}

/// A port free on loopback for both UDP and TCP right now.
pub fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Knot {
    /// Starts Knot serving `zone` (e.g. `mycompany.internal.`) with an SOA,
    /// an NS and `extra` zone-file lines.
    pub fn start(zone: &str, extra: &str) -> Knot {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display().to_string();
        let port = free_port();
        std::fs::create_dir_all(dir.path().join("db")).unwrap();
        std::fs::write(dir.path().join("zone"), zone_file(zone, extra)).unwrap();
        let conf = format!(
            "server:\n    listen: 127.0.0.1@{port}\n    rundir: {d}\n    pidfile: {d}/knot.pid\n\
             control:\n    listen: {d}/knot.sock\n\
             log:\n  - target: stderr\n    any: info\n\
             database:\n    storage: {d}/db\n\
             key:\n  - id: {KEY_NAME}\n    algorithm: {KEY_ALGORITHM}\n    secret: {KEY_SECRET}\n\
             acl:\n  - id: update\n    key: {KEY_NAME}\n    action: [update, transfer]\n\
             template:\n  - id: default\n    storage: {d}\n    zonefile-sync: -1\n    journal-content: all\n\
             zone:\n  - domain: {zone}\n    file: zone\n    acl: update\n"
        );
        std::fs::write(dir.path().join("knot.conf"), conf).unwrap();
        let log = std::fs::File::create(dir.path().join("knot.log")).unwrap();
        let child = Command::new(binary("knotd"))
            .arg("-c")
            .arg(dir.path().join("knot.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start knotd (install the Debian package `knot`; .ci/run does)");
        let knot = Knot {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            zone: zone.to_owned(),
            dir,
            child,
        };
        knot.await_zone_loaded();
        knot
    }

    fn knotc(&self) -> Command {
        let mut cmd = Command::new(binary("knotc"));
        cmd.arg("-c").arg(self.dir.path().join("knot.conf"));
        cmd
    }

    /// Ready once the control socket answers and the zone has its SOA.
    fn await_zone_loaded(&self) {
        super::await_condition("knotd to load its zone", || {
            self.knotc()
                .args(["zone-read", &self.zone, "@", "SOA"])
                .output()
                .is_ok_and(|o| {
                    o.status.success() && String::from_utf8_lossy(&o.stdout).contains("SOA")
                })
        });
    }

    /// The zone's current records of `name`/`rtype`, as `knotc zone-read` prints them.
    pub fn read(&self, name: &str, rtype: &str) -> String {
        let out = self
            .knotc()
            .args(["zone-read", &self.zone, name, rtype])
            .output()
            .expect("knotc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knot.log")).unwrap_or_default()
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
