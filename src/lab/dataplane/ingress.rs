//! A cluster's ingress controller, as Traefik behaves for the article: a
//! request is matched by its Host header against the cluster's IngressRoute
//! rules (`traefik.io/v1alpha1` and the article's `traefik.containo.us/
//! v1alpha1`; `Host(`a`) || Host(`b`)` and `Host(`a`, `b`)` forms) and sent
//! to the named Service through the lab's kube-proxy. No match answers
//! Traefik's `404 page not found`; a Service without ready pods `no available
//! server`. A route's `headers` Middlewares (`customResponseHeaders`) are
//! applied to its answers, as ferry's bridge routes use them to mark the
//! path an answer took. Routes are read on every request, so a new
//! IngressRoute routes at once. Each listener is one entry point: a route
//! serves on those its `entryPoints` name (all of them when it names
//! none, as Traefik does), and a route's service with `scheme: h2c` is
//! spoken to in HTTP/2 by prior knowledge (a gRPC backend). On an entry
//! point with IngressRouteTCPs, a connection that opens with a TLS
//! ClientHello whose SNI a route's `HostSNI` matches is passed through, TLS
//! and all, to the route's Service (Traefik's `tls.passthrough`); any other
//! connection is HTTP. Each HTTP answer is counted per backend
//! (`metrics`), as Traefik's Prometheus metrics count them.

use super::http::{self, Handler};
use super::network::SharedNetwork;
use crate::lab::apiserver::ClusterStore;
use ::http::StatusCode;
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Serves one entry point of the ingress on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    network: SharedNetwork,
    cluster: Arc<ClusterStore>,
    entry_point: Option<String>,
    counters: Arc<super::metrics::Counters>,
    mut shutdown: watch::Receiver<bool>,
) {
    let handler = handler(
        network.clone(),
        cluster.clone(),
        entry_point.clone(),
        counters,
    );
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let (network, cluster, entry_point, handler) = (
            network.clone(),
            cluster.clone(),
            entry_point.clone(),
            handler.clone(),
        );
        tokio::spawn(async move {
            let routes = tcp_routes(&cluster, entry_point.as_deref());
            if !routes.is_empty() {
                match passthrough(&stream, &routes).await {
                    Passthrough::To(namespace, service, port) => {
                        if let Some(real) =
                            service_address(&network, &cluster, &namespace, &service, &port)
                            && let Ok(mut outbound) = tokio::net::TcpStream::connect(real).await
                        {
                            let mut inbound = stream;
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                        return;
                    }
                    // TLS for no route: Traefik would answer with its
                    // default certificate; the lab serves no TLS.
                    Passthrough::Unrouted => return,
                    Passthrough::NotTls => {}
                }
            }
            http::serve_connection(stream, handler).await;
        });
    }
}

/// A TCP route on an entry point: the SNI names it matches (`*`: any) and
/// its first service.
struct TcpRoute {
    hosts: Vec<String>,
    namespace: String,
    service: String,
    port: Value,
}

/// The IngressRouteTCPs with TLS passthrough on `entry_point`.
fn tcp_routes(cluster: &ClusterStore, entry_point: Option<&str>) -> Vec<TcpRoute> {
    cluster.with_state(|s| {
        let mut found = Vec::new();
        for group in ["traefik.io", "traefik.containo.us"] {
            for object in s.scan(&format!("ingressroutetcps.{group}"), None) {
                if !on_entry_point(object, entry_point)
                    || object["spec"]["tls"]["passthrough"] != true
                {
                    continue;
                }
                let namespace = object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default");
                for route in object["spec"]["routes"].as_array().into_iter().flatten() {
                    let Some(service) = route["services"].get(0) else {
                        continue;
                    };
                    found.push(TcpRoute {
                        hosts: sni_hosts(route["match"].as_str().unwrap_or_default()),
                        namespace: service["namespace"]
                            .as_str()
                            .unwrap_or(namespace)
                            .to_owned(),
                        service: service["name"].as_str().unwrap_or_default().to_owned(),
                        port: service["port"].clone(),
                    });
                }
            }
        }
        found
    })
}

enum Passthrough {
    To(String, String, Value),
    Unrouted,
    NotTls,
}

/// Peeks at the connection's first bytes: a TLS ClientHello's SNI matched
/// against `routes`, without consuming anything (the bytes go on to the
/// backend as they came).
async fn passthrough(stream: &tokio::net::TcpStream, routes: &[TcpRoute]) -> Passthrough {
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let peeked = tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await;
        let Ok(Ok(n)) = peeked else {
            return Passthrough::NotTls;
        };
        if n == 0 || buf[0] != 0x16 {
            return Passthrough::NotTls;
        }
        let mut acceptor = rustls::server::Acceptor::default();
        let mut bytes = &buf[..n];
        if acceptor.read_tls(&mut bytes).is_err() {
            return Passthrough::NotTls;
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let name = accepted
                    .client_hello()
                    .server_name()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                return routes
                    .iter()
                    .find(|r| r.hosts.iter().any(|h| h == "*" || *h == name))
                    .map_or(Passthrough::Unrouted, |r| {
                        Passthrough::To(r.namespace.clone(), r.service.clone(), r.port.clone())
                    });
            }
            Ok(None) if n < buf.len() && tokio::time::Instant::now() < deadline => {
                // The ClientHello is not all here yet.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            _ => return Passthrough::NotTls,
        }
    }
}

/// Where a connection to `namespace/service`'s `port` (number or name) goes.
fn service_address(
    network: &SharedNetwork,
    cluster: &ClusterStore,
    namespace: &str,
    service: &str,
    port: &Value,
) -> Option<SocketAddr> {
    let svc = cluster.with_state(|s| {
        s.objects
            .get(&format!("services/{namespace}/{service}"))
            .cloned()
    })?;
    let ip: Ipv4Addr = svc["spec"]["clusterIP"].as_str()?.parse().ok()?;
    let port = match port {
        Value::Number(n) => u16::try_from(n.as_u64()?).ok()?,
        Value::String(name) => svc["spec"]["ports"]
            .as_array()?
            .iter()
            .find(|p| p["name"].as_str() == Some(name))?["port"]
            .as_u64()? as u16,
        _ => svc["spec"]["ports"].as_array()?.first()?["port"].as_u64()? as u16,
    };
    network.route(cluster, ip, port)
}

/// Server names in a Traefik TCP rule: every quoted argument of every `HostSNI(...)`.
pub fn sni_hosts(rule: &str) -> Vec<String> {
    arguments(rule, "HostSNI(")
}

pub fn handler(
    network: SharedNetwork,
    cluster: Arc<ClusterStore>,
    entry_point: Option<String>,
    counters: Arc<super::metrics::Counters>,
) -> Handler {
    Arc::new(move |req| {
        let (network, cluster, counters) = (network.clone(), cluster.clone(), counters.clone());
        let entry_point = entry_point.clone();
        Box::pin(async move {
            let method = req.method().as_str().to_owned();
            let host = req
                .headers()
                .get(::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .or(req.uri().host())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let host = host
                .rsplit_once(':')
                .filter(|(_, p)| p.parse::<u16>().is_ok())
                .map_or(host.as_str(), |(h, _)| h)
                .to_owned();
            let Some(Backend {
                namespace,
                service,
                port,
                response_headers,
                h2c,
            }) = backend(&cluster, &host, entry_point.as_deref())
            else {
                return http::text(StatusCode::NOT_FOUND, "404 page not found\n");
            };
            let target = service_address(&network, &cluster, &namespace, &service, &port);
            let label = super::metrics::service_label(&namespace, &service, &port);
            let mut response = match target {
                Some(real) => http::forward_as(real, req, h2c).await,
                None => http::text(StatusCode::SERVICE_UNAVAILABLE, "no available server\n"),
            };
            counters.count(&label, &method, response.status().as_u16());
            for (name, value) in response_headers {
                if let (Ok(name), Ok(value)) = (
                    ::http::HeaderName::from_bytes(name.as_bytes()),
                    ::http::HeaderValue::from_str(&value),
                ) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        })
    })
}

/// Where a matched route sends a request, and the headers its Middlewares
/// add to the answer.
struct Backend {
    namespace: String,
    service: String,
    port: Value,
    response_headers: Vec<(String, String)>,
    /// The service's `scheme: h2c`.
    h2c: bool,
}

/// Whether a route object serves on `entry_point` (`None`: a listener
/// that is no named entry point, which every route reaches).
fn on_entry_point(route_object: &Value, entry_point: Option<&str>) -> bool {
    let Some(entry_point) = entry_point else {
        return true;
    };
    match route_object["spec"]["entryPoints"].as_array() {
        Some(names) if !names.is_empty() => names.iter().any(|n| n.as_str() == Some(entry_point)),
        _ => true,
    }
}

/// The first route on `entry_point` whose Host rule matches.
fn backend(cluster: &ClusterStore, host: &str, entry_point: Option<&str>) -> Option<Backend> {
    cluster.with_state(|s| {
        for group in ["traefik.io", "traefik.containo.us"] {
            for route_object in s.scan(&format!("ingressroutes.{group}"), None) {
                if !on_entry_point(route_object, entry_point) {
                    continue;
                }
                let namespace = route_object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default");
                for route in route_object["spec"]["routes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let rule = route["match"].as_str().unwrap_or_default();
                    if !hosts(rule).iter().any(|h| h == host) {
                        continue;
                    }
                    let service = route["services"].as_array()?.first()?;
                    let response_headers = route["middlewares"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|m| {
                            let ns = m["namespace"].as_str().unwrap_or(namespace);
                            let key = format!("middlewares.{group}/{ns}/{}", m["name"].as_str()?);
                            s.objects.get(&key)
                        })
                        .flat_map(|m| {
                            m["spec"]["headers"]["customResponseHeaders"]
                                .as_object()
                                .into_iter()
                                .flatten()
                                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    return Some(Backend {
                        namespace: service["namespace"]
                            .as_str()
                            .unwrap_or(namespace)
                            .to_owned(),
                        service: service["name"].as_str()?.to_owned(),
                        port: service["port"].clone(),
                        response_headers,
                        h2c: service["scheme"] == "h2c",
                    });
                }
            }
        }
        None
    })
}

/// Host names in a Traefik rule: every quoted argument of every `Host(...)`.
pub fn hosts(rule: &str) -> Vec<String> {
    arguments(rule, "Host(")
}

/// Every quoted argument of every `matcher` (`Host(`) in `rule`, lower case.
fn arguments(rule: &str, matcher: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = rule;
    while let Some(start) = rest.find(matcher) {
        rest = &rest[start + matcher.len()..];
        let Some(end) = rest.find(')') else { break };
        for part in rest[..end].split(',') {
            let name = part
                .trim()
                .trim_matches(|c| c == '`' || c == '"' || c == '\'')
                .to_ascii_lowercase();
            if !name.is_empty() {
                found.push(name);
            }
        }
        rest = &rest[end..];
    }
    found
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_rules_in_both_traefik_forms() {
        assert_eq!(
            super::hosts("Host(`app1.app1-ns`) || Host(`app1.app1-ns.svc.local`)"),
            ["app1.app1-ns", "app1.app1-ns.svc.local"]
        );
        assert_eq!(
            super::hosts("Host(`a`, `B`) && PathPrefix(`/x`)"),
            ["a", "b"]
        );
        assert!(super::hosts("PathPrefix(`/`)").is_empty());
        assert_eq!(
            super::sni_hosts("HostSNI(`app1.ns`) || HostSNI(`*`)"),
            ["app1.ns", "*"]
        );
        assert!(super::sni_hosts("Host(`app1.ns`)").is_empty());
        assert!(super::hosts("HostSNI(`app1.ns`)").is_empty());
    }
}
