//! RFC 2136 dynamic updates against the zone store: the zone section, the
//! prerequisites (§3.2), the update prescan (§3.4.1) and the updates
//! themselves (§3.4.2), all inside one [`ZoneStore::transact`] so an UPDATE
//! applies entirely or not at all, and no other writer (the Cloud DNS
//! front) slips in between the prerequisites and the change.
//!
//! Like Knot and BIND, deleting the apex SOA or its last NS is ignored,
//! a CNAME and other data never share a name (the conflicting add is
//! ignored), and adding a CNAME replaces the one there. SOA additions are
//! ignored too: the lab owns its serial.

use super::records::{name_key, presentation, rdatas};
use crate::lab::zone::{Edit, RecordSet, View, ZoneStore};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use std::collections::BTreeMap;

/// (name, type) -> (ttl, data), the working copy of the zone.
type Sets = BTreeMap<(String, String), (u32, Vec<RData>)>;

/// Applies the UPDATE in `request` to `zone`; the RCODE to answer.
pub fn apply(zone: &ZoneStore, request: &Message) -> ResponseCode {
    match zone.transact(|view| plan(zone, view, request).map(|edits| (edits, ()))) {
        Ok(()) => ResponseCode::NoError,
        Err(code) => code,
    }
}

fn plan(zone: &ZoneStore, view: &View<'_>, request: &Message) -> Result<Vec<Edit>, ResponseCode> {
    // §3.1: exactly one zone, of class IN and type SOA, which must be ours.
    let [zone_section] = request.queries.as_slice() else {
        return Err(ResponseCode::FormErr);
    };
    if zone_section.query_type() != RecordType::SOA {
        return Err(ResponseCode::FormErr);
    }
    if name_key(zone_section.name()) != zone.origin() || zone_section.query_class() != DNSClass::IN
    {
        return Err(ResponseCode::NotAuth);
    }
    let original = load(view);
    check_prerequisites(zone, &original, &request.answers)?;
    prescan(zone, &request.authorities)?;
    let mut sets = original.clone();
    for update in &request.authorities {
        apply_one(zone.origin(), &mut sets, update);
    }
    Ok(diff(&original, &sets))
}

fn load(view: &View<'_>) -> Sets {
    view.list()
        .map(|rrset| {
            (
                (rrset.name.clone(), rrset.rtype.clone()),
                (rrset.ttl, rdatas(rrset)),
            )
        })
        .collect()
}

fn in_zone(zone: &ZoneStore, record: &Record) -> Result<String, ResponseCode> {
    let name = name_key(&record.name);
    if zone.contains(&name) {
        Ok(name)
    } else {
        Err(ResponseCode::NotZone)
    }
}

fn name_exists(sets: &Sets, name: &str) -> bool {
    sets.keys().any(|(n, _)| n == name)
}

/// §3.2: every prerequisite must hold, else the first failure's RCODE.
fn check_prerequisites(
    zone: &ZoneStore,
    sets: &Sets,
    prerequisites: &[Record],
) -> Result<(), ResponseCode> {
    // Value-dependent prerequisites are compared as whole rrsets (§3.2.3).
    let mut expected: BTreeMap<(String, String), Vec<RData>> = BTreeMap::new();
    for rr in prerequisites {
        if rr.ttl != 0 {
            return Err(ResponseCode::FormErr);
        }
        let name = in_zone(zone, rr)?;
        let rtype = rr.record_type();
        let empty = matches!(rr.data, RData::Update0(_));
        match rr.dns_class {
            DNSClass::ANY if !empty => return Err(ResponseCode::FormErr),
            DNSClass::ANY if rtype == RecordType::ANY => {
                if !name_exists(sets, &name) {
                    return Err(ResponseCode::NXDomain);
                }
            }
            DNSClass::ANY => {
                if !sets.contains_key(&(name, rtype.to_string())) {
                    return Err(ResponseCode::NXRRSet);
                }
            }
            DNSClass::NONE if !empty => return Err(ResponseCode::FormErr),
            DNSClass::NONE if rtype == RecordType::ANY => {
                if name_exists(sets, &name) {
                    return Err(ResponseCode::YXDomain);
                }
            }
            DNSClass::NONE => {
                if sets.contains_key(&(name, rtype.to_string())) {
                    return Err(ResponseCode::YXRRSet);
                }
            }
            DNSClass::IN if !empty => {
                let values = expected.entry((name, rtype.to_string())).or_default();
                if !values.contains(&rr.data) {
                    values.push(rr.data.clone());
                }
            }
            _ => return Err(ResponseCode::FormErr),
        }
    }
    for (key, want) in expected {
        let have = sets
            .get(&key)
            .map(|(_, data)| data.as_slice())
            .unwrap_or(&[]);
        let same = have.len() == want.len() && want.iter().all(|w| have.contains(w));
        if !same {
            return Err(ResponseCode::NXRRSet);
        }
    }
    Ok(())
}

fn is_meta(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::ANY
            | RecordType::AXFR
            | RecordType::IXFR
            | RecordType::OPT
            | RecordType::TSIG
            | RecordType::SIG
    )
}

/// §3.4.1.3: the whole update section is checked before anything applies.
fn prescan(zone: &ZoneStore, updates: &[Record]) -> Result<(), ResponseCode> {
    for rr in updates {
        in_zone(zone, rr)?;
        let rtype = rr.record_type();
        let empty = matches!(rr.data, RData::Update0(_));
        let ok = match rr.dns_class {
            DNSClass::IN => !is_meta(rtype) && !empty,
            DNSClass::ANY => rr.ttl == 0 && empty && (rtype == RecordType::ANY || !is_meta(rtype)),
            DNSClass::NONE => rr.ttl == 0 && !empty && !is_meta(rtype),
            _ => false,
        };
        if !ok {
            return Err(ResponseCode::FormErr);
        }
    }
    Ok(())
}

/// §3.4.2: one update record onto the working copy.
fn apply_one(origin: &str, sets: &mut Sets, rr: &Record) {
    let name = name_key(&rr.name);
    let rtype = rr.record_type();
    let apex = name == origin;
    let key = (name.clone(), rtype.to_string());
    match rr.dns_class {
        DNSClass::IN => {
            if rtype == RecordType::SOA {
                return;
            }
            let has_cname = sets.contains_key(&(name.clone(), "CNAME".into()));
            let has_other = sets
                .keys()
                .any(|(n, t)| n == &name && t != "CNAME" && !is_dnssec(t));
            if (rtype == RecordType::CNAME && has_other)
                || (rtype != RecordType::CNAME && has_cname)
            {
                return;
            }
            let entry = sets.entry(key).or_insert_with(|| (rr.ttl, Vec::new()));
            if rtype == RecordType::CNAME {
                entry.1.clear();
            }
            entry.0 = rr.ttl;
            if !entry.1.contains(&rr.data) {
                entry.1.push(rr.data.clone());
            }
        }
        DNSClass::ANY if rtype == RecordType::ANY => {
            sets.retain(|(n, t), _| n != &name || (apex && (t == "SOA" || t == "NS")));
        }
        DNSClass::ANY if !(apex && matches!(rtype, RecordType::SOA | RecordType::NS)) => {
            sets.remove(&key);
        }
        DNSClass::NONE => {
            if apex && rtype == RecordType::SOA {
                return;
            }
            let Some((_, data)) = sets.get_mut(&key) else {
                return;
            };
            if apex && rtype == RecordType::NS && data.len() == 1 {
                return;
            }
            data.retain(|d| d != &rr.data);
            if data.is_empty() {
                sets.remove(&key);
            }
        }
        _ => {}
    }
}

fn is_dnssec(rtype: &str) -> bool {
    matches!(rtype, "RRSIG" | "NSEC" | "NSEC3")
}

/// The edits that turn `before` into `after`.
fn diff(before: &Sets, after: &Sets) -> Vec<Edit> {
    let mut edits = Vec::new();
    for ((name, rtype), _) in before.iter().filter(|(k, _)| !after.contains_key(*k)) {
        edits.push(Edit::Remove {
            name: name.clone(),
            rtype: rtype.clone(),
        });
    }
    for ((name, rtype), (ttl, data)) in after {
        if before.get(&(name.clone(), rtype.clone())) == Some(&(*ttl, data.clone())) {
            continue;
        }
        let mut values: Vec<String> = data.iter().filter_map(presentation).collect();
        values.sort();
        edits.push(Edit::Put(RecordSet {
            name: name.clone(),
            rtype: rtype.clone(),
            ttl: *ttl,
            data: values,
        }));
    }
    edits
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{OpCode, Query};
    use hickory_proto::rr::Name;

    const ORIGIN: &str = "mycompany.internal.";

    fn zone() -> ZoneStore {
        let zone = ZoneStore::open(ORIGIN, None).unwrap();
        zone.put(RecordSet {
            name: "old".into(),
            rtype: "A".into(),
            ttl: 60,
            data: vec!["10.0.0.1".into(), "10.0.0.2".into()],
        })
        .unwrap();
        zone.put(RecordSet {
            name: "old".into(),
            rtype: "TXT".into(),
            ttl: 60,
            data: vec!["\"owner\"".into()],
        })
        .unwrap();
        zone
    }

    /// A record of a prerequisite or update: `data` None is the empty RDATA.
    fn rr(name: &str, rtype: RecordType, class: DNSClass, ttl: u32, data: Option<&str>) -> Record {
        let name = Name::from_ascii(format!("{name}.{ORIGIN}")).unwrap();
        let mut record = match data {
            Some(value) => {
                Record::from_rdata(name, ttl, RData::try_from_str(rtype, value).unwrap())
            }
            None => Record::update0(name, ttl, rtype),
        };
        record.dns_class = class;
        record
    }

    /// The UPDATE as the server decodes it off the wire.
    fn update(prerequisites: Vec<Record>, updates: Vec<Record>) -> Message {
        let mut message = Message::query();
        message.metadata.op_code = OpCode::Update;
        let mut zone = Query::new();
        zone.set_name(Name::from_ascii(ORIGIN).unwrap())
            .set_query_type(RecordType::SOA)
            .set_query_class(DNSClass::IN);
        message.add_query(zone);
        message.answers = prerequisites;
        message.authorities = updates;
        Message::from_vec(&message.to_vec().unwrap()).unwrap()
    }

    fn values(zone: &ZoneStore, name: &str, rtype: &str) -> Vec<String> {
        zone.get(&format!("{name}.{ORIGIN}"), rtype)
            .map(|r| r.data)
            .unwrap_or_default()
    }

    use DNSClass::{ANY, IN, NONE};
    use RecordType as T;

    #[test]
    fn value_independent_prerequisites() {
        let zone = zone();
        let check = |pre: Record| apply(&zone, &update(vec![pre], vec![]));
        // YXRRSET: the rrset exists.
        assert_eq!(check(rr("old", T::A, ANY, 0, None)), ResponseCode::NoError);
        assert_eq!(
            check(rr("old", T::AAAA, ANY, 0, None)),
            ResponseCode::NXRRSet
        );
        // NXRRSET: the rrset does not exist.
        assert_eq!(
            check(rr("old", T::AAAA, NONE, 0, None)),
            ResponseCode::NoError
        );
        assert_eq!(check(rr("old", T::A, NONE, 0, None)), ResponseCode::YXRRSet);
        // YXDOMAIN / NXDOMAIN: the name is in use / not.
        assert_eq!(
            check(rr("old", T::ANY, ANY, 0, None)),
            ResponseCode::NoError
        );
        assert_eq!(
            check(rr("new", T::ANY, ANY, 0, None)),
            ResponseCode::NXDomain
        );
        assert_eq!(
            check(rr("new", T::ANY, NONE, 0, None)),
            ResponseCode::NoError
        );
        assert_eq!(
            check(rr("old", T::ANY, NONE, 0, None)),
            ResponseCode::YXDomain
        );
        // A prerequisite with a TTL, or data where none belongs, is malformed.
        assert_eq!(check(rr("old", T::A, ANY, 60, None)), ResponseCode::FormErr);
        assert_eq!(
            check(rr("old", T::A, NONE, 0, Some("10.0.0.1"))),
            ResponseCode::FormErr
        );
    }

    #[test]
    fn value_dependent_prerequisites_compare_whole_rrsets() {
        let zone = zone();
        let check = |pre: Vec<Record>| apply(&zone, &update(pre, vec![]));
        let one = rr("old", T::A, IN, 0, Some("10.0.0.1"));
        let two = rr("old", T::A, IN, 0, Some("10.0.0.2"));
        let other = rr("old", T::A, IN, 0, Some("10.0.0.3"));
        assert_eq!(check(vec![one.clone(), two.clone()]), ResponseCode::NoError);
        assert_eq!(check(vec![one.clone()]), ResponseCode::NXRRSet, "a subset");
        assert_eq!(check(vec![one, two, other]), ResponseCode::NXRRSet);
        assert_eq!(
            check(vec![rr("old", T::TXT, IN, 0, Some("\"owner\""))]),
            ResponseCode::NoError
        );
        assert_eq!(
            check(vec![rr("old", T::TXT, IN, 0, Some("\"someone else\""))]),
            ResponseCode::NXRRSet
        );
    }

    #[test]
    fn updates_add_delete_and_replace_and_bump_the_serial_once() {
        let zone = zone();
        let serial = zone.serial();
        let code = apply(
            &zone,
            &update(
                vec![],
                vec![
                    // Add to an rrset (with a new TTL for all of it).
                    rr("old", T::A, IN, 30, Some("10.0.0.3")),
                    // Delete one record.
                    rr("old", T::A, NONE, 0, Some("10.0.0.1")),
                    // Delete an rrset.
                    rr("old", T::TXT, ANY, 0, None),
                    rr("new", T::CNAME, IN, 60, Some("old.mycompany.internal.")),
                    // A CNAME and other data never share a name: ignored.
                    rr("new", T::A, IN, 60, Some("10.9.9.9")),
                ],
            ),
        );
        assert_eq!(code, ResponseCode::NoError);
        assert_eq!(values(&zone, "old", "A"), ["10.0.0.2", "10.0.0.3"]);
        assert_eq!(zone.get("old", "A").unwrap().ttl, 30);
        assert!(zone.get("old", "TXT").is_none());
        assert_eq!(values(&zone, "new", "CNAME"), ["old.mycompany.internal."]);
        assert!(zone.get("new", "A").is_none());
        assert_eq!(zone.serial(), serial + 1);

        // Delete everything at a name; at the apex SOA and NS stay.
        let all = |name: &str| {
            let name = Name::from_ascii(format!("{name}{ORIGIN}")).unwrap();
            let mut record = Record::update0(name, 0, T::ANY);
            record.dns_class = ANY;
            record
        };
        assert_eq!(
            apply(&zone, &update(vec![], vec![all("old."), all("")])),
            ResponseCode::NoError
        );
        assert!(!zone.has_name("old.mycompany.internal."));
        assert!(zone.get(ORIGIN, "SOA").is_some());
        assert!(zone.get(ORIGIN, "NS").is_some());
    }

    #[test]
    fn an_update_applies_entirely_or_not_at_all() {
        let zone = zone();
        let serial = zone.serial();
        let before = zone.list();
        // A failing prerequisite after a passing one: nothing changes.
        let code = apply(
            &zone,
            &update(
                vec![
                    rr("old", T::A, ANY, 0, None),
                    rr("old", T::TXT, NONE, 0, None),
                ],
                vec![rr("old", T::A, ANY, 0, None)],
            ),
        );
        assert_eq!(code, ResponseCode::YXRRSet);
        // A bad update after good ones: the prescan refuses them all.
        let outside = {
            let mut r = Record::from_rdata(
                Name::from_ascii("x.example.com.").unwrap(),
                60,
                RData::try_from_str(T::A, "10.0.0.9").unwrap(),
            );
            r.dns_class = IN;
            r
        };
        let code = apply(
            &zone,
            &update(vec![], vec![rr("old", T::A, ANY, 0, None), outside]),
        );
        assert_eq!(code, ResponseCode::NotZone);
        let code = apply(
            &zone,
            &update(
                vec![],
                vec![
                    rr("old", T::A, ANY, 0, None),
                    rr("old", T::AXFR, IN, 0, None),
                ],
            ),
        );
        assert_eq!(code, ResponseCode::FormErr);
        assert_eq!(zone.list(), before);
        assert_eq!(zone.serial(), serial);
    }

    #[test]
    fn the_zone_section_must_name_this_zone() {
        let zone = zone();
        let mut message = update(vec![], vec![rr("old", T::A, ANY, 0, None)]);
        message.queries[0].set_name(Name::from_ascii("example.com.").unwrap());
        assert_eq!(apply(&zone, &message), ResponseCode::NotAuth);
        message.queries.clear();
        assert_eq!(apply(&zone, &message), ResponseCode::FormErr);
        assert!(zone.get("old", "A").is_some());
    }
}
