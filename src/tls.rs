//! One TLS stack for the whole process: rustls with the ring provider,
//! shared by the kube client, Cloud DNS, HTTP probes and the lab's servers.

/// Installs the process-wide rustls crypto provider (ring). Idempotent.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
