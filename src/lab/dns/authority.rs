//! Authoritative answers from the private zone, the way Knot gives them:
//! the rrset asked for, or a CNAME at the name followed inside the zone
//! (each hop in the answer); NXDOMAIN when the last name of the chain does
//! not exist (an empty non-terminal exists: NODATA), the SOA in the
//! authority section of negative answers, the addresses of in-zone NS, MX
//! and SRV targets as additional records, and REFUSED outside the zone.
//! Also the zone's records for a transfer (AXFR).

use super::records::{name_key, record_type, to_records};
use crate::lab::zone::{View, ZoneStore};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::sync::Arc;

/// What a query gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub rcode: ResponseCode,
    /// The AA bit: the data is the server's own.
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
}

impl Answer {
    pub fn code(rcode: ResponseCode) -> Answer {
        Answer {
            rcode,
            authoritative: false,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

/// Something that answers queries: the private zone, or a cluster's DNS.
pub trait Authority: Send + Sync {
    fn answer(&self, name: &Name, rtype: RecordType) -> Answer;
}

/// One authority shared by several servers (a cluster's DNS: its server on
/// the wire and its pods).
impl<T: Authority> Authority for Arc<T> {
    fn answer(&self, name: &Name, rtype: RecordType) -> Answer {
        (**self).answer(name, rtype)
    }
}

/// The private zone as an authority.
pub struct ZoneAuthority {
    pub zone: Arc<ZoneStore>,
}

impl Authority for ZoneAuthority {
    fn answer(&self, name: &Name, rtype: RecordType) -> Answer {
        lookup(&self.zone, &name.to_ascii(), rtype)
    }
}

/// Longest CNAME chain followed, as resolvers bound it.
const MAX_CHAIN: usize = 8;

/// Answers `name`/`rtype` from `zone`.
pub fn lookup(zone: &ZoneStore, name: &str, rtype: RecordType) -> Answer {
    let mut name = name.to_ascii_lowercase();
    if !name.ends_with('.') {
        name.push('.');
    }
    if !zone.contains(&name) {
        return Answer::code(ResponseCode::Refused);
    }
    zone.read(|view| {
        let mut answer = Answer {
            authoritative: true,
            ..Answer::code(ResponseCode::NoError)
        };
        for _ in 0..MAX_CHAIN {
            let here = view.at(&name);
            if rtype == RecordType::ANY && !here.is_empty() {
                answer.answers.extend(here.into_iter().flat_map(to_records));
                return answer;
            }
            if let Some(rrset) = view.get(&name, &rtype.to_string()) {
                answer.answers.extend(to_records(rrset));
                answer.additionals = glue(view, &answer.answers);
                return answer;
            }
            match view.get(&name, "CNAME") {
                Some(cname) if rtype != RecordType::CNAME => {
                    answer.answers.extend(to_records(cname));
                    let Some(target) = cname.data.first() else {
                        return answer;
                    };
                    let target = target.to_ascii_lowercase();
                    if !zone.contains(&target) {
                        // Out of the zone: the resolver carries on from here.
                        return answer;
                    }
                    name = target;
                }
                _ => {
                    if here.is_empty() && !has_descendants(view, &name) {
                        answer.rcode = ResponseCode::NXDomain;
                    }
                    answer.authorities = soa(view, zone.origin());
                    return answer;
                }
            }
        }
        // A CNAME loop: what was followed so far, as servers do.
        answer
    })
}

/// Addresses in the zone of the NS, MX and SRV targets in `answers`.
fn glue(view: &View<'_>, answers: &[Record]) -> Vec<Record> {
    let mut out = Vec::new();
    for record in answers {
        let target = match &record.data {
            RData::NS(ns) => &ns.0,
            RData::MX(mx) => &mx.exchange,
            RData::SRV(srv) => &srv.target,
            _ => continue,
        };
        let target = name_key(target);
        for rtype in ["A", "AAAA"] {
            if let Some(rrset) = view.get(&target, rtype) {
                out.extend(to_records(rrset));
            }
        }
    }
    out
}

fn has_descendants(view: &View<'_>, name: &str) -> bool {
    let suffix = format!(".{name}");
    view.list().any(|r| r.name.ends_with(&suffix))
}

fn soa(view: &View<'_>, origin: &str) -> Vec<Record> {
    view.get(origin, "SOA").map(to_records).unwrap_or_default()
}

/// The zone for a transfer: its SOA, every other record, the SOA again.
pub fn transfer(zone: &ZoneStore) -> Vec<Record> {
    zone.read(|view| {
        let soa = soa(view, zone.origin());
        let mut records = soa.clone();
        records.extend(
            view.list()
                .filter(|r| !(r.name == zone.origin() && r.rtype == "SOA"))
                .filter(|r| record_type(&r.rtype).is_some())
                .flat_map(to_records),
        );
        records.extend(soa);
        records
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::zone::RecordSet;

    fn zone() -> ZoneStore {
        let zone = ZoneStore::open("mycompany.internal.", None).unwrap();
        for (name, rtype, data) in [
            ("old", "A", "127.11.1.1"),
            ("app", "CNAME", "old.mycompany.internal."),
            ("ext", "CNAME", "elsewhere.example.com."),
            ("loop1", "CNAME", "loop2.mycompany.internal."),
            ("loop2", "CNAME", "loop1.mycompany.internal."),
            ("x.deep", "TXT", "\"t\""),
        ] {
            zone.put(RecordSet {
                name: name.into(),
                rtype: rtype.into(),
                ttl: 60,
                data: vec![data.into()],
            })
            .unwrap();
        }
        zone
    }

    fn types(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| format!("{} {}", r.name, r.record_type()))
            .collect()
    }

    #[test]
    fn cnames_are_chased_inside_the_zone_only() {
        let zone = zone();
        let a = lookup(&zone, "APP.mycompany.internal.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert!(a.authoritative);
        assert_eq!(
            types(&a.answers),
            ["app.mycompany.internal. CNAME", "old.mycompany.internal. A"]
        );
        let only = lookup(&zone, "app.mycompany.internal.", RecordType::CNAME);
        assert_eq!(types(&only.answers), ["app.mycompany.internal. CNAME"]);
        let ext = lookup(&zone, "ext.mycompany.internal", RecordType::A);
        assert_eq!(ext.rcode, ResponseCode::NoError);
        assert_eq!(types(&ext.answers), ["ext.mycompany.internal. CNAME"]);
        let looped = lookup(&zone, "loop1.mycompany.internal.", RecordType::A);
        assert_eq!(looped.answers.len(), MAX_CHAIN);
    }

    #[test]
    fn negative_answers_distinguish_nxdomain_from_nodata_and_carry_the_soa() {
        let zone = zone();
        let nx = lookup(&zone, "nothing.mycompany.internal.", RecordType::A);
        assert_eq!(nx.rcode, ResponseCode::NXDomain);
        assert_eq!(types(&nx.authorities), ["mycompany.internal. SOA"]);
        let nodata = lookup(&zone, "old.mycompany.internal.", RecordType::AAAA);
        assert_eq!(nodata.rcode, ResponseCode::NoError);
        assert!(nodata.answers.is_empty());
        assert_eq!(nodata.authorities.len(), 1);
        let ent = lookup(&zone, "deep.mycompany.internal.", RecordType::A);
        assert_eq!(
            ent.rcode,
            ResponseCode::NoError,
            "an empty non-terminal exists"
        );
        let ns = lookup(&zone, "mycompany.internal.", RecordType::NS);
        assert_eq!(types(&ns.additionals), ["ns1.mycompany.internal. A"]);
        let outside = lookup(&zone, "example.com.", RecordType::A);
        assert_eq!(outside.rcode, ResponseCode::Refused);
        assert!(!outside.authoritative);
    }

    #[test]
    fn a_transfer_starts_and_ends_with_the_soa() {
        let zone = zone();
        let records = transfer(&zone);
        assert_eq!(records.first().unwrap().record_type(), RecordType::SOA);
        assert_eq!(records.last().unwrap().record_type(), RecordType::SOA);
        let soas = records
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        assert_eq!(soas, 2);
        // SOA, NS, ns1 A, and the six records above, SOA.
        assert_eq!(records.len(), 10);
    }
}
