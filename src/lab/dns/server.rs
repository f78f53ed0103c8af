//! A DNS server on loopback: one UDP socket and one TCP listener on the
//! same port, both handing each request to a [`Service`]. TCP connections
//! use hickory-net's framing and may carry several requests; they close
//! after a while without one (RFC 7766), and everything stops when the
//! lab's shutdown channel says so.

use super::service::{Service, Transport};
use futures::StreamExt;
use hickory_net::DnsStreamHandle;
use hickory_net::runtime::iocompat::AsyncIoTokioAsStd;
use hickory_net::tcp::TcpStream;
use hickory_proto::op::SerialMessage;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

/// How long an idle TCP connection is kept.
const IDLE: Duration = Duration::from_secs(10);
/// Answers a TCP connection may have queued (a long zone transfer).
const QUEUE: usize = 1024;
/// Tries to find a port free for both UDP and TCP.
const BIND_ATTEMPTS: usize = 20;

/// Starts serving on 127.0.0.1 at a free port; returns the address.
pub async fn start(
    service: Arc<Service>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let (udp, tcp) = bind().await?;
    let addr = udp.local_addr()?;
    tokio::spawn(serve_udp(service.clone(), udp, shutdown.clone()));
    tokio::spawn(serve_tcp(service, tcp, shutdown));
    Ok(addr)
}

/// A UDP socket and a TCP listener on the same free port.
async fn bind() -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..BIND_ATTEMPTS {
        let udp = UdpSocket::bind("127.0.0.1:0").await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // Taken for TCP by someone else: try another port.
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port for dns")))
}

/// Resolves once the lab is stopping (or gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

async fn serve_udp(service: Arc<Service>, socket: UdpSocket, mut shutdown: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            () = stopped(&mut shutdown) => return,
        };
        // An error here is about one datagram (or an ICMP error from an
        // earlier answer): keep serving.
        let Ok((len, peer)) = received else { continue };
        for answer in service.handle(&buf[..len], Transport::Udp) {
            let _ = socket.send_to(&answer, peer).await;
        }
    }
}

async fn serve_tcp(
    service: Arc<Service>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = stopped(&mut shutdown) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(connection(service.clone(), stream, peer, shutdown.clone()));
            }
            // Out of file descriptors or similar: let the condition pass.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn connection(
    service: Arc<Service>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    let (mut stream, mut handle) =
        TcpStream::from_stream_with_buffer_size(AsyncIoTokioAsStd(stream), peer, QUEUE);
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(IDLE, stream.next()) => next,
            () = stopped(&mut shutdown) => return,
        };
        let Ok(Some(Ok(request))) = next else {
            // Idle, closed by the client, or a broken frame.
            return;
        };
        for answer in service.handle(request.bytes(), Transport::Tcp) {
            if handle.send(SerialMessage::new(answer, peer)).is_err() {
                return;
            }
        }
    }
}
