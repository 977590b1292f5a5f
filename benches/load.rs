//! The end-to-end load tool: floods and keystrokes through the real system
//! (tmux → `tmux-bridge run` → `tmux-relay serve` → a WebSocket client
//! that decodes every frame into screens, as the page does), side by side
//! with what tmux gives (a) a bare control client and (b) an ordinary client
//! in a pseudo-terminal that reads as fast as it can (what ttyd-style tools
//! give their browsers). Every case runs five times, each on a fresh tmux
//! server and fresh processes; the table shows the median and min–max.
//!
//! Run (release binaries first; the tool uses them as separate processes so
//! their CPU time and peak RSS can be read from /proc):
//!
//! ```text
//! cargo build --release -p tmux-bridge -p tmux-relay
//! cargo bench -p benches --bench load            # LOAD_RUNS=5 by default
//! LOAD_ONLY=ttyd,alone cargo bench -p benches --bench load  # issue 16: the
//!                          # floods through ttyd and the bridge alone
//! LOAD_ONLY=upflood cargo bench -p benches --bench load  # the floods through
//!                          # `tmux-bridge up`, the browser alone
//!                          # (LOAD_UP_B=path: a second `up` build too)
//! LOAD_ONLY=daemon cargo bench -p benches --bench load   # the runner daemon:
//!                          # 50 idle sessions (RSS, CPU), create → first output
//! LOAD_ONLY=idle cargo bench -p benches --bench load     # the runner's idle
//!                          # RSS with one session, at 10 s and once
//!                          # trimmed (45 s), and where it goes
//!                          # (scripts/rss-split); LOAD_BRIDGE=path picks
//!                          # another runner binary to compare (and
//!                          # LOAD_RELAY=path another relay, for any case)
//! LOAD_ONLY=search SEARCH_PG=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p benches --bench load   # the search index over 1 GB of
//!                          # output (load_search.rs; needs no binaries or tmux)
//! LOAD_ONLY=trace cargo bench -p benches --bench load    # where a keystroke's
//!                          # round trip goes, stage by stage (load_trace.rs)
//! LOAD_ONLY=keys LOAD_KEY_GAP_MS=30 cargo bench -p benches --bench load
//!                          # keystrokes paced as a person types (the next
//!                          # key 30 ms after the echo; 0, the default: at
//!                          # once); LOAD_KEYS=n keys per run (300); every
//!                          # transport at once, LOAD_KEY_BLOCK keys (10)
//!                          # to each in turn, with CPU per key and the
//!                          # difference to ttyd paired round by round;
//!                          # LOAD_UP_B=path adds a second `up` binary
//!                          # (load_keys.rs)
//! LOAD_ONLY=preview cargo bench -p benches --bench load  # dev server previews
//!                          # vs direct (load_preview.rs; relay and runner in
//!                          # this process: no binaries needed)
//! LOAD_ONLY=fanout cargo bench -p benches --bench load   # one pane at 200
//!                          # lines/s to 1..1000 browser sockets on one relay
//!                          # and on three (load_fanout.rs; VIEWERS, RELAYS)
//! ```
//!
//! With ttyd installed (`scripts/install-ttyd`, or `TTYD=/path/to/ttyd`),
//! every flood and the keystrokes also run through ttyd serving
//! `tmux attach` (load_ttyd.rs), the runs of all transports interleaved
//! (run 1 of each, then run 2 of each, …; the keystrokes closer still:
//! all transports at once, blocks of keys in turn), and the tool ends with
//! one table of medians with their ratio to ttyd's.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use testkit::{Browser, Login, Tmux, view_rows};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "load_search.rs"]
mod search;

#[path = "load_preview.rs"]
mod preview;

#[path = "load_ttyd.rs"]
mod ttyd;

#[path = "load_trace.rs"]
mod trace;

#[path = "load_fanout.rs"]
mod fanout;

#[path = "load_keys.rs"]
mod keys;

type Result<T> = anyhow::Result<T>;

const COLS: u16 = 120;
const ROWS: u16 = 40;

/// The floods: a command and the marker its last line prints.
const FLOODS: &[(&str, &str)] = &[
    ("seq 1 2000000", "seq 1 2000000; echo FLOOD-$((40+2))"),
    (
        "colored ls -laR (30 MB)",
        "ls -laR --color=always /usr 2>/dev/null | head -c 30000000; echo; echo FLOOD-$((40+2))",
    ),
];
const MARKER: &str = "FLOOD-42";

fn main() -> Result<()> {
    // criterion-style filters (`cargo bench -- NAME`) are accepted and ignored.
    let runs: usize = env_number("LOAD_RUNS", 5).max(1);
    // Keystrokes per run and transport, traced or not.
    let keys: usize = env_number("LOAD_KEYS", 300).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        if std::env::var("LOAD_ONLY").is_ok_and(|only| only == "search") {
            return search::run().await;
        }
        if std::env::var("LOAD_ONLY").is_ok_and(|only| only == "preview") {
            return preview::run(runs).await;
        }
        let bins = Bins::find()?;
        if std::env::var("LOAD_ONLY").is_ok_and(|only| only == "fanout") {
            return fanout::run(&bins).await;
        }
        println!("load: {runs} runs per case; tmux {}", tmux_version());
        // LOAD_ONLY=word runs only the cases whose label contains it
        // (`word,word`: either).
        let only = std::env::var("LOAD_ONLY").unwrap_or_default();
        let wanted =
            |label: &str| only.is_empty() || only.split(',').any(|w| label.contains(w));
        let ttyd_bin = ttyd::find();
        match &ttyd_bin {
            Some(b) => println!("ttyd: {} ({})", b.display(), ttyd::version(b)),
            None => println!("ttyd: not installed (scripts/install-ttyd); its cases are left out"),
        }
        let mut summary: Vec<SummaryRow> = Vec::new();
        for (label, command) in FLOODS {
            println!("\n## flood: {label}");
            // Interleaved: run i of every transport, then run i + 1.
            let mut bare = Vec::new();
            let mut tty = Vec::new();
            let mut via_ttyd = Vec::new();
            let mut alone = Vec::new();
            let mut attached = Vec::new();
            let mut via_up = Vec::new();
            let mut via_up_b = Vec::new();
            let up_b = std::env::var_os("LOAD_UP_B").map(|bridge| Bins {
                bridge: bridge.into(),
                relay: bins.relay.clone(),
            });
            for _ in 0..runs {
                if let Some(bin) = ttyd_bin.as_ref().filter(|_| wanted("ttyd")) {
                    via_ttyd.push(ttyd::flood(bin, command).await?);
                }
                if wanted("alone") {
                    alone.push(flood_bridge(&bins, command, false).await?);
                }
                if wanted("attached") {
                    attached.push(flood_bridge(&bins, command, true).await?);
                }
                if wanted("upflood") {
                    via_up.push(flood_up(&bins, command).await?);
                    if let Some(b) = &up_b {
                        via_up_b.push(flood_up(b, command).await?);
                    }
                }
                if wanted("bare") {
                    bare.push(flood_bare_control(command).await?);
                }
                if wanted("tty") {
                    tty.push(flood_tty(command).await?);
                }
            }
            if !via_ttyd.is_empty() {
                let t = &via_ttyd;
                row("ttyd: Enter → final line on its WebSocket client", &t.iter().map(|x| x.secs).collect::<Vec<_>>(), "s");
                row("ttyd: bytes sent to the browser", &t.iter().map(|x| x.browser_bytes as f64 / 1e6).collect::<Vec<_>>(), "MB");
                row("ttyd: tmux server CPU", &t.iter().map(|x| x.tmux_cpu).collect::<Vec<_>>(), "s");
                row("ttyd: ttyd + its tmux client CPU", &t.iter().map(|x| x.ttyd_cpu).collect::<Vec<_>>(), "s");
                row("ttyd: ttyd peak RSS", &t.iter().map(|x| x.ttyd_rss_mb).collect::<Vec<_>>(), "MB");
                row("ttyd: its tmux client peak RSS", &t.iter().map(|x| x.client_rss_mb).collect::<Vec<_>>(), "MB");
            }
            for (who, r) in [
                ("bridge+relay, alone", &alone),
                ("bridge+relay, terminal attached", &attached),
                ("tmux-bridge up, alone", &via_up),
                ("tmux-bridge up (LOAD_UP_B), alone", &via_up_b),
            ] {
                if r.is_empty() {
                    continue;
                }
                row(&format!("{who}: Enter → final line on the WebSocket client"), &r.iter().map(|x| x.secs).collect::<Vec<_>>(), "s");
                row(&format!("{who}: bytes sent to the browser"), &r.iter().map(|x| x.browser_bytes as f64 / 1e6).collect::<Vec<_>>(), "MB");
                row(&format!("{who}: tmux server CPU"), &r.iter().map(|x| x.tmux_cpu).collect::<Vec<_>>(), "s");
                row(&format!("{who}: bridge CPU"), &r.iter().map(|x| x.bridge_cpu).collect::<Vec<_>>(), "s");
                row(&format!("{who}: the bridge's tmux clients' CPU (control, hidden)"), &r.iter().map(|x| x.clients_cpu).collect::<Vec<_>>(), "s");
                row(&format!("{who}: relay CPU"), &r.iter().map(|x| x.relay_cpu).collect::<Vec<_>>(), "s");
                row(&format!("{who}: relay CPU per stored and delivered frame"), &r.iter().map(|x| x.relay_cpu * 1e6 / x.browser_frames.max(1) as f64).collect::<Vec<_>>(), "µs");
                row(&format!("{who}: frames stored and delivered"), &r.iter().map(|x| x.browser_frames as f64).collect::<Vec<_>>(), "");
                row(&format!("{who}: bridge peak RSS"), &r.iter().map(|x| x.bridge_rss_mb).collect::<Vec<_>>(), "MB");
                row(&format!("{who}: relay peak RSS"), &r.iter().map(|x| x.relay_rss_mb).collect::<Vec<_>>(), "MB");
            }
            if !bare.is_empty() {
                row("(a) bare control client, Enter → final line read", &bare.iter().map(|r| r.secs).collect::<Vec<_>>(), "s");
            }
            if !tty.is_empty() {
                row("(b) tty client in a pty, Enter → final line read", &tty.iter().map(|r| r.secs).collect::<Vec<_>>(), "s");
            }
            let med = |v: Vec<f64>| if v.is_empty() { f64::NAN } else { percentile(&v, 0.5) };
            let t_secs = med(via_ttyd.iter().map(|x| x.secs).collect());
            let t_cpu = med(via_ttyd.iter().map(|x| x.tmux_cpu + x.ttyd_cpu).collect());
            let t_bytes = med(via_ttyd.iter().map(|x| x.browser_bytes as f64 / 1e6).collect());
            for (who, r) in [
                ("alone", &alone),
                ("attached", &attached),
                ("up alone", &via_up),
                ("up (LOAD_UP_B) alone", &via_up_b),
            ] {
                if r.is_empty() {
                    continue;
                }
                summary.push(SummaryRow {
                    what: format!("{label}, bridge {who}: completion (s)"),
                    ours: med(r.iter().map(|x| x.secs).collect()),
                    ttyd: t_secs,
                });
                summary.push(SummaryRow {
                    what: format!("{label}, bridge {who}: server CPU, tmux + bridge (and its tmux clients) + relay vs tmux + ttyd (and its) (s)"),
                    ours: med(r.iter().map(|x| x.tmux_cpu + x.bridge_cpu + x.clients_cpu + x.relay_cpu).collect()),
                    ttyd: t_cpu,
                });
                summary.push(SummaryRow {
                    what: format!("{label}, bridge {who}: tmux server CPU (s)"),
                    ours: med(r.iter().map(|x| x.tmux_cpu).collect()),
                    ttyd: med(via_ttyd.iter().map(|x| x.tmux_cpu).collect()),
                });
                summary.push(SummaryRow {
                    what: format!("{label}, bridge {who}: bytes to the browser (MB)"),
                    ours: med(r.iter().map(|x| x.browser_bytes as f64 / 1e6).collect()),
                    ttyd: t_bytes,
                });
                summary.push(SummaryRow {
                    what: format!("{label}, bridge {who}: peak RSS, bridge + relay vs ttyd + its client (MB)"),
                    ours: med(r.iter().map(|x| x.bridge_rss_mb + x.relay_rss_mb).collect()),
                    ttyd: med(via_ttyd.iter().map(|x| x.ttyd_rss_mb + x.client_rss_mb).collect()),
                });
            }
        }
        if !only.is_empty() && wanted("daemon") {
            daemon_case(&bins, runs).await?;
        }
        if !only.is_empty() && wanted("idle") {
            idle_case(&bins, runs).await?;
        }
        if only == "trace" {
            return trace::run(&bins, keys).await;
        }
        if !wanted("keys") {
            print_summary(&summary);
            return Ok(());
        }
        keys::run(&bins, ttyd_bin.as_ref(), runs, keys, &mut summary).await?;
        print_summary(&summary);
        Ok(())
    })
}

/// A median of ours against ttyd's, for the closing table.
struct SummaryRow {
    what: String,
    ours: f64,
    ttyd: f64,
}

/// The closing table: medians and their ratio to ttyd's.
fn print_summary(rows: &[SummaryRow]) {
    if rows.is_empty() {
        return;
    }
    println!("\n## against ttyd (medians; ratio = tmux-bridge / ttyd)\n");
    println!("| | tmux-bridge | ttyd | ratio |");
    println!("|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.3} | {:.3} | {:.2}× |",
            r.what,
            r.ours,
            r.ttyd,
            r.ours / r.ttyd
        );
    }
}

/// The pid of the tmux server of `tmux`.
fn tmux_server_pid(tmux: &Tmux) -> Option<u32> {
    tmux.run(&["display-message", "-p", "#{pid}"])
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// CPU seconds the tmux server of `tmux` used so far.
fn tmux_server_cpu(tmux: &Tmux) -> f64 {
    proc_usage(tmux_server_pid(tmux)).0
}

/// The number in environment variable `var`, else `default` (unset or
/// not a number).
fn env_number<T: std::str::FromStr>(var: &str, default: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Stops `child` with SIGTERM (it exits cleanly, and a profiler it runs
/// under writes its profile), SIGKILL if it is still there after 60 s:
/// generous, because under callgrind (scripts/keys-callgrind) shutting
/// down and writing the profile take seconds.
async fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    if tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

fn tmux_version() -> String {
    std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn row(label: &str, values: &[f64], unit: &str) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let (min, max, med) = (v[0], v[v.len() - 1], percentile(&v, 0.5));
    println!("{label:<72} {med:>9.3} {unit}  ({min:.3}–{max:.3})");
}

/// The release binaries of the workspace.
struct Bins {
    bridge: PathBuf,
    relay: PathBuf,
}

impl Bins {
    fn find() -> Result<Bins> {
        let exe = std::env::current_exe()?;
        // target/release/deps/load-… → target/release
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .context("no target dir")?;
        // LOAD_BRIDGE, LOAD_RELAY: other binaries (a build to compare with).
        let bin = |var: &str, name: &str| {
            std::env::var_os(var).map_or_else(|| dir.join(name), PathBuf::from)
        };
        let bins = Bins {
            bridge: bin("LOAD_BRIDGE", "tmux-bridge"),
            relay: bin("LOAD_RELAY", "tmux-relay"),
        };
        if !bins.bridge.exists() || !bins.relay.exists() {
            bail!("build the binaries first: cargo build --release -p tmux-bridge -p tmux-relay");
        }
        Ok(bins)
    }
}

fn new_session(tmux: &Tmux, name: &str) -> Result<String> {
    tmux.new_session(name, COLS, ROWS)?;
    tmux.first_pane(name)
}

/// The session name the bridge serves for (load, x).
fn bridge_session() -> Result<String> {
    Ok(tmux_cc::naming::session_name("load", "x")?
        .as_str()
        .to_owned())
}

/// Types the command (without Enter) and returns once it is typed.
fn type_command(tmux: &Tmux, pane: &str, command: &str) -> Result<()> {
    tmux.run(&["send-keys", "-t", pane, "-l", command])?;
    for _ in 0..200 {
        if tmux
            .capture(pane)?
            .iter()
            .any(|r| r.contains(MARKER.split('-').next().unwrap_or("FLOOD")))
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("the command never appeared on the pane")
}

struct Simple {
    secs: f64,
}

/// (a) A control client that only reads: Enter → the marker in `%output`.
async fn flood_bare_control(command: &str) -> Result<Simple> {
    let tmux = Tmux::new("load-a");
    let pane = new_session(&tmux, "load")?;
    type_command(&tmux, &pane, command)?;
    let mut child = tokio::process::Command::new("tmux")
        .args(["-u", "-L", &tmux.socket, "-C", "attach", "-t", "=load"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut stdout = child.stdout.take().context("stdout")?;
    // Let the attach settle, then press Enter through the client itself.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    stdin
        .write_all(format!("send-keys -t {pane} Enter\n").as_bytes())
        .await?;
    let found = read_output_until(&mut stdout, MARKER.as_bytes(), Duration::from_secs(120)).await?;
    let secs = start.elapsed().as_secs_f64();
    if !found {
        bail!("bare control client never saw the marker");
    }
    drop(stdin);
    let _ = child.kill().await;
    Ok(Simple { secs })
}

/// (b) An ordinary client in a pty that reads as fast as it can.
async fn flood_tty(command: &str) -> Result<Simple> {
    let tmux = Tmux::new("load-b");
    let pane = new_session(&tmux, "load")?;
    type_command(&tmux, &pane, command)?;
    let cmd = format!(
        "stty cols {COLS} rows {}; exec tmux -u -L {} attach -t =load",
        ROWS + 1,
        tmux.socket
    );
    let mut child = tokio::process::Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdout = child.stdout.take().context("stdout")?;
    // Wait for the first screen, then press Enter.
    read_until(&mut stdout, b"FLOOD", Duration::from_secs(10)).await?;
    let start = Instant::now();
    tmux.run(&["send-keys", "-t", &pane, "Enter"])?;
    let found = read_until(&mut stdout, MARKER.as_bytes(), Duration::from_secs(120)).await?;
    let secs = start.elapsed().as_secs_f64();
    if !found {
        bail!("the tty client never saw the marker");
    }
    let _ = child.kill().await;
    Ok(Simple { secs })
}

/// Reads a control client's stdout until `needle` appears in the decoded
/// `%output` (tmux may split a line of output across `%output` lines).
async fn read_output_until(
    r: &mut (impl AsyncReadExt + Unpin),
    needle: &[u8],
    limit: Duration,
) -> Result<bool> {
    let mut parser = tmux_cc::Parser::new();
    read_until_with(r, needle, limit, |chunk, text| {
        parser.push(chunk);
        for ev in parser.by_ref() {
            if let tmux_cc::Event::Output { data, .. }
            | tmux_cc::Event::ExtendedOutput { data, .. } = ev
            {
                text.extend_from_slice(&data);
            }
        }
    })
    .await
}

/// Reads until `needle` appears in the raw bytes.
async fn read_until(
    r: &mut (impl AsyncReadExt + Unpin),
    needle: &[u8],
    limit: Duration,
) -> Result<bool> {
    read_until_with(r, needle, limit, |chunk, text| {
        text.extend_from_slice(chunk)
    })
    .await
}

/// Reads chunks, lets `decode` append their text, and searches it for
/// `needle` across chunk boundaries.
async fn read_until_with(
    r: &mut (impl AsyncReadExt + Unpin),
    needle: &[u8],
    limit: Duration,
    mut decode: impl FnMut(&[u8], &mut Vec<u8>),
) -> Result<bool> {
    let mut buf = vec![0u8; 1 << 16];
    let mut tail: Vec<u8> = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let n = match tokio::time::timeout_at(deadline, r.read(&mut buf)).await {
            Err(_) => return Ok(false),
            Ok(Ok(0)) => return Ok(false),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(e.into()),
        };
        decode(&buf[..n], &mut tail);
        if memchr::memmem::find(&tail, needle).is_some() {
            return Ok(true);
        }
        let keep = needle.len().saturating_sub(1).min(tail.len());
        tail.drain(..tail.len() - keep);
    }
}

struct FloodResult {
    secs: f64,
    tmux_cpu: f64,
    browser_bytes: usize,
    /// Frames the browser received: with one browser and no snapshot move,
    /// every frame the relay stored.
    browser_frames: usize,
    bridge_cpu: f64,
    /// The bridge's child processes: its control client, and the hidden
    /// terminal client if a flood started one (issue 16).
    clients_cpu: f64,
    relay_cpu: f64,
    bridge_rss_mb: f64,
    relay_rss_mb: f64,
}

/// Everything a bridge run needs: tmux, relay and bridge processes, a
/// logged-in browser.
struct System {
    tmux: Tmux,
    relay: tokio::process::Child,
    bridge: tokio::process::Child,
    login: Login,
    session_id: String,
    pane: String,
    _dir: tempfile::TempDir,
}

impl System {
    /// Stops the bridge with SIGTERM (it detaches its control client; a
    /// killed bridge would leave that client holding the tmux server on
    /// 3.3a), then the relay.
    async fn stop(mut self) {
        for child in [&mut self.bridge, &mut self.relay] {
            terminate(child).await;
        }
    }
}

/// Starts tmux, the relay and the runner. With `trace_dir`, both write
/// their `latency` trace events as JSON to `relay.log` and `bridge.log`
/// there (load_trace.rs); otherwise their logs go to standard error at
/// `LOAD_RELAY_LOG` / `LOAD_BRIDGE_LOG` (warn by default).
async fn start_system(bins: &Bins, tag: &str, trace_dir: Option<&Path>) -> Result<System> {
    let tmux = Tmux::new(tag);
    let name = bridge_session()?;
    let pane = new_session(&tmux, &name)?;
    let dir = tempfile::tempdir()?;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let (token, link) = {
        let store = store::Store::connect(&relay::config::default_database_url(dir.path())).await?;
        let auth = relay::auth::Auth::open(
            store,
            dir.path(),
            relay::auth::AuthConfig::new(format!("http://127.0.0.1:{port}")),
        )?;
        let local = auth.ensure_local_runner("load").await?;
        (
            local.runner_token.clone(),
            auth.login_link(&local.user_id).await?,
        )
    };
    let mut relay = tokio::process::Command::new(&bins.relay);
    let mut bridge = tokio::process::Command::new(&bins.bridge);
    if let Some(dir) = trace_dir {
        relay
            .env("TMUX_RELAY_LOG_FORMAT", "json")
            .stderr(std::fs::File::create(dir.join("relay.log"))?);
        bridge
            .env("TMUX_BRIDGE_LOG_FORMAT", "json")
            .stderr(std::fs::File::create(dir.join("bridge.log"))?);
    }
    let log = |var: &str| match trace_dir {
        Some(_) => "warn,latency=trace".to_owned(),
        None => std::env::var(var).unwrap_or_else(|_| "warn".into()),
    };
    let relay = relay
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path())
        .env("RUST_LOG", log("LOAD_RELAY_LOG"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let bridge = bridge
        .args([
            "run",
            "--relay",
            &format!("http://127.0.0.1:{port}"),
            "--idea",
            "load",
            "--slot",
            "x",
        ])
        .args([
            "--tmux-socket",
            &tmux.socket,
            "--tmux-config",
            "/dev/null",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("TMUX_BRIDGE_TOKEN", &token)
        .env("TMUX_BRIDGE_LOG", log("LOAD_BRIDGE_LOG"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let login = Login::from_link(&link).await?;
    let session_id = login.wait_session(&name).await?;
    Ok(System {
        tmux,
        relay,
        bridge,
        login,
        session_id,
        pane,
        _dir: dir,
    })
}

/// CPU seconds of a process's children: those alive now (with their own
/// waited-for children) and those it has waited for (cutime + cstime).
fn children_cpu(pid: Option<u32>) -> f64 {
    let Some(pid) = pid else {
        return f64::NAN;
    };
    let stat_fields = |pid: u32| -> Vec<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        after
            .split_whitespace()
            .map(|v| v.parse::<f64>().unwrap_or(0.0))
            .collect()
    };
    // After the command: utime, stime, cutime, cstime are indices 11–14.
    let ticks = |f: &[f64], from: usize| f.iter().skip(from).take(2).sum::<f64>();
    let mut total = ticks(&stat_fields(pid), 13);
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            total += ticks(&stat_fields(child), 11);
        }
    }
    total / 100.0
}

/// (utime + stime) in seconds and VmHWM in MB of a process.
fn proc_usage(pid: Option<u32>) -> (f64, f64) {
    let Some(pid) = pid else {
        return (f64::NAN, f64::NAN);
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // Fields after the command: state is index 0, utime is field 14 → 11.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let hwm = testkit::procfs::status_mb(&pid.to_string(), "VmHWM");
    (cpu, hwm)
}

async fn flood_bridge(bins: &Bins, command: &str, with_terminal: bool) -> Result<FloodResult> {
    let sys = start_system(bins, "load-s", None).await?;
    let name = bridge_session()?;
    let terminal = if with_terminal {
        let t = testkit::TtyClient::attach(&sys.tmux, &name, COLS, ROWS + 1).await?;
        t.wait_for("$", 10).await?;
        Some(t)
    } else {
        None
    };
    let b = Browser::connect(&sys.login, &sys.session_id, 0).await?;
    let r = flood_through(
        b,
        &sys.tmux,
        &sys.pane,
        command,
        sys.bridge.id(),
        sys.relay.id(),
    )
    .await;
    if let Some(t) = terminal {
        t.detach().await;
    }
    sys.stop().await;
    r
}

/// The flood through `tmux-bridge up` (runner and relay in one process),
/// the browser alone (`LOAD_ONLY=upflood`; `LOAD_UP_B` a second build).
async fn flood_up(bins: &Bins, command: &str) -> Result<FloodResult> {
    let up = trace::start_up(bins, None).await?;
    let b = Browser::connect(&up.login, &up.session_id, 0).await?;
    let r = flood_through(b, up.tmux(), &up.pane, command, up.pid(), None).await;
    up.stop().await;
    r
}

/// Types `command` at `pane`'s prompt, presses Enter and times the flood
/// to its final line on the browser `b`; CPU of the tmux server, of the
/// runner (`bridge`, with its tmux clients) and of a separate relay.
async fn flood_through(
    mut b: Browser,
    tmux: &Tmux,
    pane: &str,
    command: &str,
    bridge: Option<u32>,
    relay: Option<u32>,
) -> Result<FloodResult> {
    b.until("the prompt", 20, |v| testkit::view_has(v, pane, "$"))
        .await?;
    type_command(tmux, pane, command)?;
    b.until("the typed command", 20, |v| {
        testkit::view_has(v, pane, "FLOOD")
    })
    .await?;
    // No separate relay (`up`): its CPU and memory count as none.
    let relay_usage = || relay.map_or((0.0, 0.0), |pid| proc_usage(Some(pid)));
    let bytes_before = b.frame_bytes;
    let frames_before = b.frames;
    let (bcpu0, _) = proc_usage(bridge);
    let kids0 = children_cpu(bridge);
    let (rcpu0, _) = relay_usage();
    let server0 = tmux_server_cpu(tmux);
    let start = Instant::now();
    tmux.run(&["send-keys", "-t", pane, "Enter"])?;
    b.until("the final line", 180, |v| {
        view_rows(v, pane).iter().any(|r| r.trim() == MARKER)
    })
    .await?;
    let secs = start.elapsed().as_secs_f64();
    let (bcpu1, brss) = proc_usage(bridge);
    let kids1 = children_cpu(bridge);
    let (rcpu1, rrss) = relay_usage();
    Ok(FloodResult {
        secs,
        tmux_cpu: tmux_server_cpu(tmux) - server0,
        browser_bytes: b.frame_bytes - bytes_before,
        browser_frames: b.frames - frames_before,
        bridge_cpu: bcpu1 - bcpu0,
        clients_cpu: kids1 - kids0,
        relay_cpu: rcpu1 - rcpu0,
        bridge_rss_mb: brss,
        relay_rss_mb: rrss,
    })
}

/// How many idle sessions the daemon case serves.
const IDLE_SESSIONS: usize = 50;
/// How many of them are then made busy.
const BUSY_SESSIONS: usize = 10;

/// The runner daemon: one process serving [`IDLE_SESSIONS`] idle sessions
/// (its RSS and CPU), and `POST /api/sessions` → the new session's first
/// output on a WebSocket client (five creations per run).
async fn daemon_case(bins: &Bins, runs: usize) -> Result<()> {
    println!("\n## runner daemon: {IDLE_SESSIONS} idle sessions in one process");
    println!("runner: {}", bins.bridge.display());
    let mut rss = Vec::new();
    let mut anon = Vec::new();
    let (mut one_rss, mut one_anon) = (Vec::new(), Vec::new());
    let mut hwm = Vec::new();
    let mut cpu = Vec::new();
    let mut discover = Vec::new();
    let mut created = Vec::new();
    let mut first_output = Vec::new();
    let (mut busy_cpu, mut busy_rss, mut busy_hwm) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let sys = start_system(bins, "load-d", None).await?;
        // One idle session first: the runner's own footprint.
        tokio::time::sleep(Duration::from_secs(3)).await;
        one_rss.push(proc_rss_mb(sys.bridge.id()));
        one_anon.push(proc_status_mb(sys.bridge.id(), "RssAnon"));
        let t = Instant::now();
        let mut names = Vec::new();
        for i in 1..IDLE_SESSIONS {
            let name = tmux_cc::naming::session_name("idle", &i.to_string())?
                .as_str()
                .to_owned();
            sys.tmux.new_session(&name, COLS, ROWS)?;
            names.push(name);
        }
        for name in &names {
            sys.login.wait_session(name).await?;
        }
        discover.push(t.elapsed().as_secs_f64());
        // Idle: let the shells settle, then measure 10 s of nothing.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (cpu0, _) = proc_usage(sys.bridge.id());
        tokio::time::sleep(Duration::from_secs(10)).await;
        let (cpu1, peak) = proc_usage(sys.bridge.id());
        cpu.push((cpu1 - cpu0) / 10.0 * 100.0);
        hwm.push(peak);
        rss.push(proc_rss_mb(sys.bridge.id()));
        anon.push(proc_status_mb(sys.bridge.id(), "RssAnon"));
        // Busy: ten of them print steadily (a build log's pace: 100 lines
        // of `ls -l` every 50 ms, about 2,000 lines/s each) for 10 s.
        for name in names.iter().take(BUSY_SESSIONS) {
            sys.tmux.run(&[
                "send-keys",
                "-t",
                &format!("={name}:"),
                "while :; do ls -l /usr/bin | head -100; sleep 0.05; done",
                "Enter",
            ])?;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (cpu0, _) = proc_usage(sys.bridge.id());
        tokio::time::sleep(Duration::from_secs(10)).await;
        let (cpu1, peak) = proc_usage(sys.bridge.id());
        busy_cpu.push((cpu1 - cpu0) / 10.0 * 100.0);
        busy_rss.push(proc_rss_mb(sys.bridge.id()));
        busy_hwm.push(peak);
        for name in names.iter().take(BUSY_SESSIONS) {
            sys.tmux
                .run(&["send-keys", "-t", &format!("={name}:"), "C-c"])?;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        for k in 0..5 {
            // The shell the other sessions run (this machine's login shell
            // may print no prompt).
            let body = serde_json::json!({
                "idea": "load",
                "slot": format!("new-{k}"),
                "command": "env -i PATH=/usr/bin:/bin TERM=screen 'PS1=$ ' HOME=/tmp bash --norc --noprofile",
            })
            .to_string();
            let start = Instant::now();
            let origin = sys.login.origin();
            let (status, _, answer) = testkit::http(
                sys.login.addr,
                "POST",
                "/api/sessions",
                &[
                    ("Cookie", &sys.login.cookie),
                    ("Origin", &origin),
                    ("X-Requested-With", "load"),
                    ("Content-Type", "application/json"),
                ],
                body.as_bytes(),
            )
            .await?;
            if status != 201 {
                bail!(
                    "POST /api/sessions answered {status}: {}",
                    String::from_utf8_lossy(&answer)
                );
            }
            created.push(start.elapsed().as_secs_f64() * 1000.0);
            let v: serde_json::Value = serde_json::from_slice(&answer)?;
            let id = v["session"]["id"].as_str().context("session id")?;
            let mut b = Browser::connect(&sys.login, id, 0).await?;
            b.until("the first output", 20, |v| {
                v.panes()
                    .any(|(_, p)| p.rows_text().iter().any(|r| !r.trim().is_empty()))
            })
            .await?;
            first_output.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        sys.stop().await;
    }
    row(
        &format!("{IDLE_SESSIONS} sessions made with tmux → all live at the relay"),
        &discover,
        "s",
    );
    row("runner RSS, 1 session, idle", &one_rss, "MB");
    row(
        "runner RSS, 1 session, idle: anonymous (heap, stacks)",
        &one_anon,
        "MB",
    );
    row(
        &format!("runner RSS, {IDLE_SESSIONS} sessions, idle"),
        &rss,
        "MB",
    );
    row(
        &format!("runner RSS, {IDLE_SESSIONS} sessions, idle: anonymous"),
        &anon,
        "MB",
    );
    row("runner peak RSS", &hwm, "MB");
    row("runner CPU, idle (10 s)", &cpu, "%");
    row(
        &format!("runner CPU, {BUSY_SESSIONS} of them busy (10 s)"),
        &busy_cpu,
        "%",
    );
    row(
        &format!("runner RSS, {BUSY_SESSIONS} busy"),
        &busy_rss,
        "MB",
    );
    row(
        &format!("runner peak RSS, {BUSY_SESSIONS} busy"),
        &busy_hwm,
        "MB",
    );
    row("POST /api/sessions → 201", &created, "ms");
    row(
        "POST /api/sessions → first output on the WebSocket client",
        &first_output,
        "ms",
    );
    Ok(())
}

/// The runner's idle footprint: one session, then its RSS after 10 s of
/// nothing and after [`TRIMMED_AT`] (the runner hands back the code pages
/// it stopped using after 15 s without traffic, `--trim-after`), with
/// where it goes then (`scripts/rss-split`: the executable's sections,
/// libraries, heap, stacks), and the relay's RSS beside it.
async fn idle_case(bins: &Bins, runs: usize) -> Result<()> {
    println!("\n## runner daemon: 1 idle session, after 10 s and after {TRIMMED_AT:?}");
    println!("runner: {}", bins.bridge.display());
    let (mut rss, mut anon, mut trimmed, mut trimmed_anon, mut relay) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let sys = start_system(bins, "load-i", None).await?;
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(10)).await;
        rss.push(proc_rss_mb(sys.bridge.id()));
        anon.push(proc_status_mb(sys.bridge.id(), "RssAnon"));
        tokio::time::sleep(TRIMMED_AT.saturating_sub(started.elapsed())).await;
        trimmed.push(proc_rss_mb(sys.bridge.id()));
        trimmed_anon.push(proc_status_mb(sys.bridge.id(), "RssAnon"));
        relay.push(proc_rss_mb(sys.relay.id()));
        if run == 0
            && let Some(pid) = sys.bridge.id()
        {
            let split = std::process::Command::new("../scripts/rss-split")
                .arg(pid.to_string())
                .output();
            match split {
                Ok(out) if out.status.success() => {
                    println!("{}", String::from_utf8_lossy(&out.stdout));
                }
                Ok(out) => println!(
                    "scripts/rss-split failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
                Err(err) => println!("scripts/rss-split did not start: {err}"),
            }
        }
        sys.stop().await;
    }
    row("runner RSS, 1 session, idle 10 s", &rss, "MB");
    row("runner RSS, 1 session, idle 10 s: anonymous", &anon, "MB");
    let at = TRIMMED_AT.as_secs();
    row(
        &format!("runner RSS, 1 session, idle {at} s (trimmed)"),
        &trimmed,
        "MB",
    );
    row(
        &format!("runner RSS, 1 session, idle {at} s: anonymous"),
        &trimmed_anon,
        "MB",
    );
    row("relay RSS beside it", &relay, "MB");
    Ok(())
}

/// When the idle case reads the runner's RSS a second time: after the
/// trim its default `--trim-after 15` makes 15–20 s after the last
/// traffic, and 10 s more of its idle loop (heartbeats every 2 s, the
/// rescan every 10 s) mapping back what that loop runs.
const TRIMMED_AT: Duration = Duration::from_secs(45);

/// VmRSS in MB of a process.
fn proc_rss_mb(pid: Option<u32>) -> f64 {
    proc_status_mb(pid, "VmRSS")
}

/// A `/proc/<pid>/status` field (`VmRSS`, `RssAnon`, …) in MB; NaN without a pid.
fn proc_status_mb(pid: Option<u32>, field: &str) -> f64 {
    let Some(pid) = pid else {
        return f64::NAN;
    };
    testkit::procfs::status_mb(&pid.to_string(), field)
}
