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
    /// Mutations are sent with server-side dry run; nothing changes (set
    /// for `ferry plan`, and for runs an older ferry recorded as dry runs).
    pub dry_run: bool,
    /// The run's environment profile (ferry.toml, --env, --lab): logical
    /// names of clusters and zones -> real targets.
    pub environment: std::sync::Arc<crate::environment::Environment>,
    /// A local folder for what never leaves this machine (labs started for
    /// a run): see [`crate::state::StateChoice::work_dir`].
    pub work_dir: PathBuf,
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
            work_dir: PathBuf::from(".ferry"),
        }
    }
}

/// The least rate limit ferry accepts: one request every 1000 s.
pub const MIN_QPS: f64 = 0.001;

/// A rate limit (`--qps`, a profile's `qps`): 0 means no limit; anything
/// else is at least [`MIN_QPS`] and finite.
pub fn check_qps(qps: f64) -> Result<(), String> {
    if qps == 0.0 || (qps.is_finite() && qps >= MIN_QPS) {
        Ok(())
    } else {
        Err(format!(
            "qps {qps} is out of range: give 0 (no limit) or a number of requests per second from {MIN_QPS}"
        ))
    }
}

impl Settings {
    /// How to open the cluster a script names (`None`: the current
    /// context): the environment profile maps the name to a real context,
    /// kubeconfig and limits; `--qps`/`--burst` given on the command line
    /// win over the profile's limits. The one place effective cluster
    /// settings are worked out.
    pub fn connect_options(
        &self,
        name: Option<&str>,
        notify: std::sync::Arc<dyn Fn(String) + Send + Sync>,
    ) -> crate::ports::cluster::ConnectOptions {
        let mut options = crate::ports::cluster::ConnectOptions {
            context: None,
            kubeconfig: self.kubeconfig.clone(),
            qps: self.qps,
            burst: self.burst,
            dry_run: self.dry_run,
            notify,
        };
        if let Some(name) = name {
            let target = self.environment.cluster(name);
            if target.kubeconfig.is_some() {
                options.kubeconfig = target.kubeconfig;
            }
            if !self.explicit_limits {
                options.qps = target.qps.unwrap_or(self.qps);
                options.burst = target.burst.unwrap_or(self.burst);
            }
            options.context = Some(target.context);
        }
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::{ClusterTarget, Environment};
    use std::path::PathBuf;
    use std::sync::Arc;

    fn settings(explicit_limits: bool) -> Settings {
        let mut environment = Environment::default();
        environment.clusters.insert(
            "old".into(),
            ClusterTarget {
                context: "gke-old".into(),
                kubeconfig: Some(PathBuf::from("/kc/old")),
                qps: Some(5.0),
                burst: Some(7),
                dns_cache: None,
                dns_ttl: None,
            },
        );
        Settings {
            qps: 50.0,
            burst: 100,
            explicit_limits,
            environment: Arc::new(environment),
            ..Settings::default()
        }
    }

    #[test]
    fn a_profile_maps_names_and_limits_unless_flags_were_given() {
        let notify: Arc<dyn Fn(String) + Send + Sync> = Arc::new(|_| {});
        let old = settings(false).connect_options(Some("old"), notify.clone());
        assert_eq!(old.context.as_deref(), Some("gke-old"));
        assert_eq!(old.kubeconfig, Some(PathBuf::from("/kc/old")));
        assert_eq!((old.qps, old.burst), (5.0, 7));
        let flagged = settings(true).connect_options(Some("old"), notify.clone());
        assert_eq!((flagged.qps, flagged.burst), (50.0, 100));
        // A name the profile does not know is a kubeconfig context.
        let other = settings(false).connect_options(Some("kind-x"), notify.clone());
        assert_eq!(other.context.as_deref(), Some("kind-x"));
        assert_eq!((other.qps, other.burst), (50.0, 100));
        let current = settings(false).connect_options(None, notify);
        assert_eq!(current.context, None);
    }
}
