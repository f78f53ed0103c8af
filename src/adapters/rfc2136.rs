//! RFC 2136 dynamic updates (BIND, Knot, PowerDNS) through hickory: reads
//! are authoritative queries to the update server, listing is a zone
//! transfer (AXFR), and a change is one UPDATE message. Every request,
//! queries included, is signed with TSIG when the spec names a key, because
//! a zone may answer queries only to that key (BIND `allow-query { key …; }`);
//! only a spec without a key sends unsigned requests. An UPDATE's
//! whose prerequisites say what the zone must hold for the change to apply
//! (so a concurrent change yields YXRRSET/NXRRSET, a conflict, not a silent
//! overwrite). Messages go over TCP, falling back to UDP when the server
//! does not accept TCP connections.
//!
//! Requests are signed here rather than by hickory's multiplexer so that a
//! rejected request still reports the server's RCODE (an unsigned NOTAUTH
//! answer to a bad key would otherwise surface only as "missing TSIG").
//! Successful answers are always verified against the key.
//!
//! Reads tell records from wildcard synthesis. Without DNSSEC an answer
//! synthesized from `*.wild` looks exactly like a record at `new.wild`, so a
//! positive answer is checked with one more query for a child that cannot
//! exist (`_ferry-nx.<name>`): if that child is NXDOMAIN the name exists (it
//! is its child's closest encloser) and the answer is real; if it is
//! answered too, the name does not exist and both answers came from the
//! same wildcard (RFC 4592). The apex always exists. The one case this
//! misreads is a name holding records *and* a wildcard child of its own
//! (`x.wild` and `*.x.wild`); a zone transfer would be exact but needs a
//! transfer grant that updates do not.
//!
//! Failures name what the server objects to: REFUSED is told apart by a
//! signed SOA query (a zone the server serves refused the key or its policy;
//! otherwise the server does not serve the zone), and NOTAUTH with a TSIG
//! error is a bad key while a plain NOTAUTH is a server that is not
//! authoritative for the zone.

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

    /// Sends `message` (signed when the zone has a key) and returns the
    /// answers: one, or every message of a zone transfer.
    async fn exchange(&self, message: Message, purpose: Purpose) -> Result<Vec<Message>, DnsError> {
        let mut message = message;
        let verifier = match &self.signer {
            Some(signer) => message
                .finalize(signer, unix_now())
                .map_err(|e| DnsError::invalid(format!("cannot sign the request: {e}")))?,
            None => None,
        };
        let transfer = purpose == Purpose::Transfer;
        let responses = dns_wire::send(self.server, self.timeout, message, transfer).await?;
        let mut verifier = verifier;
        let mut out = Vec::with_capacity(responses.len());
        for response in responses {
            if let Err(mut e) = check_rcode(&response) {
                self.explain(&mut e, purpose).await;
                return Err(e);
            }
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

    /// Says what an error RCODE means for this zone and key (see the module
    /// comment); may ask the server for the zone's SOA to tell a refused key
    /// from a zone the server does not serve.
    async fn explain(&self, e: &mut DnsError, purpose: Purpose) {
        let what = purpose.noun();
        let key = self.signer.as_ref().map(|s| s.signer_name().to_ascii());
        let rcode = e.rcode.clone().unwrap_or_default();
        let tsig_error = e.message.contains("TSIG error");
        if tsig_error || !matches!(rcode.as_str(), "NOTAUTH" | "REFUSED") {
            return;
        }
        let by = match &key {
            Some(key) => format!("signed with TSIG key `{key}`"),
            None => "unsigned (the spec names no TSIG key)".to_owned(),
        };
        // Signed first (a zone may answer only the key), then unsigned (a
        // server may not answer a key it does not know).
        let served = (self.signer.is_some() && self.serves_zone(true).await)
            || self.serves_zone(false).await;
        if !served {
            e.kind = DnsErrorKind::Invalid;
            let hint = if key.is_none() {
                ", or it answers only requests signed with a TSIG key (name one with tsig_name)"
            } else {
                ""
            };
            let verb = if rcode == "NOTAUTH" {
                "is not authoritative for"
            } else {
                "does not serve"
            };
            e.message = format!(
                "{}: the server {verb} zone {} (check `server` and `zone`){hint}",
                e.message, self.origin
            );
            return;
        }
        e.kind = DnsErrorKind::Auth;
        let grant = if rcode == "NOTAUTH" {
            // PowerDNS answers an unsigned NOTAUTH, without a TSIG error, to
            // a key it does not know or whose secret differs.
            "the server does not accept the key: check the key name, secret and algorithm, and that the server knows the key (PowerDNS answers so, without a TSIG error, to a key missing from its tsigkeys or with another secret)"
        } else {
            match purpose {
                Purpose::Update => {
                    "the key or the server's update policy does not allow it (BIND: update-policy or allow-update must grant the key the record's name and its _ferry-<type>.<name> TXT; PowerDNS: TSIG-ALLOW-DNSUPDATE must name the key and allow-dnsupdate-from must hold this address)"
                }
                Purpose::Transfer => {
                    "the key is not allowed zone transfers (BIND: allow-transfer; Knot: acl action transfer; PowerDNS: TSIG-ALLOW-AXFR)"
                }
                Purpose::Query => "the key is not allowed to query the zone (BIND: allow-query)",
            }
        };
        e.message = format!(
            "{}: the server serves zone {} but refused this {what} {by}: {grant}",
            e.message, self.origin
        );
    }

    /// Whether the server answers the zone's SOA authoritatively to a
    /// query (signed with the zone's key when `signed`).
    async fn serves_zone(&self, signed: bool) -> bool {
        let mut message = Message::query();
        message.metadata.recursion_desired = false;
        message.add_query(Query::query(self.origin_name.clone(), RecordType::SOA));
        if let Some(signer) = self.signer.as_ref().filter(|_| signed)
            && message.finalize(signer, unix_now()).is_err()
        {
            return false;
        }
        match dns_wire::send(self.server, self.timeout, message, false).await {
            Ok(responses) => responses.first().is_some_and(|r| {
                r.response_code == ResponseCode::NoError
                    && r.metadata.authoritative
                    && r.answers.iter().any(|a| a.record_type() == RecordType::SOA)
            }),
            Err(_) => false,
        }
    }

    /// One authoritative query: the answer's records of `name`, and its RCODE.
    async fn query(
        &self,
        name: &Name,
        t: RecordType,
    ) -> Result<(Vec<Record>, ResponseCode), DnsError> {
        let mut message = Message::query();
        message.metadata.recursion_desired = false;
        message.add_query(Query::query(name.clone(), t));
        let answers = self.exchange(message, Purpose::Query).await?;
        let code = answers
            .first()
            .map_or(ResponseCode::NoError, |m| m.metadata.response_code);
        Ok((answers.into_iter().flat_map(|m| m.answers).collect(), code))
    }

    /// Whether `name` exists in the zone rather than being answered from a
    /// wildcard: its child `_ferry-nx.<name>` is NXDOMAIN only if `name`
    /// exists (module comment).
    async fn exists(&self, name: &Name) -> Result<bool, DnsError> {
        if name.to_ascii().eq_ignore_ascii_case(&self.origin) {
            return Ok(true);
        }
        let Ok(probe) = Name::from_ascii("_ferry-nx").and_then(|p| p.append_domain(name)) else {
            // Too long for a child: such a name cannot sit below a wildcard
            // by more than the labels it has; take the answer as real.
            return Ok(true);
        };
        let (_, code) = self.query(&probe, RecordType::TXT).await?;
        Ok(code == ResponseCode::NXDomain)
    }

    /// Records of `name` answered for `t` (ANY: every type), without
    /// wildcard synthesis.
    async fn read(&self, name: &str, t: RecordType) -> Result<Vec<Record>, DnsError> {
        let qname = self.name(name)?;
        let (records, _) = self.query(&qname, t).await?;
        let own: Vec<Record> = records
            .into_iter()
            .filter(|r| r.name.to_ascii().eq_ignore_ascii_case(&qname.to_ascii()))
            .collect();
        if own.is_empty() || self.exists(&qname).await? {
            return Ok(own);
        }
        Ok(Vec::new())
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
            let records = self.read(name, t).await?;
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
            let answers = self.exchange(message, Purpose::Transfer).await.map_err(|mut e| {
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
            self.exchange(message, Purpose::Update).await?;
            Ok(Applied::Done)
        })
    }

    fn change_done<'a>(&'a self, _id: &'a str) -> DnsFuture<'a, bool> {
        Box::pin(async { Ok(true) })
    }

    fn reads_back(&self) -> bool {
        true
    }

    fn types_at<'a>(&'a self, name: &'a str) -> DnsFuture<'a, Vec<String>> {
        Box::pin(async move {
            // ANY over TCP: every server here answers it in full to an
            // authoritative query (RFC 8482 minimal answers are UDP-only
            // where configured).
            let records = self.read(name, RecordType::ANY).await?;
            let mut types: Vec<String> = records
                .iter()
                .map(Record::record_type)
                .filter(|t| {
                    !matches!(
                        t,
                        RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3 | RecordType::OPT
                    )
                })
                .map(|t| t.to_string())
                .collect();
            types.sort();
            types.dedup();
            Ok(types)
        })
    }
}

/// What a request was for, in the words of its failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Query,
    Transfer,
    Update,
}

impl Purpose {
    fn noun(self) -> &'static str {
        match self {
            Purpose::Query => "query",
            Purpose::Transfer => "zone transfer",
            Purpose::Update => "update",
        }
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
