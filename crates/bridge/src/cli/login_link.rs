//! `tmux-bridge login-link`: prints a fresh one-time login link for the
//! relay of a running `tmux-bridge up` (a second browser, or the first
//! link expired), reading `up`'s data dir: the URL it listens on
//! (`up.json`, written by `up`), its database and signing secret. The link
//! opens the terminal `up` serves (`--idea`/`--slot` pick another) and
//! works once within 10 minutes; the login it makes lasts 30 days.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use relay::auth::{Auth, AuthConfig, LOCAL_USER};

/// What `up` records in its data dir for `login-link`.
pub const UP_FILE: &str = "up.json";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The data dir of the running `tmux-bridge up` (default: the user's data dir).
    #[arg(long, env = "TMUX_BRIDGE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Open this idea's terminal (default: the one `up` serves).
    #[arg(long)]
    pub idea: Option<String>,
    /// Open this slot's terminal.
    #[arg(long)]
    pub slot: Option<String>,
}

/// `up.json`: where the running `up` listens and what it serves.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct UpInfo {
    pub url: String,
    pub idea: String,
    pub slot: String,
    pub pid: u32,
}

/// Writes `up.json` (called by `up` once its relay listens).
pub fn write_up_info(data_dir: &Path, info: &UpInfo) -> anyhow::Result<()> {
    let path = data_dir.join(UP_FILE);
    let text = serde_json::to_string(info).context("encoding up.json")?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// The page path that opens the terminal of (idea, slot).
pub fn terminal_path(idea: &str, slot: &str) -> String {
    format!("/t/{}/{}", percent(idea), percent(slot))
}

/// Percent-encodes everything but unreserved characters (for a path
/// segment inside a query value).
fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `next=` for a login link that opens (idea, slot).
pub fn next_param(idea: &str, slot: &str) -> String {
    format!("&next={}", percent(&terminal_path(idea, slot)))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(link(args))
}

async fn link(args: Args) -> anyhow::Result<ExitCode> {
    let data_dir = args
        .data_dir
        .unwrap_or_else(relay::config::default_data_dir);
    let info_path = data_dir.join(UP_FILE);
    let info: UpInfo = match std::fs::read_to_string(&info_path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("reading {}", info_path.display()))?,
        Err(_) => bail!(
            "no `tmux-bridge up` has run with the data dir {} (start it with `tmux-bridge up`, \
             or pass the --data-dir it uses)",
            data_dir.display()
        ),
    };
    if !pid_alive(info.pid) {
        eprintln!(
            "tmux-bridge: warning: the `tmux-bridge up` that wrote {} (pid {}) is not running; \
             the link works once it runs again with this data dir",
            info_path.display(),
            info.pid
        );
    }
    let store = store::Store::connect(&relay::config::default_database_url(&data_dir))
        .await
        .context("opening up's database")?;
    let auth = Auth::open(store.clone(), &data_dir, AuthConfig::new(info.url.clone()))
        .context("reading up's signing secret")?;
    let Some(user) = store.user_by_name(LOCAL_USER).await? else {
        bail!(
            "{} has no local user yet: run `tmux-bridge up` once",
            data_dir.display()
        );
    };
    let url = auth
        .login_link(&user.id)
        .await
        .context("creating the login link")?;
    let idea = args.idea.unwrap_or(info.idea);
    let slot = args.slot.unwrap_or(info.slot);
    println!("{url}{}", next_param(&idea, &slot));
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() || !cfg!(target_os = "linux")
}

#[cfg(not(unix))]
fn pid_alive(_pid: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_paths_are_encoded() {
        assert_eq!(terminal_path("local", "primary"), "/t/local/primary");
        assert_eq!(terminal_path("a b", "1/2"), "/t/a%20b/1%2F2");
        assert_eq!(next_param("x", "1"), "&next=%2Ft%2Fx%2F1");
    }
}
