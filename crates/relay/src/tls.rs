//! TLS on the relay's own listener, for small deployments without a
//! reverse proxy (`tmux-relay serve --tls-cert PEM --tls-key PEM`): loads
//! the certificate chain and key into a rustls server configuration and
//! runs one handshake per accepted connection under a deadline, so a
//! client that stalls mid-handshake cannot hold a connection slot.
//!
//! What it does not do: reload certificates (restart the relay after a
//! renewal), client certificates, HTTP/2 (the server speaks HTTP/1.1, and
//! says so in ALPN). The HTTP timeouts of [`crate::serve`] apply after the
//! handshake exactly as on plain TCP.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Where the relay's certificate chain and private key are (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key of the leaf (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why the TLS configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("reading the TLS certificate chain {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("reading the TLS private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the TLS certificate and key do not make a server configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// rustls' `ring` provider. Deprecated since rustls 0.23.48 for lacking
/// post-quantum key exchange; kept because `ring` is already built for the
/// relay's JWTs while aws-lc-rs would add a C build to every build.
#[allow(deprecated)]
fn crypto_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// A TLS acceptor for `files`, offering HTTP/1.1 in ALPN.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let certs = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        reason: e.to_string(),
    })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(crypto_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |reason: String| TlsError::Cert {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// Why one connection's handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    #[error("TLS handshake timed out after {} s", .0.as_secs())]
    Timeout(Duration),
    #[error("TLS handshake failed: {0}")]
    Failed(#[from] std::io::Error),
}

/// Runs the server side of the handshake on `tcp`, giving up after
/// `deadline` (the connection is then dropped).
pub(crate) async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    deadline: Duration,
) -> Result<TlsStream<TcpStream>, HandshakeError> {
    match tokio::time::timeout(deadline, acceptor.accept(tcp)).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(HandshakeError::Timeout(deadline)),
    }
}
