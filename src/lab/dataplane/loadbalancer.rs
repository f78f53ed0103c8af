//! The lab's cloud load balancers, seen from the host: each LoadBalancer
//! Service's address and port gets a real listener that forwards TCP to the
//! Service's pods, so `curl -H 'Host: app1.app1-ns' http://<ingress ip>/` on
//! the machine reaches the ingress like it would through a cloud LB. Ports
//! below 1024 need root (or CAP_NET_BIND_SERVICE); without it the address is
//! still reachable from inside the lab (pods, exec), just not from the host.

use super::network::SharedNetwork;
use crate::lab::apiserver::ClusterStore;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

pub async fn run(
    network: SharedNetwork,
    cluster: Arc<ClusterStore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut changes = cluster.subscribe();
    let mut listeners: HashMap<SocketAddr, watch::Sender<bool>> = HashMap::new();
    loop {
        let wanted: Vec<SocketAddr> = cluster.with_state(|s| {
            s.scan("services", None)
                .filter(|svc| svc["spec"]["type"] == "LoadBalancer")
                .filter_map(|svc| {
                    let ip: Ipv4Addr = svc
                        .pointer("/status/loadBalancer/ingress/0/ip")?
                        .as_str()?
                        .parse()
                        .ok()?;
                    Some(
                        svc["spec"]["ports"]
                            .as_array()?
                            .iter()
                            .filter_map(move |p| {
                                Some(SocketAddr::from((
                                    ip,
                                    u16::try_from(p["port"].as_u64()?).ok()?,
                                )))
                            })
                            .collect::<Vec<_>>(),
                    )
                })
                .flatten()
                .collect()
        });
        listeners.retain(|addr, stop| {
            let keep = wanted.contains(addr);
            if !keep {
                let _ = stop.send(true);
            }
            keep
        });
        for addr in wanted {
            if listeners.contains_key(&addr) {
                continue;
            }
            let Ok(listener) = tokio::net::TcpListener::bind(addr).await else {
                continue;
            };
            let (stop_tx, stop_rx) = watch::channel(false);
            listeners.insert(addr, stop_tx);
            tokio::spawn(forward(
                network.clone(),
                cluster.clone(),
                listener,
                addr,
                stop_rx,
                shutdown.clone(),
            ));
        }
        tokio::select! {
            change = changes.recv() => match change {
                Ok(change) if change.resource != "services" => continue,
                Err(broadcast::error::RecvError::Closed) => break,
                _ => {}
            },
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    for (_, stop) in listeners {
        let _ = stop.send(true);
    }
}

async fn forward(
    network: SharedNetwork,
    cluster: Arc<ClusterStore>,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    mut stop: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let SocketAddr::V4(v4) = addr else { return };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let Ok((mut inbound, _)) = accepted else {
            continue;
        };
        let Some(real) = network.route(&cluster, *v4.ip(), v4.port()) else {
            continue;
        };
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(real).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}
