//! The lab's data plane: the processes behind the API objects. Pods really
//! serve (`kubelet`), workloads get pods (`controllers`), Services their EndpointSlices
//! (`endpointslices`), Services and load
//! balancers route to them (`network`), each cluster's ingress routes by
//! Host header (`ingress`, splitting by weight as Traefik does: `weighted`)
//! and counts what it served (`metrics`), and
//! `exec` runs curl/wget from a pod (`exec`).

pub mod controllers;
pub mod endpointslices;
pub mod exec;
pub mod http;
pub mod ingress;
pub mod kubelet;
pub mod loadbalancer;
pub mod metrics;
pub mod network;
pub mod weighted;

pub use network::{Network, SharedNetwork};
