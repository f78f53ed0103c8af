//! A real PowerDNS Authoritative Server for tests: the gsqlite3 backend on a
//! private database created from the schema the Debian package ships,
//! authoritative for one zone on a free loopback port (UDP and TCP), with
//! RFC 2136 updates on (`dnsupdate=yes`, `allow-dnsupdate-from=127.0.0.0/8`)
//! and the Knot harness's TSIG key required for them through the zone's
//! `TSIG-ALLOW-DNSUPDATE` metadata (without it PowerDNS takes unsigned
//! updates from those addresses). `.ci/run` installs it (Debian packages
//! `pdns-server`, `pdns-backend-sqlite3`). Runs in the foreground as the
//! user the tests run as; readiness is a polled SOA query; stopped on drop.

use super::knot::{KEY_ALGORITHM, KEY_NAME, KEY_SECRET, free_port};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

const SCHEMA: &str = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";

pub struct Pdns {
    pub addr: SocketAddr,
    pub zone: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl Pdns {
    /// Starts pdns_server serving `zone` with an SOA, an NS and `extra`
    /// lines `name TYPE content` (names relative, `@` the apex). With
    /// `require_key`, updates must be signed with the test key.
    pub fn start(zone: &str, extra: &str, require_key: bool) -> Pdns {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display().to_string();
        let port = free_port();
        let db_path = dir.path().join("pdns.db");
        let db = rusqlite::Connection::open(&db_path).expect("sqlite db");
        let schema = std::fs::read_to_string(SCHEMA)
            .expect("the gsqlite3 schema (install the Debian package `pdns-backend-sqlite3`)");
        db.execute_batch(&schema).expect("schema");
        let bare = zone.trim_end_matches('.');
        db.execute(
            "INSERT INTO domains (name, type) VALUES (?1, 'NATIVE')",
            [bare],
        )
        .unwrap();
        let id = db.last_insert_rowid();
        let mut lines = vec![
            format!("@ SOA ns1.{zone} hostmaster.{zone} 1 3600 600 86400 60"),
            format!("@ NS ns1.{zone}"),
            "ns1 A 127.0.0.1".to_owned(),
        ];
        lines.extend(
            extra
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned),
        );
        for line in lines {
            let mut parts = line.trim().splitn(3, ' ');
            let (Some(name), Some(rtype), Some(content)) =
                (parts.next(), parts.next(), parts.next())
            else {
                panic!("record line `{line}` is not `name TYPE content`");
            };
            let name = if name == "@" {
                bare.to_owned()
            } else {
                format!("{name}.{bare}")
            };
            // PowerDNS stores names in content without the trailing dot.
            let content = content.trim().trim_end_matches('.');
            db.execute(
                "INSERT INTO records (domain_id, name, type, content, ttl, auth) VALUES (?1, ?2, ?3, ?4, 60, 1)",
                rusqlite::params![id, name, rtype, content],
            )
            .unwrap();
        }
        db.execute(
            "INSERT INTO tsigkeys (name, algorithm, secret) VALUES (?1, ?2, ?3)",
            [KEY_NAME, KEY_ALGORITHM, KEY_SECRET],
        )
        .unwrap();
        db.execute(
            "INSERT INTO domainmetadata (domain_id, kind, content) VALUES (?1, 'TSIG-ALLOW-AXFR', ?2)",
            rusqlite::params![id, KEY_NAME],
        )
        .unwrap();
        if require_key {
            db.execute(
                "INSERT INTO domainmetadata (domain_id, kind, content) VALUES (?1, 'TSIG-ALLOW-DNSUPDATE', ?2)",
                rusqlite::params![id, KEY_NAME],
            )
            .unwrap();
        }
        drop(db);
        // No security poll: it would send a query out through the system's
        // resolver; tests talk to loopback only.
        let conf = format!(
            "launch=gsqlite3\ngsqlite3-database={}\nlocal-address=127.0.0.1\nlocal-port={port}\n\
             socket-dir={d}\ndaemon=no\nguardian=no\ndisable-syslog=yes\nwrite-pid=no\n\
             dnsupdate=yes\nallow-dnsupdate-from=127.0.0.0/8\nallow-axfr-ips=127.0.0.0/8\nloglevel=6\n\
             security-poll-suffix=\n",
            db_path.display()
        );
        std::fs::write(dir.path().join("pdns.conf"), conf).unwrap();
        let log = std::fs::File::create(dir.path().join("pdns.log")).unwrap();
        let child = Command::new("/usr/sbin/pdns_server")
            .arg(format!("--config-dir={d}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start pdns_server (install the Debian packages `pdns-server pdns-backend-sqlite3`; .ci/run does)");
        let pdns = Pdns {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            zone: zone.to_owned(),
            dir,
            child,
        };
        let (addr, origin) = (pdns.addr, pdns.zone.clone());
        super::await_condition("pdns_server to serve its zone", || {
            super::bind::serves_soa(addr, &origin)
        });
        pdns
    }

    /// The zone's records of `name` (relative, `@` the apex) as
    /// `TYPE content` lines, read from the database.
    pub fn read(&self, name: &str) -> String {
        let bare = self.zone.trim_end_matches('.');
        let full = if name == "@" {
            bare.to_owned()
        } else {
            format!("{name}.{bare}")
        };
        let db = rusqlite::Connection::open(self.dir.path().join("pdns.db")).expect("sqlite db");
        let mut stmt = db
            .prepare("SELECT type, content FROM records WHERE name = ?1 ORDER BY type, content")
            .unwrap();
        let rows = stmt
            .query_map([full], |r| {
                Ok(format!(
                    "{} {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?
                ))
            })
            .unwrap();
        rows.flatten().collect::<Vec<_>>().join("\n")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pdns.log")).unwrap_or_default()
    }
}

impl Drop for Pdns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
