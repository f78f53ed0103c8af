//! How traffic moves inside the lab. A pod resolves names through its
//! cluster's DNS (`<svc>.<ns>[.svc[.cluster.local]]` from that cluster's
//! Services: ClusterIP -> its IP, ExternalName -> a CNAME chased through the
//! private zone) and then the private zone; a connection to a Service IP is
//! sent to one of the Service's ready pods (the lab's kube-proxy); a
//! LoadBalancer address reaches its Service from anywhere. Every pod process
//! really listens on 127.0.0.1, and `endpoints` maps (pod IP, port) to it.

use crate::lab::apiserver::Cluster;
use crate::lab::apiserver::selector::LabelSelector;
use crate::lab::zone::Zone;
use serde_json::Value;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

pub struct Network {
    pub zone: Arc<Zone>,
    pub clusters: Vec<Arc<Cluster>>,
    endpoints: RwLock<HashMap<(Ipv4Addr, u16), SocketAddr>>,
    round_robin: AtomicUsize,
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
    pub fn new(zone: Arc<Zone>, clusters: Vec<Arc<Cluster>>) -> Self {
        Network {
            zone,
            clusters,
            endpoints: RwLock::default(),
            round_robin: AtomicUsize::new(0),
        }
    }

    pub fn cluster(&self, name: &str) -> Option<&Arc<Cluster>> {
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
    pub fn resolve(&self, from: &Cluster, host: &str) -> Result<Ipv4Addr, ResolveError> {
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
    pub fn route(&self, from: &Cluster, ip: Ipv4Addr, port: u16) -> Option<SocketAddr> {
        let second = ip.octets()[1];
        if ip.octets()[0] != 127 {
            return None;
        }
        // A Service IP of the caller's own cluster.
        if second == range(from.index, 0) {
            let service = from.with_state(|s| {
                s.scan("services", None)
                    .find(|svc| svc["spec"]["clusterIP"].as_str() == Some(&ip.to_string()))
                    .cloned()
            })?;
            return self.to_endpoint(from, &service, port);
        }
        // A LoadBalancer address of any cluster.
        for cluster in &self.clusters {
            if second == range(cluster.index, 1) {
                let service = cluster.with_state(|s| {
                    s.scan("services", None)
                        .find(|svc| {
                            svc.pointer("/status/loadBalancer/ingress/0/ip")
                                .and_then(Value::as_str)
                                == Some(&ip.to_string())
                        })
                        .cloned()
                })?;
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

    /// One ready pod behind `service`'s `port`.
    fn to_endpoint(&self, cluster: &Cluster, service: &Value, port: u16) -> Option<SocketAddr> {
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
pub fn cluster_service(cluster: &Cluster, name: &str) -> Option<Value> {
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
