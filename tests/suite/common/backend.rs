//! A real HTTP(S) backend for probe tests: a hyper server on a loopback
//! port, in this test process, that can be stopped and started again on the
//! same port. It counts TCP connections and requests, and answers:
//!
//! * `/status/NNN`: status NNN;
//! * `/slow`: after 30s (for timeouts);
//! * anything else: 200 `Hello from NAME (Host: HOST)`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::task::{JoinHandle, JoinSet};

#[derive(Default)]
pub struct Counts {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    /// When non-zero, every answer has this status (an app not ready yet).
    pub forced_status: AtomicU16,
}

pub struct Backend {
    pub port: u16,
    pub name: String,
    /// PEM of the self-signed certificate when serving HTTPS.
    pub cert_pem: Option<String>,
    counts: Arc<Counts>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// Speaks HTTP/2 by prior knowledge only (h2c, as gRPC servers do).
    h2c: bool,
    server: Mutex<Option<JoinHandle<()>>>,
    rt: tokio::runtime::Runtime,
}

/// A port outside the kernel's ephemeral range, so no outgoing connection
/// can take it while the backend is stopped.
fn quiet_port() -> std::net::TcpListener {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    for i in 0..10_000u64 {
        let port =
            20_000 + ((seed.wrapping_mul(2654435761).wrapping_add(i * 7919)) % 12_000) as u16;
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return listener;
        }
    }
    panic!("no free loopback port in 20000-32000");
}

impl Backend {
    pub fn start(name: &str) -> Backend {
        Self::launch(name, false)
    }

    /// HTTPS with a fresh self-signed certificate for `localhost` and `tls.test`.
    pub fn start_tls(name: &str) -> Backend {
        Self::launch(name, true)
    }

    /// h2c only: an HTTP/1 request gets no answer, as from a gRPC server.
    pub fn start_h2c(name: &str) -> Backend {
        let (mut backend, listener) = Self::prepare(name, false);
        backend.h2c = true;
        backend.listen(listener);
        backend
    }

    fn launch(name: &str, tls: bool) -> Backend {
        let (backend, listener) = Self::prepare(name, tls);
        backend.listen(listener);
        backend
    }

    /// The backend and its bound port, not serving yet.
    fn prepare(name: &str, tls: bool) -> (Backend, std::net::TcpListener) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("backend runtime");
        let (tls, cert_pem) = if tls {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let key =
                rcgen::generate_simple_self_signed(vec!["localhost".into(), "tls.test".into()])
                    .expect("self-signed certificate");
            let der = rustls::pki_types::PrivateKeyDer::Pkcs8(
                rustls::pki_types::PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()),
            );
            let config = rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(vec![key.cert.der().clone()], der)
                .expect("server TLS config");
            (
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
                Some(key.cert.pem()),
            )
        } else {
            (None, None)
        };
        let listener = quiet_port();
        let port = listener.local_addr().unwrap().port();
        let backend = Backend {
            port,
            name: name.to_owned(),
            cert_pem,
            counts: Arc::new(Counts::default()),
            tls,
            h2c: false,
            server: Mutex::new(None),
            rt,
        };
        (backend, listener)
    }

    fn listen(&self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let listener = {
            let _guard = self.rt.enter();
            tokio::net::TcpListener::from_std(listener).unwrap()
        };
        self.serve(listener);
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    pub fn connections(&self) -> u64 {
        self.counts.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> u64 {
        self.counts.requests.load(Ordering::SeqCst)
    }

    /// Answers every request with `status` (`None`: answer normally again).
    pub fn force_status(&self, status: Option<u16>) {
        self.counts
            .forced_status
            .store(status.unwrap_or(0), Ordering::SeqCst);
    }

    /// Closes the listener and every open connection; returns once the port is closed.
    pub fn stop(&self) {
        if let Some(server) = self.server.lock().unwrap().take() {
            server.abort();
            let _ = self.rt.block_on(server);
        }
    }

    /// Listens again on the same port.
    pub fn restart(&self) {
        let port = self.port;
        let mut listener = None;
        super::await_condition("the backend's port to be free again", || {
            listener = self
                .rt
                .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
                .ok();
            listener.is_some()
        });
        self.serve(listener.unwrap());
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (counts, tls, name) = (self.counts.clone(), self.tls.clone(), self.name.clone());
        let h2c = self.h2c;
        let server = self.rt.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                counts.connections.fetch_add(1, Ordering::SeqCst);
                let (counts, tls, name) = (counts.clone(), tls.clone(), name.clone());
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        counts.requests.fetch_add(1, Ordering::SeqCst);
                        let forced = counts.forced_status.load(Ordering::SeqCst);
                        answer(name.clone(), forced, req)
                    });
                    if h2c {
                        let http2 = hyper::server::conn::http2::Builder::new(
                            hyper_util::rt::TokioExecutor::new(),
                        );
                        let _ = http2.serve_connection(TokioIo::new(stream), service).await;
                        return;
                    }
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
                // Reap finished connections.
                while connections.try_join_next().is_some() {}
            }
        });
        *self.server.lock().unwrap() = Some(server);
    }
}

async fn answer(
    name: String,
    forced: u16,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    // HTTP/2 names the host in the :authority of the URI.
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    if path == "/slow" {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    }
    let status = path
        .strip_prefix("/status/")
        .and_then(|c| c.parse::<u16>().ok())
        .or((forced != 0).then_some(forced))
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::OK);
    let body = format!(
        "Hello from {name} (Host: {host}) status {}",
        status.as_u16()
    );
    Ok(Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(body)))
        .unwrap())
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}
