//! The HTTP side of a cluster handle: kube's `Client` (auth, TLS, base URI
//! from the kubeconfig) behind a client-side rate limit and visible,
//! bounded retries. Requests are built with kube's `Request` builders;
//! bodies stay JSON so objects keep exactly the fields the server sent.

use super::errors::{Failure, Target, to_error};
use super::ratelimit::RateLimiter;
use super::retry::{RetryPolicy, jitter_unit};
use crate::ports::cluster::ClusterError;
use serde_json::Value;
use std::sync::Arc;

pub type Notify = Arc<dyn Fn(String) + Send + Sync>;

pub struct Transport {
    /// The handle's name (kubeconfig context).
    pub cluster: String,
    /// API server address, for messages.
    pub server: String,
    pub client: kube::Client,
    pub limiter: RateLimiter,
    pub retry: RetryPolicy,
    pub notify: Notify,
    /// Credentials to scrub from any message.
    pub secrets: Vec<String>,
}

/// A request that can be sent again.
#[derive(Clone)]
pub struct Prepared {
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Prepared {
    pub fn new(req: http::Request<Vec<u8>>) -> Prepared {
        let (parts, body) = req.into_parts();
        Prepared {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        }
    }

    pub fn with_content_type(mut self, content_type: &'static str) -> Prepared {
        self.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        self
    }

    fn build(&self) -> http::Request<kube::client::Body> {
        let mut req = http::Request::new(kube::client::Body::from(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }

    /// `GET /api/v1/namespaces/a/services/b`, without the query.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.uri.path())
    }
}

impl Transport {
    /// One attempt: a rate-limit token, the request, the JSON answer.
    async fn attempt(&self, req: &Prepared) -> Result<Value, Failure> {
        self.limiter.acquire().await;
        let res = self
            .client
            .send(req.build())
            .await
            .map_err(|e| Failure::from_kube(&e))?;
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = res
            .into_body()
            .collect_bytes()
            .await
            .map_err(|e| Failure::from_kube(&e))?;
        if (200..300).contains(&status) {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null);
            }
            serde_json::from_slice(&body).map_err(|e| Failure::Transport {
                message: format!("the server's answer is not JSON: {e}"),
                retryable: false,
            })
        } else {
            Err(Failure::from_response(
                status,
                retry_after.as_deref(),
                &body,
            ))
        }
    }

    /// Sends with the handle's retry policy; the failure of the last attempt
    /// is returned as is, for callers that treat some statuses as answers.
    pub async fn send_raw(&self, req: &Prepared) -> Result<Value, Failure> {
        self.send_with(req, &self.retry).await
    }

    pub async fn send_with(&self, req: &Prepared, policy: &RetryPolicy) -> Result<Value, Failure> {
        let mut attempt = 1;
        loop {
            match self.attempt(req).await {
                Ok(value) => return Ok(value),
                Err(failure) if failure.retryable() && attempt < policy.attempts => {
                    let delay = policy.delay(attempt, failure.retry_after(), jitter_unit());
                    (self.notify)(format!(
                        "↻ {} on cluster `{}`: {}; retry {}/{} in {}",
                        req.describe(),
                        self.cluster,
                        super::errors::redact(&failure.short(), &self.secrets),
                        attempt,
                        policy.attempts - 1,
                        crate::events::format_duration(delay.as_millis() as u64),
                    ));
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(failure) => return Err(failure),
            }
        }
    }

    /// Sends and turns any failure into an error naming the target.
    pub async fn send(&self, target: &Target, req: &Prepared) -> Result<Value, ClusterError> {
        self.send_raw(req).await.map_err(|f| self.error(target, &f))
    }

    pub fn error(&self, target: &Target, failure: &Failure) -> ClusterError {
        to_error(&self.cluster, &self.server, target, failure, &self.secrets)
    }
}
