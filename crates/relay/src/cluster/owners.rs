//! Runner ownership: which relay holds each runner's connection, in the
//! JetStream KV bucket [`OWNERS_BUCKET`](super::OWNERS_BUCKET), one entry
//! per runner id. The bucket's `max_age` is the lease ([`super::LEASE`]):
//! the owner writes its entries when runners connect and renews them every
//! [`super::RENEW`], so the entries of a relay that died expire; it deletes
//! an entry when the runner goes (unless another relay took it over).
//!
//! Failover (issue 15, phase 2): a runner that connects here takes its
//! entry over at once, whoever held it (a relay that died holds it for up
//! to a lease; a live one may still hold a connection the runner left),
//! and the takeover is announced ([`Takeover`]). The relay that held an
//! older connection of that runner closes it (4001, no offline notice:
//! the runner is online elsewhere) when it hears the announcement, or at
//! its next renewal at the latest: renewals are compare-and-set on the
//! revision it last wrote, so a relay never writes over a newer owner.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_nats::jetstream::{self, kv};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{Cluster, ClusterError, LEASE, OWNERS_BUCKET, RENEW};
use crate::state::AppState;

/// An owner's entry for one runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The relay holding the runner's connection.
    pub relay: String,
    pub user_id: String,
    pub host: String,
    pub features: Vec<String>,
}

/// Why an ownership look-up failed.
#[derive(Debug, thiserror::Error)]
#[error("reading runner ownership from NATS KV: {0}")]
pub struct LookupError(String);

/// The owners bucket.
pub struct Owners {
    kv: kv::Store,
}

/// Whether `id` can be a KV key (runner ids are lowercase hex; anything
/// else is never written nor looked up).
fn valid_key(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Owners {
    /// Opens the bucket, creating it (lease as `max_age`, no history) if
    /// no relay did yet. The bucket's stream is created directly, with
    /// the settings a KV bucket has (`KV_<bucket>` on `$KV.<bucket>.>`,
    /// one message per key, roll-ups, direct gets): the client's own
    /// `create_key_value` first reads the account's info in a form that
    /// nats-server 2.9 (Debian's) does not send.
    pub(super) async fn open(client: &async_nats::Client) -> Result<Owners, ClusterError> {
        let js = jetstream::new(client.clone());
        if let Ok(kv) = js.get_key_value(OWNERS_BUCKET).await {
            return Ok(Owners { kv });
        }
        let created = js
            .create_stream(jetstream::stream::Config {
                name: format!("KV_{OWNERS_BUCKET}"),
                description: Some(
                    "tmux-relay: which relay holds each runner's connection".to_owned(),
                ),
                subjects: vec![format!("$KV.{OWNERS_BUCKET}.>")],
                max_messages_per_subject: 1,
                max_age: LEASE,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: jetstream::stream::DiscardPolicy::New,
                num_replicas: 1,
                ..Default::default()
            })
            .await;
        // Created, or another relay created it meanwhile: open it.
        match js.get_key_value(OWNERS_BUCKET).await {
            Ok(kv) => Ok(Owners { kv }),
            Err(open) => Err(ClusterError::Bucket(match created {
                Err(create) => Box::new(create),
                Ok(_) => Box::new(open),
            })),
        }
    }

    /// The relay holding `runner_id`'s connection, if any holds a live
    /// lease.
    pub async fn lookup(&self, runner_id: &str) -> Result<Option<Owner>, LookupError> {
        if !valid_key(runner_id) {
            return Ok(None);
        }
        let value = self
            .kv
            .get(runner_id)
            .await
            .map_err(|e| LookupError(e.to_string()))?;
        Ok(value.and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Every runner of `user_id` with a live lease, and its owner.
    pub async fn of_user(&self, user_id: &str) -> Result<Vec<(String, Owner)>, LookupError> {
        let mut keys = self
            .kv
            .keys()
            .await
            .map_err(|e| LookupError(e.to_string()))?;
        let mut out = Vec::new();
        while let Some(key) = keys.next().await {
            let Ok(key) = key else { continue };
            if let Some(owner) = self.lookup(&key).await?
                && owner.user_id == user_id
            {
                out.push((key, owner));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Writes `runner_id`'s entry whatever it holds (a runner that just
    /// connected here takes it over from any other relay); its revision.
    async fn put(&self, runner_id: &str, owner: &Owner) -> Option<u64> {
        let value = serde_json::to_vec(owner).ok()?;
        match self.kv.put(runner_id, value.into()).await {
            Ok(revision) => Some(revision),
            Err(e) => {
                tracing::warn!(runner = %runner_id, error = %e, "cluster: writing a runner's lease failed");
                None
            }
        }
    }

    /// Renews `runner_id`'s entry if it is still the one this relay wrote
    /// at `revision`.
    async fn renew(&self, runner_id: &str, owner: &Owner, revision: u64) -> Renewal {
        let Ok(value) = serde_json::to_vec(owner) else {
            return Renewal::Failed;
        };
        match self.kv.update(runner_id, value.into(), revision).await {
            Ok(revision) => return Renewal::Renewed(revision),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
            Err(e) => {
                tracing::warn!(runner = %runner_id, error = %e, "cluster: renewing a runner's lease failed");
                return Renewal::Failed;
            }
        }
        // Someone wrote since, or the entry expired: who holds it now?
        let current = match self.lookup(runner_id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(runner = %runner_id, error = %e, "cluster: renewing a runner's lease failed");
                return Renewal::Failed;
            }
        };
        match after_refusal(current.as_ref(), &owner.relay) {
            Refused::Moved => Renewal::Moved,
            Refused::Rewrite => self
                .put(runner_id, owner)
                .await
                .map_or(Renewal::Failed, Renewal::Renewed),
        }
    }

    /// Deletes `runner_id`'s entry if `relay` still owns it.
    async fn release(&self, runner_id: &str, relay: &str) {
        match self.lookup(runner_id).await {
            Ok(Some(o)) if o.relay == relay => {
                if let Err(e) = self.kv.delete(runner_id).await {
                    tracing::warn!(runner = %runner_id, error = %e, "cluster: releasing a runner failed");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(runner = %runner_id, error = %e, "cluster: releasing a runner failed")
            }
        }
    }
}

/// What a renewal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Renewal {
    /// Still ours, at this revision now.
    Renewed(u64),
    /// Another relay holds the runner now: it connected there.
    Moved,
    /// NATS did not answer; retried at the next round.
    Failed,
}

/// What a relay does when the entry of a runner connected to it changed
/// since its last write (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// Another relay wrote it: the runner connected there, this relay's
    /// connection of it is stale.
    Moved,
    /// It expired (renewals failed for a lease's length) or it is still
    /// this relay's: write it again.
    Rewrite,
}

fn after_refusal(current: Option<&Owner>, me: &str) -> Refused {
    match current {
        Some(o) if o.relay != me => Refused::Moved,
        _ => Refused::Rewrite,
    }
}

/// `tmux-bridge.takeover`: a relay took a runner's entry over (the runner
/// connected to it) at `revision`; the relay holding an older connection of
/// that runner drops it at once (else it notices at its next renewal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Takeover {
    pub relay: String,
    pub runner_id: String,
    pub revision: u64,
}

/// A runner connected here, as the lease task holds it: the connection
/// and the revision of this relay's last write of its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    conn: u64,
    revision: u64,
}

/// Whether a takeover at `announced` ends the connection held at `held`
/// (pure): only a write after this relay's own.
fn superseded(held: Option<&Held>, announced: u64) -> bool {
    held.is_some_and(|h| h.revision < announced)
}

/// Keeps this relay's leases: a runner that connects here takes its entry
/// over (written whatever it holds, then announced on
/// [`super::takeover_subject`]); every [`RENEW`] the entry is renewed if it
/// is still the one this relay wrote, and a runner whose entry another
/// relay wrote since (it connected there) is closed here; a runner gone is
/// released; on shutdown every lease is released.
pub(super) async fn spawn_leases(cluster: Arc<Cluster>, st: &AppState) -> Result<(), ClusterError> {
    let mut takeovers = cluster.subscribe(super::takeover_subject()).await?;
    let st = st.clone();
    st.tracker.clone().spawn(async move {
        let me = cluster.relay_id.clone();
        let mut held: HashMap<String, Held> = HashMap::new();
        let mut renew_at = tokio::time::Instant::now() + RENEW;
        loop {
            // Every entry every RENEW; a runner that connected, at once.
            let renewing = tokio::time::Instant::now() >= renew_at;
            if renewing {
                renew_at = tokio::time::Instant::now() + RENEW;
            }
            let now: Vec<_> = st
                .runners
                .connections()
                .into_iter()
                .filter(|(id, _, _)| valid_key(id))
                .collect();
            let ids: HashSet<String> = now.iter().map(|(id, _, _)| id.clone()).collect();
            for (id, conn, d) in now {
                let owner = Owner {
                    relay: me.clone(),
                    user_id: d.user_id,
                    host: d.host,
                    features: d.features,
                };
                match held.get(&id).copied() {
                    Some(h) if h.conn == conn && !renewing => {}
                    Some(h) if h.conn == conn => {
                        match cluster.owners.renew(&id, &owner, h.revision).await {
                            Renewal::Renewed(revision) => {
                                held.insert(id, Held { conn, revision });
                            }
                            Renewal::Moved => {
                                tracing::info!(runner = %id, "cluster: the runner connected to another relay; closing its connection here");
                                st.runners.evict(&id, conn);
                                held.remove(&id);
                            }
                            Renewal::Failed => {}
                        }
                    }
                    _ => {
                        let Some(revision) = cluster.owners.put(&id, &owner).await else {
                            continue;
                        };
                        held.insert(id.clone(), Held { conn, revision });
                        announce(&cluster, &id, revision).await;
                    }
                }
            }
            let gone: Vec<String> = held.keys().filter(|id| !ids.contains(*id)).cloned().collect();
            for id in gone {
                held.remove(&id);
                cluster.owners.release(&id, &me).await;
            }
            tokio::select! {
                () = st.shutdown.cancelled() => break,
                () = st.runners.changed() => {}
                () = tokio::time::sleep_until(renew_at) => {}
                Some(msg) = takeovers.next() => {
                    match serde_json::from_slice::<Takeover>(&msg.payload) {
                        Ok(t) if t.relay != me && superseded(held.get(&t.runner_id), t.revision) => {
                            if let Some(h) = held.remove(&t.runner_id) {
                                tracing::info!(runner = %t.runner_id, to = %t.relay, "cluster: the runner moved to another relay; closing its connection here");
                                st.runners.evict(&t.runner_id, h.conn);
                            }
                        }
                        Ok(_) => {}
                        Err(_) => tracing::warn!("cluster: a takeover message does not parse; dropped"),
                    }
                }
            }
        }
        for id in held.keys() {
            cluster.owners.release(id, &me).await;
        }
    });
    Ok(())
}

/// Tells the other relays that this one took `runner_id` over at
/// `revision`.
async fn announce(cluster: &Cluster, runner_id: &str, revision: u64) {
    let msg = Takeover {
        relay: cluster.relay_id.clone(),
        runner_id: runner_id.to_owned(),
        revision,
    };
    let Ok(body) = serde_json::to_vec(&msg) else {
        return;
    };
    if let Err(e) = cluster
        .client
        .publish(super::takeover_subject(), body.into())
        .await
    {
        tracing::warn!(runner = %runner_id, error = %e, "cluster: announcing a takeover failed");
    }
    // Out now: the old relay drops its stale connection at once.
    let _ = cluster.client.flush().await;
}

impl Cluster {
    /// The owner of `runner_id`'s connection, if a relay holds a lease.
    pub async fn owner(&self, runner_id: &str) -> Result<Option<Owner>, LookupError> {
        self.owners.lookup(runner_id).await
    }

    /// The runners of `user_id` that some relay holds.
    pub async fn owned_of_user(&self, user_id: &str) -> Result<Vec<(String, Owner)>, LookupError> {
        self.owners.of_user(user_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_are_keys() {
        assert!(valid_key("0123abcdef"));
        assert!(!valid_key(""));
        assert!(!valid_key("a.b"));
        assert!(!valid_key("a b"));
        assert!(!valid_key(&"a".repeat(129)));
    }

    fn owner(relay: &str) -> Owner {
        Owner {
            relay: relay.into(),
            user_id: "u".into(),
            host: "h".into(),
            features: Vec::new(),
        }
    }

    #[test]
    fn a_refused_renewal_moves_only_for_another_relay() {
        assert_eq!(after_refusal(Some(&owner("b")), "a"), Refused::Moved);
        assert_eq!(after_refusal(Some(&owner("a")), "a"), Refused::Rewrite);
        assert_eq!(after_refusal(None, "a"), Refused::Rewrite, "expired");
    }

    #[test]
    fn only_a_later_takeover_ends_a_held_connection() {
        let held = Held {
            conn: 3,
            revision: 10,
        };
        assert!(superseded(Some(&held), 11));
        assert!(!superseded(Some(&held), 10));
        assert!(
            !superseded(Some(&held), 9),
            "the runner came back here after that takeover"
        );
        assert!(!superseded(None, 11), "not held here");
        let t = Takeover {
            relay: "b".into(),
            runner_id: "r".into(),
            revision: 11,
        };
        let json = serde_json::to_string(&t).expect("json");
        assert_eq!(json, r#"{"relay":"b","runner_id":"r","revision":11}"#);
        assert_eq!(serde_json::from_str::<Takeover>(&json).expect("parse"), t);
    }
}
