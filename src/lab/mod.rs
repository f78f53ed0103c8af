//! The lab: the article's whole world on loopback, inside the ferry binary.
//! Two Kubernetes API servers (`old`, `new`), the private DNS zone, the
//! clusters' DNS, echo apps behind their Services and an ingress controller
//! per cluster, all speaking the real protocols, so ferry's real adapters
//! run against them unchanged.
//!
//! * [`apiserver`]: the Kubernetes API (discovery, store, verbs, exec).
//! * [`dataplane`]: the processes behind the objects (pods, kube-proxy, ingress).
//! * [`zone`]: the private DNS zone; [`clouddns`]: an in-process fake of the
//!   Cloud DNS v1 REST API (Google ships no emulator). Tests use it to check
//!   the Cloud DNS adapter's requests and its handling of 409, 412, 403, 429
//!   and 500; the lab serves its private zone through it.
//! * [`instance`]: a running lab; [`seed`]: the article's starting state.

pub mod apiserver;
pub mod clouddns;
pub mod dataplane;
pub mod dns;
pub mod instance;
pub mod kubeconfig;
pub mod persist;
pub mod seed;
pub mod tls;
pub mod zone;

pub use instance::{Lab, LabOptions, served_environment};
