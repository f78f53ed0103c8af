//! How traffic moves inside the lab. A pod resolves names through its
//! cluster's DNS, cache and all ([`ClusterDns`]: `<svc>.<ns>[.svc[.cluster.local]]`
//! from that cluster's Services, ClusterIP -> its IP, ExternalName -> a
//! CNAME chased through the private zone, then the private zone); a
//! connection to a Service IP is sent to one ready endpoint of the
//! Service's EndpointSlices (the lab's kube-proxy), which may be a pod or
//! any address the lab routes (another cluster's LoadBalancer); a
//! LoadBalancer address reaches its Service from anywhere. An address a
//! Service gave up (a flip to ExternalName) stops routing at once, as
//! kube-proxy drops its rules: a caller still holding it from a cached
//! answer is refused. Every pod process really listens on 127.0.0.1, and
//! `endpoints` maps (pod IP, port) to it.

use super::endpointslices;
use crate::lab::apiserver::ClusterStore;
use crate::lab::dns::authority::Authority;
use crate::lab::dns::cache::ClusterDns;
use crate::lab::dns::cluster::ClusterAuthority;
use crate::lab::zone::ZoneStore;
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::Value;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

pub struct Network {
    pub zone: Arc<ZoneStore>,
    pub clusters: Vec<Arc<ClusterStore>>,
    /// Each cluster's DNS (the same order as `clusters`).
    pub dns: Vec<Arc<ClusterDns>>,
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
}

/// The addresses traffic reaches a Service at.
fn addresses(service: &Value) -> Vec<Ipv4Addr> {
    ["/spec/clusterIP", "/status/loadBalancer/ingress/0/ip"]
        .iter()
        .filter_map(|p| service.pointer(p)?.as_str()?.parse().ok())
        .collect()
}

impl Rules {
    /// `key` now is `service` (None: deleted); an address it gave up stops
    /// routing at once.
    fn follow(&mut self, key: &str, service: Option<&Value>) {
        let now = addresses_of(service);
        for ip in self.by_key.remove(key).unwrap_or_default() {
            if !now.contains(&ip) {
                self.by_ip.remove(&ip);
            }
        }
        if let Some(service) = service {
            for ip in &now {
                self.by_ip.insert(
                    *ip,
                    Rule {
                        service: service.clone(),
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
        let dns = clusters
            .iter()
            .map(|cluster| {
                ClusterDns::new(ClusterAuthority {
                    cluster: cluster.clone(),
                    zone: zone.clone(),
                })
            })
            .collect();
        Network {
            zone,
            clusters,
            dns,
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

    /// `cluster`'s DNS.
    pub fn dns_of(&self, cluster: &ClusterStore) -> Option<&Arc<ClusterDns>> {
        self.dns.iter().find(|d| d.cluster().name == cluster.name)
    }

    /// What a pod in `from` gets for `host` from its cluster's DNS (cached
    /// answers included): an address, following CNAMEs.
    pub fn resolve(&self, from: &ClusterStore, host: &str) -> Result<Ipv4Addr, ResolveError> {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        if let Ok(ip) = name.parse() {
            return Ok(ip);
        }
        let not_found = || ResolveError::NotFound(host.to_owned());
        let dns = self.dns_of(from).ok_or_else(not_found)?;
        let query = Name::from_ascii(format!("{name}.")).map_err(|_| not_found())?;
        let answer = dns.answer(&query, RecordType::A);
        answer
            .answers
            .iter()
            .rev()
            .find_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .ok_or_else(not_found)
    }

    /// Where a connection from a pod in `from` to `ip:port` really goes.
    pub fn route(&self, from: &ClusterStore, ip: Ipv4Addr, port: u16) -> Option<SocketAddr> {
        self.route_within(from, ip, port, 0)
    }

    /// `route`, `depth` Service hops in (an endpoint may be another
    /// cluster's LoadBalancer address; a loop of them ends).
    fn route_within(
        &self,
        from: &ClusterStore,
        ip: Ipv4Addr,
        port: u16,
        depth: usize,
    ) -> Option<SocketAddr> {
        if depth > 4 {
            return None;
        }
        let second = ip.octets()[1];
        if ip.octets()[0] != 127 {
            return None;
        }
        // A Service IP of the caller's own cluster.
        if second == range(from.index, 0) {
            let service = self.service_at(from, ip, "/spec/clusterIP")?;
            return self.to_endpoint(from, &service, port, depth);
        }
        // A LoadBalancer address of any cluster.
        for cluster in &self.clusters {
            if second == range(cluster.index, 1) {
                let service = self.service_at(cluster, ip, "/status/loadBalancer/ingress/0/ip")?;
                return self.to_endpoint(cluster, &service, port, depth);
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
    /// proxy's rule, or one the proxy has not seen yet.
    fn service_at(&self, cluster: &ClusterStore, ip: Ipv4Addr, pointer: &str) -> Option<Value> {
        if let Some(rule) = self
            .rules
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_ip
            .get(&ip)
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

    /// One ready endpoint behind `service`'s `port`, from the Service's
    /// EndpointSlices: the slice port named like the Service port, each
    /// ready address of it that leads somewhere.
    fn to_endpoint(
        &self,
        cluster: &ClusterStore,
        service: &Value,
        port: u16,
        depth: usize,
    ) -> Option<SocketAddr> {
        let spec_port = service["spec"]["ports"]
            .as_array()?
            .iter()
            .find(|p| p["port"].as_u64() == Some(port as u64))?;
        let port_name = spec_port["name"].as_str().unwrap_or_default();
        let protocol = spec_port["protocol"].as_str().unwrap_or("TCP");
        let namespace = service["metadata"]["namespace"].as_str()?;
        let name = service["metadata"]["name"].as_str()?;
        let candidates: Vec<(Ipv4Addr, u16)> = cluster.with_state(|s| {
            s.scan(endpointslices::STORE, Some(namespace))
                .filter(|slice| slice["metadata"]["labels"][endpointslices::SERVICE_NAME] == name)
                .flat_map(|slice| {
                    let Some(target) = slice["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|p| {
                            p["name"].as_str().unwrap_or_default() == port_name
                                && p["protocol"].as_str().unwrap_or("TCP") == protocol
                        })
                        .and_then(|p| u16::try_from(p["port"].as_u64()?).ok())
                    else {
                        return Vec::new();
                    };
                    slice["endpoints"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|e| e["conditions"]["ready"] != false)
                        .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
                        .filter_map(|a| a.as_str()?.parse().ok())
                        .map(|ip| (ip, target))
                        .collect()
                })
                .collect()
        });
        let ready: Vec<SocketAddr> = candidates
            .into_iter()
            .filter_map(|(ip, target)| self.route_within(cluster, ip, target, depth + 1))
            .collect();
        if ready.is_empty() {
            return None;
        }
        Some(ready[self.round_robin.fetch_add(1, Ordering::Relaxed) % ready.len()])
    }
}

/// A Service's targetPort: a number, or a container port name of the pod.
pub(super) fn target_port(target: &Value, pod: &Value) -> Option<u16> {
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
