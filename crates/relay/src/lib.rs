//! The relay server `tmux-relay` (issue 4): runner daemons stream the
//! transcript frames of every session they serve to it over one WebSocket
//! each (protocol 2, issue 9), it stores them (transcript's `Store`) and fans them
//! out to browsers, and it serves the page and the page's API.
//!
//! [`Relay::start`] runs a relay in the current tokio runtime and returns a
//! [`RelayHandle`]; `tmux-relay serve` and `tmux-bridge up` (embedded) both
//! use it. Modules: `config` (settings and limits), `serve` (the HTTP
//! server loop and its timeouts), `hub` (live fan-out, bounded queues),
//! `runners` (connected runner daemons and their commands), `notify`
//! (the activity feed and live notices for the page),
//! `ws` (the runner and browser sockets), `http` (router, page, API),
//! `auth` (users, tokens, pairing, logins, caps; issues 6 and 10), `tls`
//! (HTTPS on the relay's own listener: certificate, key, handshake
//! deadline), `logs`
//! (the log layer both binaries use, text or JSON), `metrics` (Prometheus
//! counters, gauges and the store histogram), `state` (what handlers share),
//! `cluster` (several relays as one service over NATS, `--nats-url`). It
//! does not parse records or touch SQL: `protocol` and `store` do.

pub mod auth;
pub mod cluster;
pub mod config;
pub mod export;
pub mod http;
pub mod hub;
pub mod jobs;
pub mod logs;
pub mod metrics;
pub mod notify;
pub mod preview;
pub mod runners;
pub mod search;
pub mod serve;
pub mod state;
pub mod tls;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use store::{RetentionPolicy, Store, StoreError, StoreOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Config, Limits, Retention};

use crate::auth::{Auth, AuthConfig};
use crate::http::ops::Readiness;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::runners::Runners;
use crate::state::AppState;

/// Why the relay could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    #[error("creating the data directory {path}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("opening the database")]
    Store(#[from] StoreError),
    #[error("setting up authentication")]
    Auth(#[from] auth::AuthError),
    #[error("listening on {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("loading the TLS certificate and key")]
    Tls(#[from] tls::TlsError),
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
    #[error("the metrics listener failed")]
    MetricsServe(#[source] std::io::Error),
    #[error("the preview URL template")]
    PreviewUrl(#[from] preview::TemplateError),
    #[error("joining the cluster")]
    Cluster(#[from] cluster::ClusterError),
}

/// What `tmux-bridge up` needs from its embedded relay: the local default
/// user, a runner token for the embedded bridge, and a one-time login URL
/// for the browser. `Debug` does not print the token or the URL's code.
#[derive(Clone)]
pub struct LocalSetup {
    pub user_id: String,
    pub runner_id: String,
    /// Bearer token for `GET /api/runner/ws`.
    pub runner_token: String,
    /// The relay's WebSocket URL for runners (`ws://…/api/runner/ws`, or
    /// `wss://` over TLS).
    pub runner_ws_url: String,
    /// Opens the page logged in as the local user, once.
    pub login_url: String,
}

impl std::fmt::Debug for LocalSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSetup")
            .field("user_id", &self.user_id)
            .field("runner_id", &self.runner_id)
            .field("runner_ws_url", &self.runner_ws_url)
            .finish_non_exhaustive()
    }
}

/// Entry point of the relay.
#[derive(Debug)]
pub struct Relay;

/// A running relay. Dropping it does not stop it; call
/// [`RelayHandle::shutdown`].
pub struct RelayHandle {
    local_addr: SocketAddr,
    tls: bool,
    state: AppState,
    /// The main listener's router (marking its requests [`ws::InProcess`])
    /// and limits, for in-process connections.
    app: axum::Router,
    limits: config::Limits,
    server: JoinHandle<std::io::Result<()>>,
    metrics_server: Option<(SocketAddr, JoinHandle<std::io::Result<()>>)>,
    preview_server: Option<(SocketAddr, JoinHandle<std::io::Result<()>>)>,
    pruner: Option<JoinHandle<()>>,
    indexer: Option<JoinHandle<()>>,
    shutdown_timeout: std::time::Duration,
}

impl Relay {
    /// Opens the store (running migrations), loads or creates the signing
    /// secret in `config.data_dir`, binds `config.listen` and serves until
    /// [`RelayHandle::shutdown`].
    pub async fn start(config: Config) -> Result<RelayHandle, RelayError> {
        prepare_data_dir(&config.data_dir)?;
        // Before the store: a bad certificate path fails fast, touching nothing.
        let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let mut store_options = StoreOptions::default();
        store_options.acquire_timeout = config.limits.db_acquire_timeout;
        store_options.busy_timeout = config.limits.db_busy_timeout;
        let store = Store::connect_with(&config.database_url, &store_options).await?;
        tracing::info!(dialect = store.dialect(), "store open");
        let listener = serve::bind(config.listen, config.limits.send_buffer).map_err(|source| {
            RelayError::Bind {
                addr: config.listen,
                source,
            }
        })?;
        let local_addr = listener.local_addr().map_err(|source| RelayError::Bind {
            addr: config.listen,
            source,
        })?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{local_addr}"))
            .trim_end_matches('/')
            .to_owned();
        let (cluster, hub) = match &config.nats_url {
            Some(url) => {
                let (c, notes) = cluster::Cluster::connect(url).await?;
                (Some(Arc::new(c)), Arc::new(Hub::with_notes(notes)))
            }
            None => (None, Arc::new(Hub::new())),
        };
        let mut auth_config =
            AuthConfig::new(public_url.clone()).with_socket_caps(config.limits.sockets);
        if let Some(c) = &cluster {
            // Rate limits and WebSocket caps count across relays.
            auth_config = auth_config.with_cluster(c.relay_id());
        }
        let auth = Auth::open(store.clone(), &config.data_dir, auth_config)?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => {
                let l =
                    serve::bind(addr, None).map_err(|source| RelayError::Bind { addr, source })?;
                let bound = l
                    .local_addr()
                    .map_err(|source| RelayError::Bind { addr, source })?;
                Some((l, bound))
            }
            None => None,
        };
        let preview_listener = match &config.preview {
            Some(p) => {
                let l = serve::bind(p.listen, config.limits.send_buffer).map_err(|source| {
                    RelayError::Bind {
                        addr: p.listen,
                        source,
                    }
                })?;
                let bound = l.local_addr().map_err(|source| RelayError::Bind {
                    addr: p.listen,
                    source,
                })?;
                let template = preview::UrlTemplate::parse(&p.url, bound.port())?;
                Some((l, bound, template, p.limits))
            }
            None => None,
        };
        let previews = Arc::new(match &preview_listener {
            Some((_, _, t, limits)) => preview::Previews::new(Some(t.clone()), *limits),
            None => preview::Previews::new(None, preview::PreviewLimits::default()),
        });
        let shutdown = CancellationToken::new();
        let runners = Arc::new(Runners::new());
        let jobs = Arc::new(jobs::Jobs::new(auth.shared_rates()));
        let metrics = Arc::new(Metrics::new(
            hub.clone(),
            runners.clone(),
            auth.clone(),
            jobs.clone(),
        ));
        let state = AppState {
            store: store.clone(),
            frames: store::FrameCommitter::spawn(store.clone(), store::CommitOptions::default()),
            auth,
            hub,
            runners,
            notifier: Notifier::new(),
            web_dir: Arc::new(config.web_dir.clone()),
            shutdown: shutdown.clone(),
            tracker: TaskTracker::new(),
            keepalive: config.keepalive.max(std::time::Duration::from_millis(10)),
            heartbeat: config.heartbeat.max(std::time::Duration::from_millis(10)),
            command_timeout: config.command_timeout,
            jobs,
            metrics: metrics.clone(),
            metrics_token: config.metrics_token.clone().map(Arc::new),
            readiness: Arc::new(match &cluster {
                Some(c) => {
                    Readiness::new(store.clone(), config.limits.ready_timeout).with_nats(c.clone())
                }
                None => Readiness::new(store.clone(), config.limits.ready_timeout),
            }),
            previews,
            cluster: cluster.clone(),
        };
        if let Some(c) = &cluster {
            c.start(&state).await?;
            state.tracker.spawn(auth::shared::keep_leases(
                state.auth.sockets().clone(),
                shutdown.clone(),
            ));
        }
        let limits = config.limits;
        let app = http::router(state.clone())
            .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
                limits.body_idle_timeout,
            ))
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                limits.request_timeout,
            ))
            .layer(axum::middleware::from_fn_with_state(
                metrics,
                count_response,
            ));
        let preview_server = preview_listener.map(|(l, addr, template, _)| {
            tracing::info!(addr = %addr, origin = %template.origin("{id}"), "previews listening");
            let app = preview::proxy::router(state.clone()).layer(
                tower_http::timeout::RequestBodyTimeoutLayer::new(limits.body_idle_timeout),
            );
            let task = tokio::spawn(serve::serve(
                l,
                app,
                limits,
                acceptor.clone(),
                shutdown.clone(),
            ));
            (addr, task)
        });
        let server = tokio::spawn(serve::serve(
            listener,
            app.clone(),
            limits,
            acceptor,
            shutdown.clone(),
        ));
        let metrics_server = metrics_listener.map(|(l, addr)| {
            tracing::info!(addr = %addr, "metrics listening");
            let app = http::ops::metrics_router(state.clone()).layer(
                tower_http::timeout::TimeoutLayer::with_status_code(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    limits.request_timeout,
                ),
            );
            let task = tokio::spawn(serve::serve(l, app, limits, None, shutdown.clone()));
            (addr, task)
        });
        let pruner = config.retention.interval.map(|interval| {
            let policy = RetentionPolicy {
                keep_snapshots: config.retention.keep_snapshots,
                max_bytes: config.retention.max_bytes,
            };
            let logs = (config.retention.log_days > 0).then(|| {
                jobs::spawn_log_pruner(
                    store.clone(),
                    config.retention.log_days,
                    interval,
                    shutdown.child_token(),
                )
            });
            let frames =
                store::spawn_pruner(store.clone(), policy, interval, shutdown.child_token());
            // One handle for both: the log pruner ends with the same token.
            tokio::spawn(async move {
                let _ = frames.await;
                if let Some(l) = logs {
                    let _ = l.await;
                }
            })
        });
        let indexer = config.search_interval.map(|interval| {
            let logs = search::job_logs::spawn_job_log_indexer(
                store.clone(),
                interval,
                shutdown.child_token(),
            );
            let frames =
                search::indexer::spawn_indexer(store.clone(), interval, shutdown.child_token());
            // One handle for both: they end with the same token.
            tokio::spawn(async move {
                let _ = frames.await;
                let _ = logs.await;
            })
        });
        tracing::info!(addr = %local_addr, public_url = %public_url, "relay listening");
        Ok(RelayHandle {
            local_addr,
            tls: config.tls.is_some(),
            state,
            app: app.layer(axum::Extension(ws::InProcess)),
            limits,
            server,
            metrics_server,
            preview_server,
            pruner,
            indexer,
            shutdown_timeout: config.shutdown_timeout,
        })
    }
}

/// Counts every response of the main listener by status class (the
/// outermost layer, so timeouts and refusals count too).
async fn count_response(
    axum::extract::State(metrics): axum::extract::State<Arc<Metrics>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let resp = next.run(req).await;
    metrics.http_response(resp.status());
    resp
}

/// Creates the data dir 0700 (whatever the umask), or narrows an existing
/// one that others may enter: it holds the signing secret and, with SQLite,
/// transcripts and password hashes (issue 10).
fn prepare_data_dir(dir: &std::path::Path) -> Result<(), RelayError> {
    let err = |source| RelayError::DataDir {
        path: dir.display().to_string(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err)?;
        }
        let mode = std::fs::metadata(dir).map_err(err)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))
                .map_err(err)?;
            tracing::warn!(
                dir = %dir.display(),
                was = format!("{mode:o}"),
                "the data dir was open to others; narrowed to its owner"
            );
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).map_err(err)?;
    Ok(())
}

/// Bytes an in-process connection buffers each way before a write waits
/// for the reader (what a socket's buffer is to a TCP connection).
const IN_PROCESS_BUFFER: usize = 256 * 1024;

impl RelayHandle {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The public URL (without a trailing slash) WebSocket Origins must match.
    pub fn public_url(&self) -> &str {
        &self.state.auth.config().public_url
    }

    /// The relay's store.
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// The relay's auth module (users, tokens, login links).
    pub fn auth(&self) -> &Auth {
        &self.state.auth
    }

    /// The live hub.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.state.hub
    }

    /// The relay's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// The bound address of the metrics listener, if one was configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(|(addr, _)| *addr)
    }

    /// The bound address of the preview listener, if one was configured.
    pub fn preview_addr(&self) -> Option<SocketAddr> {
        self.preview_server.as_ref().map(|(addr, _)| *addr)
    }

    /// The origin of preview `id` (`None`: previews are off).
    pub fn preview_origin(&self, id: &str) -> Option<String> {
        self.state.previews.template.as_ref().map(|t| t.origin(id))
    }

    /// The previews' shared state (grants, the runners' tunnels).
    pub fn previews(&self) -> &Arc<preview::Previews> {
        &self.state.previews
    }

    /// Creates (or finds) the local default user and its embedded runner,
    /// mints a fresh runner token (the previous one is revoked) and a
    /// one-time login URL. For `tmux-bridge up`.
    pub async fn local_setup(&self, host: &str) -> Result<LocalSetup, RelayError> {
        let local = self.state.auth.ensure_local_runner(host).await?;
        let login_url = self.state.auth.login_link(&local.user_id).await?;
        let runner_ws_url = self.runner_ws_url();
        Ok(LocalSetup {
            user_id: local.user_id,
            runner_id: local.runner_id,
            runner_token: local.runner_token,
            runner_ws_url,
            login_url,
        })
    }

    /// The runner WebSocket URL on the bound address (`ws://addr/api/runner/ws`,
    /// `wss://` when the relay serves TLS).
    pub fn runner_ws_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/api/runner/ws", self.local_addr)
    }

    /// Opens connections to the main listener that stay in this process:
    /// each call gives an in-memory byte stream whose other end is served
    /// exactly as an accepted loopback connection (the same router,
    /// limits, timeouts and shutdown; TLS does not apply). `tmux-bridge up`
    /// connects its runner this way: no socket, no kernel between the two
    /// halves of one program.
    pub fn in_process_dialer(
        &self,
    ) -> impl Fn() -> tokio::io::DuplexStream + Send + Sync + 'static {
        let (app, limits, shutdown) = (self.app.clone(), self.limits, self.state.shutdown.clone());
        move || {
            let (ours, theirs) = tokio::io::duplex(IN_PROCESS_BUFFER);
            let peer = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0));
            tokio::spawn(serve::serve_connection(
                theirs,
                peer,
                app.clone(),
                limits,
                shutdown.clone(),
            ));
            ours
        }
    }

    /// A token that, when cancelled, starts the same shutdown as
    /// [`RelayHandle::shutdown`] (the caller must still call it to wait).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Stops accepting connections, closes every WebSocket with 1001 and a
    /// reason, waits for them (up to the configured timeout), stops the
    /// pruner and closes the store.
    pub async fn shutdown(self) -> Result<(), RelayError> {
        tracing::info!("relay shutting down");
        self.state.shutdown.cancel();
        self.state.tracker.close();
        if tokio::time::timeout(self.shutdown_timeout, self.state.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = self.state.tracker.len(),
                "WebSockets still open after the shutdown timeout"
            );
        }
        let served = match tokio::time::timeout(self.shutdown_timeout, self.server).await {
            Ok(Ok(r)) => r.map_err(RelayError::Serve),
            Ok(Err(join)) => Err(RelayError::Serve(std::io::Error::other(join))),
            Err(_) => {
                tracing::warn!("HTTP connections still open after the shutdown timeout");
                Ok(())
            }
        };
        let served = match self.metrics_server {
            Some((_, task)) => match tokio::time::timeout(self.shutdown_timeout, task).await {
                Ok(Ok(Err(e))) => served.and(Err(RelayError::MetricsServe(e))),
                Ok(Err(join)) => {
                    served.and(Err(RelayError::MetricsServe(std::io::Error::other(join))))
                }
                Ok(Ok(Ok(()))) | Err(_) => served,
            },
            None => served,
        };
        if let Some((_, task)) = self.preview_server {
            let _ = tokio::time::timeout(self.shutdown_timeout, task).await;
        }
        if let Some(p) = self.pruner {
            let _ = p.await;
        }
        if let Some(i) = self.indexer {
            let _ = i.await;
        }
        self.state.store.close().await;
        tracing::info!("relay stopped");
        served
    }
}
