//! Certificates made in the test (rcgen): a private CA and server
//! certificates it signs, written as PEM files, so https and wss are
//! tested for real against a relay that serves TLS, with no certificate
//! checked in and no network. Not for anything but tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A CA of the test's own; its certificate is at [`TestCa::cert_path`].
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    dir: PathBuf,
    cert_path: PathBuf,
}

/// A server certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA named `name`, writing its files under `dir`.
    pub fn new(dir: &Path, name: &str) -> crate::Result<TestCa> {
        std::fs::create_dir_all(dir).context("creating the CA dir")?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        let cert_path = dir.join(format!("{name}.ca.pem"));
        std::fs::write(&cert_path, cert.pem()).context("writing the CA certificate")?;
        Ok(TestCa {
            issuer: Issuer::new(params, key),
            dir: dir.to_owned(),
            cert_path,
        })
    }

    /// The CA certificate (PEM), what a runner passes with `--ca-file`.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// A server certificate for `names` (DNS names or IP addresses),
    /// signed by this CA, written as `<file>.pem` and `<file>.key.pem`.
    pub fn server_cert(&self, file: &str, names: &[&str]) -> crate::Result<ServerCert> {
        let key = KeyPair::generate()?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "tmux-relay test");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer)?;
        let out = ServerCert {
            cert: self.dir.join(format!("{file}.pem")),
            key: self.dir.join(format!("{file}.key.pem")),
        };
        std::fs::write(&out.cert, cert.pem()).context("writing the certificate")?;
        std::fs::write(&out.key, key.serialize_pem()).context("writing the key")?;
        Ok(out)
    }

    /// A rustls client configuration that trusts only this CA (for test
    /// clients of the relay that do not go through the runner's code).
    pub fn client_config(&self) -> crate::Result<Arc<rustls::ClientConfig>> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(&self.cert_path)?)?;
        #[allow(deprecated)] // ring: see tmux-relay's tls.rs
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// Opens TCP to `addr` and completes a TLS handshake as `name`, trusting
/// `config`.
pub async fn connect(
    addr: SocketAddr,
    name: &str,
    config: Arc<rustls::ClientConfig>,
) -> crate::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from(name.to_owned())?;
    Ok(tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?)
}
