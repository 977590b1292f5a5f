//! Where a keystroke's round trip goes (issue 16): the keystroke case run
//! again with the relay's and the runner's `latency` trace events on
//! (`RUST_LOG=latency=trace`, JSON logs to files), each keystroke's events
//! picked out between the client's send and its echo, and the time
//! between consecutive stages reported as p50/p99. Also the keystroke
//! case through `tmux-bridge up` (relay and runner in one process).
//!
//! The stages, in the order a keystroke passes them (their names are the
//! `stage` field of `target: "latency"` trace events in the relay and
//! runner):
//!
//! | stage | where |
//! |---|---|
//! | `relay_input_in` | relay, ws/browser.rs: the browser's input parsed |
//! | `relay_msg_sent` | relay, ws/runner/mod.rs: the input written to the runner's socket |
//! | `runner_msg_in` | runner, uplink.rs: the message read from the relay |
//! | `runner_tmux_written` | runner, tmux.rs: `send-keys` written to the control client's stdin |
//! | `runner_tmux_read` | runner, tmux.rs: a read from tmux's stdout that holds a pane's `%output` (tmux answers `send-keys` with `%begin`/`%end` first, often in a read of its own: that one is not this stage) |
//! | `runner_frame_queued` | runner, core/task.rs: the frame handed from the session's core to the uplink |
//! | `runner_frame_sent` | runner, uplink.rs: the frame written to the relay's socket |
//! | `relay_frame_in` | relay, ws/runner/channels.rs: the frame read and validated |
//! | `relay_frame_published` | relay, channels.rs: queued for the browsers (before the commit: the runner says `rebase`) |
//! | `relay_frame_sent` | relay, ws/browser.rs: written to the browser's socket |

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use testkit::{Browser, Login, Tmux};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::keys::Typist;
use super::{Bins, Result, bridge_session, percentile, start_system};

/// The stages in order (see the module's table).
const STAGES: &[&str] = &[
    "relay_input_in",
    "relay_msg_sent",
    "runner_msg_in",
    "runner_tmux_written",
    "runner_tmux_read",
    "runner_frame_queued",
    "runner_frame_sent",
    "relay_frame_in",
    "relay_frame_published",
    "relay_frame_sent",
];

/// Microseconds since the epoch, the clock the logs' timestamps use.
pub(super) fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// `LOAD_KEY_GAP_MS`: the pause between an echo and the next key (0:
/// the next key at once).
pub fn key_gap_ms() -> u64 {
    super::env_number("LOAD_KEY_GAP_MS", 0)
}

/// One keystroke: when the client sent it and when it read the echo.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub sent_us: i64,
    pub echoed_us: i64,
}

impl Key {
    pub fn ms(&self) -> f64 {
        (self.echoed_us - self.sent_us) as f64 / 1000.0
    }
}

/// Types `n` single letters at the pane's prompt, one at a time, each
/// timed from the send to its echo on the WebSocket client.
async fn type_keys(b: Browser, pane: &str, n: usize) -> Result<Vec<Key>> {
    let mut typist = Typist::bridge(b, pane.to_owned()).await?;
    let gap = key_gap_ms();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(typist.key(i, gap).await?);
    }
    Ok(out)
}

/// `tmux-bridge up` on a private tmux server and a free port.
pub(super) struct Up {
    tmux: Tmux,
    child: tokio::process::Child,
    pub(super) login: Login,
    pub(super) session_id: String,
    pub(super) pane: String,
    _dir: tempfile::TempDir,
}

pub(super) async fn start_up(bins: &Bins, log: Option<&Path>) -> Result<Up> {
    let tmux = Tmux::new("load-u");
    // The session exists before `up` starts (it serves it rather than
    // creating it), with the same shell and prompt as the other cases.
    tmux.new_session(&bridge_session()?, super::COLS, super::ROWS)?;
    let dir = tempfile::tempdir()?;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let mut cmd = tokio::process::Command::new(&bins.bridge);
    cmd.args(["up", "--idea", "load", "--slot", "x", "--size", "120x40"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--tmux-socket", &tmux.socket, "--tmux-config", "/dev/null"])
        .arg("--data-dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    match log {
        Some(path) => {
            cmd.env("TMUX_BRIDGE_LOG", "warn,latency=trace")
                .env("TMUX_BRIDGE_LOG_FORMAT", "json")
                .stderr(std::fs::File::create(path)?);
        }
        None => {
            cmd.env("TMUX_BRIDGE_LOG", "warn");
        }
    }
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let link = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("`up` printed no login link within 60 s")??
            .context("`up` exited before printing its login link")?;
        if let Some(url) = line.strip_prefix("Open:") {
            break url.trim().to_owned();
        }
    };
    // Keep reading its stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let login = Login::from_link(&link).await?;
    let name = bridge_session()?;
    let session_id = login.wait_session(&name).await?;
    let pane = tmux.first_pane(&name)?;
    Ok(Up {
        tmux,
        child,
        login,
        session_id,
        pane,
        _dir: dir,
    })
}

impl Up {
    pub(super) async fn stop(mut self) {
        super::terminate(&mut self.child).await;
        drop(self.tmux);
    }

    pub(super) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub(super) fn tmux(&self) -> &Tmux {
        &self.tmux
    }
}

/// Keystroke round trips through `tmux-bridge up`, in ms.
async fn keystrokes_up(bins: &Bins, n: usize, log: Option<&Path>) -> Result<Vec<Key>> {
    let up = start_up(bins, log).await?;
    let b = Browser::connect(&up.login, &up.session_id, 0).await?;
    let keys = type_keys(b, &up.pane, n).await?;
    up.stop().await;
    Ok(keys)
}

/// Keystroke round trips through a separate relay and runner, with both
/// processes' latency events written to `relay_log` and `bridge_log`.
async fn keystrokes_traced(bins: &Bins, n: usize, dir: &Path) -> Result<Vec<Key>> {
    let sys = start_system(bins, "load-kt", Some(dir)).await?;
    let b = Browser::connect(&sys.login, &sys.session_id, 0).await?;
    let keys = type_keys(b, &sys.pane, n).await?;
    sys.stop().await;
    Ok(keys)
}

/// `(time µs, stage)` of every latency event in a JSON log file.
fn read_events(path: &Path) -> Result<Vec<(i64, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["target"] != "latency" {
            continue;
        }
        let (Some(ts), Some(stage)) = (v["timestamp"].as_str(), v["stage"].as_str()) else {
            continue;
        };
        let at = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
            .with_context(|| format!("timestamp {ts:?}"))?;
        out.push(((at.unix_timestamp_nanos() / 1000) as i64, stage.to_owned()));
    }
    out.sort();
    Ok(out)
}

/// How long after the client read the echo an event may be logged: a
/// log line's time is taken when it is written, which for the last
/// stages can be after the socket write it follows.
const LOG_SLACK_US: i64 = 2_000;

/// Each keystroke's stage times: the first event of each stage after the
/// previous stage, within the keystroke's round trip (plus
/// [`LOG_SLACK_US`]); `None` where one is missing.
fn stage_times(keys: &[Key], events: &[(i64, String)]) -> Vec<Option<Vec<i64>>> {
    keys.iter()
        .map(|k| {
            let mut at = k.sent_us;
            let mut times = vec![k.sent_us];
            for stage in STAGES {
                let found = events
                    .iter()
                    .find(|(t, s)| *t >= at && *t <= k.echoed_us + LOG_SLACK_US && s == stage)?;
                at = found.0;
                times.push(at);
            }
            times.push(k.echoed_us.max(at));
            Some(times)
        })
        .collect()
}

/// Prints the time between consecutive stages, p50 and p99 over the
/// keystrokes whose every stage was found.
fn print_stages(what: &str, keys: &[Key], events: &[(i64, String)]) {
    let all = stage_times(keys, events);
    let complete: Vec<Vec<i64>> = all.into_iter().flatten().collect();
    println!(
        "\n### {what}: {} of {} keystrokes traced through every stage",
        complete.len(),
        keys.len()
    );
    if complete.is_empty() {
        return;
    }
    let mut names = vec!["client_sent"];
    names.extend(STAGES);
    names.push("client_echoed");
    println!("| from → to | p50 (ms) | p99 (ms) |\n|---|---|---|");
    for i in 1..names.len() {
        let d: Vec<f64> = complete
            .iter()
            .map(|t| (t[i] - t[i - 1]) as f64 / 1000.0)
            .collect();
        println!(
            "| {} → {} | {:.3} | {:.3} |",
            names[i - 1],
            names[i],
            percentile(&d, 0.5),
            percentile(&d, 0.99)
        );
    }
    let total: Vec<f64> = complete
        .iter()
        .map(|t| (t[t.len() - 1] - t[0]) as f64 / 1000.0)
        .collect();
    println!(
        "| whole round trip | {:.3} | {:.3} |",
        percentile(&total, 0.5),
        percentile(&total, 0.99)
    );
}

/// `LOAD_ONLY=trace`: the keystroke case traced stage by stage, through
/// a separate relay and through `up`.
pub async fn run(bins: &Bins, n: usize) -> Result<()> {
    println!("\n## keystroke round trip, traced stage by stage ({n} keystrokes)");
    let dir = tempfile::tempdir()?;
    let keys = keystrokes_traced(bins, n, dir.path()).await?;
    let mut events = read_events(&dir.path().join("relay.log"))?;
    events.extend(read_events(&dir.path().join("bridge.log"))?);
    events.sort();
    if events.is_empty() {
        bail!("no latency events in the logs (built without the trace points?)");
    }
    print_stages("separate relay on loopback", &keys, &events);
    let up_log = dir.path().join("up.log");
    let keys = keystrokes_up(bins, n, Some(&up_log)).await?;
    let events = read_events(&up_log)?;
    print_stages("tmux-bridge up", &keys, &events);
    Ok(())
}
