//! `tmux-bridge run` (also `connect`, its old name): the runner daemon.
//! Serves every bridged session of the configured tmux server through a
//! relay that runs elsewhere, with a runner token (from
//! `--token`/`TMUX_BRIDGE_TOKEN`, or the credentials `tmux-bridge pair`
//! saved). Reconnects on its own; stops only on Ctrl-C/SIGTERM or when the
//! relay refuses the token.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::core::CoreConfig;
use crate::daemon::DaemonConfig;
use crate::session;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The relay's URL (http:// or https://). Repeat it (or separate URLs
    /// with commas) for the other relays of a cluster: the runner fails
    /// over to them in order. With saved credentials the first must be the
    /// paired relay; without more, the failover URLs saved by `pair` apply.
    #[arg(long, env = "TMUX_BRIDGE_RELAY", value_delimiter = ',')]
    pub relay: Vec<String>,
    /// The runner token; prefer the environment variable or the saved credentials.
    #[arg(long, env = "TMUX_BRIDGE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Also create the session of this idea at start if it does not exist.
    #[arg(long)]
    pub idea: Option<String>,
    /// The slot of that session (with --idea).
    #[arg(long, default_value = "primary", requires = "idea")]
    pub slot: String,
    #[command(flatten)]
    pub tmux: super::TmuxArgs,
    /// Where unacked frames spill to disk and the state file lives (default: the user's data dir).
    #[arg(long, env = "TMUX_BRIDGE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Size of the sessions the runner creates, as COLSxROWS.
    #[arg(long, default_value = "120x32", value_parser = super::parse_size)]
    pub size: (u16, u16),
    #[command(flatten)]
    pub tls: crate::net::TlsOptions,
    #[command(flatten)]
    pub trim: super::TrimArgs,
}

/// The failover URLs for `primary`: `more` without trailing slashes,
/// empty entries, the primary and repeats (pure).
pub(crate) fn failover_list(primary: &str, more: &[String]) -> Vec<String> {
    let primary = primary.trim_end_matches('/');
    let mut out: Vec<String> = Vec::new();
    for url in more {
        let url = url.trim().trim_end_matches('/');
        if !url.is_empty() && url != primary && !out.iter().any(|u| u == url) {
            out.push(url.to_owned());
        }
    }
    out
}

/// Worker threads of the runtime of `run` and of `up`
/// (`TOKIO_WORKER_THREADS` overrides it). The daemon waits on sockets and
/// pipes nearly always, and a keystroke passes from task to task four
/// times (uplink → session core → tmux's writer, then tmux's reader → core
/// → uplink for the echo; in `up` the relay's browser and runner tasks
/// too). With one worker they hand over on that thread; with two, one
/// worker woke the other through a futex about four times per key
/// (`scripts/keys-syscalls`: 13.3 system calls per key for `run`, 3.9 of
/// them futex, against 8.5–9.6 and none with one worker; `up` switched
/// threads in 20 times per key against 13, and spent 16 % less CPU per
/// key, `LOAD_ONLY=keys` with `LOAD_UP_B`). A flood costs the runner
/// little (the pane is paused for its control client, issue 16), so one
/// worker does not let one session stall the others for long: floods
/// through `up` finished as fast with one worker as with two
/// (`LOAD_ONLY=upflood`). Each worker less saves its stack and malloc
/// arena (about 0.15 MB of anonymous memory, `LOAD_ONLY=daemon`).
const DAEMON_WORKERS: usize = 1;

/// The runtime `run` and `up` serve on: [`DAEMON_WORKERS`] workers unless
/// `TOKIO_WORKER_THREADS` says otherwise.
pub(crate) fn daemon_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        rt.worker_threads(DAEMON_WORKERS);
    }
    rt.enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    daemon_runtime()?.block_on(daemon(args))
}

async fn daemon(args: Args) -> anyhow::Result<ExitCode> {
    // Without --token, the credentials `tmux-bridge pair` saved (issue 6).
    let saved = match args.token {
        Some(_) => None,
        None => crate::config::Credentials::load().context("reading saved credentials")?,
    };
    let from_saved = saved.is_some();
    let mut tls = args.tls.clone();
    let given: Vec<String> = args
        .relay
        .iter()
        .map(|r| r.trim().trim_end_matches('/').to_owned())
        .filter(|r| !r.is_empty())
        .collect();
    let (relay_url, failover_urls, token) = match (given.split_first(), args.token.clone(), saved) {
        (Some((first, more)), Some(t), _) => (first.clone(), failover_list(first, more), t),
        (first, None, Some(c)) if first.is_none_or(|(r, _)| *r == c.relay_url) => {
            // The CA `pair --ca-file` saved, unless this run names its own.
            tls.ca_file = tls.ca_file.or(c.ca_file);
            let failover = match first {
                Some((_, more)) if !more.is_empty() => failover_list(&c.relay_url, more),
                _ => c.failover_urls,
            };
            (c.relay_url, failover, c.runner_token)
        }
        _ => anyhow::bail!(
            "no runner token for this relay: run `tmux-bridge pair --relay URL` once, or pass --relay and --token (TMUX_BRIDGE_RELAY, TMUX_BRIDGE_TOKEN)"
        ),
    };
    let saved_token = from_saved.then(|| token.clone());
    // A bad CA file or a cleartext URL to another host fails here, before
    // tmux is touched, rather than at the first connection: every URL
    // gets the token.
    for url in std::iter::once(&relay_url).chain(&failover_urls) {
        crate::net::preflight(url, &tls).with_context(|| format!("the relay URL {url}"))?;
    }
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(relay::config::default_data_dir);
    let server = args.tmux.server();
    if let Some(idea) = &args.idea {
        let (name, attach) = session::names(&server, idea, &args.slot)?;
        crate::daemon::server::Server::new(server.clone())
            .create(idea, &args.slot, args.size, None, None)
            .await?;
        println!("Attach to {name}: {attach}");
    }
    println!(
        "tmux-bridge is serving the bridged sessions of tmux server `{}` through {relay_url}",
        args.tmux.describe()
    );
    if !failover_urls.is_empty() {
        println!("Failover relays: {}", failover_urls.join(", "));
    }
    println!("New session: tmux-bridge new IDEA [SLOT]");

    let cfg = DaemonConfig {
        server,
        relay_url,
        failover_urls,
        runner_token: token,
        tls,
        data_dir,
        core: CoreConfig::default(),
        initial_size: args.size,
        agents: super::agent_commands()?,
        in_process: None,
        trim_after: args.trim.after(),
    };
    let result = super::daemon_until_signal(cfg).await;
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            eprintln!("tmux-bridge: {err:#}");
            // Only a definite refusal of the saved token deletes it; network
            // errors never reach here (the uplink retries them).
            if let (Some(t), Some(rejected)) =
                (&saved_token, err.downcast_ref::<session::Rejected>())
                && crate::config::is_definite_rejection(&rejected.0)
            {
                match crate::config::Credentials::forget_if_rejected(t) {
                    Ok(true) => eprintln!(
                        "tmux-bridge: deleted the saved credentials; run `tmux-bridge pair` again"
                    ),
                    Ok(false) => {}
                    Err(e) => eprintln!("tmux-bridge: {e}"),
                }
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::failover_list;

    #[test]
    fn failover_urls_are_trimmed_and_unique() {
        let more = [
            "https://b.example/".to_owned(),
            "https://a.example".to_owned(),
            " ".to_owned(),
            "https://b.example".to_owned(),
            "https://c.example".to_owned(),
        ];
        assert_eq!(
            failover_list("https://a.example/", &more),
            vec!["https://b.example", "https://c.example"]
        );
    }
}
