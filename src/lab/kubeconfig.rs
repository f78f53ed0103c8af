//! The kubeconfig a lab writes: one cluster, user and context per lab
//! cluster (`old`, `new`), token auth, so kubectl and ferry's kube adapter
//! reach the lab exactly as they reach a real cluster.

use std::net::SocketAddr;
use std::path::Path;

pub fn write(
    path: &Path,
    clusters: &[(String, SocketAddr)],
    token: &str,
    ca_pem: &str,
) -> std::io::Result<()> {
    let ca = data_encoding::BASE64.encode(ca_pem.as_bytes());
    let mut clusters_yaml = String::new();
    let mut users = String::new();
    let mut contexts = String::new();
    for (name, addr) in clusters {
        clusters_yaml.push_str(&format!(
            "- name: lab-{name}\n  cluster:\n    server: https://{addr}\n    certificate-authority-data: {ca}\n"
        ));
        users.push_str(&format!(
            "- name: lab-{name}\n  user:\n    token: {token}\n"
        ));
        contexts.push_str(&format!(
            "- name: {name}\n  context:\n    cluster: lab-{name}\n    user: lab-{name}\n"
        ));
    }
    let current = clusters.first().map(|(n, _)| n.as_str()).unwrap_or("old");
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: {current}\nclusters:\n{clusters_yaml}users:\n{users}contexts:\n{contexts}preferences: {{}}\n"
    );
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    std::io::Write::write_all(&mut file, text.as_bytes())
}
