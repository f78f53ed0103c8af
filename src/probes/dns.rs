//! One DNS query: against a given nameserver with hickory (any record type,
//! over UDP), or through the system resolver (A and AAAA), then checked
//! against the expected values.

use super::spec::DnsSpec;
use super::{ErrorKind, ProbeResult, Status, error_chain};
use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_proto::rr::{DNSClass, Name, RecordType};
use std::str::FromStr;
use std::time::Instant;

pub async fn probe(spec: &DnsSpec) -> ProbeResult {
    let started = Instant::now();
    let answer = match spec.nameserver {
        Some(ns) => tokio::time::timeout(spec.timeout, query(spec, ns)).await,
        None => tokio::time::timeout(spec.timeout, system(spec)).await,
    };
    let latency = started.elapsed();
    let address = spec.nameserver.map(|ns| ns.to_string());
    let (rcode, answers) = match answer {
        Err(_) => {
            let mut o = ProbeResult::failed(
                ErrorKind::Timeout,
                format!(
                    "{}: no answer within {}ms",
                    spec.target(),
                    spec.timeout.as_millis()
                ),
                latency,
            );
            o.address = address;
            return o;
        }
        Ok(Err((kind, e))) => {
            let mut o = ProbeResult::failed(kind, format!("{}: {e}", spec.target()), latency);
            o.address = address;
            return o;
        }
        Ok(Ok(answer)) => answer,
    };
    let mut outcome = ProbeResult {
        ok: true,
        status: Status::Dns(rcode.clone()),
        latency,
        body: answers.join(", "),
        error: None,
        kind: None,
        address,
        answers: Some(answers.clone()),
        path: None,
    };
    let missing: Vec<&String> = spec
        .expect
        .iter()
        .filter(|want| !answers.iter().any(|got| same_value(got, want)))
        .collect();
    if rcode != "NOERROR" {
        outcome.ok = false;
        outcome.kind = Some(ErrorKind::Answer);
        outcome.error = Some(format!("{}: {rcode}", spec.target()));
    } else if !missing.is_empty() {
        outcome.ok = false;
        outcome.kind = Some(ErrorKind::Answer);
        let got = if answers.is_empty() {
            "no records".to_owned()
        } else {
            answers.join(", ")
        };
        outcome.error = Some(format!(
            "{}: expected {}, got {got}",
            spec.target(),
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    outcome
}

type Answer = Result<(String, Vec<String>), (ErrorKind, String)>;

async fn query(spec: &DnsSpec, nameserver: std::net::SocketAddr) -> Answer {
    let name =
        Name::from_str(&spec.name).map_err(|e| (ErrorKind::Other, format!("bad name: {e}")))?;
    let rtype = RecordType::from_str(&spec.rtype)
        .map_err(|e| (ErrorKind::Other, format!("bad record type: {e}")))?;
    let stream = UdpClientStream::builder(nameserver, TokioRuntimeProvider::default())
        .with_timeout(Some(spec.timeout))
        .build();
    let (mut client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let background = tokio::spawn(background);
    let response = client.query(name, DNSClass::IN, rtype).await;
    background.abort();
    let response = response.map_err(|e| {
        let text = error_chain(&e);
        let kind = if text.to_ascii_lowercase().contains("timed out") {
            ErrorKind::Timeout
        } else if text.to_ascii_lowercase().contains("refused") {
            ErrorKind::Refused
        } else {
            ErrorKind::Other
        };
        (kind, text)
    })?;
    let rcode = format!("{:?}", response.metadata.response_code).to_ascii_uppercase();
    let answers = response
        .answers
        .iter()
        .map(|record| record.data.to_string())
        .collect();
    Ok((rcode, answers))
}

async fn system(spec: &DnsSpec) -> Answer {
    let want_v6 = spec.rtype == "AAAA";
    match tokio::net::lookup_host((spec.name.as_str(), 0)).await {
        Ok(addrs) => {
            let mut answers: Vec<String> = addrs
                .map(|a| a.ip())
                .filter(|ip| ip.is_ipv6() == want_v6)
                .map(|ip| ip.to_string())
                .collect();
            answers.dedup();
            Ok(("NOERROR".into(), answers))
        }
        Err(e) => Err((ErrorKind::Dns, format!("system resolver: {e}"))),
    }
}

/// Compares a record's text with an expected value: case-insensitive,
/// ignoring a trailing dot on names and quotes around TXT data.
fn same_value(got: &str, want: &str) -> bool {
    let norm = |s: &str| {
        s.trim()
            .trim_matches('"')
            .trim_end_matches('.')
            .to_ascii_lowercase()
    };
    norm(got) == norm(want)
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_compare_loosely() {
        assert!(super::same_value(
            "new.mycompany.internal.",
            "NEW.mycompany.internal"
        ));
        assert!(super::same_value("\"v=1\"", "v=1"));
        assert!(!super::same_value("10.0.0.1", "10.0.0.2"));
    }
}
