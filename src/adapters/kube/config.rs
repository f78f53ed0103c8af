//! Opening a cluster from a kubeconfig context, by kubectl's rules:
//! `--kubeconfig`, else `KUBECONFIG` (several files merged, first wins),
//! else `~/.kube/config`; with none of them and no context named, the
//! in-cluster configuration (service account) when running in a pod.
//! kube's loader does the rest, so exec credential plugins
//! (`gke-gcloud-auth-plugin`...), client certificates and tokens work as
//! they do for kubectl.

use super::{KubeCluster, KubeParams, RetryPolicy};
use crate::ports::cluster::{
    Cluster, ClusterConnector, ClusterError, ClusterFuture, ConnectOptions,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The connector of real runs.
pub struct KubeConnector;

fn open_error(context: &str, reason: &str, message: String) -> ClusterError {
    ClusterError {
        cluster: context.to_owned(),
        verb: "open".into(),
        reason: reason.into(),
        message,
        ..Default::default()
    }
}

/// The merged kubeconfig kubectl would use, and where it came from.
fn read_kubeconfig(explicit: Option<&Path>) -> Result<Option<(Kubeconfig, String)>, String> {
    if let Some(path) = explicit {
        return Kubeconfig::read_from(path)
            .map(|k| Some((k, path.display().to_string())))
            .map_err(|e| format!("cannot read kubeconfig {}: {e}", path.display()));
    }
    match Kubeconfig::from_env() {
        Ok(Some(k)) => {
            let from = std::env::var("KUBECONFIG").unwrap_or_default();
            return Ok(Some((k, format!("KUBECONFIG={from}"))));
        }
        Ok(None) => {}
        Err(e) => {
            return Err(format!(
                "cannot read the kubeconfig files in KUBECONFIG: {e}"
            ));
        }
    }
    let Some(home) = std::env::home_dir().map(|h| h.join(".kube").join("config")) else {
        return Ok(None);
    };
    if !home.exists() {
        return Ok(None);
    }
    Kubeconfig::read_from(&home)
        .map(|k| Some((k, home.display().to_string())))
        .map_err(|e| format!("cannot read kubeconfig {}: {e}", home.display()))
}

/// `scheme://host:port` of the API server, never any user info.
fn server_address(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{host}{port}", uri.scheme_str().unwrap_or("https"))
}

/// Loads the client configuration of `context` (the current context when
/// `None`); returns it with the context's name.
pub async fn load_config(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<(kube::Config, String), ClusterError> {
    let shown = context.unwrap_or("(current context)");
    let loaded = read_kubeconfig(kubeconfig).map_err(|m| open_error(shown, "BadKubeconfig", m))?;
    let Some((kc, source)) = loaded else {
        if context.is_some() {
            return Err(open_error(
                shown,
                "NoKubeconfig",
                "no kubeconfig found (--kubeconfig, KUBECONFIG, ~/.kube/config)".into(),
            ));
        }
        let config = kube::Config::incluster().map_err(|e| {
            open_error(
                shown,
                "NoKubeconfig",
                format!("no kubeconfig found (--kubeconfig, KUBECONFIG, ~/.kube/config) and not in a pod: {e}"),
            )
        })?;
        return Ok((config, "in-cluster".into()));
    };
    let name = match context {
        Some(c) => c.to_owned(),
        None => kc.current_context.clone().ok_or_else(|| {
            open_error(
                shown,
                "NoContext",
                format!("{source} sets no current-context; name one: cluster(\"<context>\")"),
            )
        })?,
    };
    let names: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
    if !names.contains(&name.as_str()) {
        return Err(open_error(
            &name,
            "NoContext",
            format!(
                "no context `{name}` in {source}; it has: {}",
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            ),
        ));
    }
    let options = KubeConfigOptions {
        context: Some(name.clone()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .map_err(|e| {
            open_error(
                &name,
                "BadKubeconfig",
                format!("context `{name}` in {source}: {e}"),
            )
        })?;
    Ok((config, name))
}

/// Credentials in a configuration, to scrub from messages.
fn secrets_of(config: &kube::Config) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Ok(auth) = serde_json::to_value(&config.auth_info) {
        for key in ["token", "password"] {
            if let Some(s) = auth.get(key).and_then(|v| v.as_str()) {
                secrets.push(s.to_owned());
            }
        }
    }
    if let Some(file) = &config.auth_info.token_file
        && let Ok(token) = std::fs::read_to_string(file)
    {
        secrets.push(token.trim().to_owned());
    }
    secrets
}

impl ClusterConnector for KubeConnector {
    fn connect(&self, options: ConnectOptions) -> ClusterFuture<'_, Arc<dyn Cluster>> {
        Box::pin(async move {
            crate::tls::install_provider();
            let (mut config, name) =
                load_config(options.kubeconfig.as_deref(), options.context.as_deref()).await?;
            // Retries are ferry's own (visible, cancellable); an unreachable
            // server fails fast.
            config.default_retry = false;
            config.connect_timeout = Some(Duration::from_secs(10));
            config.read_timeout = Some(Duration::from_secs(120));
            let server = server_address(&config.cluster_url);
            let secrets = secrets_of(&config);
            let client = kube::Client::try_from(config).map_err(|e| {
                open_error(
                    &name,
                    "ClientError",
                    super::errors::redact(
                        &format!("cannot build a client for {server}: {e}"),
                        &secrets,
                    ),
                )
            })?;
            let cluster: Arc<dyn Cluster> = Arc::new(KubeCluster::new(KubeParams {
                name,
                server,
                client,
                qps: options.qps,
                burst: options.burst,
                dry_run: options.dry_run,
                retry: RetryPolicy::default(),
                notify: options.notify,
                secrets,
            }));
            Ok(cluster)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
current-context: old
clusters:
- name: old
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
- name: new
  cluster: {server: "http://127.0.0.1:6444"}
contexts:
- name: old
  context: {cluster: old, user: u, namespace: app1-ns}
- name: new
  context: {cluster: new, user: u}
users:
- name: u
  user: {token: s3cr3t-token}
"#;

    #[tokio::test]
    async fn contexts_load_by_name_or_current_and_unknown_ones_list_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, KUBECONFIG).unwrap();
        let (config, name) = load_config(Some(&path), None).await.unwrap();
        assert_eq!(name, "old");
        assert_eq!(config.default_namespace, "app1-ns");
        assert_eq!(
            server_address(&config.cluster_url),
            "https://127.0.0.1:6443"
        );
        assert_eq!(secrets_of(&config), vec!["s3cr3t-token".to_owned()]);
        let (config, name) = load_config(Some(&path), Some("new")).await.unwrap();
        assert_eq!(name, "new");
        assert_eq!(config.default_namespace, "default");
        let err = load_config(Some(&path), Some("nwe")).await.unwrap_err();
        assert_eq!(err.reason, "NoContext");
        assert!(err.message.contains("it has: old, new"), "{err}");
        assert!(!err.to_string().contains("s3cr3t"));
    }

    #[test]
    fn server_addresses_never_carry_user_info() {
        let uri: http::Uri = "https://user:pw@example.com:6443/k8s".parse().unwrap();
        assert_eq!(server_address(&uri), "https://example.com:6443");
    }
}
