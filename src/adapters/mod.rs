//! Adapters: the real implementations of `crate::ports`, one module per
//! backend (Kubernetes API through `kube`, Cloud DNS, RFC 2136).

pub mod clouddns;
pub mod dns_wire;
pub mod kube;
pub mod rfc2136;
pub mod tsig;
pub mod zones;

use crate::ports::Backends;
use std::sync::Arc;

/// The real implementation of every port: kube for clusters, Cloud DNS and
/// RFC 2136 for zones.
pub fn real() -> Backends {
    Backends {
        clusters: Arc::new(kube::KubeConnector),
        zones: Arc::new(zones::Zones),
    }
}
