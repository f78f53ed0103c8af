//! What the command line says about how to reach targets, shared by every
//! primitive of a run.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `--kubeconfig`; otherwise kubectl's rules (`KUBECONFIG`, `~/.kube/config`, in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// Client-side rate limit for API requests, per cluster (`--qps`, `--burst`).
    pub qps: f64,
    pub burst: u32,
    /// `--qps`/`--burst` were given: they win over the profile's per-cluster limits.
    pub explicit_limits: bool,
    /// `--dry-run`: mutations are sent with server-side dry run; nothing changes.
    pub dry_run: bool,
    /// The run's environment profile (ferry.toml, --env, --lab): logical
    /// names of clusters and zones -> real targets.
    pub environment: std::sync::Arc<crate::environment::Environment>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            kubeconfig: None,
            qps: 50.0,
            burst: 100,
            explicit_limits: false,
            dry_run: false,
            environment: Default::default(),
        }
    }
}
