//! DNS over the wire through hickory-net: one exchange with one server over
//! TCP, falling back to UDP when the server takes no TCP connection; and
//! [`WireLookup`], the plain queries behind `resolve` and `wait_visible`.

use crate::ports::dns::{
    Answer, DnsError, DnsErrorKind, DnsFuture, Lookup, RecordSet, display_rdata, record_type,
};
use futures::StreamExt;
use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::DnsHandle;
use hickory_proto::op::{DnsRequest, DnsRequestOptions, DnsResponse, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

fn net_error(server: SocketAddr, message: &str) -> DnsError {
    DnsError::new(DnsErrorKind::Transient, format!("{server}: {message}"))
}

/// Sends `message` to `server` and returns the answers: the first one, or
/// every message of a zone transfer (`transfer`) up to the closing SOA.
pub async fn send(
    server: SocketAddr,
    timeout: Duration,
    message: Message,
    transfer: bool,
) -> Result<Vec<DnsResponse>, DnsError> {
    let provider = TokioRuntimeProvider::new();
    let request = DnsRequest::new(message, DnsRequestOptions::default());
    let (connect, handle) = TcpClientStream::new(server, None, Some(timeout), provider.clone());
    let tcp_error = match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(stream)) => {
            // hickory's own timeout is a margin behind ours, so that a
            // server that takes the connection and never answers is
            // reported as not answering, not as closing the connection.
            let (client, bg) = Client::<TokioRuntimeProvider>::with_timeout(
                stream,
                handle,
                timeout + Duration::from_secs(1),
            );
            let bg = tokio::spawn(bg);
            let result = answered_within(
                server,
                timeout,
                collect(server, client.send(request), transfer),
            )
            .await;
            bg.abort();
            return result;
        }
        Ok(Err(e)) => format!("cannot connect over TCP: {e}"),
        Err(_) => "TCP connection timed out".to_owned(),
    };
    if transfer {
        return Err(net_error(server, &tcp_error));
    }
    // No TCP listener: a DNS server must also answer over UDP.
    let stream = UdpClientStream::builder(server, provider)
        .with_timeout(Some(timeout + Duration::from_secs(1)))
        .build();
    let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let bg = tokio::spawn(bg);
    let result = answered_within(
        server,
        timeout,
        collect(server, client.send(request), false),
    )
    .await;
    bg.abort();
    result.map_err(|mut e| {
        e.message = format!("{server}: {tcp_error}, and no answer over UDP either");
        e
    })
}

/// `answer`, or a timeout error saying how long the server was given.
async fn answered_within<T>(
    server: SocketAddr,
    timeout: Duration,
    answer: impl std::future::Future<Output = Result<T, DnsError>>,
) -> Result<T, DnsError> {
    tokio::time::timeout(timeout, answer)
        .await
        .unwrap_or_else(|_| {
            Err(net_error(
                server,
                &format!(
                    "the server did not answer within {}",
                    humantime::format_duration(timeout)
                ),
            ))
        })
}

async fn collect<S>(
    server: SocketAddr,
    mut stream: S,
    transfer: bool,
) -> Result<Vec<DnsResponse>, DnsError>
where
    S: futures::Stream<Item = Result<DnsResponse, hickory_net::NetError>> + Unpin,
{
    let mut out = Vec::new();
    let mut soas = 0;
    while let Some(next) = stream.next().await {
        let response = next.map_err(|e| net_error(server, &format!("no answer: {e}")))?;
        let failed = response.response_code != ResponseCode::NoError;
        soas += response
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        out.push(response);
        if !transfer || failed || soas >= 2 {
            return Ok(out);
        }
    }
    Err(net_error(
        server,
        "the server closed the connection without a complete answer",
    ))
}

/// RCODE mnemonics as DNS tools print them.
pub fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::YXDomain => "YXDOMAIN".into(),
        ResponseCode::YXRRSet => "YXRRSET".into(),
        ResponseCode::NXRRSet => "NXRRSET".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        ResponseCode::NotZone => "NOTZONE".into(),
        ResponseCode::BADSIG => "BADSIG".into(),
        ResponseCode::BADKEY => "BADKEY".into(),
        ResponseCode::BADTIME => "BADTIME".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

/// Groups records into record sets, keeping only `name`/`rtype` when given
/// (and skipping data without a presentation form).
pub fn group(records: &[Record], name: Option<&str>, rtype: Option<RecordType>) -> Vec<RecordSet> {
    let mut sets: BTreeMap<(String, String), RecordSet> = BTreeMap::new();
    for record in records {
        let record_name = record.name.to_ascii().to_ascii_lowercase();
        let t = record.record_type();
        if name.is_some_and(|n| n != record_name) || rtype.is_some_and(|r| r != t) {
            continue;
        }
        if matches!(t, RecordType::OPT | RecordType::TSIG) {
            continue;
        }
        let Some(value) = display_rdata(&record.data) else {
            continue;
        };
        let entry = sets
            .entry((record_name.clone(), t.to_string()))
            .or_insert_with(|| RecordSet::new(&record_name, &t.to_string(), record.ttl, vec![]));
        if !entry.values.contains(&value) {
            entry.values.push(value);
            entry.values.sort();
        }
    }
    sets.into_values().collect()
}

/// Plain queries over the wire.
pub struct WireLookup {
    pub timeout: Duration,
    /// The zone's update server and its TSIG key: queries to that server
    /// are signed, since it may answer only the key (BIND `allow-query`);
    /// queries to any other server (a resolver) never carry the key.
    pub signed: Option<(SocketAddr, hickory_proto::rr::TSigner)>,
}

impl WireLookup {
    pub fn new(timeout: Duration) -> Self {
        WireLookup {
            timeout,
            signed: None,
        }
    }
}

impl Lookup for WireLookup {
    fn query<'a>(
        &'a self,
        server: SocketAddr,
        name: &'a str,
        rtype: &'a str,
        recursion: bool,
    ) -> DnsFuture<'a, Answer> {
        Box::pin(async move {
            let t = record_type(rtype).map_err(DnsError::invalid)?;
            let qname = Name::from_ascii(name)
                .map_err(|e| DnsError::invalid(format!("`{name}` is not a valid DNS name: {e}")))?;
            let mut message = Message::query();
            message.metadata.recursion_desired = recursion;
            message.add_query(Query::query(qname, t));
            let mut verifier = match &self.signed {
                Some((at, signer)) if *at == server => message
                    .finalize(signer, unix_now())
                    .map_err(|e| DnsError::invalid(format!("cannot sign the query: {e}")))?,
                _ => None,
            };
            let responses = send(server, self.timeout, message, false).await?;
            let Some(response) = responses.into_iter().next() else {
                return Err(net_error(server, "no answer"));
            };
            if let Some(verifier) = verifier.as_mut()
                && response.response_code == ResponseCode::NoError
            {
                verifier.verify(response.as_buffer()).map_err(|e| {
                    DnsError::new(
                        DnsErrorKind::Auth,
                        format!("{server}: the answer failed TSIG verification: {e}"),
                    )
                })?;
            }
            let rcode = rcode_name(response.response_code);
            let records = group(&response.answers, Some(name), Some(t))
                .into_iter()
                .next();
            Ok(Answer {
                server,
                rcode,
                records,
            })
        })
    }

    fn system_nameserver(&self) -> Result<SocketAddr, DnsError> {
        let text = std::fs::read_to_string("/etc/resolv.conf").map_err(|e| {
            DnsError::invalid(format!(
                "no nameserver given and /etc/resolv.conf cannot be read ({}): pass #{{ nameserver: \"IP[:PORT]\" }}",
                e.kind()
            ))
        })?;
        text.lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some("nameserver")).then(|| words.next())?
            })
            .find_map(|addr| parse_server(addr, 53).ok())
            .ok_or_else(|| {
                DnsError::invalid(
                    "no usable nameserver in /etc/resolv.conf: pass #{ nameserver: \"IP[:PORT]\" }",
                )
            })
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `10.0.0.53`, `10.0.0.53:5353`, `[::1]:53`, `::1`, or a host name
/// (`ns1.example.com:53`, resolved by the system).
pub fn parse_server(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    let text = text.trim();
    // A scoped IPv6 address (fe80::1%eth0) cannot carry its scope here.
    let bare = text.split('%').next().unwrap_or(text);
    if let Ok(addr) = bare.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    let with_port = if bare.contains(':') {
        bare.to_owned()
    } else {
        format!("{bare}:{default_port}")
    };
    use std::net::ToSocketAddrs;
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve server `{text}`: {e}"))?
        .next()
        .ok_or_else(|| format!("server `{text}` has no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_parse_with_and_without_ports() {
        assert_eq!(
            parse_server("10.0.0.53", 53).unwrap(),
            "10.0.0.53:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("127.0.0.1:5353", 53).unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_server("::1", 53).unwrap(),
            "[::1]:53".parse().unwrap()
        );
        assert!(parse_server("no such host.invalid:53", 53).is_err());
    }
}
