//! The shared state every handler receives: the store, the auth module, the
//! live hub, the connected runners, the event notifier, the web dir, the
//! metrics and readiness checks, and the shutdown token and task tracker that
//! upgraded WebSockets run under (the public URL is `auth.config()`'s).
//! Cheap to clone.

use std::path::PathBuf;
use std::sync::Arc;

use store::{FrameCommitter, Store};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use axum::extract::FromRef;

use crate::auth::Auth;
use crate::config::MetricsToken;
use crate::http::ops::Readiness;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::runners::Runners;

/// axum state of the relay.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Stores the runners' Batch frames many per transaction (group
    /// commit), answering each after its transaction committed.
    pub frames: FrameCommitter,
    pub auth: Auth,
    pub hub: Arc<Hub>,
    /// The runner daemons connected to this process, and their commands.
    pub runners: Arc<Runners>,
    /// Live notices for `GET /api/events`.
    pub notifier: Notifier,
    /// A built page on disk to serve (empty: the page in the binary).
    pub web_dir: Arc<PathBuf>,
    /// Cancelled when the relay shuts down.
    pub shutdown: CancellationToken,
    /// Tracks upgraded WebSocket tasks so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// Ping interval of WebSockets (see `Config::keepalive`).
    pub keepalive: std::time::Duration,
    /// Runner heartbeat period (`welcome.heartbeat_ms`).
    pub heartbeat: std::time::Duration,
    /// How long a command waits for the runner's result.
    pub command_timeout: std::time::Duration,
    /// The jobs' lock and creation limit.
    pub jobs: Arc<crate::jobs::Jobs>,
    /// The Prometheus metrics of this relay.
    pub metrics: Arc<Metrics>,
    /// The bearer token `GET /metrics` requires, if set.
    pub metrics_token: Option<Arc<MetricsToken>>,
    /// The checks of `GET /readyz`.
    pub readiness: Arc<Readiness>,
    /// Dev server previews: their origin, capabilities and tunnels.
    pub previews: Arc<crate::preview::Previews>,
    /// Cluster mode (`--nats-url`): the other relays over NATS.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl FromRef<AppState> for Auth {
    fn from_ref(st: &AppState) -> Auth {
        st.auth.clone()
    }
}
