//! The lab's certificate authority and API server certificate. client-go
//! (kubectl) only sends bearer tokens over TLS, and a real cluster serves its
//! API over HTTPS anyway: the lab does the same, with a CA it creates once
//! per lab directory and writes into the kubeconfig.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

pub struct LabTls {
    /// The CA certificate clients trust (kubeconfig `certificate-authority-data`).
    pub ca_pem: String,
    pub acceptor: tokio_rustls::TlsAcceptor,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Loads the lab's certificates from `dir/tls`, creating them the first time.
pub fn load_or_create(dir: Option<&Path>) -> io::Result<LabTls> {
    crate::tls::install_provider();
    let files = dir.map(|d| {
        (
            d.join("tls/ca.pem"),
            d.join("tls/server.pem"),
            d.join("tls/server.key"),
        )
    });
    let (ca_pem, cert_pem, key_pem) = match &files {
        Some((ca, cert, key)) if ca.exists() && cert.exists() && key.exists() => (
            std::fs::read_to_string(ca)?,
            std::fs::read_to_string(cert)?,
            std::fs::read_to_string(key)?,
        ),
        _ => {
            let created = create().map_err(other)?;
            if let Some((ca, cert, key)) = &files {
                if let Some(parent) = ca.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                write_private(ca, &created.0)?;
                write_private(cert, &created.1)?;
                write_private(key, &created.2)?;
            }
            created
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(other)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(other)?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(other)?;
    // HTTP/1.1 only: WebSocket upgrades (pods/exec) need it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(LabTls {
        ca_pem,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    })
}

/// (CA pem, server cert pem, server key pem)
fn create() -> Result<(String, String, String), rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "ferry lab CA");
    ca_params.distinguished_name = dn;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "ferry lab apiserver");
    params.distinguished_name = dn;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((ca_cert.pem(), cert.pem(), key.serialize_pem()))
}

fn write_private(path: &Path, text: &str) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    io::Write::write_all(&mut file, text.as_bytes())
}
