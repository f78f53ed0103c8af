//! Ports: every side effect a script can cause goes through one of these
//! traits. Registered Rhai functions never hold a client directly; the real
//! adapters (`crate::adapters`) and the lab sit behind the same traits, and
//! tests inject fakes.

pub mod cluster;
pub mod dns;
pub mod exec;

/// Where a run's side effects go: one implementation of each port. The
/// runner uses `crate::adapters::real()` unless given others (tests, the
/// plan mode's overlays, embedders).
#[derive(Clone)]
pub struct Backends {
    pub clusters: std::sync::Arc<dyn cluster::ClusterConnector>,
    pub zones: std::sync::Arc<dyn dns::ZoneOpener>,
}
