//! One DNS request in, its answers out, in hickory's wire format: decode,
//! check TSIG, dispatch on the opcode (queries to an [`Authority`]; zone
//! transfers and RFC 2136 UPDATEs to the private zone, for the key only),
//! encode, sign, and truncate what does not fit a UDP datagram. Anything
//! that does not decode gets FORMERR when its header can be read and no
//! answer otherwise; nothing here panics on input.

use super::authority::{Answer, Authority, transfer};
use super::tsig::{Check, ServerKey, Signing, sign_error};
use super::update;
use crate::lab::zone::ZoneStore;
use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType, TSigResponseContext};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::sync::Arc;

/// How a request arrived: UDP answers must fit a datagram, transfers need TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The zone a server is primary for: it takes UPDATEs and gives transfers.
pub struct Primary {
    pub zone: Arc<ZoneStore>,
    pub key: ServerKey,
}

pub struct Service {
    authority: Box<dyn Authority>,
    primary: Option<Primary>,
    /// Whether the server is a resolver for its clients (cluster DNS: RA).
    recursive: bool,
}

/// Records per message of a zone transfer.
const TRANSFER_CHUNK: usize = 200;
/// What the server offers in EDNS, the DNS flag day's safe size.
const EDNS_PAYLOAD: u16 = 1232;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Service {
    /// The private zone's server: authoritative, UPDATE and AXFR with `key`.
    pub fn primary(authority: Box<dyn Authority>, primary: Primary) -> Service {
        Service {
            authority,
            primary: Some(primary),
            recursive: false,
        }
    }

    /// A resolver-like server (a cluster's DNS): queries only.
    pub fn resolver(authority: Box<dyn Authority>) -> Service {
        Service {
            authority,
            primary: None,
            recursive: true,
        }
    }

    /// The encoded answers to the encoded `request` (none for garbage).
    pub fn handle(&self, bytes: &[u8], transport: Transport) -> Vec<Vec<u8>> {
        let request = match Message::from_vec(bytes) {
            Ok(request) => request,
            Err(_) => return self.form_error(bytes).into_iter().collect(),
        };
        if request.metadata.message_type != MessageType::Query {
            return Vec::new();
        }
        let mut signing = None;
        let check = match &self.primary {
            Some(primary) => primary.key.check(&request, bytes, now()),
            // No key here: any signed request names an unknown key.
            None => match request.signature() {
                Some(tsig) => Check::Invalid(Box::new(TSigResponseContext::unknown_key(
                    request.metadata.id,
                    now(),
                    tsig.name.clone(),
                ))),
                None => Check::Unsigned,
            },
        };
        let signed = match check {
            Check::Unsigned => false,
            Check::Valid(s) => {
                signing = Some(s);
                true
            }
            Check::Invalid(context) => {
                let mut response = self.response(&request, ResponseCode::NotAuth);
                if sign_error(&mut response, *context).is_err() {
                    response.signature = None;
                }
                return response.to_vec().ok().into_iter().collect();
            }
        };
        let messages = match request.metadata.op_code {
            OpCode::Query => self.query(&request, transport, signed),
            OpCode::Update => vec![self.update(&request, signed)],
            _ => vec![self.response(&request, ResponseCode::NotImp)],
        };
        self.encode(&request, messages, transport, signing)
    }

    /// FORMERR for a request whose header at least decodes.
    fn form_error(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let header = Header::read(&mut BinDecoder::new(bytes)).ok()?;
        if header.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut response = Message::error_msg(
            header.metadata.id,
            header.metadata.op_code,
            ResponseCode::FormErr,
        );
        response.metadata.recursion_available = self.recursive;
        response.to_vec().ok()
    }

    fn response(&self, request: &Message, rcode: ResponseCode) -> Message {
        let mut response = Message::response(request.metadata.id, request.metadata.op_code);
        response.metadata.response_code = rcode;
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.metadata.recursion_available = self.recursive;
        response.add_queries(request.queries.iter().cloned());
        if request.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_PAYLOAD);
            response.set_edns(edns);
        }
        response
    }

    fn query(&self, request: &Message, transport: Transport, signed: bool) -> Vec<Message> {
        let [query] = request.queries.as_slice() else {
            return vec![self.response(request, ResponseCode::FormErr)];
        };
        if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY) {
            return vec![self.response(request, ResponseCode::Refused)];
        }
        match query.query_type() {
            RecordType::AXFR => self.transfer(request, transport, signed),
            // No journal of differences: IXFR is not offered.
            RecordType::IXFR => vec![self.response(request, ResponseCode::NotImp)],
            rtype => {
                let answer = self.authority.answer(query.name(), rtype);
                vec![self.with_answer(request, answer)]
            }
        }
    }

    fn with_answer(&self, request: &Message, answer: Answer) -> Message {
        let mut response = self.response(request, answer.rcode);
        response.metadata.authoritative = answer.authoritative;
        response.add_answers(answer.answers);
        response.add_authorities(answer.authorities);
        response.add_additionals(answer.additionals);
        response
    }

    /// AXFR: over TCP, for the key, of the private zone only.
    fn transfer(&self, request: &Message, transport: Transport, signed: bool) -> Vec<Message> {
        let Some(primary) = &self.primary else {
            return vec![self.response(request, ResponseCode::Refused)];
        };
        let apex = request
            .queries
            .first()
            .map(|q| super::records::name_key(q.name()));
        if apex.as_deref() != Some(primary.zone.origin()) {
            return vec![self.response(request, ResponseCode::NotAuth)];
        }
        if transport == Transport::Udp {
            return vec![self.response(request, ResponseCode::NotImp)];
        }
        if !signed {
            return vec![self.response(request, ResponseCode::Refused)];
        }
        let records = transfer(&primary.zone);
        records
            .chunks(TRANSFER_CHUNK)
            .map(|chunk| {
                let mut response = self.response(request, ResponseCode::NoError);
                response.metadata.authoritative = true;
                response.add_answers(chunk.iter().cloned());
                response
            })
            .collect()
    }

    fn update(&self, request: &Message, signed: bool) -> Message {
        let Some(primary) = &self.primary else {
            return self.response(request, ResponseCode::NotImp);
        };
        // Like the lab's Knot: updates need the key.
        if !signed {
            return self.response(request, ResponseCode::Refused);
        }
        let rcode = update::apply(&primary.zone, request);
        let mut response = self.response(request, rcode);
        // An UPDATE answer echoes only the zone section.
        response.queries.truncate(1);
        response
    }

    fn encode(
        &self,
        request: &Message,
        messages: Vec<Message>,
        transport: Transport,
        mut signing: Option<Signing>,
    ) -> Vec<Vec<u8>> {
        let limit = match transport {
            Transport::Tcp => usize::from(u16::MAX),
            Transport::Udp => usize::from(request.max_payload().clamp(512, EDNS_PAYLOAD)),
        };
        let mut out = Vec::with_capacity(messages.len());
        for message in messages {
            let Some(bytes) = self.finish(request, message, limit, &mut signing) else {
                // Data that does not encode (a stored value too long for
                // the wire): the server's failure, not the client's.
                let failed = self.response(request, ResponseCode::ServFail);
                out.extend(self.finish(request, failed, limit, &mut signing));
                break;
            };
            out.push(bytes);
        }
        out
    }

    /// Signs and encodes one answer, truncated (TC) when over `limit`.
    fn finish(
        &self,
        request: &Message,
        mut message: Message,
        limit: usize,
        signing: &mut Option<Signing>,
    ) -> Option<Vec<u8>> {
        // Signing advances the chain of MACs: sign a copy until it fits.
        let mut attempt = signing.clone();
        if let Some(s) = attempt.as_mut() {
            s.sign(&mut message, now()).ok()?;
        }
        let bytes = message.to_vec().ok()?;
        if bytes.len() <= limit {
            *signing = attempt;
            return Some(bytes);
        }
        let mut truncated = self.response(request, message.metadata.response_code);
        truncated.metadata.authoritative = message.metadata.authoritative;
        truncated.metadata.truncation = true;
        if let Some(s) = signing.as_mut() {
            s.sign(&mut truncated, now()).ok()?;
        }
        truncated.to_vec().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::dns::authority::ZoneAuthority;
    use crate::lab::zone::RecordSet;
    use hickory_proto::op::Query;
    use hickory_proto::op::update_message::{self, UpdateMessage};
    use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
    use hickory_proto::rr::{Name, RData, Record, TSigner};

    const ORIGIN: &str = "mycompany.internal.";
    const SECRET: [u8; 32] = [7; 32];

    fn service(zone: &Arc<ZoneStore>) -> Service {
        Service::primary(
            Box::new(ZoneAuthority { zone: zone.clone() }),
            Primary {
                zone: zone.clone(),
                key: ServerKey::new("ferry-lab", SECRET.to_vec()).unwrap(),
            },
        )
    }

    fn signer(name: &str, secret: &[u8]) -> TSigner {
        TSigner::new(
            secret.to_vec(),
            TsigAlgorithm::HmacSha256,
            Name::from_ascii(name).unwrap(),
            300,
        )
        .unwrap()
    }

    fn add_a(name: &str, ip: &str) -> Message {
        let mut message = Message::query();
        message.metadata.op_code = OpCode::Update;
        let mut zone = Query::new();
        zone.set_name(Name::from_ascii(ORIGIN).unwrap())
            .set_query_type(RecordType::SOA);
        message.add_query(zone);
        message.add_update(Record::from_rdata(
            Name::from_ascii(name).unwrap(),
            60,
            RData::try_from_str(RecordType::A, ip).unwrap(),
        ));
        message
    }

    fn decode(bytes: &[u8]) -> Message {
        Message::from_vec(bytes).unwrap()
    }

    #[test]
    fn a_signed_update_applies_and_its_answer_verifies_with_the_key() {
        let zone = Arc::new(ZoneStore::open(ORIGIN, None).unwrap());
        let service = service(&zone);
        let mut message = add_a("new.mycompany.internal.", "10.0.0.7");
        let mut verifier = message
            .finalize(&signer("ferry-lab", &SECRET), now())
            .unwrap()
            .unwrap();
        let answers = service.handle(&message.to_vec().unwrap(), Transport::Udp);
        assert_eq!(answers.len(), 1);
        let response = verifier.verify(&answers[0]).unwrap();
        assert_eq!(response.response_code, ResponseCode::NoError);
        assert_eq!(zone.get("new", "A").unwrap().data, ["10.0.0.7"]);
    }

    #[test]
    fn wrong_secrets_unknown_keys_and_unsigned_updates_are_refused_like_knot() {
        let zone = Arc::new(ZoneStore::open(ORIGIN, None).unwrap());
        let service = service(&zone);
        let send = |signer: Option<TSigner>| {
            let mut message = add_a("new.mycompany.internal.", "10.0.0.7");
            if let Some(signer) = signer {
                message.finalize(&signer, now()).unwrap();
            }
            decode(&service.handle(&message.to_vec().unwrap(), Transport::Tcp)[0])
        };
        let bad_sig = send(Some(signer("ferry-lab", &[8; 32])));
        assert_eq!(bad_sig.metadata.response_code, ResponseCode::NotAuth);
        let tsig = bad_sig.signature().unwrap();
        assert_eq!(tsig.data.error, Some(TsigError::BadSig));
        assert!(tsig.data.mac.is_empty(), "BADSIG answers are unsigned");
        let bad_key = send(Some(signer("someone-else", &SECRET)));
        assert_eq!(bad_key.metadata.response_code, ResponseCode::NotAuth);
        assert_eq!(
            bad_key.signature().unwrap().data.error,
            Some(TsigError::BadKey)
        );
        let unsigned = send(None);
        assert_eq!(unsigned.metadata.response_code, ResponseCode::Refused);
        assert!(zone.get("new", "A").is_none());
    }

    #[test]
    fn a_stale_signature_is_badtime() {
        let zone = Arc::new(ZoneStore::open(ORIGIN, None).unwrap());
        let service = service(&zone);
        // An hour off, and the epoch itself (below the fudge).
        for time in [now() - 3600, 0] {
            let mut message = add_a("new.mycompany.internal.", "10.0.0.7");
            message
                .finalize(&signer("ferry-lab", &SECRET), time)
                .unwrap();
            let answer = decode(&service.handle(&message.to_vec().unwrap(), Transport::Tcp)[0]);
            assert_eq!(answer.metadata.response_code, ResponseCode::NotAuth);
            assert_eq!(
                answer.signature().unwrap().data.error,
                Some(TsigError::BadTime)
            );
        }
        assert!(zone.get("new", "A").is_none());
    }

    #[test]
    fn a_long_transfer_is_a_chain_of_signed_messages() {
        let zone = Arc::new(ZoneStore::open(ORIGIN, None).unwrap());
        for i in 0..450 {
            zone.put(RecordSet {
                name: format!("host{i}"),
                rtype: "A".into(),
                ttl: 60,
                data: vec![format!("10.0.{}.{}", i / 250, i % 250)],
            })
            .unwrap();
        }
        let service = service(&zone);
        let mut message = update_message::zone_transfer(Name::from_ascii(ORIGIN).unwrap(), None);
        let mut verifier = message
            .finalize(&signer("ferry-lab", &SECRET), now())
            .unwrap()
            .unwrap();
        let bytes = message.to_vec().unwrap();
        let answers = service.handle(&bytes, Transport::Tcp);
        assert_eq!(answers.len(), 3, "453 records in chunks of 200");
        let mut records = 0;
        for answer in &answers {
            records += verifier.verify(answer).unwrap().answers.len();
        }
        assert_eq!(records, 450 + 4, "the records, NS, ns1 A and the SOA twice");
        // Over UDP, or without the key, there is no transfer.
        let udp = decode(&service.handle(&bytes, Transport::Udp)[0]);
        assert_eq!(udp.metadata.response_code, ResponseCode::NotImp);
        let unsigned = update_message::zone_transfer(Name::from_ascii(ORIGIN).unwrap(), None);
        let refused = decode(&service.handle(&unsigned.to_vec().unwrap(), Transport::Tcp)[0]);
        assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    }

    #[test]
    fn big_answers_are_truncated_over_udp_but_not_tcp() {
        let zone = Arc::new(ZoneStore::open(ORIGIN, None).unwrap());
        zone.put(RecordSet {
            name: "big".into(),
            rtype: "TXT".into(),
            ttl: 60,
            data: (0..40)
                .map(|i| format!("\"{i:03}{}\"", "x".repeat(60)))
                .collect(),
        })
        .unwrap();
        let service = service(&zone);
        let mut query = Message::query();
        query.add_query(Query::query(
            Name::from_ascii("big.mycompany.internal.").unwrap(),
            RecordType::TXT,
        ));
        let bytes = query.to_vec().unwrap();
        let udp = decode(&service.handle(&bytes, Transport::Udp)[0]);
        assert!(udp.metadata.truncation);
        assert!(udp.answers.is_empty());
        let tcp = decode(&service.handle(&bytes, Transport::Tcp)[0]);
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 40);
        assert!(tcp.metadata.authoritative);
    }

    #[test]
    fn garbage_gets_formerr_or_silence_and_never_a_panic() {
        let zone = Arc::new(ZoneStore::open(ORIGIN, None).unwrap());
        let service = service(&zone);
        assert!(service.handle(b"", Transport::Udp).is_empty());
        assert!(service.handle(b"\x01\x02\x03", Transport::Tcp).is_empty());
        // A readable header (id 0xabcd, one question) over a broken body.
        let mut packet = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        packet.extend([0x3f, b'x', b'y']);
        let answer = service.handle(&packet, Transport::Udp);
        let answer = decode(&answer[0]);
        assert_eq!(answer.metadata.id, 0xabcd);
        assert_eq!(answer.metadata.response_code, ResponseCode::FormErr);
        // Answers are not answered.
        packet[2] |= 0x80;
        assert!(service.handle(&packet, Transport::Udp).is_empty());
        // Deterministic noise, and mutations of a valid signed update.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut update = add_a("new.mycompany.internal.", "10.0.0.7");
        update
            .finalize(&signer("ferry-lab", &SECRET), now())
            .unwrap();
        let valid = update.to_vec().unwrap();
        let mut answered = 0;
        for round in 0..3000 {
            let packet: Vec<u8> = if round % 2 == 0 {
                let len = (next() % 600) as usize;
                (0..len).map(|_| next() as u8).collect()
            } else {
                let mut p = valid.clone();
                for _ in 0..(1 + next() % 4) {
                    let at = (next() as usize) % p.len();
                    p[at] = next() as u8;
                }
                p
            };
            for bytes in service.handle(&packet, Transport::Udp) {
                assert!(Message::from_vec(&bytes).is_ok(), "answers decode");
                answered += 1;
            }
        }
        assert!(answered > 0);
        assert!(
            zone.get("new", "A").is_none_or(|r| r.data == ["10.0.0.7"]),
            "a mutated update never applies other data"
        );
    }
}
