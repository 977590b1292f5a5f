//! Live notices for the page (`GET /api/events`, Server-Sent Events) and
//! the activity feed (issue 9).
//!
//! [`Notifier`] is one broadcast channel of `(user id, notice)`; each
//! event stream keeps its own account's. [`record`] stores an activity
//! event and broadcasts it. A receiver that lags is told to refetch
//! (`sessions`), never blocked on.

use std::sync::{Arc, OnceLock};

use serde_json::json;
use store::{EventRecord, NewEvent};
use tokio::sync::broadcast;

use crate::state::AppState;

/// Buffered notices before a slow event stream lags.
const CAPACITY: usize = 1024;

/// What changed, for one account.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The session list changed: fetch it again.
    Sessions,
    /// A runner went online or offline: `{"id","online",…}`.
    Runner(serde_json::Value),
    /// A new activity event (the `Event` object of §5).
    Activity(serde_json::Value),
    /// A job was created or changed (the `Job` object of §5).
    Job(serde_json::Value),
    /// A dev server event (the `DevserverEvent` object of §5).
    Devserver(serde_json::Value),
    /// An agent's state changed (the `Agent` object of §5).
    Agent(serde_json::Value),
    /// A watched pane went idle or active (the `PaneWatch` object of §5).
    PaneActivity(serde_json::Value),
}

impl Notice {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Notice::Sessions => "sessions",
            Notice::Runner(_) => "runner",
            Notice::Activity(_) => "activity",
            Notice::Job(_) => "job",
            Notice::Devserver(_) => "devserver",
            Notice::Agent(_) => "agent",
            Notice::PaneActivity(_) => "pane_activity",
        }
    }

    /// The SSE data.
    pub fn data(&self) -> String {
        match self {
            Notice::Sessions => "{}".to_owned(),
            Notice::Runner(v)
            | Notice::Activity(v)
            | Notice::Job(v)
            | Notice::Devserver(v)
            | Notice::Agent(v)
            | Notice::PaneActivity(v) => v.to_string(),
        }
    }
}

impl Notice {
    /// A notice from its SSE name and data (as another relay sent it);
    /// `None` for an unknown name.
    pub fn from_parts(name: &str, data: serde_json::Value) -> Option<Notice> {
        Some(match name {
            "sessions" => Notice::Sessions,
            "runner" => Notice::Runner(data),
            "activity" => Notice::Activity(data),
            "job" => Notice::Job(data),
            "devserver" => Notice::Devserver(data),
            "agent" => Notice::Agent(data),
            "pane_activity" => Notice::PaneActivity(data),
            _ => return None,
        })
    }

    /// The data as JSON (`{}` for `sessions`).
    pub fn value(&self) -> serde_json::Value {
        match self {
            Notice::Sessions => json!({}),
            Notice::Runner(v)
            | Notice::Activity(v)
            | Notice::Job(v)
            | Notice::Devserver(v)
            | Notice::Agent(v)
            | Notice::PaneActivity(v) => v.clone(),
        }
    }
}

/// Where notices sent on this relay go besides its own event streams
/// (cluster mode: the other relays).
pub type NoticeSink = Arc<dyn Fn(&str, &Notice) + Send + Sync>;

struct SinkCell(NoticeSink);

impl std::fmt::Debug for SinkCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NoticeSink")
    }
}

/// Broadcasts notices to the event streams. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: broadcast::Sender<(String, Notice)>,
    sink: Arc<OnceLock<SinkCell>>,
}

impl Default for Notifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Notifier {
    pub fn new() -> Self {
        Notifier {
            tx: broadcast::channel(CAPACITY).0,
            sink: Arc::new(OnceLock::new()),
        }
    }

    /// A receiver of every account's notices (filter by user id).
    pub fn subscribe(&self) -> broadcast::Receiver<(String, Notice)> {
        self.tx.subscribe()
    }

    /// Sends `notice` to `user_id`'s streams (none listening is fine),
    /// and to the sink if one is installed.
    pub fn send(&self, user_id: &str, notice: Notice) {
        if let Some(sink) = self.sink.get() {
            (sink.0)(user_id, &notice);
        }
        self.deliver(user_id, notice);
    }

    /// Sends `notice` to this relay's streams of `user_id` only (a notice
    /// heard from another relay).
    pub fn deliver(&self, user_id: &str, notice: Notice) {
        let _ = self.tx.send((user_id.to_owned(), notice));
    }

    /// Installs the sink every later notice is handed to (once).
    pub fn set_sink(&self, sink: NoticeSink) {
        let _ = self.sink.set(SinkCell(sink));
    }

    /// The session list of `user_id` changed.
    pub fn sessions(&self, user_id: &str) {
        self.send(user_id, Notice::Sessions);
    }

    /// A runner of `user_id` went online or offline.
    pub fn runner(&self, user_id: &str, runner_id: &str, online: bool) {
        self.send(
            user_id,
            Notice::Runner(json!({ "id": runner_id, "online": online })),
        );
    }
}

/// An event as the page reads it (§5 `Event`).
pub fn event_json(e: &EventRecord) -> serde_json::Value {
    let mut v = json!({
        "id": e.id.to_string(),
        "at": e.at,
        "kind": e.kind,
        "runner_id": e.runner_id,
        "runner_name": e.runner_name,
    });
    if let Some(map) = v.as_object_mut() {
        if let Some(s) = e.session_id {
            map.insert("session_id".into(), json!(s.to_string()));
        }
        for (k, val) in [("idea", &e.idea), ("slot", &e.slot), ("detail", &e.detail)] {
            if let Some(val) = val {
                map.insert(k.into(), json!(val));
            }
        }
    }
    v
}

/// Stores an activity event and sends it to the account's streams. A
/// store failure is logged, never fatal: the feed is informational.
pub async fn record(st: &AppState, e: NewEvent<'_>) {
    match st.store.add_event(&e).await {
        Ok(stored) => st
            .notifier
            .send(e.user_id, Notice::Activity(event_json(&stored))),
        Err(err) => {
            tracing::warn!(kind = e.kind, error = %err, "recording an activity event failed")
        }
    }
}
