//! One HTTP request from a pod, shared by `curl` and `wget`: the pod's DNS
//! (or `--resolve`), the lab's routing of the address to a real listener,
//! and every way that can fail, with both tools' wording for it.

use super::Shell;
use crate::lab::dataplane::http::{SendError, send, send_h2c};
use crate::lab::dataplane::network::ResolveError;
use bytes::Bytes;
use http_body_util::Full;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

impl Shell<'_> {
    /// Where a connection from this pod to `url`'s host and port goes:
    /// `--resolve` / `--connect-to` first, then the pod's DNS, then the
    /// lab's routing; the real listener and the address the client sees.
    pub(super) fn connect_target(
        &self,
        request: &HttpRequest,
        uri: &http::Uri,
    ) -> Result<(SocketAddr, SocketAddr), Failure> {
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri.port_u16().unwrap_or(80);
        let (ip, connect_port) = match request
            .resolve
            .iter()
            .find(|(h, p, _, _)| h.eq_ignore_ascii_case(&host) && *p == port)
        {
            Some((_, _, ip, to_port)) => (*ip, *to_port),
            None => {
                let ip = self.network.resolve(self.cluster, &host).map_err(
                    |ResolveError::NotFound(name)| Failure {
                        curl_code: 6,
                        message: format!("Could not resolve host: {name}"),
                        wget_message: format!("bad address '{name}'"),
                    },
                )?;
                (ip, port)
            }
        };
        let real = self
            .network
            .route(self.cluster, ip, connect_port)
            .ok_or_else(|| refused(&host, port, ip))?;
        Ok((real, SocketAddr::from((ip, connect_port))))
    }

    /// One HTTP request from this pod.
    pub(super) async fn fetch(&self, request: &HttpRequest) -> Result<HttpResponse, Failure> {
        let uri: http::Uri = request.url.parse().map_err(|_| {
            Failure::new(
                3,
                format!(
                    "URL using bad/illegal format or missing URL: {}",
                    request.url
                ),
            )
        })?;
        if uri.scheme_str() == Some("https") {
            return Err(Failure::new(
                7,
                "Failed to connect: TLS is not served inside the lab (use http://)".into(),
            ));
        }
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri.port_u16().unwrap_or(80);
        let (real, remote) = self.connect_target(request, &uri)?;
        let ip = *match &remote {
            SocketAddr::V4(v4) => v4.ip(),
            SocketAddr::V6(_) => &Ipv4Addr::UNSPECIFIED,
        };
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut builder = http::Request::builder()
            .method(request.method.as_str())
            .uri(path);
        let mut host_header = if port == 80 {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        for header in &request.headers {
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("host") {
                host_header = value.trim().to_owned();
            } else {
                builder = builder.header(name.trim(), value.trim());
            }
        }
        // HTTP/2 carries the host as the :authority of an absolute URI.
        builder = if request.h2c {
            builder.uri(format!("http://{host_header}{path}"))
        } else {
            builder.header("host", host_header)
        };
        builder = builder
            .header("user-agent", "curl/8.5.0")
            .header("accept", "*/*");
        let req = builder
            .body(Full::new(Bytes::from(
                request.data.clone().unwrap_or_default(),
            )))
            .map_err(|e| Failure::new(3, e.to_string()))?;
        let timeout = request.timeout.unwrap_or(Duration::from_secs(300));
        let sent = async {
            if request.h2c {
                send_h2c(real, req).await
            } else {
                send(real, req).await
            }
        };
        let response = match tokio::time::timeout(timeout, sent).await {
            Err(_) => {
                return Err(Failure {
                    curl_code: 28,
                    message: format!(
                        "Operation timed out after {} milliseconds with 0 bytes received",
                        timeout.as_millis()
                    ),
                    wget_message: "download timed out".into(),
                });
            }
            Ok(Err(SendError::Connect(_))) => return Err(refused(&host, port, ip)),
            Ok(Err(SendError::Http(e))) => {
                return Err(Failure::new(56, format!("Recv failure: {e}")));
            }
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        let version = if request.h2c { "HTTP/2" } else { "HTTP/1.1" };
        let mut head = format!(
            "{version} {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        for (name, value) in response.headers() {
            head.push_str(&format!(
                "{name}: {}\r\n",
                value.to_str().unwrap_or_default()
            ));
        }
        head.push_str("\r\n");
        Ok(HttpResponse {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_owned(),
            head,
            body: response.into_body(),
            remote,
        })
    }
}

/// A connection the lab refused, in curl's and wget's words.
fn refused(host: &str, port: u16, ip: Ipv4Addr) -> Failure {
    Failure {
        curl_code: 7,
        message: format!(
            "Failed to connect to {host} port {port} after 0 ms: Couldn't connect to server"
        ),
        wget_message: format!("can't connect to remote host ({ip}): Connection refused"),
    }
}

#[derive(Default)]
pub(super) struct HttpRequest {
    pub(super) url: String,
    pub(super) method: String,
    pub(super) headers: Vec<String>,
    pub(super) data: Option<String>,
    pub(super) timeout: Option<Duration>,
    /// HTTP/2 by prior knowledge (curl's `--http2-prior-knowledge`).
    pub(super) h2c: bool,
    /// (host, port) -> (address, port) to connect to instead.
    pub(super) resolve: Vec<(String, u16, Ipv4Addr, u16)>,
}

pub(super) struct HttpResponse {
    pub(super) status: u16,
    pub(super) reason: String,
    pub(super) head: String,
    pub(super) body: Bytes,
    /// The address the client connected to (virtual).
    pub(super) remote: SocketAddr,
}

pub(super) struct Failure {
    pub(super) curl_code: i32,
    pub(super) message: String,
    pub(super) wget_message: String,
}

impl Failure {
    fn new(curl_code: i32, message: String) -> Self {
        Failure {
            curl_code,
            wget_message: message.clone(),
            message,
        }
    }
}
