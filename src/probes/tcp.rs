//! One TCP connect: does something accept connections at `host:port`?

use super::spec::TcpSpec;
use super::{ErrorKind, ProbeResult, Status};
use std::time::Instant;

pub async fn probe(spec: &TcpSpec) -> ProbeResult {
    let started = Instant::now();
    let result =
        tokio::time::timeout(spec.timeout, tokio::net::TcpStream::connect(&spec.target)).await;
    let latency = started.elapsed();
    match result {
        Err(_) => ProbeResult::failed(
            ErrorKind::Timeout,
            format!(
                "tcp {}: no connection within {}ms",
                spec.target,
                spec.timeout.as_millis()
            ),
            latency,
        ),
        Ok(Err(e)) => {
            use std::io::ErrorKind as Io;
            let kind = match e.kind() {
                Io::ConnectionRefused => ErrorKind::Refused,
                Io::TimedOut => ErrorKind::Timeout,
                // Name resolution failures surface as other/uncategorized I/O errors.
                _ if e.to_string().contains("lookup") || e.to_string().contains("resolve") => {
                    ErrorKind::Dns
                }
                _ => ErrorKind::Connect,
            };
            ProbeResult::failed(kind, format!("tcp {}: {e}", spec.target), latency)
        }
        Ok(Ok(stream)) => ProbeResult {
            ok: true,
            status: Status::None,
            latency,
            body: String::new(),
            error: None,
            kind: None,
            address: stream.peer_addr().ok().map(|a| a.to_string()),
            answers: None,
            path: None,
        },
    }
}
