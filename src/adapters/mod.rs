//! Adapters: the real implementations of `crate::ports`, one module per
//! backend (Kubernetes API through `kube`, Cloud DNS, RFC 2136).

pub mod clouddns;
pub mod dns_wire;
pub mod kube;
pub mod rfc2136;
pub mod tsig;
