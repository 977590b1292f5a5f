//! The runner's saved credentials: `{relay_url, runner_id, runner_token}`
//! (and `failover_urls`: more relays of the same cluster, from `pair
//! --relay URL --relay URL2`; absent in files written before failover)
//! written by `tmux-bridge pair` to `<config dir>/tmux-bridge/credentials.json`
//! (`~/.config` on Linux, `~/Library/Application Support` on macOS,
//! `%APPDATA%` on Windows; `TMUX_BRIDGE_CONFIG_DIR` overrides the
//! directory), readable only by the user (0600 in a 0700 directory on
//! Unix), and read by later runs with no user action.
//!
//! Credentials are deleted only after a definite rejection of that very
//! token ([`Credentials::forget_if_rejected`]); a network error never
//! deletes them. `Debug` never prints the token.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Environment variable that overrides the directory of `credentials.json`.
pub const CONFIG_DIR_ENV: &str = "TMUX_BRIDGE_CONFIG_DIR";
/// File name inside the directory.
pub const CREDENTIALS_FILE: &str = "credentials.json";

/// Errors reading or writing the credentials file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("no configuration directory on this system; set {CONFIG_DIR_ENV}")]
    NoConfigDir,
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("credentials file {path} is not valid JSON")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// A paired runner's credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The relay's base URL (`http://…`/`https://…`).
    pub relay_url: String,
    /// More relays of the same cluster (same database and signing secret:
    /// the token works on each), tried in order when the current one
    /// fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover_urls: Vec<String>,
    /// The runner's id at that relay.
    pub runner_id: String,
    /// The runner token (a JWT).
    pub runner_token: String,
    /// The account that approved the pairing, for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The `--ca-file` given to `pair` (a relay with a private CA); later
    /// runs trust it too unless they pass their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("relay_url", &self.relay_url)
            .field("failover_urls", &self.failover_urls)
            .field("runner_id", &self.runner_id)
            .field("account", &self.account)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// `<config dir>/tmux-bridge/credentials.json`, or
    /// `$TMUX_BRIDGE_CONFIG_DIR/credentials.json`.
    pub fn default_path() -> Result<PathBuf, ConfigError> {
        if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir).join(CREDENTIALS_FILE));
        }
        dirs::config_dir()
            .map(|d| d.join("tmux-bridge").join(CREDENTIALS_FILE))
            .ok_or(ConfigError::NoConfigDir)
    }

    /// The saved credentials, or `None` if there are none.
    pub fn load() -> Result<Option<Credentials>, ConfigError> {
        Self::load_from(&Self::default_path()?)
    }

    /// The credentials saved at `path`, or `None` if the file is missing.
    pub fn load_from(path: &Path) -> Result<Option<Credentials>, ConfigError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ConfigError::Io {
                    what: "reading",
                    path: path.to_owned(),
                    source,
                });
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| ConfigError::Parse {
                path: path.to_owned(),
                source,
            })
    }

    /// Saves to the default path; returns it.
    pub fn save(&self) -> Result<PathBuf, ConfigError> {
        let path = Self::default_path()?;
        self.save_to(&path)?;
        Ok(path)
    }

    /// Saves to `path` atomically (temporary file, then rename), the file
    /// mode 0600 and a new directory 0700 on Unix.
    pub fn save_to(&self, path: &Path) -> Result<(), ConfigError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let tmp = dir.join(format!(".{CREDENTIALS_FILE}.{}.tmp", std::process::id()));
        let io = |what, source| ConfigError::Io {
            what,
            path: tmp.clone(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let _ = std::fs::remove_file(&tmp);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(|e| io("creating", e))?;
        file.write_all(&json).map_err(|e| io("writing", e))?;
        file.write_all(b"\n").map_err(|e| io("writing", e))?;
        file.sync_all().map_err(|e| io("syncing", e))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|source| ConfigError::Io {
            what: "replacing",
            path: path.to_owned(),
            source,
        })
    }

    /// Deletes the saved credentials if they hold `rejected_token`, the
    /// token the relay definitely refused (401 / close 1008). Returns
    /// whether a file was deleted. Any other token (re-paired meanwhile)
    /// is left alone.
    pub fn forget_if_rejected(rejected_token: &str) -> Result<bool, ConfigError> {
        let path = Self::default_path()?;
        match Self::load_from(&path)? {
            Some(c) if c.runner_token == rejected_token => {
                std::fs::remove_file(&path).map_err(|source| ConfigError::Io {
                    what: "deleting",
                    path: path.clone(),
                    source,
                })?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// Whether an uplink rejection reason (`session::Rejected`) is a definite
/// refusal of the token by the relay: HTTP 401 on the runner socket, or a
/// close with 1008 (revoked, expired). Anything else (bad URL, 403, a
/// local problem) keeps the credentials.
///
/// The uplink words these as "the relay refused the runner token (401 …)"
/// and "the relay closed the connection: …" (only ever for close 1008).
pub fn is_definite_rejection(reason: &str) -> bool {
    reason.contains("(401") || reason.starts_with("the relay closed the connection:")
}

fn create_private_dir(dir: &Path) -> Result<(), ConfigError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| ConfigError::Io {
        what: "creating",
        path: dir.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(token: &str) -> Credentials {
        Credentials {
            relay_url: "http://127.0.0.1:1".into(),
            failover_urls: vec!["http://127.0.0.1:2".into()],
            runner_id: "r1".into(),
            runner_token: token.into(),
            account: Some("alice".into()),
            ca_file: None,
        }
    }

    #[test]
    fn save_load_round_trip_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/tmux-bridge/credentials.json");
        assert_eq!(Credentials::load_from(&path).expect("load"), None);
        creds("tok").save_to(&path).expect("save");
        assert_eq!(
            Credentials::load_from(&path).expect("load"),
            Some(creds("tok"))
        );
        creds("tok2").save_to(&path).expect("overwrite");
        assert_eq!(
            Credentials::load_from(&path)
                .expect("load")
                .map(|c| c.runner_token),
            Some("tok2".into())
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let dmode = std::fs::metadata(path.parent().expect("dir"))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(dmode, 0o700);
        }
        assert!(!format!("{:?}", creds("secret-token")).contains("secret-token"));
    }

    #[test]
    fn only_definite_rejections_count() {
        assert!(is_definite_rejection(
            "the relay refused the runner token (401 Unauthorized)"
        ));
        assert!(is_definite_rejection(
            "the relay closed the connection: 1008 runner revoked"
        ));
        assert!(!is_definite_rejection(
            "bad relay URL: relative URL without a base"
        ));
        assert!(!is_definite_rejection(
            "the relay refused the runner token (403 Forbidden)"
        ));
    }

    #[test]
    fn a_file_from_before_failover_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("credentials.json");
        std::fs::write(
            &path,
            br#"{"relay_url":"https://r.example","runner_id":"r1","runner_token":"t","account":"a"}"#,
        )
        .expect("write");
        let c = Credentials::load_from(&path).expect("load").expect("some");
        assert_eq!(c.relay_url, "https://r.example");
        assert!(c.failover_urls.is_empty());
        // And without failover URLs none are written.
        c.save_to(&path).expect("save");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("failover_urls"), "{text}");
    }

    #[test]
    fn garbage_is_an_error_not_a_deletion() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("credentials.json");
        std::fs::write(&path, b"{not json").expect("write");
        assert!(matches!(
            Credentials::load_from(&path),
            Err(ConfigError::Parse { .. })
        ));
        assert!(path.exists());
    }
}
