//! `tmux-bridge up`: the one-command local default. Starts an embedded relay
//! on 127.0.0.1 (SQLite under the user's data dir) and the runner daemon
//! against it, which serves every bridged session of the tmux server (the
//! `--idea`/`--slot` one created if missing), prints a URL that logs the
//! browser in once and the exact `tmux attach` command, and shuts
//! everything down cleanly on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::core::CoreConfig;
use crate::daemon::DaemonConfig;
use crate::session;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The idea the session belongs to.
    #[arg(long, default_value = "local")]
    pub idea: String,
    /// The slot of the session within the idea.
    #[arg(long, default_value = "primary")]
    pub slot: String,
    /// Address of the embedded relay (loopback only by default).
    #[arg(long, env = "TMUX_BRIDGE_LISTEN", default_value = "127.0.0.1:8417")]
    pub listen: SocketAddr,
    /// Where the relay keeps its database and keys (default: the user's data dir).
    #[arg(long, env = "TMUX_BRIDGE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub tmux: super::TmuxArgs,
    /// Size of the session when it is created, as COLSxROWS.
    #[arg(long, default_value = "120x32", value_parser = super::parse_size)]
    pub size: (u16, u16),
    /// Seconds between checkpoint snapshots of a session that changed
    /// (default 30). Tests lower it so a fresh tab starts from a snapshot
    /// taken after the output they check (web/tests/fidelity.test.mjs).
    #[arg(long, hide = true, value_parser = parse_secs)]
    pub snapshot_every: Option<std::time::Duration>,
    #[command(flatten)]
    pub trim: super::TrimArgs,
}

/// Parses a positive number of seconds (fractions allowed).
fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("bad number of seconds {s:?}"))?;
    if !(0.1..=86_400.0).contains(&secs) {
        return Err(format!("{secs} s is outside 0.1..=86400"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::run::daemon_runtime()?.block_on(up(args))
}

async fn up(args: Args) -> anyhow::Result<ExitCode> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(relay::config::default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let server = args.tmux.server();
    // Fail early, with a clear message, on names tmux cannot hold.
    let (name, attach) = session::names(&server, &args.idea, &args.slot)?;

    let mut config = relay::config::Config::new(args.listen, data_dir.clone());
    // Previews on the next port, each on its own `*.localhost` origin
    // (browsers resolve those to loopback): never the app's origin.
    // A busy next port (another program, another `up`) must not stop the
    // relay: any free port then, printed below.
    let preview_port = match args.listen.port() {
        0 => 0,
        p => {
            let next = p.saturating_add(1);
            let free = std::net::TcpListener::bind((args.listen.ip(), next)).is_ok();
            if free { next } else { 0 }
        }
    };
    config.preview = Some(relay::preview::PreviewConfig {
        listen: std::net::SocketAddr::new(args.listen.ip(), preview_port),
        url: "http://{id}.localhost:{port}".to_owned(),
        limits: relay::preview::PreviewLimits::default(),
    });
    let relay = relay::Relay::start(config)
        .await
        .context("starting the embedded relay")?;
    let addr = relay.local_addr();
    let base = format!("http://{addr}");
    let local = relay
        .auth()
        .ensure_local_runner(&crate::session::host_name())
        .await
        .context("creating the local runner")?;
    let login_url = relay
        .auth()
        .login_link(&local.user_id)
        .await
        .context("creating the login link")?;

    crate::daemon::server::Server::new(server.clone())
        .create(&args.idea, &args.slot, args.size, None, None)
        .await?;
    // `tmux-bridge login-link` reads where this relay listens.
    super::login_link::write_up_info(
        &data_dir,
        &super::login_link::UpInfo {
            url: base.clone(),
            idea: args.idea.clone(),
            slot: args.slot.clone(),
            pid: std::process::id(),
        },
    )?;
    // The link opens the terminal, not the list.
    let login_url = format!(
        "{login_url}{}",
        super::login_link::next_param(&args.idea, &args.slot)
    );
    println!(
        "tmux-bridge is serving tmux session {name} (and every bridged session) through {base}"
    );
    if let Some(origin) = relay.preview_origin("<id>") {
        println!("Previews of dev servers are served on {origin}");
    }
    println!("Open:   {login_url}");
    println!("(Another browser, or the link expired: run `tmux-bridge login-link`.)");
    println!("Attach: {attach}");
    println!("Press Ctrl-C to stop.");

    println!("New session: tmux-bridge new IDEA [SLOT]");
    let cfg = DaemonConfig {
        server,
        relay_url: base,
        failover_urls: Vec::new(),
        runner_token: local.runner_token,
        // The embedded relay speaks plain http on loopback.
        tls: crate::net::TlsOptions::default(),
        data_dir: data_dir.clone(),
        core: CoreConfig {
            snapshot_every: args
                .snapshot_every
                .unwrap_or(CoreConfig::default().snapshot_every),
            ..CoreConfig::default()
        },
        initial_size: args.size,
        agents: super::agent_commands()?,
        // The runner's link to the relay of this process stays in memory.
        in_process: Some(crate::net::InProcessDial::new(relay.in_process_dialer())),
        trim_after: args.trim.after(),
    };
    let code = match super::daemon_until_signal(cfg).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tmux-bridge: {err:#}");
            ExitCode::FAILURE
        }
    };
    if let Err(err) = relay.shutdown().await {
        eprintln!("tmux-bridge: relay shutdown: {err}");
    }
    Ok(code)
}
