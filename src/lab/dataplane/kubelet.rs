//! The lab's kubelet: every Running pod's processes really run. A container
//! whose image is an `http-echo` serves its `-text=` argument (suffixed with
//! the cluster's name, so a reply says where it came from); a `traefik`
//! container is this cluster's ingress controller (`ingress.rs`), each of
//! its ports the entry point its `--entrypoints.<name>.address=:<port>`
//! argument names; a `tcp-echo` container echoes what a TCP connection
//! sends, on each of its ports (a plain TCP service, like a database); a
//! `tls-echo` container serves its text over TLS with a certificate of its
//! own (self-signed for the pod's name), as an app doing its own TLS. Each
//! process listens on 127.0.0.1 and is registered under the pod's IP and
//! container port, where the lab's kube-proxy finds it.

use super::http::{self, Handler};
use super::ingress;
use super::network::{SharedNetwork, listen_ports};
use crate::lab::apiserver::{ChangeKind, ClusterStore};
use serde_json::Value;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

/// What a container runs.
enum Process {
    Echo(String),
    Ingress,
    TcpEcho,
    /// Its text over HTTPS, with a certificate for the pod's name.
    TlsEcho(String),
}

/// The Traefik entry point a container port is, from the container's
/// `--entrypoints.<name>.address=[host]:<port>` arguments (Traefik reads
/// option names case-insensitively).
pub fn entry_point(container: &Value, port: u16) -> Option<String> {
    const PREFIX: &str = "--entrypoints.";
    container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|arg| {
            let head = arg.get(..PREFIX.len())?;
            if !head.eq_ignore_ascii_case(PREFIX) {
                return None;
            }
            let rest = &arg[PREFIX.len()..];
            let (name, address) = rest.split_once('=')?;
            let name = name
                .strip_suffix(".address")
                .or_else(|| name.strip_suffix(".Address"))?;
            // `:8000`, `0.0.0.0:8000`, `:8000/udp`.
            let listens: u16 = address
                .rsplit(':')
                .next()?
                .split('/')
                .next()?
                .parse()
                .ok()?;
            (listens == port).then(|| name.to_owned())
        })
}

/// The ports a container serves on once the kubelet runs it (none for
/// exec-only containers).
pub fn serving_ports(container: &Value) -> Vec<u16> {
    process(container)
        .map(|(_, ports)| ports)
        .unwrap_or_default()
}

fn process(container: &Value) -> Option<(Process, Vec<u16>)> {
    let image = container["image"].as_str().unwrap_or_default();
    let args: Vec<&str> = container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut ports = listen_ports(container);
    if image.contains("tcp-echo") {
        return Some((Process::TcpEcho, ports));
    }
    if image.contains("tls-echo") {
        let text = args.iter().find_map(|a| a.strip_prefix("-text="));
        return Some((
            Process::TlsEcho(text.unwrap_or("hello-world").to_owned()),
            ports,
        ));
    }
    if image.contains("traefik") {
        if ports.is_empty() {
            ports.push(8000);
        }
        return Some((Process::Ingress, ports));
    }
    let text = args.iter().find_map(|a| a.strip_prefix("-text="));
    if image.contains("http-echo") || text.is_some() {
        if ports.is_empty() {
            ports.push(5678);
        }
        return Some((
            Process::Echo(text.unwrap_or("hello-world").to_owned()),
            ports,
        ));
    }
    None
}

/// Runs the pods of `cluster` until shutdown.
pub async fn run(
    network: SharedNetwork,
    cluster: Arc<ClusterStore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut changes = cluster.subscribe();
    // pod uid -> (pod IP, stop signal of its processes)
    let mut running: HashMap<String, (Ipv4Addr, watch::Sender<bool>)> = HashMap::new();
    sync_all(&network, &cluster, &mut running, &shutdown).await;
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        match change {
            Ok(change) if change.resource == "pods" => {
                let uid = change.object["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let gone = change.kind == ChangeKind::Deleted
                    || !change.object["metadata"]["deletionTimestamp"].is_null();
                if gone {
                    stop(&network, &mut running, &uid);
                } else if !running.contains_key(&uid) {
                    start(&network, &cluster, &change.object, &mut running, &shutdown).await;
                }
            }
            Ok(_) => {}
            // Missed changes: look at every pod again.
            Err(broadcast::error::RecvError::Lagged(_)) => {
                sync_all(&network, &cluster, &mut running, &shutdown).await
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
    for (_, (_, stop)) in running.drain() {
        let _ = stop.send(true);
    }
}

async fn sync_all(
    network: &SharedNetwork,
    cluster: &Arc<ClusterStore>,
    running: &mut HashMap<String, (Ipv4Addr, watch::Sender<bool>)>,
    shutdown: &watch::Receiver<bool>,
) {
    let pods: Vec<Value> = cluster.with_state(|s| s.scan("pods", None).cloned().collect());
    let live: Vec<String> = pods
        .iter()
        .filter_map(|p| p["metadata"]["uid"].as_str().map(str::to_owned))
        .collect();
    let stale: Vec<String> = running
        .keys()
        .filter(|uid| !live.contains(uid))
        .cloned()
        .collect();
    for uid in stale {
        stop(network, running, &uid);
    }
    for pod in pods {
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !running.contains_key(&uid) && pod["metadata"]["deletionTimestamp"].is_null() {
            start(network, cluster, &pod, running, shutdown).await;
        }
    }
}

fn stop(
    network: &SharedNetwork,
    running: &mut HashMap<String, (Ipv4Addr, watch::Sender<bool>)>,
    uid: &str,
) {
    if let Some((ip, stop)) = running.remove(uid) {
        network.unregister(ip);
        let _ = stop.send(true);
    }
}

async fn start(
    network: &SharedNetwork,
    cluster: &Arc<ClusterStore>,
    pod: &Value,
    running: &mut HashMap<String, (Ipv4Addr, watch::Sender<bool>)>,
    shutdown: &watch::Receiver<bool>,
) {
    let (Some(uid), Some(pod_ip)) = (
        pod["metadata"]["uid"].as_str(),
        pod["status"]["podIP"]
            .as_str()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok()),
    ) else {
        return;
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    for container in pod["spec"]["containers"].as_array().into_iter().flatten() {
        let Some((process, ports)) = process(container) else {
            continue;
        };
        let echo: Option<Handler> = match &process {
            Process::Echo(text) | Process::TlsEcho(text) => {
                let reply = format!("{text} (cluster {})\n", cluster.name);
                Some(Arc::new(move |_req| {
                    let reply = reply.clone();
                    Box::pin(async move { http::text(::http::StatusCode::OK, reply) })
                }))
            }
            _ => None,
        };
        // An ingress pod's counters, served on its metrics entry point.
        let counters = Arc::new(super::metrics::Counters::default());
        let metrics_port = matches!(process, Process::Ingress)
            .then(|| super::metrics::port(container))
            .flatten();
        for port in ports {
            let handler: Option<Handler> = match process {
                Process::Ingress if Some(port) == metrics_port => {
                    Some(super::metrics::handler(counters.clone()))
                }
                Process::Echo(_) | Process::TlsEcho(_) => echo.clone(),
                Process::Ingress | Process::TcpEcho => None,
            };
            let tls = match process {
                Process::TlsEcho(_) => {
                    let name = pod["metadata"]["name"].as_str().unwrap_or("pod");
                    match self_signed(name) {
                        Some(tls) => Some(tls),
                        None => continue,
                    }
                }
                _ => None,
            };
            let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
                continue;
            };
            let Ok(real) = listener.local_addr() else {
                continue;
            };
            network.register(pod_ip, port, real);
            let mut stop = stop_rx.clone();
            let mut lab_stop = shutdown.clone();
            let (task_tx, task_rx) = watch::channel(false);
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => {}
                    _ = lab_stop.wait_for(|s| *s) => {}
                }
                let _ = task_tx.send(true);
            });
            match (handler, tls, &process) {
                (Some(handler), Some(tls), _) => {
                    tokio::spawn(serve_tls(listener, handler, tls, task_rx));
                }
                (Some(handler), None, _) => {
                    tokio::spawn(http::serve(listener, handler, task_rx));
                }
                (None, _, Process::Ingress) => {
                    tokio::spawn(ingress::serve(
                        listener,
                        network.clone(),
                        cluster.clone(),
                        ingress::Settings::of(container, port),
                        counters.clone(),
                        task_rx,
                    ));
                }
                (None, _, _) => {
                    tokio::spawn(tcp_echo(listener, task_rx));
                }
            }
        }
    }
    running.insert(uid.to_owned(), (pod_ip, stop_tx));
}

/// A plain TCP service: every connection gets back what it sends, until
/// it closes or the pod stops.
async fn tcp_echo(listener: tokio::net::TcpListener, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok((mut stream, _)) = accepted else {
            continue;
        };
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let (mut read, mut write) = stream.split();
            tokio::select! {
                _ = tokio::io::copy(&mut read, &mut write) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }
}

/// A TLS acceptor with a fresh self-signed certificate for `name`.
fn self_signed(name: &str) -> Option<tokio_rustls::TlsAcceptor> {
    crate::tls::install_provider();
    let key = rcgen::generate_simple_self_signed(vec![name.to_owned()]).ok()?;
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        key.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![key.cert.der().clone()], der)
        .ok()?;
    Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves `handler` over TLS on `listener` until the pod stops.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    handler: Handler,
    tls: tokio_rustls::TlsAcceptor,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let (tls, handler) = (tls.clone(), handler.clone());
        tokio::spawn(async move {
            if let Ok(stream) = tls.accept(stream).await {
                http::serve_connection(stream, handler).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn entry_points_are_read_from_traefiks_arguments_in_any_case() {
        let container = serde_json::json!({ "args": [
            "--providers.kubernetescrd",
            "--entryPoints.web.address=:8000/tcp",
            "--entrypoints.metrics.address=0.0.0.0:9090",
        ] });
        assert_eq!(super::entry_point(&container, 8000).as_deref(), Some("web"));
        assert_eq!(
            super::entry_point(&container, 9090).as_deref(),
            Some("metrics")
        );
        assert_eq!(super::entry_point(&container, 80), None);
    }
}
