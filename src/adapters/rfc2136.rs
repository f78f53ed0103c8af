//! RFC 2136 dynamic updates (BIND, Knot, PowerDNS) through hickory: reads
//! are authoritative queries to the update server, listing is a zone
//! transfer (AXFR), and a change is one UPDATE message, signed with TSIG
//! (unsigned only when the spec names no key),
//! whose prerequisites say what the zone must hold for the change to apply
//! (so a concurrent change yields YXRRSET/NXRRSET, a conflict, not a silent
//! overwrite). Messages go over TCP, falling back to UDP when the server
//! does not accept TCP connections.
//!
//! Requests are signed here rather than by hickory's multiplexer so that a
//! rejected request still reports the server's RCODE (an unsigned NOTAUTH
//! answer to a bad key would otherwise surface only as "missing TSIG").
//! Successful answers are always verified against the key.

use super::dns_wire::{self, group, rcode_name};
use crate::ports::dns::{
    Applied, Change, DnsError, DnsErrorKind, DnsFuture, DnsZone, RecordSet, record_type,
};
use hickory_proto::op::update_message::{self, UpdateMessage};
use hickory_proto::op::{DnsResponse, Message, OpCode, Query};
use hickory_proto::op::{Edns, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use std::net::SocketAddr;
use std::time::Duration;

pub struct Rfc2136Zone {
    label: String,
    origin: String,
    origin_name: Name,
    server: SocketAddr,
    signer: Option<TSigner>,
    timeout: Duration,
}

impl Rfc2136Zone {
    pub fn new(
        server: SocketAddr,
        zone: &str,
        signer: Option<TSigner>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let mut origin = zone.trim().to_ascii_lowercase();
        if !origin.ends_with('.') {
            origin.push('.');
        }
        let origin_name = Name::from_ascii(&origin)
            .map_err(|e| format!("zone `{origin}` is not a valid DNS name: {e}"))?;
        Ok(Rfc2136Zone {
            label: format!("RFC 2136 zone {origin} at {server}"),
            origin,
            origin_name,
            server,
            signer,
            timeout,
        })
    }

    /// Sends `message` (signed when `sign`) and returns the answers: one, or
    /// every message of a zone transfer.
    async fn exchange(&self, message: Message, sign: bool) -> Result<Vec<Message>, DnsError> {
        let mut message = message;
        let verifier = match (&self.signer, sign) {
            (Some(signer), true) => message
                .finalize(signer, unix_now())
                .map_err(|e| DnsError::invalid(format!("cannot sign the request: {e}")))?,
            _ => None,
        };
        let transfer = message
            .queries
            .first()
            .is_some_and(|q| q.query_type() == RecordType::AXFR);
        let responses = dns_wire::send(self.server, self.timeout, message, transfer).await?;
        let mut verifier = verifier;
        let mut out = Vec::with_capacity(responses.len());
        for response in responses {
            check_rcode(&response)?;
            if let Some(verifier) = verifier.as_mut() {
                verifier.verify(response.as_buffer()).map_err(|e| {
                    DnsError::new(
                        DnsErrorKind::Auth,
                        format!("the server's answer failed TSIG verification: {e}"),
                    )
                })?;
            }
            out.push(response.into_parts().0);
        }
        Ok(out)
    }

    fn update_message(&self, change: &Change) -> Result<Message, DnsError> {
        let mut message = Message::query();
        message.metadata.op_code = OpCode::Update;
        message.metadata.recursion_desired = false;
        let mut zone = Query::new();
        zone.set_name(self.origin_name.clone())
            .set_query_class(DNSClass::IN)
            .set_query_type(RecordType::SOA);
        message.add_zone(zone);
        let deleted: Vec<(&str, &str)> = change
            .deletions
            .iter()
            .map(|d| (d.name.as_str(), d.rtype.as_str()))
            .collect();
        // Prerequisites: the zone still holds what the change was planned against.
        for set in &change.deletions {
            for record in self.records(set, 0)? {
                message.add_pre_requisite(record);
            }
        }
        for set in &change.additions {
            if !deleted.contains(&(set.name.as_str(), set.rtype.as_str())) {
                let mut absent = Record::update0(self.name(&set.name)?, 0, rtype(&set.rtype)?);
                absent.dns_class = DNSClass::NONE;
                message.add_pre_requisite(absent);
            }
        }
        for set in &change.deletions {
            let mut delete = Record::update0(self.name(&set.name)?, 0, rtype(&set.rtype)?);
            delete.dns_class = DNSClass::ANY;
            message.add_update(delete);
        }
        for set in &change.additions {
            for record in self.records(set, set.ttl)? {
                message.add_update(record);
            }
        }
        message
            .edns
            .get_or_insert_with(Edns::new)
            .set_max_payload(hickory_proto::op::DEFAULT_MAX_PAYLOAD_LEN)
            .set_version(0);
        Ok(message)
    }

    fn name(&self, name: &str) -> Result<Name, DnsError> {
        Name::from_ascii(name)
            .map_err(|e| DnsError::invalid(format!("`{name}` is not a valid DNS name: {e}")))
    }

    fn records(&self, set: &RecordSet, ttl: u32) -> Result<Vec<Record>, DnsError> {
        let name = self.name(&set.name)?;
        let rtype = rtype(&set.rtype)?;
        set.values
            .iter()
            .map(|value| Ok(Record::from_rdata(name.clone(), ttl, rdata(rtype, value)?)))
            .collect()
    }
}

fn rtype(rtype: &str) -> Result<RecordType, DnsError> {
    record_type(rtype).map_err(DnsError::invalid)
}

/// Wire data of a canonical value. A TXT value is split into 255-byte
/// character strings, as zone files do with long text.
fn rdata(rtype: RecordType, value: &str) -> Result<RData, DnsError> {
    if rtype == RecordType::TXT {
        let mut parts = Vec::new();
        let mut rest = value;
        while rest.len() > 255 {
            let mut cut = 255;
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            parts.push(rest[..cut].to_owned());
            rest = &rest[cut..];
        }
        parts.push(rest.to_owned());
        return Ok(RData::TXT(TXT::new(parts)));
    }
    RData::try_from_str(rtype, value)
        .map_err(|e| DnsError::invalid(format!("`{value}` is not a valid {rtype} value: {e}")))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Turns an error RCODE into a [`DnsError`] naming it (and the TSIG error,
/// if the server set one).
pub(super) fn check_rcode(response: &DnsResponse) -> Result<(), DnsError> {
    let code = response.response_code;
    if code == ResponseCode::NoError || code == ResponseCode::NXDomain {
        return Ok(());
    }
    use hickory_proto::rr::rdata::tsig::TsigError;
    let tsig = response
        .signature()
        .and_then(|s| s.data.error)
        .map(|e| match e {
            TsigError::BadSig => "BADSIG".to_owned(),
            TsigError::BadKey => "BADKEY".to_owned(),
            TsigError::BadTime => "BADTIME".to_owned(),
            TsigError::BadTrunc => "BADTRUNC".to_owned(),
            TsigError::Unknown(n) => format!("TSIG error {n}"),
        });
    let kind = match code {
        ResponseCode::NotAuth
        | ResponseCode::BADSIG
        | ResponseCode::BADKEY
        | ResponseCode::BADTIME => DnsErrorKind::Auth,
        ResponseCode::YXRRSet | ResponseCode::NXRRSet | ResponseCode::YXDomain => {
            DnsErrorKind::Conflict
        }
        ResponseCode::ServFail => DnsErrorKind::Transient,
        _ if tsig.is_some() => DnsErrorKind::Auth,
        _ => DnsErrorKind::Invalid,
    };
    let name = rcode_name(code);
    let mut message = format!("server answered {name} ({code})");
    if let Some(tsig) = &tsig {
        message.push_str(&format!(
            ", TSIG error {tsig}: check the key name, secret and algorithm"
        ));
    } else if kind == DnsErrorKind::Auth {
        message.push_str(": the key is not allowed to update this zone");
    }
    Err(DnsError {
        kind,
        message,
        status: None,
        rcode: Some(name),
    })
}

impl DnsZone for Rfc2136Zone {
    fn label(&self) -> &str {
        &self.label
    }

    fn origin(&self) -> &str {
        &self.origin
    }

    fn identity(&self) -> String {
        format!("rfc2136:{}@{}", self.origin, self.server)
    }

    fn authoritative(&self) -> Option<SocketAddr> {
        Some(self.server)
    }

    fn get<'a>(&'a self, name: &'a str, rtype: &'a str) -> DnsFuture<'a, Option<RecordSet>> {
        Box::pin(async move {
            let t = self::rtype(rtype)?;
            let mut message = Message::query();
            message.metadata.recursion_desired = false;
            message.add_query(Query::query(self.name(name)?, t));
            let answers = self.exchange(message, false).await?;
            let records: Vec<Record> = answers.into_iter().flat_map(|m| m.answers).collect();
            Ok(group(&records, Some(name), Some(t)).into_iter().next())
        })
    }

    fn list<'a>(
        &'a self,
        name: Option<&'a str>,
        rtype: Option<&'a str>,
    ) -> DnsFuture<'a, Vec<RecordSet>> {
        Box::pin(async move {
            let t = rtype.map(self::rtype).transpose()?;
            if let (Some(name), Some(rtype)) = (name, rtype) {
                return Ok(self.get(name, rtype).await?.into_iter().collect());
            }
            let message = update_message::zone_transfer(self.origin_name.clone(), None);
            let answers = self.exchange(message, true).await.map_err(|mut e| {
                e.message = format!(
                    "listing the zone needs a zone transfer (AXFR) allowed for the TSIG key: {}",
                    e.message
                );
                e
            })?;
            let mut records: Vec<Record> = answers.into_iter().flat_map(|m| m.answers).collect();
            // The transfer ends with the SOA it started with.
            if records.len() > 1 && records.last().map(Record::record_type) == Some(RecordType::SOA)
            {
                records.pop();
            }
            Ok(group(&records, name, t))
        })
    }

    fn apply<'a>(&'a self, change: &'a Change) -> DnsFuture<'a, Applied> {
        Box::pin(async move {
            let message = self.update_message(change)?;
            self.exchange(message, true).await?;
            Ok(Applied::Done)
        })
    }

    fn change_done<'a>(&'a self, _id: &'a str) -> DnsFuture<'a, bool> {
        Box::pin(async { Ok(true) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::dns::display_rdata;

    fn zone() -> Rfc2136Zone {
        let key = TSigner::new(
            vec![1; 32],
            hickory_proto::rr::rdata::tsig::TsigAlgorithm::HmacSha256,
            Name::from_ascii("k.").unwrap(),
            300,
        )
        .unwrap();
        Rfc2136Zone::new(
            "127.0.0.1:53".parse().unwrap(),
            "Example.Internal",
            Some(key),
            Duration::from_secs(1),
        )
        .unwrap()
    }

    #[test]
    fn a_replacement_is_one_message_with_prerequisites_on_what_was_read() {
        let z = zone();
        assert_eq!(z.origin(), "example.internal.");
        let old = RecordSet::new("a.example.internal.", "A", 60, vec!["10.0.0.1".into()]);
        let new = RecordSet::new("a.example.internal.", "A", 30, vec!["10.0.0.2".into()]);
        let owner = RecordSet::new(
            "_ferry-a.a.example.internal.",
            "TXT",
            30,
            vec!["heritage=ferry,ferry/owner=r".into()],
        );
        let change = Change {
            deletions: vec![old],
            additions: vec![new, owner],
        };
        let m = z.update_message(&change).unwrap();
        assert_eq!(m.metadata.op_code, OpCode::Update);
        // answers = prerequisites, authorities = updates (RFC 2136 section layout)
        let prereq = &m.answers;
        assert_eq!(prereq.len(), 2);
        assert_eq!(prereq[0].dns_class, DNSClass::IN);
        assert_eq!(prereq[1].dns_class, DNSClass::NONE);
        assert_eq!(prereq[1].name.to_ascii(), "_ferry-a.a.example.internal.");
        let updates = &m.authorities;
        assert_eq!(updates.len(), 3);
        assert_eq!(updates[0].dns_class, DNSClass::ANY);
        assert_eq!(updates[1].ttl, 30);
        assert_eq!(
            display_rdata(&updates[2].data).unwrap(),
            "heritage=ferry,ferry/owner=r"
        );
    }

    #[test]
    fn long_text_is_split_into_character_strings() {
        let long = "é".repeat(200);
        let RData::TXT(txt) = rdata(RecordType::TXT, &long).unwrap() else {
            panic!("not TXT");
        };
        assert!(txt.txt_data.iter().all(|p| p.len() <= 255));
        assert_eq!(display_rdata(&RData::TXT(txt)).unwrap(), long);
    }
}
