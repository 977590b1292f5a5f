//! Runner ownership: which relay holds each runner's connection, in the
//! JetStream KV bucket [`OWNERS_BUCKET`](super::OWNERS_BUCKET), one entry
//! per runner id. The bucket's `max_age` is the lease ([`super::LEASE`]):
//! the owner writes its entries when runners connect and renews them every
//! [`super::RENEW`], so the entries of a relay that died expire; it deletes
//! an entry when the runner goes (unless another relay took it over).

use std::collections::HashSet;
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

    async fn put(&self, runner_id: &str, owner: &Owner) {
        let Ok(value) = serde_json::to_vec(owner) else {
            return;
        };
        if let Err(e) = self.kv.put(runner_id, value.into()).await {
            tracing::warn!(runner = %runner_id, error = %e, "cluster: writing a runner's lease failed");
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

/// Keeps this relay's leases: every runner connected here is written when
/// it connects and every [`RENEW`]; a runner gone is released; on shutdown
/// every lease is released.
pub(super) fn spawn_leases(cluster: Arc<Cluster>, st: &AppState) {
    let st = st.clone();
    st.tracker.clone().spawn(async move {
        let mut held: HashSet<String> = HashSet::new();
        loop {
            let now: Vec<_> = st
                .runners
                .all()
                .into_iter()
                .filter(|(id, _)| valid_key(id))
                .collect();
            let ids: HashSet<String> = now.iter().map(|(id, _)| id.clone()).collect();
            for (id, d) in now {
                let owner = Owner {
                    relay: cluster.relay_id.clone(),
                    user_id: d.user_id,
                    host: d.host,
                    features: d.features,
                };
                cluster.owners.put(&id, &owner).await;
            }
            for gone in held.difference(&ids) {
                cluster.owners.release(gone, &cluster.relay_id).await;
            }
            held = ids;
            tokio::select! {
                () = st.shutdown.cancelled() => break,
                () = st.runners.changed() => {}
                () = tokio::time::sleep(RENEW) => {}
            }
        }
        for id in &held {
            cluster.owners.release(id, &cluster.relay_id).await;
        }
    });
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
}
