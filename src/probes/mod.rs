//! Probes: prove a network path answers (HTTP, TCP, DNS), once, until it
//! holds, or continuously while something changes (a guard). Rhai-free; the
//! script layer is `crate::primitives::probe` and `crate::primitives::guard`.
//!
//! * [`spec`]: what to probe and what counts as success, parsed from a map.
//! * [`http`], [`tcp`], [`dns`]: one attempt each, as a [`ProbeResult`].
//! * [`http_from`]: an HTTP probe run from inside a pod (curl or wget through exec).
//! * [`stream`]: a guard's probe loop inside a pod, one exec for the whole guard.
//! * [`until`]: retry until N consecutive successes.
//! * [`stats`], [`guard`]: the background prober and what it measured;
//!   [`series`] the same over time, for the board's charts.

pub mod dns;
pub mod guard;
pub mod http;
pub mod http_from;
pub mod series;
pub mod spec;
pub mod stats;
pub mod stream;
pub mod tcp;
pub mod until;

pub use spec::ProbeSpec;

use serde_json::{Value, json};
use std::time::Duration;

/// How long an exec'd probe may take beyond its own timeout (the exec
/// session's set-up through the API server and the kubelet).
pub const EXEC_SLACK: Duration = Duration::from_secs(5);

/// How much of a body a probe returns.
pub const BODY_LIMIT: usize = 2048;

/// Why a probe failed, coarse enough to count in guard statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// Nothing listens: connection refused.
    Refused,
    /// No answer within the timeout.
    Timeout,
    /// The name did not resolve.
    Dns,
    /// TLS handshake or certificate failure.
    Tls,
    /// The peer closed or reset the connection mid-exchange.
    Reset,
    /// Other connection failure (unreachable network, ...).
    Connect,
    /// Answered with a status the probe did not accept.
    Status,
    /// Answered without the expected body text.
    Body,
    /// A DNS answer without the expected values, or an error rcode.
    Answer,
    /// An HTTP answer through another path than `expect_path`.
    Path,
    /// Malformed response or anything else.
    Other,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Dns => "dns",
            ErrorKind::Tls => "tls",
            ErrorKind::Reset => "reset",
            ErrorKind::Connect => "connect",
            ErrorKind::Status => "status",
            ErrorKind::Body => "body",
            ErrorKind::Answer => "answer",
            ErrorKind::Path => "path",
            ErrorKind::Other => "other",
        }
    }
}

/// What one probe attempt saw.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    pub ok: bool,
    /// HTTP status code, DNS response code, or nothing (TCP, or no answer).
    pub status: Status,
    pub latency: Duration,
    /// The body (HTTP, truncated to [`BODY_LIMIT`]) or the answers (DNS), as text.
    pub body: String,
    /// Why it failed, naming the target and the underlying error.
    pub error: Option<String>,
    pub kind: Option<ErrorKind>,
    /// The address actually reached (or asked).
    pub address: Option<String>,
    /// DNS answers, one string per record.
    pub answers: Option<Vec<String>>,
    /// The value of the spec's `path_header` in the answer (HTTP only).
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    None,
    Http(u16),
    Dns(String),
}

impl ProbeResult {
    pub fn failed(kind: ErrorKind, error: String, latency: Duration) -> ProbeResult {
        ProbeResult {
            ok: false,
            status: Status::None,
            latency,
            body: String::new(),
            error: Some(error),
            kind: Some(kind),
            address: None,
            answers: None,
            path: None,
        }
    }

    pub fn latency_ms(&self) -> f64 {
        (self.latency.as_secs_f64() * 10_000.0).round() / 10.0
    }

    /// The map scripts receive: `#{ ok, status, latency_ms, body, error, error_kind, address }`
    /// (plus `answers` for DNS).
    pub fn to_json(&self) -> Value {
        let mut map = json!({
            "ok": self.ok,
            "status": match &self.status {
                Status::None => Value::Null,
                Status::Http(code) => json!(code),
                Status::Dns(rcode) => json!(rcode),
            },
            "latency_ms": self.latency_ms(),
            "body": self.body,
            "error": self.error,
            "error_kind": self.kind.map(ErrorKind::as_str),
            "address": self.address,
        });
        if let (Some(answers), Some(obj)) = (&self.answers, map.as_object_mut()) {
            obj.insert("answers".into(), json!(answers));
        }
        if let (Some(path), Some(obj)) = (&self.path, map.as_object_mut()) {
            obj.insert("path".into(), json!(path));
        }
        map
    }
}

/// One attempt of any probe. `client` is reused for HTTP when given (a
/// guard builds one client without connection reuse); otherwise a fresh one
/// is built.
pub async fn run(spec: &ProbeSpec, client: Option<&reqwest::Client>) -> ProbeResult {
    match spec {
        ProbeSpec::Http(h) => match client {
            Some(c) => http::probe(c, h).await,
            None => match http::client(h) {
                Ok(c) => http::probe(&c, h).await,
                Err(e) => ProbeResult::failed(ErrorKind::Other, e, Duration::ZERO),
            },
        },
        ProbeSpec::HttpFrom(h, at) => {
            // The exec itself may hang (a container runtime that stopped
            // answering): a probe that never returns is a failure, not silence.
            let started = std::time::Instant::now();
            let limit = h.timeout + EXEC_SLACK;
            match tokio::time::timeout(limit, http_from::from_vantage(at, h)).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(e)) => ProbeResult::failed(ErrorKind::Other, e, started.elapsed()),
                Err(_) => ProbeResult::failed(
                    ErrorKind::Timeout,
                    format!(
                        "{}: the exec into pod {}/{} did not return within {}ms",
                        h.target(),
                        at.namespace,
                        at.pod,
                        limit.as_millis()
                    ),
                    started.elapsed(),
                ),
            }
        }
        ProbeSpec::Tcp(t) => tcp::probe(t).await,
        ProbeSpec::Dns(d) => dns::probe(d).await,
    }
}

/// `error: cause: cause`, skipping causes whose text the previous one already shows.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// Truncates to at most `limit` bytes on a character boundary, marking the cut.
pub fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
