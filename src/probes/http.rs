//! One HTTP(S) request with a Host header override and a connect-to address
//! override (curl's `-H Host:` and `--resolve`), checked against the expected
//! status and body. HTTP/1.1 only, redirects not followed, and no connection
//! reuse: every request takes the path a new client would.

use super::spec::HttpSpec;
use super::{ErrorKind, ProbeResult, Status, error_chain, truncate};
use std::time::{Duration, Instant};

/// How much of a body is read to look for `expect_body`.
const BODY_READ_LIMIT: usize = 1 << 20;

/// A client for `spec`: its resolve override, TLS choice and timeout, and no
/// idle connections kept, so each request opens a new one.
pub fn client(spec: &HttpSpec) -> Result<reqwest::Client, String> {
    crate::tls::install_provider();
    let builder = reqwest::Client::builder();
    // h2c: HTTP/2 spoken from the first byte, as gRPC clients do.
    let builder = if spec.h2c {
        builder.http2_prior_knowledge()
    } else {
        builder.http1_only()
    };
    let mut builder = builder
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(spec.timeout)
        .timeout(spec.timeout)
        .user_agent(concat!("ferry-probe/", env!("CARGO_PKG_VERSION")))
        .tls_danger_accept_invalid_certs(spec.tls_insecure);
    if let (Some(addr), Some(host)) = (spec.resolved_addr(), spec.url.host_str()) {
        builder = builder.resolve(host, addr);
    }
    builder.build().map_err(|e| {
        format!(
            "{}: cannot build an HTTP client: {}",
            spec.target(),
            error_chain(&e)
        )
    })
}

pub async fn probe(client: &reqwest::Client, spec: &HttpSpec) -> ProbeResult {
    let started = Instant::now();
    let attempt = async {
        let mut request = client.get(spec.url.clone());
        if let Some(host) = &spec.host {
            request = request.header(reqwest::header::HOST, host);
        }
        let mut response = request.send().await?;
        let status = response.status().as_u16();
        let address = response.remote_addr().map(|a| a.to_string());
        let path = spec.path_header.as_ref().and_then(|h| {
            Some(
                response
                    .headers()
                    .get(h.as_str())?
                    .to_str()
                    .ok()?
                    .to_owned(),
            )
        });
        let mut body = Vec::new();
        while body.len() < BODY_READ_LIMIT {
            match response.chunk().await? {
                Some(chunk) => body.extend_from_slice(&chunk),
                None => break,
            }
        }
        Ok::<_, reqwest::Error>((status, address, path, body))
    };
    // reqwest's own timeout covers the request; this bounds the body read too.
    let result = tokio::time::timeout(spec.timeout + Duration::from_millis(50), attempt).await;
    let latency = started.elapsed();
    let (status, address, path, body) = match result {
        Err(_) => {
            return ProbeResult::failed(
                ErrorKind::Timeout,
                format!(
                    "{}: no answer within {}ms",
                    spec.target(),
                    spec.timeout.as_millis()
                ),
                latency,
            );
        }
        Ok(Err(e)) => {
            let kind = classify(&e);
            let mut outcome = ProbeResult::failed(
                kind,
                format!("{}: {}", spec.target(), describe(e, kind, spec)),
                latency,
            );
            outcome.address = spec.resolved_addr().map(|a| a.to_string());
            return outcome;
        }
        Ok(Ok(answer)) => answer,
    };
    let body = String::from_utf8_lossy(&body);
    let mut outcome = ProbeResult {
        ok: true,
        status: Status::Http(status),
        latency,
        body: truncate(&body, spec.max_body),
        error: None,
        kind: None,
        address,
        answers: None,
        path,
    };
    if let Some((kind, error)) = check(spec, status, &body) {
        outcome.ok = false;
        outcome.kind = Some(kind);
        outcome.error = Some(error);
    }
    check_path(spec, &mut outcome);
    outcome
}

/// Fails an answer that came through another path than `expect_path`.
pub fn check_path(spec: &HttpSpec, outcome: &mut ProbeResult) {
    let Some(expected) = &spec.expect_path else {
        return;
    };
    let path = outcome.path.as_deref().unwrap_or(spec.unmarked());
    if outcome.ok && path != expected {
        outcome.ok = false;
        outcome.kind = Some(ErrorKind::Path);
        outcome.error = Some(format!(
            "{}: answered through the {path} path, not {expected}",
            spec.target()
        ));
    }
}

/// Checks an answer against the spec's expected status and body.
pub fn check(spec: &HttpSpec, status: u16, body: &str) -> Option<(ErrorKind, String)> {
    let status_ok = match &spec.expect_status {
        Some(codes) => codes.contains(&status),
        None => (200..400).contains(&status),
    };
    if !status_ok {
        let wanted = match &spec.expect_status {
            Some(codes) => codes
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
            None => "2xx or 3xx".into(),
        };
        return Some((
            ErrorKind::Status,
            format!("{}: status {status}, expected {wanted}", spec.target()),
        ));
    }
    match &spec.expect_body {
        Some(text) if !body.contains(text.as_str()) => Some((
            ErrorKind::Body,
            format!(
                "{}: status {status} but the body lacks {text:?}; it starts {:?}",
                spec.target(),
                truncate(body, 120)
            ),
        )),
        _ => None,
    }
}

/// Sorts a request error into a kind by looking through its causes.
fn classify(err: &reqwest::Error) -> ErrorKind {
    if err.is_timeout() {
        return ErrorKind::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as Io;
            match io.kind() {
                Io::ConnectionRefused => return ErrorKind::Refused,
                Io::TimedOut => return ErrorKind::Timeout,
                Io::ConnectionReset
                | Io::ConnectionAborted
                | Io::BrokenPipe
                | Io::UnexpectedEof => {
                    return ErrorKind::Reset;
                }
                _ => {}
            }
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
            {
                return ErrorKind::Tls;
            }
        }
        if cause.is::<rustls::Error>() {
            return ErrorKind::Tls;
        }
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>()
            && (hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled())
        {
            return ErrorKind::Reset;
        }
        source = cause.source();
    }
    let text = error_chain(err).to_ascii_lowercase();
    if text.contains("dns error") || text.contains("failed to lookup address") {
        ErrorKind::Dns
    } else if text.contains("certificate") || text.contains("tls") {
        ErrorKind::Tls
    } else if err.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Other
    }
}

/// The underlying error, without the URL (the target already names it, with
/// any password hidden).
fn describe(err: reqwest::Error, kind: ErrorKind, spec: &HttpSpec) -> String {
    let chain = error_chain(&err.without_url());
    let text = chain
        .strip_prefix("error sending request: ")
        .unwrap_or(&chain)
        .to_owned();
    match kind {
        ErrorKind::Timeout => format!("no answer within {}ms ({text})", spec.timeout.as_millis()),
        _ => text,
    }
}
