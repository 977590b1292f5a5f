//! Live frames across relays. The relay holding a runner's connection
//! publishes what its session hubs note ([`HubNote`]: each frame once,
//! after the store committed it, the same bytes; the topology's ids; the
//! runner going online or offline) on the session's subject
//! ([`super::frames_subject`]), in the order noted. A relay with browsers
//! of a session subscribes while it has any ([`Cluster::watch`]) and feeds
//! its hub: browsers there get the frames through their bounded queues as
//! if the runner were local, and its input goes back through a remote
//! runner link (`routing`).
//!
//! Headers: `tb-kind` (`batch`, `snapshot`, `scope`, `online`,
//! `offline`, `epoch`), `tb-first`/`tb-last` (a frame's sequence range;
//! `epoch`: `tb-last` is the stored head the runner numbers over from),
//! `tb-relay` (the publishing relay), `tb-features` (`online`: the
//! runner's features, comma-separated). Payload: the frame's bytes as
//! stored, the stored scope, the new epoch, or nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use protocol::runner::RelayMsg;
use protocol::wire::FrameKind;
use store::{SessionRecord, TerminalSessionId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Cluster, frames_subject, lock};
use crate::hub::{HubNote, LiveFrame, REMOTE_CONN, Scope, SessionHub, SessionMeta};

/// Header names.
pub const KIND: &str = "tb-kind";
pub const FIRST: &str = "tb-first";
pub const LAST: &str = "tb-last";
pub const RELAY: &str = "tb-relay";
pub const FEATURES: &str = "tb-features";

/// A note as a NATS message: headers and payload (pure).
pub fn encode(note: &HubNote, relay: &str) -> (TerminalSessionId, HeaderMap, Bytes) {
    let mut h = HeaderMap::new();
    h.insert(RELAY, relay);
    match note {
        HubNote::Frame { session, frame } => {
            let kind = match frame.kind {
                FrameKind::Batch => "batch",
                FrameKind::Snapshot => "snapshot",
            };
            h.insert(KIND, kind);
            h.insert(FIRST, frame.first_seq.to_string().as_str());
            h.insert(LAST, frame.last_seq.to_string().as_str());
            (*session, h, frame.bytes.clone())
        }
        HubNote::Scope { session, stored } => {
            h.insert(KIND, "scope");
            (*session, h, Bytes::from(stored.clone()))
        }
        HubNote::Runner {
            session,
            online,
            features,
        } => {
            h.insert(KIND, if *online { "online" } else { "offline" });
            if *online {
                h.insert(FEATURES, features.join(",").as_str());
            }
            (*session, h, Bytes::new())
        }
        HubNote::Epoch {
            session,
            epoch,
            stored_head,
        } => {
            h.insert(KIND, "epoch");
            h.insert(LAST, stored_head.to_string().as_str());
            (*session, h, Bytes::from(epoch.clone()))
        }
    }
}

/// The longest epoch taken from another relay (the relay makes them of 12
/// random bytes: 16 characters).
const MAX_EPOCH: usize = 64;

/// An epoch as relays make them: URL-safe base64, not empty.
fn epoch_is_valid(e: &str) -> bool {
    !e.is_empty()
        && e.len() <= MAX_EPOCH
        && e.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A session message as heard from another relay.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    Frame(LiveFrame),
    Scope(String),
    Online {
        relay: String,
        features: Vec<String>,
    },
    /// The runner's channel on `relay` closed.
    Offline {
        relay: String,
    },
    /// The runner numbers the session over (its `rebase` on another relay).
    Epoch {
        epoch: String,
        stored_head: u64,
    },
}

/// Decodes a message of a session's subject (pure); `None` for one that
/// does not parse (logged by the caller).
pub fn decode(headers: Option<&HeaderMap>, payload: Bytes) -> Option<Heard> {
    let h = headers?;
    let get = |name: &str| h.get(name).map(|v| v.as_str().to_owned());
    let seq = |name: &str| get(name).and_then(|v| v.parse::<u64>().ok());
    match get(KIND)?.as_str() {
        k @ ("batch" | "snapshot") => {
            let (first_seq, last_seq) = (seq(FIRST)?, seq(LAST)?);
            if first_seq > last_seq {
                return None;
            }
            let kind = if k == "batch" {
                FrameKind::Batch
            } else {
                FrameKind::Snapshot
            };
            Some(Heard::Frame(LiveFrame {
                kind,
                first_seq,
                last_seq,
                bytes: payload,
            }))
        }
        "scope" => Some(Heard::Scope(String::from_utf8(payload.to_vec()).ok()?)),
        "online" => Some(Heard::Online {
            relay: get(RELAY)?,
            features: get(FEATURES)
                .unwrap_or_default()
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect(),
        }),
        "offline" => Some(Heard::Offline { relay: get(RELAY)? }),
        "epoch" => {
            let epoch = String::from_utf8(payload.to_vec()).ok()?;
            epoch_is_valid(&epoch).then_some(Heard::Epoch {
                epoch,
                stored_head: seq(LAST)?,
            })
        }
        _ => None,
    }
}

/// Publishes the hub's notes, in order, until shutdown.
pub(super) async fn publish_notes(
    cluster: Arc<Cluster>,
    mut rx: mpsc::Receiver<HubNote>,
    shutdown: CancellationToken,
) {
    loop {
        let Some(note) = shutdown.run_until_cancelled(rx.recv()).await.flatten() else {
            return;
        };
        let (session, headers, payload) = encode(&note, &cluster.relay_id);
        if let Err(e) = cluster
            .client
            .publish_with_headers(frames_subject(session), headers, payload)
            .await
        {
            tracing::warn!(session, error = %e, "cluster: publishing failed");
        }
    }
}

/// One watched session: how many local browsers, and its feeder's end.
pub(super) struct Watch {
    count: AtomicUsize,
    ready: tokio::sync::OnceCell<()>,
    cancel: CancellationToken,
}

/// Held by a browser task while it watches a session; dropping it
/// unsubscribes when it was the last one.
pub struct WatchGuard {
    cluster: Arc<Cluster>,
    session: TerminalSessionId,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let mut watches = lock(&self.cluster.watches);
        if let Some(w) = watches.get(&self.session)
            && w.count.fetch_sub(1, Ordering::AcqRel) == 1
        {
            w.cancel.cancel();
            watches.remove(&self.session);
        }
    }
}

impl Cluster {
    /// Watches session `record` for a local browser: the first one
    /// subscribes to its subject and, once NATS confirmed the
    /// subscription, looks up whether a runner on another relay serves it
    /// (then the hub gets a remote runner link). Returns when frames
    /// committed from now on will reach `hub`: the caller reads the store
    /// after this, so nothing falls between the two.
    pub async fn watch(
        self: &Arc<Self>,
        hub: &Arc<SessionHub>,
        record: &SessionRecord,
        shutdown: &CancellationToken,
    ) -> WatchGuard {
        let w = {
            let mut watches = lock(&self.watches);
            let w = watches
                .entry(record.id)
                .or_insert_with(|| {
                    Arc::new(Watch {
                        count: AtomicUsize::new(0),
                        ready: tokio::sync::OnceCell::new(),
                        cancel: shutdown.child_token(),
                    })
                })
                .clone();
            w.count.fetch_add(1, Ordering::AcqRel);
            w
        };
        let guard = WatchGuard {
            cluster: self.clone(),
            session: record.id,
        };
        w.ready
            .get_or_init(|| {
                self.clone()
                    .start_watch(hub.clone(), record.clone(), w.cancel.clone())
            })
            .await;
        guard
    }

    async fn start_watch(
        self: Arc<Self>,
        hub: Arc<SessionHub>,
        record: SessionRecord,
        cancel: CancellationToken,
    ) {
        let id = record.id;
        let subject = frames_subject(id);
        let sub = match self.client.subscribe(subject).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(session = id, error = %e, "cluster: subscribing failed; no live output from other relays");
                return;
            }
        };
        // A round trip: the server has the subscription before we return.
        if let Err(e) = self.client.flush().await {
            tracing::warn!(session = id, error = %e, "cluster: flushing a subscription failed");
        }
        let meta = SessionMeta {
            user_id: record.user_id.clone(),
            runner_id: record.runner_id.clone(),
            idea: record.idea.clone(),
            slot: record.slot.clone(),
            tmux_session: record.tmux_session.clone(),
            attach: record.attach.clone(),
            host: record.host.clone(),
        };
        let mut mine = None;
        if hub.local_runner().is_none() {
            mine = self.follow_owner(&hub, &meta, &cancel).await;
        }
        tracing::debug!(session = id, "cluster: watching");
        tokio::spawn(feed(self, hub, meta, sub, mine, cancel));
    }

    /// Asks the relay holding the session's runner (from its lease) about
    /// the session and, when a runner channel there serves it, links the
    /// hub to that relay.
    async fn follow_owner(
        self: &Arc<Self>,
        hub: &Arc<SessionHub>,
        meta: &SessionMeta,
        cancel: &CancellationToken,
    ) -> Option<Mine> {
        match self.remote_state(hub.id(), &meta.runner_id).await {
            Ok(Some(state)) if state.online => {
                hub.set_scope(Scope::parse(&state.scope));
                Some(self.attach_remote(hub, meta, &state.relay, state.features, cancel))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(session = hub.id(), error = %e, "cluster: asking the runner's relay failed");
                None
            }
        }
    }

    /// Installs a runner link on `hub` whose messages `routing` sends to
    /// `relay`; returns it (its sender is the link's identity).
    fn attach_remote(
        self: &Arc<Self>,
        hub: &Arc<SessionHub>,
        meta: &SessionMeta,
        relay: &str,
        features: Vec<String>,
        cancel: &CancellationToken,
    ) -> Mine {
        let link = super::routing::remote_link(self.clone(), hub.id(), relay, features, cancel);
        let tx = link.tx.clone();
        hub.attach_runner(meta.clone(), hub.head_seq(), hub.scope(), link);
        Mine {
            relay: relay.to_owned(),
            tx,
        }
    }
}

/// The remote runner link a watch attached: the relay it leads to and its
/// sender (the link's identity in the hub).
struct Mine {
    relay: String,
    tx: mpsc::Sender<RelayMsg>,
}

/// Whether the hub's runner link is the one this watch attached.
fn linked(hub: &SessionHub, mine: Option<&Mine>) -> bool {
    matches!((hub.runner(), mine), (Some(current), Some(mine))
        if current.conn == REMOTE_CONN && current.tx.same_channel(&mine.tx))
}

/// Removes the hub's remote runner link if it is the one this watch
/// attached (a newer watch of the session may have attached its own).
fn detach_mine(hub: &SessionHub, mine: Option<&Mine>) {
    if linked(hub, mine) {
        hub.detach_runner(REMOTE_CONN);
    }
}

/// Feeds what other relays publish for the session into its hub until the
/// last local browser leaves; then the remote runner link goes too.
async fn feed(
    cluster: Arc<Cluster>,
    hub: Arc<SessionHub>,
    meta: SessionMeta,
    mut sub: async_nats::Subscriber,
    mut mine: Option<Mine>,
    cancel: CancellationToken,
) {
    let id = hub.id();
    // An `online` of another relay heard while a runner connection here
    // served the session (the runner moved there).
    let mut moved: Option<(String, Vec<String>)> = None;
    let mut lease = tokio::time::interval(super::RENEW);
    lease.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let msg = tokio::select! {
            () = cancel.cancelled() => break,
            _ = lease.tick() => {
                if let Some(m) = check_lease(&cluster, &hub, &meta, mine.as_ref(), &cancel).await {
                    mine = Some(m);
                }
                continue;
            }
            m = sub.next() => match m {
                Some(m) => m,
                None => break,
            },
        };
        let Some(heard) = decode(msg.headers.as_ref(), msg.payload) else {
            tracing::warn!(
                session = id,
                "cluster: a session message does not parse; dropped"
            );
            continue;
        };
        let local = hub.local_runner().is_some();
        // The runner moved away from this relay while it served it here:
        // once this relay dropped its stale connection, follow at once.
        if !local
            && hub.runner().is_none()
            && let Some((relay, features)) = moved.take()
        {
            mine = Some(cluster.attach_remote(&hub, &meta, &relay, features, &cancel));
        }
        match heard {
            // Duplicates (a runner moving between relays) are harmless:
            // browser tasks drop what they sent already.
            Heard::Frame(frame) => {
                hub.publish(frame);
            }
            Heard::Scope(stored) if !local => hub.set_scope(Scope::parse(&stored)),
            Heard::Online { relay, features } if !local => {
                moved = None;
                mine = Some(cluster.attach_remote(&hub, &meta, &relay, features, &cancel));
            }
            // Another relay serves the session while a connection here
            // does: the runner connected there, this one is stale.
            Heard::Online { relay, features } => moved = Some((relay, features)),
            // Only the relay this link leads to: a relay the runner left
            // says `offline` after the relay it moved to said `online`.
            Heard::Offline { relay }
                if !local && mine.as_ref().is_some_and(|m| m.relay == relay) =>
            {
                detach_mine(&hub, mine.as_ref());
            }
            Heard::Offline { relay } => {
                if moved.as_ref().is_some_and(|(r, _)| *r == relay) {
                    moved = None;
                }
            }
            // Browsers here learn the epoch their next `hello` names.
            Heard::Epoch { epoch, stored_head } if !local => hub.rebase(epoch, stored_head),
            Heard::Scope(_) | Heard::Epoch { .. } => {}
        }
    }
    let _ = sub.unsubscribe().await;
    detach_mine(&hub, mine.as_ref());
    tracing::debug!(session = id, "cluster: stopped watching");
}

/// Follows the runner's lease (every [`super::RENEW`]): a remote runner
/// whose relay no longer holds it (that relay died, or the runner left
/// without an `offline` reaching us) is offline here too; a runner that a
/// relay other than the linked one holds (it moved there, or its relay
/// dropped its stale connection after the `online` went by) is linked to
/// that relay. Returns the new link, if one was made.
async fn check_lease(
    cluster: &Arc<Cluster>,
    hub: &Arc<SessionHub>,
    meta: &SessionMeta,
    mine: Option<&Mine>,
    cancel: &CancellationToken,
) -> Option<Mine> {
    let runner = hub.runner();
    if runner.as_ref().is_some_and(|r| r.conn != REMOTE_CONN) {
        return None;
    }
    let owner = match cluster.owner(&meta.runner_id).await {
        Ok(o) => o,
        Err(e) => {
            tracing::debug!(error = %e, "cluster: checking a lease failed");
            return None;
        }
    };
    match owner {
        None => {
            if linked(hub, mine) {
                tracing::info!(
                    session = hub.id(),
                    "cluster: the runner's relay lost its lease; offline"
                );
                detach_mine(hub, mine);
            }
            None
        }
        // Ours: its channel attaches here.
        Some(o) if o.relay == cluster.relay_id => None,
        Some(o) => {
            let current = if linked(hub, mine) {
                mine.map(|m| m.relay.as_str())
            } else if runner.is_some() {
                // Another watch's link: that watch follows it.
                return None;
            } else {
                None
            };
            if current == Some(o.relay.as_str()) {
                return None;
            }
            tracing::info!(session = hub.id(), relay = %o.relay, "cluster: the runner is on another relay now; following it");
            let followed = cluster.follow_owner(hub, meta, cancel).await;
            if followed.is_none() {
                // Not serving it there yet (its `online` follows): the old
                // link leads nowhere.
                detach_mine(hub, mine);
            }
            followed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_round_trip_through_headers() {
        let frame = LiveFrame {
            kind: FrameKind::Batch,
            first_seq: 5,
            last_seq: 9,
            bytes: Bytes::from_static(b"\x28\xb5\x2f\xfdframe"),
        };
        let (s, h, p) = encode(
            &HubNote::Frame {
                session: 7,
                frame: frame.clone(),
            },
            "r1",
        );
        assert_eq!(s, 7);
        assert_eq!(p, frame.bytes, "the same bytes");
        assert_eq!(decode(Some(&h), p), Some(Heard::Frame(frame)));
        let (_, h, p) = encode(
            &HubNote::Runner {
                session: 7,
                online: true,
                features: vec!["keys".into(), "tmux".into()],
            },
            "r1",
        );
        assert_eq!(
            decode(Some(&h), p),
            Some(Heard::Online {
                relay: "r1".into(),
                features: vec!["keys".into(), "tmux".into()]
            })
        );
        let (_, h, p) = encode(
            &HubNote::Scope {
                session: 7,
                stored: "%1 @1".into(),
            },
            "r1",
        );
        assert_eq!(decode(Some(&h), p), Some(Heard::Scope("%1 @1".into())));
        let (_, h, p) = encode(
            &HubNote::Runner {
                session: 7,
                online: false,
                features: Vec::new(),
            },
            "r2",
        );
        assert_eq!(
            decode(Some(&h), p),
            Some(Heard::Offline { relay: "r2".into() }),
            "an offline names its relay"
        );
        let (_, h, p) = encode(
            &HubNote::Epoch {
                session: 7,
                epoch: "Ab-_9".into(),
                stored_head: 41,
            },
            "r1",
        );
        assert_eq!(
            decode(Some(&h), p),
            Some(Heard::Epoch {
                epoch: "Ab-_9".into(),
                stored_head: 41
            })
        );
        // An epoch that relays never make is not taken.
        for payload in ["", "a\"b", "x y", &"e".repeat(MAX_EPOCH + 1)] {
            let mut h = HeaderMap::new();
            h.insert(KIND, "epoch");
            h.insert(LAST, "3");
            let p = Bytes::from(payload.to_owned());
            assert_eq!(decode(Some(&h), p), None, "{payload:?}");
        }
        let mut no_head = HeaderMap::new();
        no_head.insert(KIND, "epoch");
        assert_eq!(decode(Some(&no_head), Bytes::from_static(b"e1")), None);
        let mut bad = HeaderMap::new();
        bad.insert(KIND, "batch");
        bad.insert(FIRST, "9");
        bad.insert(LAST, "5");
        assert_eq!(decode(Some(&bad), Bytes::new()), None);
        assert_eq!(decode(None, Bytes::new()), None);
    }
}
