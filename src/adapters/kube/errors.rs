//! Turning what went wrong on the wire into a [`ClusterError`] that names the
//! cluster, verb, object, HTTP status, reason and the server's message, with
//! credentials redacted.

use crate::ports::cluster::ClusterError;
use std::time::Duration;

/// What one attempt of a request ended with, when it did not succeed.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The server answered with an error status.
    Status {
        status: u16,
        reason: String,
        message: String,
        /// `Retry-After` (header, or the Status' `details.retryAfterSeconds`).
        retry_after: Option<Duration>,
    },
    /// No usable answer: connection refused, TLS, timeout, bad body.
    Transport { message: String, retryable: bool },
}

impl Failure {
    /// 429, 5xx (but 501) and connection failures are worth another try.
    pub fn retryable(&self) -> bool {
        match self {
            Failure::Status { status, .. } => {
                *status == 429 || (*status >= 500 && *status != 501 && *status != 505)
            }
            Failure::Transport { retryable, .. } => *retryable,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            Failure::Transport { .. } => None,
        }
    }

    /// `404 NotFound`, `connection refused`: for progress lines.
    pub fn short(&self) -> String {
        match self {
            Failure::Status { status, reason, .. } => {
                format!("{status} {reason}").trim().to_owned()
            }
            Failure::Transport { message, .. } => message.clone(),
        }
    }

    /// Parses an error response: a `metav1.Status` body when the server sent
    /// one, the raw text otherwise.
    pub fn from_response(status: u16, retry_header: Option<&str>, body: &[u8]) -> Failure {
        let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| {
            parsed
                .as_ref()
                .and_then(|v| v.get(name))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let mut reason = field("reason");
        if reason.is_empty() {
            reason = http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or_default()
                .replace(' ', "");
        }
        let mut message = field("message");
        if message.is_empty() {
            message = String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(500)
                .collect();
        }
        if message.is_empty() {
            message = "(no message)".into();
        }
        let retry_after = retry_header
            .and_then(|h| h.trim().parse::<u64>().ok())
            .or_else(|| {
                parsed
                    .as_ref()?
                    .pointer("/details/retryAfterSeconds")?
                    .as_u64()
            })
            .map(Duration::from_secs);
        Failure::Status {
            status,
            reason,
            message,
            retry_after,
        }
    }

    /// A client-side failure, described through its whole source chain
    /// (kube's top-level messages alone say little: "client error (Connect)").
    pub fn from_kube(err: &kube::Error) -> Failure {
        if let kube::Error::Api(status) = err {
            return Failure::Status {
                status: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
                retry_after: None,
            };
        }
        let retryable = matches!(err, kube::Error::HyperError(_) | kube::Error::Service(_));
        Failure::Transport {
            message: describe(err),
            retryable,
        }
    }
}

/// kube's error with its sources, each said once: its top-level text alone
/// says little ("client error (Connect)").
pub fn describe(err: &kube::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// What the request was about, for the error message.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub verb: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl Target {
    pub fn new(verb: &str, kind: &str, namespace: &str, name: &str) -> Target {
        Target {
            verb: verb.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    pub fn error(
        &self,
        cluster: &str,
        status: Option<u16>,
        reason: &str,
        message: String,
    ) -> ClusterError {
        ClusterError {
            cluster: cluster.to_owned(),
            verb: self.verb.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            status,
            reason: reason.to_owned(),
            message,
        }
    }
}

/// Removes every occurrence of a known secret from `text`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret.as_str(), "[redacted]");
    }
    out
}

/// Builds the error for a failed request.
pub fn to_error(
    cluster: &str,
    server: &str,
    target: &Target,
    failure: &Failure,
    secrets: &[String],
) -> ClusterError {
    match failure {
        Failure::Status {
            status,
            reason,
            message,
            ..
        } => target.error(cluster, Some(*status), reason, redact(message, secrets)),
        Failure::Transport { message, retryable } => {
            let reason = if *retryable {
                "Unreachable"
            } else {
                "ClientError"
            };
            let message = if *retryable {
                format!("cannot reach the API server at {server}: {message}")
            } else {
                message.clone()
            };
            target.error(cluster, None, reason, redact(&message, secrets))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bodies_give_reason_message_and_retry_after() {
        let body = br#"{"kind":"Status","status":"Failure","message":"too many requests, try later","reason":"TooManyRequests","details":{"retryAfterSeconds":3},"code":429}"#;
        let f = Failure::from_response(429, None, body);
        assert!(f.retryable());
        assert_eq!(f.retry_after(), Some(Duration::from_secs(3)));
        assert!(matches!(&f, Failure::Status { reason, .. } if reason == "TooManyRequests"));
        let f = Failure::from_response(429, Some("7"), body);
        assert_eq!(
            f.retry_after(),
            Some(Duration::from_secs(7)),
            "the header wins"
        );
    }

    #[test]
    fn bodies_that_are_not_status_still_read_well() {
        let f = Failure::from_response(502, None, b"upstream connect error");
        assert!(f.retryable());
        let err = to_error(
            "old",
            "https://x",
            &Target::new("get", "Service", "ns", "a"),
            &f,
            &[],
        );
        assert_eq!(
            err.to_string(),
            "cluster `old`: get Service ns/a failed: 502 BadGateway: upstream connect error"
        );
        assert!(!Failure::from_response(403, None, b"").retryable());
        assert!(!Failure::from_response(409, None, b"").retryable());
    }

    #[test]
    fn secrets_never_reach_the_message() {
        let f = Failure::from_response(
            401,
            None,
            br#"{"message":"token abcd1234secret is invalid","reason":"Unauthorized"}"#,
        );
        let err = to_error(
            "old",
            "https://x",
            &Target::default(),
            &f,
            &["abcd1234secret".into()],
        );
        assert!(!err.to_string().contains("abcd1234secret"), "{err}");
        assert!(err.to_string().contains("[redacted]"));
    }
}
