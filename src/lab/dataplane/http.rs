//! Small HTTP pieces the data plane shares: serving a handler on a
//! listener, and sending one request to a real address (a pod's process)
//! with the virtual Host the client used.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;

pub type Body = BoxBody<Bytes, Infallible>;
pub type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync,
>;

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(body.into()).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

/// Serves `handler` on `listener` (HTTP/1.1 and h2c) until shutdown.
pub async fn serve(
    listener: tokio::net::TcpListener,
    handler: Handler,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        tokio::spawn(serve_connection(stream, handler.clone()));
    }
}

/// Serves `handler` on one accepted connection (HTTP/1.1 and h2c), plain
/// or TLS.
pub async fn serve_connection<S>(stream: S, handler: Handler)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler(req).await) }
    });
    let builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    let _ = builder
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
}

/// What went wrong sending a request.
#[derive(Debug)]
pub enum SendError {
    Connect(std::io::Error),
    Http(String),
}

/// Sends `req` over a fresh connection to `real` and collects the response.
pub async fn send(
    real: SocketAddr,
    req: Request<Full<Bytes>>,
) -> Result<Response<Bytes>, SendError> {
    let stream = tokio::net::TcpStream::connect(real)
        .await
        .map_err(SendError::Connect)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| SendError::Http(e.to_string()))?;
    tokio::spawn(connection);
    collected(sender.send_request(req).await).await
}

/// A response with its whole body read.
async fn collected(
    response: Result<Response<Incoming>, hyper::Error>,
) -> Result<Response<Bytes>, SendError> {
    let (parts, body) = response
        .map_err(|e| SendError::Http(e.to_string()))?
        .into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| SendError::Http(e.to_string()))?
        .to_bytes();
    Ok(Response::from_parts(parts, body))
}

/// [`send`] over HTTP/2 by prior knowledge (h2c), as gRPC clients and
/// Traefik's `scheme: h2c` speak to a backend.
pub async fn send_h2c(
    real: SocketAddr,
    req: Request<Full<Bytes>>,
) -> Result<Response<Bytes>, SendError> {
    let stream = tokio::net::TcpStream::connect(real)
        .await
        .map_err(SendError::Connect)?;
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .map_err(|e| SendError::Http(e.to_string()))?;
    tokio::spawn(connection);
    collected(sender.send_request(req).await).await
}

/// Forwards an incoming request to `real`, keeping method, path, headers and body.
pub async fn forward(real: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    forward_as(real, req, false).await
}

/// [`forward`], over h2c to the backend when `h2c` (a route's `scheme: h2c`).
pub async fn forward_as(real: SocketAddr, req: Request<Incoming>, h2c: bool) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return text(StatusCode::BAD_REQUEST, "Bad Request\n");
    };
    let mut outbound = Request::from_parts(parts, Full::new(body));
    // The inbound hop's Host (HTTP/1) or :authority (HTTP/2).
    let authority = outbound
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| outbound.uri().authority().map(|a| a.to_string()));
    let path = outbound.uri().path_and_query().cloned();
    let sent = if h2c {
        *outbound.version_mut() = http::Version::HTTP_2;
        outbound.headers_mut().remove(http::header::HOST);
        if let (Some(path), Some(authority)) = (path, authority)
            && let Ok(uri) = http::Uri::builder()
                .scheme("http")
                .authority(authority)
                .path_and_query(path)
                .build()
        {
            *outbound.uri_mut() = uri;
        }
        send_h2c(real, outbound).await
    } else {
        // HTTP/1.1 to the backend: drop what only made sense on the inbound hop.
        *outbound.version_mut() = http::Version::HTTP_11;
        if let Some(authority) = authority
            && let Ok(value) = http::HeaderValue::from_str(&authority)
        {
            outbound.headers_mut().insert(http::header::HOST, value);
        }
        if let Some(path) = path
            && let Ok(uri) = http::Uri::builder().path_and_query(path).build()
        {
            *outbound.uri_mut() = uri;
        }
        send(real, outbound).await
    };
    match sent {
        Ok(response) => response.map(|b| Full::new(b).boxed()),
        Err(_) => text(StatusCode::BAD_GATEWAY, "Bad Gateway\n"),
    }
}
