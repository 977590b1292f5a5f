//! Cluster mode (issue 15, phase 1): several `tmux-relay serve` processes
//! on one PostgreSQL database act as one service over NATS. Everything
//! NATS is here: the subjects and their encoding, one file per job.
//!
//! - `frames`: the relay holding a runner's connection publishes each frame
//!   of its sessions once, after the store committed it (the same bytes, kind
//!   and sequence range in headers), with the session's scope and its
//!   runner going online or offline, on `tmux-bridge.frames.<session>`. A
//!   relay with browsers of a session subscribes to it (first browser) and
//!   feeds its local hub; it unsubscribes when the last browser leaves.
//! - `owners`: which relay holds each runner's connection, in the
//!   JetStream KV bucket `tmux-bridge-owners` whose entries expire
//!   ([`LEASE`]) unless the owner renews them; a runner that connects to
//!   another relay (failover) is taken over there at once, announced on
//!   `tmux-bridge.takeover`, and its old relay drops its stale connection.
//! - `routing`: input, resize, keys, tmux actions and snapshot requests from
//!   browsers here to a runner on another relay, and runner commands
//!   (create, kill session, cancel a job) with their result, on
//!   `tmux-bridge.relay.<relay id>.{op,state,command}`; checked here as for
//!   a local runner, and again by the owner against the session's scope.
//! - `broadcast`: revocations, logouts and account changes
//!   ([`crate::auth::Cut`]) on `tmux-bridge.cuts`, applied by every relay;
//!   the page's live notices (`/api/events`: sessions, runners, jobs, ...)
//!   on `tmux-bridge.notices`, delivered to every relay's event streams.
//!
//! Invariant: a frame reaches another relay only after the store committed
//! it (it is published from `SessionHub::publish`, which the runner task
//! calls only after the store's commit); the receiving browser tasks keep
//! their gap-free `last_seq` logic (a missed frame is refilled from the
//! shared store). Without `--nats-url` none of this exists: no connection,
//! no notes, the single-process relay as before.

pub mod broadcast;
pub mod frames;
pub mod owners;
pub mod routing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::hub::HubNote;
use crate::state::AppState;

pub use frames::WatchGuard;

/// Prefix of every subject the relays use.
pub const PREFIX: &str = "tmux-bridge";
/// The KV bucket of runner ownership.
pub const OWNERS_BUCKET: &str = "tmux-bridge-owners";
/// How long an owner's entry lives without renewal.
pub const LEASE: Duration = Duration::from_secs(15);
/// How often an owner renews its entries.
pub const RENEW: Duration = Duration::from_secs(5);

/// `tmux-bridge.frames.<session>`: a session's frames and live state.
pub fn frames_subject(session: store::TerminalSessionId) -> String {
    format!("{PREFIX}.frames.{session}")
}

/// `tmux-bridge.relay.<relay>.<what>`: requests to one relay.
pub fn relay_subject(relay: &str, what: &str) -> String {
    format!("{PREFIX}.relay.{relay}.{what}")
}

/// `tmux-bridge.takeover`: a relay took a runner over (failover).
pub fn takeover_subject() -> String {
    format!("{PREFIX}.takeover")
}

/// `tmux-bridge.cuts`: revocations for every relay.
pub fn cuts_subject() -> String {
    format!("{PREFIX}.cuts")
}

/// `tmux-bridge.notices`: the page's live notices for every relay.
pub fn notices_subject() -> String {
    format!("{PREFIX}.notices")
}

/// Why the cluster could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    #[error("connecting to NATS")]
    Connect(#[from] async_nats::ConnectError),
    #[error("opening the KV bucket {OWNERS_BUCKET} (is JetStream enabled: nats-server -js?)")]
    Bucket(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("subscribing to {subject}")]
    Subscribe {
        subject: String,
        #[source]
        source: async_nats::SubscribeError,
    },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// This relay's membership of the cluster. Shared (`Arc`) in `AppState`.
pub struct Cluster {
    client: async_nats::Client,
    relay_id: String,
    owners: owners::Owners,
    /// Sessions watched for local browsers.
    watches: Mutex<HashMap<store::TerminalSessionId, Arc<frames::Watch>>>,
    /// Taken by [`Cluster::start`]: the hub's notes to publish.
    notes: Mutex<Option<mpsc::Receiver<HubNote>>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("relay_id", &self.relay_id)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Subscribes to `subject`, naming it in the error.
    pub(super) async fn subscribe(
        &self,
        subject: String,
    ) -> Result<async_nats::Subscriber, ClusterError> {
        self.client
            .subscribe(subject.clone())
            .await
            .map_err(|source| ClusterError::Subscribe { subject, source })
    }

    /// Connects to NATS at `url` and opens (or creates) the owners bucket.
    /// Returns the cluster and the sender the hub notes into.
    pub async fn connect(url: &str) -> Result<(Cluster, mpsc::Sender<HubNote>), ClusterError> {
        let relay_id = crate::auth::codes::new_id();
        let client = async_nats::ConnectOptions::new()
            .name(format!("tmux-relay {relay_id}"))
            // A relay hears its own publications only through its hub.
            .no_echo()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        let owners = owners::Owners::open(&client).await?;
        let (tx, rx) = mpsc::channel(crate::hub::NOTES_CHANNEL);
        tracing::info!(relay = %relay_id, "cluster: connected to NATS");
        Ok((
            Cluster {
                client,
                relay_id,
                owners,
                watches: Mutex::default(),
                notes: Mutex::new(Some(rx)),
            },
            tx,
        ))
    }

    /// This relay's id in the cluster (random per process).
    pub fn relay_id(&self) -> &str {
        &self.relay_id
    }

    /// The NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Starts the cluster's tasks (publisher, owner leases, the requests
    /// to this relay, the cuts), all ending with `st.shutdown`; installs
    /// the cut sink. Call once, with the state that holds this cluster.
    pub async fn start(self: &Arc<Self>, st: &AppState) -> Result<(), ClusterError> {
        if let Some(rx) = lock(&self.notes).take() {
            st.tracker
                .spawn(frames::publish_notes(self.clone(), rx, st.shutdown.clone()));
        }
        owners::spawn_leases(self.clone(), st).await?;
        routing::spawn_service(self.clone(), st).await?;
        broadcast::start(self.clone(), st).await?;
        broadcast::start_notices(self.clone(), st).await?;
        Ok(())
    }

    /// Whether NATS answers (a round trip) within `deadline`.
    pub async fn ping(&self, deadline: Duration) -> Result<(), &'static str> {
        match tokio::time::timeout(deadline, self.client.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: NATS failed");
                Err("unavailable")
            }
            Err(_) => Err("timeout"),
        }
    }
}
