//! What a revocation cuts, as one value (issue 15): a runner revoked, one
//! login ended, every login of an account ended, a share link revoked.
//!
//! [`Auth`] applies a cut to this process's live connections and hands it
//! to the cut sink, if one is installed (the cluster module broadcasts it
//! so every other relay applies it too). No I/O here.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Auth;

/// One revocation, as applied to live connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cut", rename_all = "snake_case")]
pub enum Cut {
    /// The runner's connections close (1008).
    Runner { runner_id: String },
    /// What one login keeps open closes (4401).
    Login { user_id: String, login_id: String },
    /// What every login of the account keeps open closes (4401).
    User { user_id: String },
    /// The link's viewers close.
    Share { share_id: String },
}

/// Where cuts made on this process go besides its own connections.
pub type CutSink = Arc<dyn Fn(&Cut) + Send + Sync>;

/// The installed sink (`Debug` names it only).
pub(super) struct SinkCell(pub(super) CutSink);

impl std::fmt::Debug for SinkCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CutSink")
    }
}

impl Auth {
    /// Installs the sink every later cut is handed to (once; later calls
    /// are ignored).
    pub fn set_cut_sink(&self, sink: CutSink) {
        let _ = self.inner.cut_sink.set(SinkCell(sink));
    }

    /// Applies `cut` to this process's live connections only; returns how
    /// many it closed. Used for cuts heard from other relays.
    pub fn apply_cut(&self, cut: &Cut) -> usize {
        match cut {
            Cut::Runner { runner_id } => self.connections().revoke(runner_id),
            Cut::Login { user_id, login_id } => self.logins().end_login(user_id, login_id),
            Cut::User { user_id } => self.logins().end_user(user_id),
            Cut::Share { share_id } => self.inner.share_viewers.revoke(share_id),
        }
    }

    /// Applies `cut` here and hands it to the sink; returns how many
    /// connections of this process it closed.
    pub(crate) fn cut(&self, cut: Cut) -> usize {
        let n = self.apply_cut(&cut);
        if let Some(sink) = self.inner.cut_sink.get() {
            (sink.0)(&cut);
        }
        n
    }
}
