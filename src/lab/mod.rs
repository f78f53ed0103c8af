//! The lab: the article's whole world on loopback, inside the ferry binary.
//! Two Kubernetes API servers (`old`, `new`), the private DNS zone, the
//! clusters' DNS, echo apps behind their Services and an ingress controller
//! per cluster, all speaking the real protocols, so ferry's real adapters
//! run against it unchanged.

pub mod apiserver;
pub mod dataplane;
pub mod instance;
pub mod kubeconfig;
pub mod persist;
pub mod seed;
pub mod tls;
pub mod zone;

pub use instance::{Lab, LabOptions};
