//! Previews of dev servers through the relay (issue 12; docs/previews.md
//! has the design and its threat model).
//!
//! - [`grants`]: previews, their single-use codes and cookies (pure).
//! - [`tunnel`]: byte streams through a runner connection (§4.8).
//! - [`proxy`]: the preview listener's handlers: the code-for-cookie
//!   exchange and the reverse proxy (HTTP and WebSocket) over a tunnel.
//!
//! [`Previews`] is what the relay shares: the preview origin's URL
//! template, the grants, the live runners' tunnels and the per-account
//! count of open tunnels. The app-origin route that mints a preview is
//! `http/previews.rs`. Nothing here serves the app's origin.

pub mod grants;
pub mod proxy;
pub mod tunnel;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;

use grants::Grants;
use tunnel::{RunnerTunnels, TunnelWire};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The preview cookie's name over http (host-only, HttpOnly).
pub const COOKIE_PLAIN: &str = "tb_preview";
/// Its name over https (`__Host-`: host-only, `Secure`, `Path=/`).
pub const COOKIE_SECURE: &str = "__Host-tb_preview";
/// The path on a preview origin that exchanges a code for the cookie (a
/// dev server's own path of that name is not reachable).
pub const ENTER_PATH: &str = "/__tb/enter";

/// What a preview may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PreviewLimits {
    /// Largest request body forwarded to a dev server.
    pub max_body: usize,
    /// The dev server must answer with its response headers within this
    /// (504 otherwise).
    pub response_timeout: Duration,
    /// An upgraded (WebSocket) connection idle this long in both
    /// directions is closed.
    pub upgraded_idle: Duration,
    /// Tunnels one account may have open at once (429 beyond).
    pub tunnels_per_account: usize,
}

impl Default for PreviewLimits {
    fn default() -> Self {
        PreviewLimits {
            max_body: 32 * 1024 * 1024,
            response_timeout: Duration::from_secs(30),
            upgraded_idle: Duration::from_secs(600),
            tunnels_per_account: 32,
        }
    }
}

/// `--preview-listen` and `--preview-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewConfig {
    pub listen: SocketAddr,
    /// `http://{id}.localhost:{port}`, `https://{id}.preview.example`:
    /// `{id}` is the preview's id (the host's first label), `{port}` the
    /// listener's bound port.
    pub url: String,
    pub limits: PreviewLimits,
}

/// Why a preview URL template is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    #[error("the preview URL must start with http:// or https://: {0}")]
    Scheme(String),
    #[error("the preview URL's host must start with `{{id}}.` (one label per preview): {0}")]
    NoId(String),
    #[error("the preview URL must be an origin (no path, query or fragment): {0}")]
    NotOrigin(String),
}

/// The preview origin's URL template, resolved for a bound port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTemplate {
    scheme: &'static str,
    /// What follows the id in the `Host` header, lowercase, without the
    /// scheme's default port (`.localhost:8418`).
    suffix: String,
}

impl UrlTemplate {
    /// Parses `template` with `{port}` replaced by `port`.
    pub fn parse(template: &str, port: u16) -> Result<UrlTemplate, TemplateError> {
        let t = template.replace("{port}", &port.to_string());
        let (scheme, rest) = if let Some(r) = t.strip_prefix("http://") {
            ("http", r)
        } else if let Some(r) = t.strip_prefix("https://") {
            ("https", r)
        } else {
            return Err(TemplateError::Scheme(template.into()));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let Some(suffix) = rest.strip_prefix("{id}.") else {
            return Err(TemplateError::NoId(template.into()));
        };
        if suffix.is_empty()
            || suffix.contains(['/', '?', '#', '{', '}', '@'])
            || suffix.starts_with('.')
        {
            return Err(TemplateError::NotOrigin(template.into()));
        }
        let default_port = if scheme == "http" { ":80" } else { ":443" };
        let suffix = suffix.to_ascii_lowercase();
        let suffix = suffix
            .strip_suffix(default_port)
            .unwrap_or(&suffix)
            .to_owned();
        Ok(UrlTemplate {
            scheme,
            suffix: format!(".{suffix}"),
        })
    }

    /// The origin of preview `id`.
    pub fn origin(&self, id: &str) -> String {
        format!("{}://{id}{}", self.scheme, self.suffix)
    }

    /// Whether previews are served over https (the cookie is `Secure`).
    pub fn secure(&self) -> bool {
        self.scheme == "https"
    }

    /// The preview id a `Host` header names, if it is one of ours.
    pub fn id_from_host<'h>(&self, host: &'h str) -> Option<&'h str> {
        let default_port = if self.secure() { ":443" } else { ":80" };
        let host = host.strip_suffix(default_port).unwrap_or(host);
        if host.len() <= self.suffix.len() {
            return None;
        }
        let (id, suffix) = host.split_at(host.len() - self.suffix.len());
        (suffix.eq_ignore_ascii_case(&self.suffix) && valid_id(id)).then_some(id)
    }

    /// The cookie's name for this scheme.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure() {
            COOKIE_SECURE
        } else {
            COOKIE_PLAIN
        }
    }
}

/// A preview id: 32 lowercase hex digits (what `codes::new_id` makes).
pub fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Everything previews share across handlers.
#[derive(Debug)]
pub struct Previews {
    /// `None`: no preview listener (previews are off; the app route is 404).
    pub template: Option<UrlTemplate>,
    pub limits: PreviewLimits,
    pub grants: Mutex<Grants>,
    runners: Mutex<HashMap<String, Arc<RunnerTunnels>>>,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open tunnel counted against its account; dropping it gives it back.
#[derive(Debug)]
pub struct TunnelPermit {
    open: Arc<Mutex<HashMap<String, usize>>>,
    user_id: String,
}

impl Drop for TunnelPermit {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        if let Some(n) = open.get_mut(&self.user_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

impl Previews {
    pub fn new(template: Option<UrlTemplate>, limits: PreviewLimits) -> Self {
        Previews {
            template,
            limits,
            grants: Mutex::new(Grants::default()),
            runners: Mutex::new(HashMap::new()),
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Registers the tunnels of runner `runner_id`'s connection `conn`
    /// (replacing an older connection's, whose streams fail).
    pub fn attach(
        &self,
        runner_id: &str,
        conn: u64,
    ) -> (Arc<RunnerTunnels>, mpsc::UnboundedReceiver<TunnelWire>) {
        let (t, rx) = RunnerTunnels::new(conn);
        if let Some(old) = lock(&self.runners).insert(runner_id.to_owned(), t.clone()) {
            old.close_all();
        }
        (t, rx)
    }

    /// The connection `conn` of `runner_id` ended: its streams fail.
    pub fn detach(&self, runner_id: &str, conn: u64) {
        let mut runners = lock(&self.runners);
        if let Some(t) = runners.get(runner_id)
            && t.conn == conn
        {
            t.close_all();
            runners.remove(runner_id);
        }
    }

    /// The live tunnels of `runner_id`, if it is connected.
    pub fn runner(&self, runner_id: &str) -> Option<Arc<RunnerTunnels>> {
        lock(&self.runners).get(runner_id).cloned()
    }

    /// Counts a tunnel for `user_id`, unless it has
    /// [`PreviewLimits::tunnels_per_account`] open already.
    pub fn permit(&self, user_id: &str) -> Option<TunnelPermit> {
        let mut open = lock(&self.open);
        let n = open.entry(user_id.to_owned()).or_insert(0);
        if *n >= self.limits.tunnels_per_account {
            return None;
        }
        *n += 1;
        Some(TunnelPermit {
            open: self.open.clone(),
            user_id: user_id.to_owned(),
        })
    }

    /// Tunnels open for `user_id` now.
    pub fn open_tunnels(&self, user_id: &str) -> usize {
        lock(&self.open).get(user_id).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn templates_make_one_origin_per_preview_and_read_hosts_back() {
        let t = UrlTemplate::parse("http://{id}.localhost:{port}", 8418).expect("template");
        assert_eq!(t.origin(ID), format!("http://{ID}.localhost:8418"));
        assert_eq!(t.id_from_host(&format!("{ID}.localhost:8418")), Some(ID));
        assert_eq!(t.id_from_host(&format!("{ID}.LOCALHOST:8418")), Some(ID));
        assert_eq!(t.id_from_host(&format!("{ID}.localhost:8417")), None);
        assert_eq!(t.id_from_host("localhost:8418"), None);
        assert_eq!(t.id_from_host(&format!("x{ID}.localhost:8418")), None);
        assert_eq!(t.id_from_host(&format!("a.{ID}.localhost:8418")), None);
        assert_eq!(t.id_from_host("127.0.0.1:8418"), None);
        assert!(!t.secure());
        let t = UrlTemplate::parse("https://{id}.preview.example:443/", 0).expect("template");
        assert_eq!(t.origin(ID), format!("https://{ID}.preview.example"));
        assert_eq!(t.id_from_host(&format!("{ID}.preview.example")), Some(ID));
        assert_eq!(
            t.id_from_host(&format!("{ID}.preview.example:443")),
            Some(ID)
        );
        assert_eq!(t.cookie_name(), COOKIE_SECURE);
        for bad in [
            "ftp://{id}.x",
            "http://x.{id}.y",
            "http://{id}.x/path",
            "http://{id}.",
            "http://preview.example",
        ] {
            assert!(UrlTemplate::parse(bad, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn tunnels_per_account_are_capped_and_given_back() {
        let limits = PreviewLimits {
            tunnels_per_account: 2,
            ..PreviewLimits::default()
        };
        let p = Previews::new(None, limits);
        let a = p.permit("u1").expect("first");
        let _b = p.permit("u1").expect("second");
        assert!(p.permit("u1").is_none());
        assert!(p.permit("u2").is_some(), "another account is not affected");
        drop(a);
        assert_eq!(p.open_tunnels("u1"), 1);
        assert!(p.permit("u1").is_some());
    }
}
