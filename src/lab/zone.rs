//! The lab's private DNS zone (`mycompany.internal.` by default): one store
//! of record sets behind both DNS fronts (the RFC 2136 server and the Cloud
//! DNS REST fake) and the resolution the lab's pods do, persisted like the
//! clusters.

use crate::lab::persist::{ChangeLog, Entry};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

/// One rrset. Names are absolute and lowercase (`old.mycompany.internal.`);
/// data is in presentation format (`10.0.0.7`, `"text"`, `target.`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSet {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub ttl: u32,
    pub data: Vec<String>,
}

/// One change of a [`ZoneStore::transact`] batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Replaces the rrset at (name, type).
    Put(RecordSet),
    /// Removes the rrset at (name, type), if present.
    Remove { name: String, rtype: String },
}

/// The rrsets as a [`ZoneStore::transact`] plan sees them: no other writer runs
/// until its edits are applied.
pub struct View<'a> {
    origin: &'a str,
    records: &'a BTreeMap<String, RecordSet>,
}

impl View<'_> {
    pub fn get(&self, name: &str, rtype: &str) -> Option<&RecordSet> {
        self.records.get(&key(&absolute(name, self.origin), rtype))
    }

    /// Every rrset at `name`.
    pub fn at(&self, name: &str) -> Vec<&RecordSet> {
        let prefix = format!("{} ", absolute(name, self.origin));
        self.records
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v)
            .collect()
    }

    /// Every rrset, ordered by name then type.
    pub fn list(&self) -> impl Iterator<Item = &RecordSet> {
        self.records.values()
    }
}

/// A change the lab could not persist (a full disk): nothing of it applied.
/// Each front answers it as a server whose storage failed (SERVFAIL, 500).
#[derive(Debug)]
pub struct Unpersisted(pub std::io::Error);

impl From<Unpersisted> for hickory_proto::op::ResponseCode {
    fn from(_: Unpersisted) -> Self {
        hickory_proto::op::ResponseCode::ServFail
    }
}

type State = (u64, BTreeMap<String, RecordSet>);

pub struct ZoneStore {
    origin: String,
    state: Mutex<(u64, BTreeMap<String, RecordSet>)>,
    journal: ChangeLog,
}

/// `Name.` lowercased and absolute.
pub fn absolute(name: &str, origin: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    if name == "@" || name.is_empty() {
        return origin.to_owned();
    }
    if name.ends_with('.') {
        name
    } else if origin == "."
        || name == origin.trim_end_matches('.')
        || name.ends_with(&format!(".{}", origin.trim_end_matches('.')))
    {
        format!("{name}.")
    } else {
        format!("{name}.{origin}")
    }
}

fn key(name: &str, rtype: &str) -> String {
    format!("{name} {}", rtype.to_ascii_uppercase())
}

impl ZoneStore {
    /// Opens the zone, seeding SOA and NS records the first time.
    pub fn open(origin: &str, dir: Option<&Path>) -> std::io::Result<ZoneStore> {
        let origin = absolute(origin, ".");
        let (table, journal) = ChangeLog::open(dir, "zone")?;
        let records = table
            .entries
            .into_iter()
            .filter_map(|(k, v)| Some((k, serde_json::from_value(v).ok()?)))
            .collect();
        let zone = ZoneStore {
            origin: origin.clone(),
            state: Mutex::new((table.version, records)),
            journal,
        };
        if zone.get(&origin, "SOA").is_none() {
            zone.put(RecordSet {
                name: origin.clone(),
                rtype: "SOA".into(),
                ttl: 60,
                data: vec![format!(
                    "ns1.{origin} hostmaster.{origin} 1 3600 600 86400 60"
                )],
            })?;
            zone.put(RecordSet {
                name: origin.clone(),
                rtype: "NS".into(),
                ttl: 60,
                data: vec![format!("ns1.{origin}")],
            })?;
            zone.put(RecordSet {
                name: format!("ns1.{origin}"),
                rtype: "A".into(),
                ttl: 60,
                data: vec!["127.0.0.1".into()],
            })?;
        }
        Ok(zone)
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether `name` (absolute) is inside this zone.
    pub fn contains(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        name == self.origin || name.ends_with(&format!(".{}", self.origin))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, (u64, BTreeMap<String, RecordSet>)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, name: &str, rtype: &str) -> Option<RecordSet> {
        self.state()
            .1
            .get(&key(&absolute(name, &self.origin), rtype))
            .cloned()
    }

    /// Every rrset, ordered by name then type.
    pub fn list(&self) -> Vec<RecordSet> {
        self.state().1.values().cloned().collect()
    }

    /// Whether any rrset exists at `name`.
    pub fn has_name(&self, name: &str) -> bool {
        let prefix = format!("{} ", absolute(name, &self.origin));
        self.state()
            .1
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    }

    /// Replaces the rrset at (name, type); bumps the SOA serial.
    pub fn put(&self, rrset: RecordSet) -> std::io::Result<()> {
        let mut state = self.state();
        self.apply(&mut state, vec![Edit::Put(rrset)])
    }

    /// Removes the rrset at (name, type); true if it existed.
    pub fn remove(&self, name: &str, rtype: &str) -> std::io::Result<bool> {
        let mut state = self.state();
        let k = key(&absolute(name, &self.origin), rtype);
        if !state.1.contains_key(&k) {
            return Ok(false);
        }
        self.apply(
            &mut state,
            vec![Edit::Remove {
                name: name.to_owned(),
                rtype: rtype.to_owned(),
            }],
        )?;
        Ok(true)
    }

    /// Checks and changes the zone in one step, as an RFC 2136 UPDATE or a
    /// Cloud DNS change must: `plan` sees the rrsets while no other writer
    /// runs and returns the edits, which apply together with one serial
    /// bump (none when there are no edits), or an error and nothing changes
    /// (also when the change cannot be persisted: [`Unpersisted`]).
    pub fn transact<T, E: From<Unpersisted>>(
        &self,
        plan: impl FnOnce(&View<'_>) -> Result<(Vec<Edit>, T), E>,
    ) -> Result<T, E> {
        let mut state = self.state();
        let (edits, out) = plan(&View {
            origin: &self.origin,
            records: &state.1,
        })?;
        self.apply(&mut state, edits).map_err(Unpersisted)?;
        Ok(out)
    }

    /// Reads a consistent view: an answer and its SOA from the same version.
    pub fn read<T>(&self, f: impl FnOnce(&View<'_>) -> T) -> T {
        let state = self.state();
        f(&View {
            origin: &self.origin,
            records: &state.1,
        })
    }

    /// Applies `edits` and the serial bump in memory, then persists them in
    /// one append; if that fails, every edit is taken back.
    fn apply(&self, state: &mut State, edits: Vec<Edit>) -> std::io::Result<()> {
        let version = state.0;
        let mut undo: Vec<(String, Option<RecordSet>)> = Vec::new();
        let mut log: Vec<Entry> = Vec::new();
        for edit in edits {
            match edit {
                Edit::Put(mut rrset) => {
                    rrset.name = absolute(&rrset.name, &self.origin);
                    rrset.rtype = rrset.rtype.to_ascii_uppercase();
                    let k = key(&rrset.name, &rrset.rtype);
                    state.0 += 1;
                    log.push(Entry::Put {
                        key: k.clone(),
                        rv: state.0,
                        object: serde_json::to_value(&rrset).unwrap_or(Value::Null),
                    });
                    let previous = state.1.insert(k.clone(), rrset);
                    undo.push((k, previous));
                }
                Edit::Remove { name, rtype } => {
                    let k = key(&absolute(&name, &self.origin), &rtype);
                    if let Some(previous) = state.1.remove(&k) {
                        state.0 += 1;
                        log.push(Entry::Del {
                            key: k.clone(),
                            rv: state.0,
                        });
                        undo.push((k, Some(previous)));
                    }
                }
            }
        }
        if log.is_empty() {
            return Ok(());
        }
        let soa_key = key(&self.origin, "SOA");
        if let Some(soa) = state.1.get(&soa_key).cloned() {
            let mut bumped = soa.clone();
            if let Some(first) = bumped.data.first_mut() {
                let mut fields: Vec<String> = first.split_whitespace().map(str::to_owned).collect();
                if let Some(serial) = fields.get_mut(2) {
                    *serial = serial
                        .parse::<u32>()
                        .unwrap_or(0)
                        .wrapping_add(1)
                        .to_string();
                }
                *first = fields.join(" ");
            }
            state.0 += 1;
            log.push(Entry::Put {
                key: soa_key.clone(),
                rv: state.0,
                object: serde_json::to_value(&bumped).unwrap_or(Value::Null),
            });
            state.1.insert(soa_key.clone(), bumped);
            undo.push((soa_key, Some(soa)));
        }
        if let Err(e) = self.journal.append_all(&log) {
            for (k, previous) in undo.into_iter().rev() {
                match previous {
                    Some(p) => state.1.insert(k, p),
                    None => state.1.remove(&k),
                };
            }
            state.0 = version;
            return Err(e);
        }
        Ok(())
    }

    /// The SOA serial.
    pub fn serial(&self) -> u32 {
        self.get(&self.origin, "SOA")
            .and_then(|soa| soa.data.first()?.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or(0)
    }

    /// Answers `name`/`rtype` the way an authoritative server does: the rrset
    /// itself, or a CNAME at the name followed through the zone.
    pub fn resolve(&self, name: &str, rtype: &str) -> Vec<RecordSet> {
        let mut answer = Vec::new();
        let mut name = absolute(name, &self.origin);
        for _ in 0..8 {
            if let Some(rrset) = self.get(&name, rtype) {
                answer.push(rrset);
                return answer;
            }
            match self.get(&name, "CNAME") {
                Some(cname) if rtype != "CNAME" => {
                    let target = cname.data.first().cloned().unwrap_or_default();
                    answer.push(cname);
                    if !self.contains(&target) {
                        return answer;
                    }
                    name = target;
                }
                _ => return answer,
            }
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_absolute_and_cnames_are_followed() {
        let zone = ZoneStore::open("mycompany.internal", None).unwrap();
        assert_eq!(absolute("old", zone.origin()), "old.mycompany.internal.");
        assert_eq!(
            absolute("OLD.mycompany.internal", zone.origin()),
            "old.mycompany.internal."
        );
        let serial = zone.serial();
        zone.put(RecordSet {
            name: "old".into(),
            rtype: "A".into(),
            ttl: 60,
            data: vec!["127.11.1.1".into()],
        })
        .unwrap();
        zone.put(RecordSet {
            name: "app".into(),
            rtype: "CNAME".into(),
            ttl: 60,
            data: vec!["old.mycompany.internal.".into()],
        })
        .unwrap();
        assert!(zone.serial() > serial);
        let answer = zone.resolve("app.mycompany.internal.", "A");
        assert_eq!(answer.len(), 2);
        assert_eq!(answer[1].data, ["127.11.1.1"]);
        assert!(zone.remove("old", "A").unwrap());
        assert!(!zone.remove("old", "A").unwrap());
        assert_eq!(zone.resolve("app", "A").len(), 1, "only the CNAME is left");
    }

    #[test]
    fn a_transaction_applies_all_its_edits_with_one_serial_or_none() {
        let zone = ZoneStore::open("mycompany.internal.", None).unwrap();
        let serial = zone.serial();
        let a = |ip: &str| RecordSet {
            name: "old".into(),
            rtype: "A".into(),
            ttl: 60,
            data: vec![ip.into()],
        };
        let failed: Result<(), Refused> = zone.transact(|_| Err(Refused::No));
        assert_eq!(failed, Err(Refused::No));
        let seen = zone
            .transact(|view| {
                let seen = view.get("old", "A").is_some();
                Ok::<_, Refused>((
                    vec![Edit::Put(a("10.0.0.1")), Edit::Put(a("10.0.0.2"))],
                    seen,
                ))
            })
            .unwrap();
        assert!(!seen);
        assert_eq!(zone.get("old", "A").unwrap().data, ["10.0.0.2"]);
        assert_eq!(zone.serial(), serial + 1);
        zone.transact(|view| {
            assert_eq!(view.at("old.mycompany.internal.").len(), 1);
            let remove = Edit::Remove {
                name: "old".into(),
                rtype: "A".into(),
            };
            Ok::<_, Refused>((vec![remove], ()))
        })
        .unwrap();
        assert!(!zone.has_name("old"));
        assert_eq!(zone.serial(), serial + 2);
        zone.transact(|_| Ok::<_, Refused>((vec![], ()))).unwrap();
        assert_eq!(zone.serial(), serial + 2, "no edits, no new serial");
    }

    #[derive(Debug, PartialEq)]
    enum Refused {
        No,
        Unpersisted,
    }

    impl From<Unpersisted> for Refused {
        fn from(_: Unpersisted) -> Self {
            Refused::Unpersisted
        }
    }

    #[test]
    fn a_change_the_disk_refuses_applies_nothing() {
        let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
            return;
        };
        let mut zone = ZoneStore::open("mycompany.internal.", None).unwrap();
        zone.journal = ChangeLog::writing_to(full);
        let serial = zone.serial();
        let a = RecordSet {
            name: "old".into(),
            rtype: "A".into(),
            ttl: 60,
            data: vec!["10.0.0.1".into()],
        };
        let failed = zone.transact(|_| Ok::<_, Refused>((vec![Edit::Put(a.clone())], ())));
        assert_eq!(failed, Err(Refused::Unpersisted));
        assert!(zone.get("old", "A").is_none(), "nothing applied");
        assert_eq!(zone.serial(), serial, "no new serial");
        assert!(zone.put(a).is_err());
        assert!(!zone.has_name("old"));
        assert!(zone.remove("ns1", "A").is_err());
        assert!(
            zone.get("ns1", "A").is_some(),
            "a failed removal keeps the record"
        );
    }
}
