//! How traffic moves inside the lab. A pod resolves names through its
//! cluster's DNS (`<svc>.<ns>[.svc[.cluster.local]]` from that cluster's
//! Services: ClusterIP -> its IP, ExternalName -> a CNAME chased through the
//! private zone) and then the private zone; a connection to a Service IP is
//! sent to one of the Service's ready pods (the lab's kube-proxy); a
//! LoadBalancer address reaches its Service from anywhere. Every pod process
//! really listens on 127.0.0.1, and `endpoints` maps (pod IP, port) to it.

use crate::lab::apiserver::ClusterStore;
use crate::lab::apiserver::selector::LabelSelector;
use crate::lab::zone::ZoneStore;
use serde_json::Value;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long the lab's kube-proxy keeps sending a Service address to the
/// Service it belonged to after that Service changed: a real kube-proxy
/// applies changes at its next sync (a second or so later), so a client
/// that resolved `app.ns` to its ClusterIP just before a flip to
/// ExternalName still reaches the pods when it connects just after.
/// (Rules of two clusters never collide: their address ranges differ.)
pub const PROXY_SYNC: Duration = Duration::from_secs(1);

pub struct Network {
    pub zone: Arc<ZoneStore>,
    pub clusters: Vec<Arc<ClusterStore>>,
    endpoints: RwLock<HashMap<(Ipv4Addr, u16), SocketAddr>>,
    round_robin: AtomicUsize,
    /// The lab's kube-proxy rules: where each Service address (ClusterIP
    /// and LoadBalancer) leads, kept by [`proxy`] from the clusters' changes,
    /// so a connection does not scan every Service.
    rules: RwLock<Rules>,
}

#[derive(Default)]
struct Rules {
    by_ip: HashMap<Ipv4Addr, Rule>,
    /// `<cluster>/<Service store key>` -> its addresses.
    by_key: HashMap<String, Vec<Ipv4Addr>>,
}

struct Rule {
    service: Value,
    /// Set when the Service lost the address: the rule lasts until then.
    until: Option<Instant>,
}

/// The addresses traffic reaches a Service at.
fn addresses(service: &Value) -> Vec<Ipv4Addr> {
    ["/spec/clusterIP", "/status/loadBalancer/ingress/0/ip"]
        .iter()
        .filter_map(|p| service.pointer(p)?.as_str()?.parse().ok())
        .collect()
}

impl Rules {
    /// `key` now is `service` (None: deleted).
    fn follow(&mut self, key: &str, service: Option<&Value>) {
        let now = addresses_of(service);
        let expire = Instant::now() + PROXY_SYNC;
        for ip in self.by_key.remove(key).unwrap_or_default() {
            if !now.contains(&ip)
                && let Some(rule) = self.by_ip.get_mut(&ip)
            {
                rule.until.get_or_insert(expire);
            }
        }
        if let Some(service) = service {
            for ip in &now {
                self.by_ip.insert(
                    *ip,
                    Rule {
                        service: service.clone(),
                        until: None,
                    },
                );
            }
            self.by_key.insert(key.to_owned(), now);
        }
    }
}

fn addresses_of(service: Option<&Value>) -> Vec<Ipv4Addr> {
    service.map(addresses).unwrap_or_default()
}

/// The lab's kube-proxy for `cluster`: follows its Services into the
/// network's rules until `shutdown`.
pub async fn proxy(
    network: Arc<Network>,
    cluster: Arc<ClusterStore>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut changes = cluster.subscribe();
    network.sync(&cluster);
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Ok(change) if change.resource == "services" => {
                    let meta = &change.object["metadata"];
                    let key = format!(
                        "{}/services/{}/{}",
                        cluster.name,
                        meta["namespace"].as_str().unwrap_or_default(),
                        meta["name"].as_str().unwrap_or_default()
                    );
                    let deleted = change.kind == crate::lab::apiserver::ChangeKind::Deleted;
                    network
                        .rules
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .follow(&key, (!deleted).then_some(&change.object));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => network.sync(&cluster),
                Err(RecvError::Closed) => return,
            },
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// NXDOMAIN: no such name in the cluster or the private zone.
    NotFound(String),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::NotFound(name) => write!(f, "could not resolve host: {name}"),
        }
    }
}

/// The second octet of a cluster's address range of one kind.
pub fn range(index: u8, offset: u8) -> u8 {
    index.saturating_mul(10).saturating_add(offset)
}

impl Network {
    pub fn new(zone: Arc<ZoneStore>, clusters: Vec<Arc<ClusterStore>>) -> Self {
        Network {
            zone,
            clusters,
            endpoints: RwLock::default(),
            round_robin: AtomicUsize::new(0),
            rules: RwLock::default(),
        }
    }

    pub fn cluster(&self, name: &str) -> Option<&Arc<ClusterStore>> {
        self.clusters.iter().find(|c| c.name == name)
    }

    pub fn register(&self, pod_ip: Ipv4Addr, port: u16, real: SocketAddr) {
        self.endpoints
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((pod_ip, port), real);
    }

    /// Whether a process serves `pod_ip:port`.
    pub fn serves(&self, pod_ip: Ipv4Addr, port: u16) -> bool {
        self.endpoints
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&(pod_ip, port))
    }

    pub fn unregister(&self, pod_ip: Ipv4Addr) {
        self.endpoints
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(ip, _), _| *ip != pod_ip);
    }

    /// What a pod in `from` gets for `host`: an address, following CNAMEs.
    pub fn resolve(&self, from: &ClusterStore, host: &str) -> Result<Ipv4Addr, ResolveError> {
        let mut name = host.trim_end_matches('.').to_ascii_lowercase();
        if let Ok(ip) = name.parse() {
            return Ok(ip);
        }
        for _ in 0..8 {
            if let Some(service) = cluster_service(from, &name) {
                match service["spec"]["type"].as_str() {
                    Some("ExternalName") => {
                        name = service["spec"]["externalName"]
                            .as_str()
                            .unwrap_or_default()
                            .trim_end_matches('.')
                            .to_ascii_lowercase();
                        continue;
                    }
                    _ => {
                        return service["spec"]["clusterIP"]
                            .as_str()
                            .and_then(|ip| ip.parse().ok())
                            .ok_or(ResolveError::NotFound(host.to_owned()));
                    }
                }
            }
            let answer = self.zone.resolve(&format!("{name}."), "A");
            return answer
                .last()
                .filter(|r| r.rtype == "A")
                .and_then(|r| r.data.first())
                .and_then(|ip| ip.parse().ok())
                .ok_or(ResolveError::NotFound(host.to_owned()));
        }
        Err(ResolveError::NotFound(host.to_owned()))
    }

    /// Where a connection from a pod in `from` to `ip:port` really goes.
    pub fn route(&self, from: &ClusterStore, ip: Ipv4Addr, port: u16) -> Option<SocketAddr> {
        let second = ip.octets()[1];
        if ip.octets()[0] != 127 {
            return None;
        }
        // A Service IP of the caller's own cluster.
        if second == range(from.index, 0) {
            let service = self.service_at(from, ip, "/spec/clusterIP")?;
            return self.to_endpoint(from, &service, port);
        }
        // A LoadBalancer address of any cluster.
        for cluster in &self.clusters {
            if second == range(cluster.index, 1) {
                let service = self.service_at(cluster, ip, "/status/loadBalancer/ingress/0/ip")?;
                return self.to_endpoint(cluster, &service, port);
            }
        }
        // A pod address.
        self.endpoints
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(ip, port))
            .copied()
    }

    /// Every Service of `cluster` into the rules (at start, and after the
    /// proxy fell behind the changes).
    fn sync(&self, cluster: &ClusterStore) {
        let services: Vec<(String, Value)> = cluster.with_state(|s| {
            s.objects
                .range("services/".to_owned()..)
                .take_while(|(k, _)| k.starts_with("services/"))
                .map(|(k, v)| (format!("{}/{k}", cluster.name), v.clone()))
                .collect()
        });
        let mut rules = self.rules.write().unwrap_or_else(|p| p.into_inner());
        let ours = format!("{}/services/", cluster.name);
        let gone: Vec<String> = rules
            .by_key
            .keys()
            .filter(|k| k.starts_with(&ours) && !services.iter().any(|(s, _)| s == *k))
            .cloned()
            .collect();
        for key in gone {
            rules.follow(&key, None);
        }
        for (key, service) in &services {
            rules.follow(key, Some(service));
        }
    }

    /// The Service of `cluster` whose field at `pointer` is `ip`: the
    /// proxy's rule (a Service that lost the address keeps it for
    /// [`PROXY_SYNC`]), or one the proxy has not seen yet.
    fn service_at(&self, cluster: &ClusterStore, ip: Ipv4Addr, pointer: &str) -> Option<Value> {
        if let Some(rule) = self
            .rules
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_ip
            .get(&ip)
            && rule.until.is_none_or(|until| Instant::now() < until)
        {
            return Some(rule.service.clone());
        }
        let text = ip.to_string();
        cluster.with_state(|s| {
            s.scan("services", None)
                .find(|svc| svc.pointer(pointer).and_then(Value::as_str) == Some(&text))
                .cloned()
        })
    }

    /// One ready pod behind `service`'s `port`.
    fn to_endpoint(
        &self,
        cluster: &ClusterStore,
        service: &Value,
        port: u16,
    ) -> Option<SocketAddr> {
        let spec_port = service["spec"]["ports"]
            .as_array()?
            .iter()
            .find(|p| p["port"].as_u64() == Some(port as u64))?
            .clone();
        let selector = LabelSelector::from_map(service["spec"]["selector"].as_object()?);
        if selector.is_empty() {
            return None;
        }
        let namespace = service["metadata"]["namespace"].as_str()?;
        let pods: Vec<Value> = cluster.with_state(|s| {
            s.scan("pods", Some(namespace))
                .filter(|p| {
                    selector.matches(&p["metadata"]["labels"])
                        && p["metadata"]["deletionTimestamp"].is_null()
                })
                .cloned()
                .collect()
        });
        let endpoints = self.endpoints.read().unwrap_or_else(|p| p.into_inner());
        let ready: Vec<SocketAddr> = pods
            .iter()
            .filter_map(|pod| {
                let pod_ip: Ipv4Addr = pod["status"]["podIP"].as_str()?.parse().ok()?;
                let target = target_port(&spec_port["targetPort"], pod).unwrap_or(port);
                endpoints.get(&(pod_ip, target)).copied()
            })
            .collect();
        if ready.is_empty() {
            return None;
        }
        Some(ready[self.round_robin.fetch_add(1, Ordering::Relaxed) % ready.len()])
    }
}

/// A Service's targetPort: a number, or a container port name of the pod.
fn target_port(target: &Value, pod: &Value) -> Option<u16> {
    if let Some(n) = target.as_u64() {
        return u16::try_from(n).ok();
    }
    let name = target.as_str()?;
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    pod["spec"]["containers"]
        .as_array()?
        .iter()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| u16::try_from(p["containerPort"].as_u64()?).ok())
}

/// The Service a cluster-DNS name (`svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`) names.
pub fn cluster_service(cluster: &ClusterStore, name: &str) -> Option<Value> {
    let name = name.trim_end_matches('.');
    let short = name
        .strip_suffix(".svc.cluster.local")
        .or_else(|| name.strip_suffix(".svc"))
        .unwrap_or(name);
    let (service, namespace) = short.split_once('.')?;
    if namespace.contains('.') {
        return None;
    }
    cluster.with_state(|s| {
        s.objects
            .get(&format!("services/{namespace}/{service}"))
            .cloned()
    })
}

/// Container ports a pod's processes listen on (defaults per image).
pub fn listen_ports(container: &Value) -> Vec<u16> {
    let mut ports: Vec<u16> = container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| u16::try_from(p["containerPort"].as_u64()?).ok())
        .collect();
    for arg in container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Some(port) = arg
            .strip_prefix("-listen=")
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            && !ports.contains(&port)
        {
            ports.push(port);
        }
    }
    ports
}

/// `Arc` alias used across the data plane.
pub type SharedNetwork = Arc<Network>;
