//! Environment profiles: how a script's logical names reach real targets, so
//! recipes never hard-code contexts or zone credentials.
//!
//! ```toml
//! # ferry.toml, beside the script (or --env FILE)
//! kubeconfig = "~/.kube/prod"            # optional; else --kubeconfig / KUBECONFIG
//! [clusters]
//! old = { context = "gke_p_europe-west1_cluster-old" }
//! new = { context = "gke_p_europe-west1_cluster-new" }
//! [dns.private]
//! provider = "clouddns"
//! project = "p"
//! zone = "mycompany-internal"
//! ```
//!
//! `cluster("old")` and `dns("private")` look the name up here first; a name
//! not listed is taken as a kubeconfig context. `--lab` supplies the lab's
//! profile. The run records its environment, so a resume reaches the same
//! targets from any directory.

use crate::ports::dns::SECRET_KEYS;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// Where the profile came from (a file, or `lab:<dir>`), for messages.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// A lab directory this environment runs against (`--lab`, `--lab-dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lab: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterTarget>,
    /// DNS zone specs by name, exactly as `dns(#{ ... })` takes them (secrets
    /// by environment variable or file name only).
    #[serde(default)]
    pub dns: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterTarget {
    pub context: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    /// Client-side API rate limit for this cluster, instead of `--qps` /
    /// `--burst`. Probes fired from pods (`from:`) are exec requests and count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// The cluster DNS's cache and record TTL in seconds (CoreDNS's `cache`
    /// and the kubernetes plugin's `ttl`), for when ferry may not read the
    /// `kube-system/coredns` ConfigMap: how long a caller may keep an answer
    /// about a Service after it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_cache: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_ttl: Option<u32>,
}

impl Environment {
    /// Reads a `ferry.toml`; relative paths in it are relative to the file.
    pub fn load(path: &Path) -> Result<Environment, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            kubeconfig: Option<PathBuf>,
            #[serde(default)]
            clusters: BTreeMap<String, ClusterTarget>,
            #[serde(default)]
            dns: BTreeMap<String, toml::Table>,
            /// Where the journal lives: read by `crate::state`.
            #[serde(default, rename = "state")]
            _state: Option<toml::Table>,
        }
        let file: File = toml::from_str(&text)
            .map_err(|e| format!("{}: {}", path.display(), e.to_string().trim()))?;
        for (name, target) in &file.clusters {
            if let Some(qps) = target.qps {
                crate::settings::check_qps(qps)
                    .map_err(|e| format!("{}: [clusters.{name}]: {e}", path.display()))?;
            }
        }
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let anchor = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let mut dns = BTreeMap::new();
        for (name, table) in file.dns {
            let spec = serde_json::to_value(&table)
                .map_err(|e| format!("{}: [dns.{name}]: {e}", path.display()))?;
            let serde_json::Value::Object(mut spec) = spec else {
                continue;
            };
            if let Some(secret) = SECRET_KEYS.iter().find(|k| spec.contains_key(**k)) {
                return Err(format!(
                    "{}: [dns.{name}] holds `{secret}`: secrets are never read from profiles; use tsig_secret_env or tsig_secret_file",
                    path.display()
                ));
            }
            if let Some(serde_json::Value::String(file)) = spec.get("tsig_secret_file").cloned() {
                spec.insert(
                    "tsig_secret_file".into(),
                    anchor(PathBuf::from(file)).display().to_string().into(),
                );
            }
            dns.insert(name, spec);
        }
        Ok(Environment {
            source: path.display().to_string(),
            lab: None,
            kubeconfig: file.kubeconfig.map(anchor),
            clusters: file
                .clusters
                .into_iter()
                .map(|(name, target)| {
                    let kubeconfig = target.kubeconfig.map(anchor);
                    (
                        name,
                        ClusterTarget {
                            kubeconfig,
                            ..target
                        },
                    )
                })
                .collect(),
            dns,
        })
    }

    /// An environment that runs against the lab in `dir`; its targets are
    /// filled in when the lab is up (`crate::lab::Lab::environment`).
    pub fn lab(dir: PathBuf) -> Environment {
        Environment {
            source: format!("lab:{}", dir.display()),
            lab: Some(dir),
            ..Default::default()
        }
    }

    /// The profile as a `ferry.toml` (what `ferry lab up` writes for others to use).
    pub fn to_toml(&self) -> String {
        #[derive(Serialize)]
        struct File<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            kubeconfig: &'a Option<PathBuf>,
            clusters: &'a BTreeMap<String, ClusterTarget>,
            dns: &'a BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
        }
        toml::to_string(&File {
            kubeconfig: &self.kubeconfig,
            clusters: &self.clusters,
            dns: &self.dns,
        })
        .unwrap_or_default()
    }

    /// What `cluster(name)` opens: the kubeconfig context, file and rate limits.
    pub fn cluster(&self, name: &str) -> ClusterTarget {
        match self.clusters.get(name) {
            Some(target) => ClusterTarget {
                kubeconfig: target
                    .kubeconfig
                    .clone()
                    .or_else(|| self.kubeconfig.clone()),
                ..target.clone()
            },
            None => ClusterTarget {
                context: name.to_owned(),
                kubeconfig: self.kubeconfig.clone(),
                qps: None,
                burst: None,
                dns_cache: None,
                dns_ttl: None,
            },
        }
    }

    /// The zone spec `dns(name)` opens.
    pub fn zone(&self, name: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        self.dns.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.dns.keys().map(String::as_str).collect();
            let from = if self.source.is_empty() {
                "no environment profile (ferry.toml, --env, --lab)".to_owned()
            } else {
                self.source.clone()
            };
            if known.is_empty() {
                format!("no DNS zone `{name}`: {from} defines none")
            } else {
                format!(
                    "no DNS zone `{name}` in {from} (it defines: {})",
                    known.join(", ")
                )
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_map_names_to_targets_and_refuse_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.toml");
        std::fs::write(
            &path,
            "kubeconfig = \"kc\"\n[clusters]\nold = { context = \"gke-old\" }\n[dns.private]\nprovider = \"rfc2136\"\nserver = \"10.0.0.53:53\"\ntsig_secret_file = \"key\"\n",
        )
        .unwrap();
        let env = Environment::load(&path).unwrap();
        let old = env.cluster("old");
        assert_eq!(
            (old.context.as_str(), old.kubeconfig),
            ("gke-old", Some(dir.path().join("kc")))
        );
        assert_eq!(env.cluster("other").context, "other");
        let zone = env.zone("private").unwrap();
        assert_eq!(
            zone["tsig_secret_file"],
            dir.path().join("key").display().to_string()
        );
        assert!(
            env.zone("public")
                .unwrap_err()
                .contains("it defines: private")
        );

        std::fs::write(
            &path,
            "[dns.x]\nprovider = \"rfc2136\"\ntsig_secret = \"c2VjcmV0\"\n",
        )
        .unwrap();
        let err = Environment::load(&path).unwrap_err();
        assert!(
            err.contains("secrets are never read from profiles") && !err.contains("c2VjcmV0"),
            "{err}"
        );
        std::fs::write(&path, "[clusters]\nold = { contxt = \"typo\" }\n").unwrap();
        assert!(Environment::load(&path).unwrap_err().contains("contxt"));
    }
}
