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
//!
//! A route's service may be a `TraefikService` with `weighted` services
//! (ferry's progressive cutover splits an app's traffic this way): each
//! request goes to one of them as Traefik's weighted round robin picks
//! ([`super::weighted`]), and a backend may be an ExternalName Service,
//! reached at its `externalName` (resolved by the cluster's DNS) on the
//! Service's port, Host header kept — but only when the ingress pod runs
//! with `--providers.kubernetescrd.allowExternalNameServices=true`, as
//! Traefik refuses such services otherwise (its route is dropped: 404).

use super::http::{self, Handler};
use super::network::SharedNetwork;
use crate::lab::apiserver::ClusterStore;
use ::http::StatusCode;
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How one ingress listener is configured, from its container's arguments.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The entry point the listener is (`None`: a port no entry point names).
    pub entry_point: Option<String>,
    /// `--providers.kubernetescrd.allowExternalNameServices=true`.
    pub allow_external_name: bool,
}

impl Settings {
    /// The settings of `container`'s listener on `port`.
    pub fn of(container: &Value, port: u16) -> Settings {
        const FLAG: &str = "--providers.kubernetescrd.allowexternalnameservices";
        let allow_external_name = container["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|arg| {
                let arg = arg.to_ascii_lowercase();
                arg == FLAG || arg == format!("{FLAG}=true")
            });
        Settings {
            entry_point: super::kubelet::entry_point(container, port),
            allow_external_name,
        }
    }
}

/// Serves one entry point of the ingress on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    network: SharedNetwork,
    cluster: Arc<ClusterStore>,
    settings: Settings,
    counters: Arc<super::metrics::Counters>,
    mut shutdown: watch::Receiver<bool>,
) {
    let entry_point = settings.entry_point.clone();
    let handler = handler(network.clone(), cluster.clone(), settings, counters);
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
    let port = service_port(&svc, port)?;
    if svc["spec"]["type"] == "ExternalName" {
        // Traefik dials `<externalName>:<Service port>`, resolved as the
        // ingress pod resolves it.
        let ip = network
            .resolve(cluster, svc["spec"]["externalName"].as_str()?)
            .ok()?;
        return network.route(cluster, ip, port);
    }
    let ip: Ipv4Addr = svc["spec"]["clusterIP"].as_str()?.parse().ok()?;
    network.route(cluster, ip, port)
}

/// The number of `svc`'s port `port` names (a number or a port's name;
/// the first port when it names none).
fn service_port(svc: &Value, port: &Value) -> Option<u16> {
    Some(match port {
        Value::Number(n) => u16::try_from(n.as_u64()?).ok()?,
        Value::String(name) => svc["spec"]["ports"]
            .as_array()?
            .iter()
            .find(|p| p["name"].as_str() == Some(name))?["port"]
            .as_u64()? as u16,
        _ => svc["spec"]["ports"].as_array()?.first()?["port"].as_u64()? as u16,
    })
}

/// Server names in a Traefik TCP rule: every quoted argument of every `HostSNI(...)`.
pub fn sni_hosts(rule: &str) -> Vec<String> {
    arguments(rule, "HostSNI(")
}

pub fn handler(
    network: SharedNetwork,
    cluster: Arc<ClusterStore>,
    settings: Settings,
    counters: Arc<super::metrics::Counters>,
) -> Handler {
    let balancers = Arc::new(Balancers::default());
    Arc::new(move |req| {
        let (network, cluster, counters) = (network.clone(), cluster.clone(), counters.clone());
        let (settings, balancers) = (settings.clone(), balancers.clone());
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
            }) = backend(&cluster, &host, &settings, &balancers)
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

/// One listener's weighted round robins, one per `TraefikService`
/// (`<group>/<ns>/<name>`), started again when its object changes.
#[derive(Default)]
struct Balancers(
    std::sync::Mutex<std::collections::HashMap<String, (String, super::weighted::Wrr)>>,
);

impl Balancers {
    /// The next of `object`'s weighted services, by its balancer.
    fn next(&self, key: &str, object: &Value, weights: &[u64]) -> Option<usize> {
        let version = object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = all.get(key).is_none_or(|(v, _)| v != version);
        if fresh {
            all.insert(
                key.to_owned(),
                (version.to_owned(), super::weighted::Wrr::new(weights)),
            );
        }
        all.get_mut(key)?.1.pick()
    }
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

/// The first route on the listener's entry point whose Host rule matches,
/// with its service resolved to one Service for this request.
fn backend(
    cluster: &ClusterStore,
    host: &str,
    settings: &Settings,
    balancers: &Balancers,
) -> Option<Backend> {
    cluster.with_state(|s| {
        for group in ["traefik.io", "traefik.containo.us"] {
            for route_object in s.scan(&format!("ingressroutes.{group}"), None) {
                if !on_entry_point(route_object, settings.entry_point.as_deref()) {
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
                    let leaf = Leaf {
                        state: s,
                        group,
                        settings,
                        balancers,
                    }
                    .resolve(namespace, service, 0)?;
                    return Some(Backend {
                        response_headers,
                        ..leaf
                    });
                }
            }
        }
        None
    })
}

/// Resolving a route's service reference to the one Service a request
/// goes to: a `TraefikService` picks one of its weighted services.
struct Leaf<'a> {
    state: &'a crate::lab::apiserver::store::State,
    group: &'a str,
    settings: &'a Settings,
    balancers: &'a Balancers,
}

impl Leaf<'_> {
    /// `reference` (a route's or a weighted service's entry) in `namespace`
    /// as the Service to send to; `None` where Traefik has no router
    /// (an unknown TraefikService, an ExternalName it may not use).
    fn resolve(&self, namespace: &str, reference: &Value, depth: usize) -> Option<Backend> {
        let ns = reference["namespace"].as_str().unwrap_or(namespace);
        let name = reference["name"].as_str()?;
        if reference["kind"] == "TraefikService" {
            if depth > 3 {
                return None;
            }
            let key = format!("traefikservices.{}/{ns}/{name}", self.group);
            let object = self.state.objects.get(&key)?;
            let services: Vec<&Value> = object["spec"]["weighted"]["services"]
                .as_array()?
                .iter()
                .collect();
            // Traefik leaves out a service of weight 0 (or less); no weight is 1.
            let weights: Vec<u64> = services
                .iter()
                .map(|s| s["weight"].as_i64().map_or(1, |w| w.max(0) as u64))
                .collect();
            // Traefik builds every service of the split up front: one it
            // cannot use drops the whole route, not just its share.
            if !services.iter().all(|s| self.usable(ns, s, depth + 1)) {
                return None;
            }
            let chosen = self.balancers.next(&key, object, &weights)?;
            return self.resolve(ns, services[chosen], depth + 1);
        }
        if !self.usable(ns, reference, depth) {
            return None;
        }
        Some(Backend {
            namespace: ns.to_owned(),
            service: name.to_owned(),
            port: reference["port"].clone(),
            response_headers: Vec::new(),
            h2c: reference["scheme"] == "h2c",
        })
    }

    /// Whether Traefik can build `reference`: it exists, and an ExternalName
    /// Service only where the provider allows them (a TraefikService: all
    /// of its services).
    fn usable(&self, namespace: &str, reference: &Value, depth: usize) -> bool {
        let ns = reference["namespace"].as_str().unwrap_or(namespace);
        let Some(name) = reference["name"].as_str() else {
            return false;
        };
        if reference["kind"] == "TraefikService" {
            let key = format!("traefikservices.{}/{ns}/{name}", self.group);
            return depth <= 3
                && self.state.objects.get(&key).is_some_and(|o| {
                    o["spec"]["weighted"]["services"]
                        .as_array()
                        .is_some_and(|all| all.iter().all(|s| self.usable(ns, s, depth + 1)))
                });
        }
        self.state
            .objects
            .get(&format!("services/{ns}/{name}"))
            .is_some_and(|svc| {
                svc["spec"]["type"] != "ExternalName" || self.settings.allow_external_name
            })
    }
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
