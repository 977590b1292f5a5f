//! Revocations across relays: a [`Cut`] made here (a runner revoked, a
//! logout, every login of an account ended by a password change, a share
//! link revoked) is published on [`super::cuts_subject`] as JSON
//! [`CutMessage`]; every other relay applies it to its own live
//! connections at once (the runner's socket closes with 1008, the login's
//! browser sockets with 4401, the link's viewers). A relay does not hear
//! its own cuts (the connection is `no_echo`).
//!
//! The page's live notices (`crate::notify`: the session list changed, a
//! runner went online, a job changed, ...) go the same way on
//! [`super::notices_subject`] as JSON [`NoticeMessage`], so a page whose
//! event stream is on one relay hears what happens on the others. A job
//! notice in state `queued` also makes every other relay dispatch that
//! account's queued jobs to the runners it holds (a job created on a relay
//! that does not hold the runner starts on the one that does).

use std::sync::Arc;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Cluster, ClusterError, cuts_subject, notices_subject};
use crate::auth::Cut;
use crate::notify::Notice;
use crate::state::AppState;

/// Cuts waiting to be published (the sink never waits).
const OUTBOX: usize = 1024;

/// A cut on the wire, with the relay that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutMessage {
    pub relay: String,
    #[serde(flatten)]
    pub cut: Cut,
}

/// A page notice on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoticeMessage {
    pub relay: String,
    pub user_id: String,
    /// The SSE event name.
    pub name: String,
    pub data: serde_json::Value,
}

/// Installs the notice sink (publishing, never waiting: a full outbox
/// drops the notice, which only delays a page's refresh) and delivers
/// other relays' notices to this relay's event streams.
pub(super) async fn start_notices(
    cluster: Arc<Cluster>,
    st: &AppState,
) -> Result<(), ClusterError> {
    let mut sub = cluster.subscribe(notices_subject()).await?;
    let (tx, mut rx) = mpsc::channel::<NoticeMessage>(OUTBOX);
    let relay = cluster.relay_id.clone();
    st.notifier
        .set_sink(Arc::new(move |user_id: &str, notice: &Notice| {
            let msg = NoticeMessage {
                relay: relay.clone(),
                user_id: user_id.to_owned(),
                name: notice.name().to_owned(),
                data: notice.value(),
            };
            if tx.try_send(msg).is_err() {
                tracing::warn!("cluster: the notice outbox is full; a notice stays local");
            }
        }));
    let (c, shutdown) = (cluster.clone(), st.shutdown.clone());
    st.tracker.spawn(async move {
        loop {
            let Some(msg) = shutdown.run_until_cancelled(rx.recv()).await.flatten() else {
                return;
            };
            let Ok(body) = serde_json::to_vec(&msg) else {
                continue;
            };
            if let Err(e) = c.client.publish(notices_subject(), body.into()).await {
                tracing::warn!(error = %e, "cluster: publishing a notice failed");
            }
        }
    });
    let st2 = st.clone();
    st.tracker.spawn(async move {
        loop {
            let Some(msg) = st2.shutdown.run_until_cancelled(sub.next()).await.flatten() else {
                return;
            };
            match serde_json::from_slice::<NoticeMessage>(&msg.payload) {
                Ok(m) if m.relay != cluster.relay_id => {
                    // A job queued on another relay (created there, or put
                    // back): this relay dispatches it if it holds a runner
                    // that can take it (`jobs::dispatch` sends only to this
                    // relay's runners; the store's claim keeps two relays
                    // from starting it twice).
                    let queued =
                        m.name == "job" && m.data["state"] == crate::jobs::lifecycle::QUEUED;
                    if let Some(n) = Notice::from_parts(&m.name, m.data) {
                        st2.notifier.deliver(&m.user_id, n);
                    }
                    if queued {
                        crate::jobs::spawn_dispatch(&st2, &m.user_id);
                    }
                }
                Ok(_) => {}
                Err(_) => tracing::warn!("cluster: a notice does not parse; dropped"),
            }
        }
    });
    Ok(())
}

/// Installs the cut sink (publishing) and subscribes to other relays' cuts.
pub(super) async fn start(cluster: Arc<Cluster>, st: &AppState) -> Result<(), ClusterError> {
    let mut sub = cluster.subscribe(cuts_subject()).await?;
    let (tx, mut rx) = mpsc::channel::<Cut>(OUTBOX);
    st.auth.set_cut_sink(Arc::new(move |cut: &Cut| {
        if tx.try_send(cut.clone()).is_err() {
            tracing::error!("cluster: the cut outbox is full; a revocation stays local");
        }
    }));
    let (c, shutdown) = (cluster.clone(), st.shutdown.clone());
    st.tracker.spawn(async move {
        loop {
            let Some(cut) = shutdown.run_until_cancelled(rx.recv()).await.flatten() else {
                return;
            };
            let msg = CutMessage {
                relay: c.relay_id.clone(),
                cut,
            };
            let Ok(body) = serde_json::to_vec(&msg) else {
                continue;
            };
            if let Err(e) = c.client.publish(cuts_subject(), body.into()).await {
                tracing::error!(error = %e, "cluster: publishing a revocation failed");
            }
            // Out now, not at the next batch: a second is the promise.
            let _ = c.client.flush().await;
        }
    });
    let st2 = st.clone();
    st.tracker.spawn(async move {
        loop {
            let Some(msg) = st2.shutdown.run_until_cancelled(sub.next()).await.flatten() else {
                return;
            };
            match serde_json::from_slice::<CutMessage>(&msg.payload) {
                Ok(m) if m.relay != cluster.relay_id => {
                    let closed = st2.auth.apply_cut(&m.cut);
                    tracing::info!(from = %m.relay, closed, "cluster: revocation from another relay applied");
                }
                Ok(_) => {}
                Err(_) => tracing::warn!("cluster: a revocation message does not parse; dropped"),
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_round_trip() {
        let m = CutMessage {
            relay: "r1".into(),
            cut: Cut::Login {
                user_id: "u".into(),
                login_id: "l".into(),
            },
        };
        let json = serde_json::to_string(&m).expect("json");
        assert_eq!(
            json,
            r#"{"relay":"r1","cut":"login","user_id":"u","login_id":"l"}"#
        );
        assert_eq!(serde_json::from_str::<CutMessage>(&json).expect("parse"), m);
    }

    #[test]
    fn notices_round_trip() {
        let n = Notice::Runner(serde_json::json!({"id": "r", "online": true}));
        let m = NoticeMessage {
            relay: "r1".into(),
            user_id: "u".into(),
            name: n.name().into(),
            data: n.value(),
        };
        let back: NoticeMessage =
            serde_json::from_slice(&serde_json::to_vec(&m).expect("json")).expect("parse");
        assert_eq!(Notice::from_parts(&back.name, back.data), Some(n));
        assert_eq!(
            Notice::from_parts("sessions", serde_json::json!({})),
            Some(Notice::Sessions)
        );
        assert_eq!(Notice::from_parts("nope", serde_json::json!({})), None);
    }
}
