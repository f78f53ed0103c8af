//! The lab's DNS fronts over the wire, built on hickory's message types:
//!
//! * the private zone's server ([`authority::ZoneAuthority`]): authoritative
//!   answers, AXFR and RFC 2136 UPDATE signed with the lab's TSIG key, the
//!   way the article's Knot behaves ([`update`], [`tsig`]);
//! * one cluster DNS per lab cluster ([`cluster::ClusterAuthority`]):
//!   `<svc>.<ns>[.svc[.cluster.local]]` from the cluster's live Services,
//!   everything else from the private zone, like CoreDNS with the zone as
//!   its upstream.
//!
//! Both run the same [`server`] (UDP and TCP on one loopback port) and
//! [`service`] (decode, TSIG, dispatch, encode) and read the one
//! [`ZoneStore`](crate::lab::zone::ZoneStore) store the Cloud DNS front also serves.

pub mod authority;
pub mod cache;
pub mod cluster;
pub mod records;
pub mod server;
pub mod service;
pub mod tsig;
pub mod update;

use crate::lab::zone::ZoneStore;
use authority::ZoneAuthority;
use cache::ClusterDns;
use service::{Primary, Service};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tsig::ServerKey;

/// Starts the private zone's server; UPDATE and AXFR need `key`.
pub async fn start_zone_server(
    zone: Arc<ZoneStore>,
    key: ServerKey,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let authority = Box::new(ZoneAuthority { zone: zone.clone() });
    let service = Service::primary(authority, Primary { zone, key });
    server::start(Arc::new(service), shutdown).await
}

/// Starts a cluster's DNS (the one its pods ask, cache and all) on the wire.
pub async fn start_cluster_dns(
    dns: Arc<ClusterDns>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let service = Service::resolver(Box::new(dns));
    server::start(Arc::new(service), shutdown).await
}
