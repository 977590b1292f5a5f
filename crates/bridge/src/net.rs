//! The runner's network clients, and nothing else: [`RelayClient`], the
//! HTTP client for the relay's API (reqwest over rustls), and
//! [`connect_ws`], the WebSocket to the relay (tokio-tungstenite over
//! tokio-rustls; [`connect_ws_in_process`] to the relay `up` embeds). Both
//! take the same [`TlsOptions`] and fail with the same
//! [`NetError`], which says in plain words what went wrong (a host name
//! that does not resolve, a refused connection, a certificate that is not
//! trusted or not for this name) and what to do; callers log it at warn.
//!
//! Trust: the Mozilla root set compiled into the binary (`webpki-roots`:
//! the same on every machine, with or without a system CA bundle) plus the
//! CA certificates of `--ca-file` for a relay with a private CA. The
//! crypto is rustls' `ring` provider; no OpenSSL, no native-tls.
//!
//! Tokens: the bearer token only ever goes in the `Authorization` header,
//! never in a URL, and never over cleartext to anything but a loopback
//! address unless `--insecure` says so. Nothing here logs a token.
//!
//! What this module does not do: retries and backoff (the callers decide),
//! proxies (neither client uses `HTTP(S)_PROXY`; the WebSocket could not).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::DuplexStream;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite};
use tokio_util::either::Either;

/// How long [`connect_ws`] may take in all: DNS, TCP, TLS and the upgrade.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one API request may take, body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest API response body accepted.
pub const MAX_RESPONSE: usize = 1 << 20;

/// How the runner trusts a relay: the `--ca-file` and `--insecure` flags,
/// shared by every subcommand that talks to a relay (flatten it into the
/// subcommand's clap `Args`).
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Also trust the CA certificates in this PEM file (a relay whose
    /// certificate comes from a private CA).
    #[arg(long, value_name = "PATH", env = "TMUX_BRIDGE_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// For tests only: accept any certificate from the relay and allow the
    /// runner token over cleartext http/ws to a non-loopback host. Anyone on
    /// the path can then read the token and every pane.
    #[arg(long)]
    pub insecure: bool,
}

/// Why talking to the relay failed, in words a user can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    #[error("bad relay URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "refusing to send credentials over cleartext to {host}, which is not a loopback address; use an https:// relay URL (or pass --insecure, for tests only)"
    )]
    Cleartext { host: String },
    #[error("cannot read the CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("cannot resolve the relay's host name {host}: {source}")]
    Dns {
        host: String,
        source: std::io::Error,
    },
    #[error("connection refused by {host}: is the relay running and listening on that port?")]
    Refused { host: String },
    #[error(
        "the relay's certificate is not trusted ({host}: {detail}); if the relay uses a private CA, pass --ca-file with that CA's certificate (PEM)"
    )]
    Untrusted { host: String, detail: String },
    #[error(
        "the relay's certificate is not valid for the name {host} ({detail}); use the host name the certificate was issued for"
    )]
    NameMismatch { host: String, detail: String },
    #[error("the relay's certificate was refused ({host}: {detail})")]
    Certificate { host: String, detail: String },
    #[error(
        "the TLS handshake with {host} failed ({detail}); does it serve https on that port? (an http:// relay needs an http:// URL)"
    )]
    Tls { host: String, detail: String },
    #[error("{what} timed out after {} s", .after.as_secs())]
    Timeout { what: &'static str, after: Duration },
    /// The runner socket's upgrade was refused for the token (401/403);
    /// the wording `(401` is what `config::is_definite_rejection` matches.
    #[error("the relay refused the runner token ({status})")]
    Rejected { status: StatusCode },
    #[error("the relay answered {status} instead of opening the WebSocket")]
    UpgradeStatus { status: StatusCode },
    #[error("the relay's answer was larger than {MAX_RESPONSE} bytes")]
    TooLarge,
    #[error("connecting to {host}: {detail}")]
    Connect { host: String, detail: String },
}

impl NetError {
    /// Whether retrying cannot help until the user changes something
    /// (the URL, the flags, the CA file, the token). A caller that retries
    /// stops on these; network and TLS trouble may pass (a relay that is
    /// restarting, a certificate being renewed), so it is not definite.
    pub fn is_definite(&self) -> bool {
        matches!(
            self,
            NetError::BadUrl { .. }
                | NetError::Cleartext { .. }
                | NetError::CaFile { .. }
                | NetError::Rejected { .. }
        )
    }
}

impl TlsOptions {
    /// The rustls client configuration: the built-in roots plus the
    /// `--ca-file` certificates, or (with `--insecure`) no verification.
    /// Reads the CA file on every call, so a renewed CA is picked up at the
    /// next connection.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, NetError> {
        let provider = Arc::new(crypto_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| NetError::Connect {
                host: String::new(),
                detail: format!("TLS setup: {e}"),
            })?;
        let config = if self.insecure {
            tracing::warn!(
                "--insecure: the relay's TLS certificate is NOT verified; anyone on the network path can impersonate the relay, read the runner token and every pane (for tests only)"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            builder
                .with_root_certificates(self.roots()?)
                .with_no_client_auth()
        };
        Ok(Arc::new(config))
    }

    fn roots(&self) -> Result<RootCertStore, NetError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let Some(path) = &self.ca_file else {
            return Ok(roots);
        };
        let bad = |reason: String| NetError::CaFile {
            path: path.clone(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no PEM certificate in it".into()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
        }
        Ok(roots)
    }
}

/// rustls' `ring` provider. Deprecated since rustls 0.23.48 for lacking
/// post-quantum key exchange (aws-lc-rs has it), kept because `ring` is
/// already built for the relay's JWTs while aws-lc-rs would add a C build
/// to every build; revisit when the relay's JWT crate moves too.
#[allow(deprecated)]
fn crypto_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// `--insecure`: every certificate passes; handshake signatures are still
/// checked (the peer must hold the key of the certificate it sent).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The parts of a relay URL the clients need.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
}

/// Splits `url` (`http`, `https`, `ws` or `wss`) and refuses cleartext to
/// a host that is not loopback unless `insecure`.
fn target(url: &str, insecure: bool) -> Result<Target, NetError> {
    let bad = |reason: &str| NetError::BadUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    let tls = match parsed.scheme() {
        "https" | "wss" => true,
        "http" | "ws" => false,
        _ => return Err(bad("it must start with https://, http://, wss:// or ws://")),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("credentials do not belong in the URL"));
    }
    if parsed.query().is_some() {
        return Err(bad("a relay URL has no query"));
    }
    let host = match parsed.host_str() {
        Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']').to_owned(),
        _ => return Err(bad("it has no host")),
    };
    let port = parsed
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    if !tls && !insecure && !is_loopback(&host) {
        return Err(NetError::Cleartext { host });
    }
    Ok(Target { tls, host, port })
}

/// Checks, without any I/O but reading the CA file, what would make every
/// connection to `url` fail: a malformed URL, cleartext to a host that is
/// not loopback without `--insecure`, an unreadable `--ca-file`. For a
/// long-running caller to fail at start rather than at each retry.
pub fn preflight(url: &str, tls: &TlsOptions) -> Result<(), NetError> {
    let target = target(url, tls.insecure)?;
    if target.tls {
        tls.client_config()?;
    }
    Ok(())
}

/// `localhost` (and its subdomains, RFC 6761) or a loopback IP literal.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Resolves `host` (an IP literal or a name) to socket addresses on `port`.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, NetError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let dns = |source| NetError::Dns {
        host: host.to_owned(),
        source,
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(dns)?
        .collect();
    if addrs.is_empty() {
        return Err(dns(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no address",
        )));
    }
    Ok(addrs)
}

/// The typed error behind a resolver failure, found again in reqwest's
/// error chain by [`classify`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct DnsFailure(String, #[source] std::io::Error);

/// reqwest's resolver: tokio's `lookup_host`, failing with [`DnsFailure`]
/// so a DNS error stays recognisable.
#[derive(Debug)]
struct Resolver;

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match resolve(&host, 0).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(NetError::Dns { host, source }) => {
                    Err(Box::new(DnsFailure(host, source))
                        as Box<dyn std::error::Error + Send + Sync>)
                }
                Err(other) => Err(Box::new(other) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}

/// Turns an error chain from reqwest, tokio-rustls or tungstenite into a
/// [`NetError`] for `host`.
fn classify(host: &str, err: &(dyn std::error::Error + 'static)) -> NetError {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut words = Vec::new();
    while let Some(e) = cur {
        // `io::Error::source` skips the error it wraps, and hyper-rustls
        // wraps tokio-rustls' io::Error in another: look inside each.
        let mut candidates = vec![e];
        while let Some(inner) = candidates
            .last()
            .and_then(|c| c.downcast_ref::<std::io::Error>())
            .and_then(|io| io.get_ref())
        {
            candidates.push(inner);
        }
        for candidate in candidates {
            if let Some(tls) = candidate.downcast_ref::<rustls::Error>() {
                return from_rustls(host, tls);
            }
            if let Some(dns) = candidate.downcast_ref::<DnsFailure>() {
                return NetError::Dns {
                    host: dns.0.clone(),
                    source: std::io::Error::new(dns.1.kind(), dns.1.to_string()),
                };
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return NetError::Refused {
                host: host.to_owned(),
            };
        }
        let text = e.to_string();
        if !words.iter().any(|w: &String| w.contains(&text)) {
            words.push(text);
        }
        cur = e.source();
    }
    NetError::Connect {
        host: host.to_owned(),
        detail: words.join(": "),
    }
}

fn from_rustls(host: &str, err: &rustls::Error) -> NetError {
    let host = host.to_owned();
    let detail = err.to_string();
    match err {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            NetError::Untrusted { host, detail }
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => NetError::NameMismatch { host, detail },
        // `openssl req -x509` makes CA:TRUE certificates, which webpki
        // refuses as a server's own; say how to make one it takes.
        rustls::Error::InvalidCertificate(CertificateError::Other(other))
            if format!("{other:?}").contains("CaUsedAsEndEntity") =>
        {
            NetError::Certificate {
                host,
                detail: "the relay presents a CA certificate (CA:TRUE) as its own; give it a certificate signed by that CA, or a self-signed one with basicConstraints CA:FALSE".into(),
            }
        }
        rustls::Error::InvalidCertificate(_) => NetError::Certificate { host, detail },
        _ => NetError::Tls { host, detail },
    }
}

/// An answer from the relay's API: status, `Retry-After` seconds, body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: Bytes,
}

/// The HTTP client for one relay's API (`https://` or, on loopback or with
/// `--insecure`, `http://`). Cheap to clone; keeps connections alive.
#[derive(Debug, Clone)]
pub struct RelayClient {
    http: reqwest::Client,
    base: String,
    host: String,
}

impl RelayClient {
    /// A client for the relay at `base_url` (`https://relay.example`).
    pub fn new(base_url: &str, tls: &TlsOptions) -> Result<RelayClient, NetError> {
        let base = base_url.trim_end_matches('/').to_owned();
        let target = target(&base, tls.insecure)?;
        if base.starts_with("ws") {
            return Err(NetError::BadUrl {
                url: base,
                reason: "the relay's API URL starts with https:// or http://".into(),
            });
        }
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(ClientConfig::clone(&*tls.client_config()?))
            .dns_resolver(Arc::new(Resolver))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("tmux-bridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| classify(&target.host, &e))?;
        Ok(RelayClient {
            http,
            base,
            host: target.host,
        })
    }

    /// The relay's base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET base + path_and_query`, with `bearer` in `Authorization`.
    pub async fn get(
        &self,
        path_and_query: &str,
        bearer: Option<&str>,
    ) -> Result<Response, NetError> {
        self.send(reqwest::Method::GET, path_and_query, bearer, None)
            .await
    }

    /// `POST base + path` with a JSON body (`{}` when `None`).
    pub async fn post(
        &self,
        path: &str,
        bearer: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, NetError> {
        self.send(reqwest::Method::POST, path, bearer, body).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, NetError> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if method == reqwest::Method::POST {
            req = req.json(body.unwrap_or(&serde_json::Value::Object(Default::default())));
        }
        let mut resp = req.send().await.map_err(|e| self.error(e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE as u64)
        {
            return Err(NetError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.error(e))? {
            if body.len() + chunk.len() > MAX_RESPONSE {
                return Err(NetError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            retry_after,
            body: body.into(),
        })
    }

    fn error(&self, err: reqwest::Error) -> NetError {
        if err.is_timeout() {
            return NetError::Timeout {
                what: "the request to the relay",
                after: REQUEST_TIMEOUT,
            };
        }
        // reqwest's URL in its message is ours, without secrets; drop it
        // anyway so the words are about the cause.
        classify(&self.host, &err.without_url())
    }
}

/// Bytes one read of the relay's socket takes at most. tungstenite
/// zero-fills this much of its buffer on every read attempt, two per
/// keystroke (the input, then `WouldBlock`): the default 128 KiB made
/// memset the runner's hottest user-space symbol while typing (`perf
/// record`). What the relay sends is small (input, acks, a preview's
/// request bodies in chunks).
const READ_BUFFER: usize = 16 * 1024;

/// The same over the in-memory link of `up`: a read there copies what the
/// relay wrote, no system call, so a small buffer costs nothing and saves
/// zero-filling 16 KiB per read (callgrind: three reads per echoed key).
const IN_PROCESS_READ_BUFFER: usize = 4 * 1024;

/// The bytes under the runner's WebSocket: a TCP connection to a relay
/// (TLS or not), or an in-memory stream to the relay of this process.
pub type Link = Either<MaybeTlsStream<TcpStream>, DuplexStream>;

/// The WebSocket client type [`connect_ws`] and [`connect_ws_in_process`]
/// return.
pub type WsStream = WebSocketStream<Link>;

/// Opens an in-memory connection to the relay embedded in this process
/// (`tmux-bridge up`): the relay serves its end as it serves an accepted
/// loopback connection.
#[derive(Clone)]
pub struct InProcessDial(Arc<dyn Fn() -> DuplexStream + Send + Sync>);

impl InProcessDial {
    pub fn new(dial: impl Fn() -> DuplexStream + Send + Sync + 'static) -> Self {
        InProcessDial(Arc::new(dial))
    }
}

impl std::fmt::Debug for InProcessDial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcessDial")
    }
}

/// Opens a WebSocket to `url` (`wss://…`, or `ws://…` on loopback or with
/// `--insecure`) with `Authorization: Bearer <bearer_token>`, trusting the
/// relay as `tls` says, with the runner socket's message limits. The whole
/// of DNS, TCP, TLS and the upgrade must finish within
/// [`CONNECT_TIMEOUT`]. A 401 or 403 answer is [`NetError::Rejected`].
pub async fn connect_ws(
    url: &str,
    bearer_token: &str,
    tls: &TlsOptions,
) -> Result<WsStream, NetError> {
    within_connect_timeout(connect_ws_inner(url, bearer_token, tls)).await
}

/// [`connect_ws`] to the relay embedded in this process, over a stream
/// `dial` opens instead of TCP: the same request, token and limits, the
/// same answers to a refused token; no DNS, TLS or socket. `url` is the
/// relay's runner WebSocket URL on its listener (the request's `Host`).
pub async fn connect_ws_in_process(
    url: &str,
    bearer_token: &str,
    dial: &InProcessDial,
) -> Result<WsStream, NetError> {
    let target = target(url, false)?;
    let request = ws_request(url, bearer_token)?;
    within_connect_timeout(upgrade(
        request,
        Either::Right((dial.0)()),
        &target.host,
        IN_PROCESS_READ_BUFFER,
    ))
    .await
}

/// `connecting` if it finishes within [`CONNECT_TIMEOUT`].
async fn within_connect_timeout(
    connecting: impl Future<Output = Result<WsStream, NetError>>,
) -> Result<WsStream, NetError> {
    tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .unwrap_or(Err(NetError::Timeout {
            what: "connecting to the relay",
            after: CONNECT_TIMEOUT,
        }))
}

/// The upgrade request to `url` with the bearer token.
fn ws_request(url: &str, bearer_token: &str) -> Result<Request, NetError> {
    if !url.starts_with("ws") {
        return Err(NetError::BadUrl {
            url: url.to_owned(),
            reason: "a WebSocket URL starts with wss:// or ws://".into(),
        });
    }
    let mut request = url.into_client_request().map_err(|e| NetError::BadUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let auth =
        HeaderValue::from_str(&format!("Bearer {bearer_token}")).map_err(|_| NetError::BadUrl {
            url: url.to_owned(),
            reason: "the token has characters a header cannot carry".into(),
        })?;
    request.headers_mut().insert("authorization", auth);
    Ok(request)
}

async fn connect_ws_inner(
    url: &str,
    bearer_token: &str,
    tls: &TlsOptions,
) -> Result<WsStream, NetError> {
    let target = target(url, tls.insecure)?;
    let request = ws_request(url, bearer_token)?;

    let config = if target.tls {
        Some(tls.client_config()?)
    } else {
        None
    };
    let addrs = resolve(&target.host, target.port).await?;
    let tcp = TcpStream::connect(&addrs[..])
        .await
        .map_err(|e| classify(&target.host, &e))?;
    // Keystrokes are small frames; Nagle would hold them.
    let _ = tcp.set_nodelay(true);
    let stream = match config {
        None => MaybeTlsStream::Plain(tcp),
        Some(config) => {
            let name = ServerName::try_from(target.host.clone()).map_err(|e| NetError::BadUrl {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
            let tls_stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| classify(&target.host, &e))?;
            MaybeTlsStream::Rustls(tls_stream)
        }
    };
    upgrade(request, Either::Left(stream), &target.host, READ_BUFFER).await
}

/// The WebSocket handshake over `stream`, with the runner socket's limits
/// and reads of at most `read_buffer` bytes.
async fn upgrade(
    request: Request,
    stream: Link,
    host: &str,
    read_buffer: usize,
) -> Result<WsStream, NetError> {
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(protocol::control::MAX_RUNNER_MESSAGE))
        .max_frame_size(Some(protocol::control::MAX_RUNNER_MESSAGE))
        .read_buffer_size(read_buffer);
    match tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config)).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(resp))
            if matches!(
                resp.status(),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            ) =>
        {
            Err(NetError::Rejected {
                status: resp.status(),
            })
        }
        Err(tungstenite::Error::Http(resp)) => Err(NetError::UpgradeStatus {
            status: resp.status(),
        }),
        Err(err) => Err(classify(host, &err)),
    }
}

#[cfg(test)]
mod tests;
