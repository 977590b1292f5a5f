//! Keystroke echo side by side (issue 16): every transport runs at once,
//! each on its own tmux server (ttyd serving `tmux attach`, the runner
//! with a separate relay, `tmux-bridge up`, and with `LOAD_UP_B=PATH` a
//! second `up` from another binary or wrapper), and the keys go to them in
//! turn, a block of `LOAD_KEY_BLOCK` keys (10) to each, the order rotated
//! from block to block.
//!
//! So a change in the machine's load (this one's varies by 2× from minute
//! to minute) falls on every transport alike. Besides each transport's own
//! percentiles, the tool prints the *paired* difference to ttyd: per block
//! round, a transport's median minus ttyd's median in the same round; the
//! median of those and their quartiles. Two builds of `up` compare the
//! same way (`LOAD_UP_B`), without a run of one build between runs of the
//! other. Each client's own time per key is printed too: ours decodes
//! every frame and applies it to its screens before it sees the echo, as
//! the page does, where ttyd's looks for the letter in the raw bytes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use testkit::{Browser, Tmux};

use super::trace::{self, Key, wall_us};
use super::{Bins, Result, SummaryRow, percentile, row, ttyd};

/// Keys typed to a transport before the next one's turn.
fn block_len() -> usize {
    super::env_number("LOAD_KEY_BLOCK", 10).max(1)
}

/// The line is cleared (Ctrl-U) before every this many keys.
const CLEAR_EVERY: usize = 40;
const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

/// Where the keys go: the page's WebSocket client of one of ours, or
/// ttyd's.
pub enum Typist {
    Bridge { b: Box<Browser>, pane: String },
    Ttyd(Box<ttyd::Client>),
}

impl Typist {
    /// A bridge transport's client, once the pane shows its prompt.
    pub async fn bridge(mut b: Browser, pane: String) -> Result<Typist> {
        b.until("the prompt", 20, |v| testkit::view_has(v, &pane, "$"))
            .await?;
        Ok(Typist::Bridge {
            b: Box::new(b),
            pane,
        })
    }

    async fn send(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Typist::Bridge { b, pane } => {
                b.send_input(pane, std::str::from_utf8(data)?).await?;
            }
            Typist::Ttyd(c) => c.send_input(data).await?,
        }
        Ok(())
    }

    async fn drain_for(&mut self, ms: u64) -> Result<()> {
        match self {
            Typist::Bridge { b, .. } => b.drain_for(ms).await?,
            Typist::Ttyd(c) => c.drain_for(ms).await?,
        }
        Ok(())
    }

    /// The client's own time so far, taking in what arrived.
    fn work(&self) -> Duration {
        match self {
            Typist::Bridge { b, .. } => b.work,
            Typist::Ttyd(c) => c.work,
        }
    }

    async fn until_echo(&mut self, letter: u8) -> Result<()> {
        let limit = Duration::from_secs(10);
        match self {
            Typist::Bridge { b, pane } => b.until_output(pane, letter, limit).await?,
            Typist::Ttyd(c) => {
                if !c.until(&[letter], limit).await? {
                    anyhow::bail!("key {:?} never echoed through ttyd", letter as char);
                }
            }
        }
        Ok(())
    }

    /// Key number `i` of this transport: a letter typed at the prompt after
    /// `gap_ms` of quiet (the line cleared every [`CLEAR_EVERY`] keys),
    /// timed from the send to its echo on the client.
    pub async fn key(&mut self, i: usize, gap_ms: u64) -> Result<Key> {
        if i.is_multiple_of(CLEAR_EVERY) {
            self.send(b"\x15").await?;
            // Let the redraw of the cleared line pass.
            self.drain_for(30).await?;
        }
        if gap_ms > 0 {
            self.drain_for(gap_ms).await?;
        }
        let letter = LETTERS[i % LETTERS.len()];
        let sent_us = wall_us();
        self.send(&[letter]).await?;
        self.until_echo(letter).await?;
        Ok(Key {
            sent_us,
            echoed_us: wall_us(),
        })
    }
}

/// A running transport: its processes and its client.
struct Transport {
    label: String,
    typist: Typist,
    stop: Stopper,
    /// Its server processes (ttyd; runner and relay; `up`), not tmux.
    pids: Vec<u32>,
    /// Its tmux server.
    tmux_pid: Option<u32>,
    /// Every key's round trip this run, ms.
    keys: Vec<f64>,
    /// During its blocks: CPU time of its servers and of its tmux server
    /// (ns), and how many times a thread of its servers was switched in.
    cpu_ns: u64,
    tmux_ns: u64,
    switches: u64,
    /// During its blocks: its client's own time (ns).
    client_ns: u64,
}

impl Transport {
    fn new(
        label: &str,
        typist: Typist,
        pids: &[Option<u32>],
        tmux_pid: Option<u32>,
        stop: Stopper,
    ) -> Self {
        Transport {
            label: label.into(),
            typist,
            pids: pids.iter().flatten().copied().collect(),
            tmux_pid,
            stop,
            keys: Vec::new(),
            cpu_ns: 0,
            tmux_ns: 0,
            switches: 0,
            client_ns: 0,
        }
    }

    /// So far: CPU time of its servers, of its tmux server (ns), and its
    /// servers' threads' switches in.
    fn cpu(&self) -> [u64; 3] {
        let servers = self.pids.iter().map(|&p| sched(p));
        let tmux = self.tmux_pid.map_or((0, 0), sched);
        [
            servers.clone().map(|s| s.0).sum(),
            tmux.0,
            servers.map(|s| s.1).sum(),
        ]
    }
}

/// Over every live thread of `pid`: the time it ran on a CPU (ns) and the
/// times it was switched in (`/proc/PID/task/*/schedstat`, its first and
/// third fields: exact, where `/proc/PID/stat` counts 10 ms ticks).
fn sched(pid: u32) -> (u64, u64) {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .map(|s| {
            let f: Vec<u64> = s
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            (
                f.first().copied().unwrap_or(0),
                f.get(2).copied().unwrap_or(0),
            )
        })
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// After a block, how long its transport may finish what the last key
/// left (the store's commit after the echo) before its CPU is read.
const SETTLE_MS: u64 = 5;

enum Stopper {
    System(super::System),
    Up(trace::Up),
    Ttyd(ttyd::Ttyd, Tmux),
}

impl Stopper {
    async fn stop(self) {
        match self {
            Stopper::System(s) => s.stop().await,
            Stopper::Up(u) => u.stop().await,
            Stopper::Ttyd(t, tmux) => {
                t.stop().await;
                drop(tmux);
            }
        }
    }
}

async fn start_ttyd(bin: &Path) -> Result<Transport> {
    let tmux = Tmux::new("load-tk");
    super::new_session(&tmux, "load")?;
    let t = ttyd::Ttyd::start(&bin.to_path_buf(), &tmux, "load").await?;
    let mut c = ttyd::Client::connect(&t, super::COLS, super::ROWS + 1).await?;
    if !c.until(b"$", Duration::from_secs(10)).await? {
        anyhow::bail!("no prompt through ttyd");
    }
    let pids = [t.pid()];
    let typist = Typist::Ttyd(Box::new(c));
    let tmux_pid = super::tmux_server_pid(&tmux);
    Ok(Transport::new(
        "ttyd",
        typist,
        &pids,
        tmux_pid,
        Stopper::Ttyd(t, tmux),
    ))
}

async fn start_relay(bins: &Bins) -> Result<Transport> {
    let sys = super::start_system(bins, "load-k", None).await?;
    let b = Browser::connect(&sys.login, &sys.session_id, 0).await?;
    let typist = Typist::bridge(b, sys.pane.clone()).await?;
    let pids = [sys.bridge.id(), sys.relay.id()];
    let tmux_pid = super::tmux_server_pid(&sys.tmux);
    Ok(Transport::new(
        "bridge+relay",
        typist,
        &pids,
        tmux_pid,
        Stopper::System(sys),
    ))
}

async fn start_up(bins: &Bins, label: &str) -> Result<Transport> {
    let up = trace::start_up(bins, None).await?;
    let b = Browser::connect(&up.login, &up.session_id, 0).await?;
    let typist = Typist::bridge(b, up.pane.clone()).await?;
    let pids = [up.pid()];
    let tmux_pid = super::tmux_server_pid(up.tmux());
    Ok(Transport::new(
        label,
        typist,
        &pids,
        tmux_pid,
        Stopper::Up(up),
    ))
}

/// Runs `runs` rounds of `n` keys per transport and prints the table
/// (and adds the comparison with ttyd to `summary`).
pub async fn run(
    bins: &Bins,
    ttyd_bin: Option<&PathBuf>,
    runs: usize,
    n: usize,
    summary: &mut Vec<SummaryRow>,
) -> Result<()> {
    let gap = trace::key_gap_ms();
    let block = block_len();
    let up_b = std::env::var_os("LOAD_UP_B").map(PathBuf::from);
    println!("\n## keystroke round trip: WebSocket input → echoed output on the WebSocket client");
    println!(
        "(every transport at once, {block} keys to each in turn; {} ms before each key)",
        gap
    );
    // Per transport label: each run's p50, p95, p99 (ms), CPU per key of
    // its servers and of its tmux server (µs), its servers' switches per
    // key and its client's own time per key (µs); and each round's median
    // (rounds of every run, in order).
    let mut per_run: Vec<(String, Vec<[f64; 7]>)> = Vec::new();
    let mut rounds: Vec<(String, Vec<f64>)> = Vec::new();
    for _ in 0..runs {
        let mut ts: Vec<Transport> = Vec::new();
        if let Some(bin) = ttyd_bin {
            ts.push(start_ttyd(bin).await?);
        }
        ts.push(start_relay(bins).await?);
        ts.push(start_up(bins, "tmux-bridge up").await?);
        if let Some(path) = &up_b {
            let other = Bins {
                bridge: path.clone(),
                relay: bins.relay.clone(),
            };
            ts.push(start_up(&other, "tmux-bridge up (LOAD_UP_B)").await?);
        }
        let mut typed = 0;
        let mut round = 0;
        while typed < n {
            let len = block.min(n - typed);
            let count = ts.len();
            for j in 0..count {
                let t = &mut ts[(round + j) % count];
                let mut lat = Vec::with_capacity(len);
                let before = t.cpu();
                let client_before = t.typist.work();
                for i in typed..typed + len {
                    lat.push(t.typist.key(i, gap).await?.ms());
                }
                t.typist.drain_for(SETTLE_MS).await?;
                let [cpu, tmux, switches] = t.cpu();
                t.cpu_ns += cpu.saturating_sub(before[0]);
                t.tmux_ns += tmux.saturating_sub(before[1]);
                t.switches += switches.saturating_sub(before[2]);
                let client = t.typist.work().saturating_sub(client_before);
                t.client_ns += u64::try_from(client.as_nanos()).unwrap_or(u64::MAX);
                let med = percentile(&lat, 0.5);
                t.keys.extend(lat);
                match rounds.iter_mut().find(|(l, _)| *l == t.label) {
                    Some((_, v)) => v.push(med),
                    None => rounds.push((t.label.clone(), vec![med])),
                }
            }
            typed += len;
            round += 1;
        }
        for t in ts {
            let per_key = |n: u64| n as f64 / t.keys.len().max(1) as f64;
            let p = [
                percentile(&t.keys, 0.50),
                percentile(&t.keys, 0.95),
                percentile(&t.keys, 0.99),
                per_key(t.cpu_ns) / 1000.0,
                per_key(t.tmux_ns) / 1000.0,
                per_key(t.switches),
                per_key(t.client_ns) / 1000.0,
            ];
            match per_run.iter_mut().find(|(l, _)| *l == t.label) {
                Some((_, v)) => v.push(p),
                None => per_run.push((t.label.clone(), vec![p])),
            }
            t.stop.stop().await;
        }
    }
    for (label, v) in &per_run {
        let names = [
            ("p50", "ms"),
            ("p95", "ms"),
            ("p99", "ms"),
            ("CPU per key, its servers (tmux apart)", "µs"),
            ("CPU per key, its tmux server", "µs"),
            ("threads of its servers switched in, per key", ""),
            ("its client's own time per key (decode, apply)", "µs"),
        ];
        for (k, (name, unit)) in names.iter().enumerate() {
            let xs: Vec<f64> = v.iter().map(|p| p[k]).collect();
            row(&format!("{label}: {name}"), &xs, unit);
        }
    }
    let Some((_, theirs)) = rounds.iter().find(|(l, _)| l == "ttyd") else {
        return Ok(());
    };
    println!(
        "\npaired with ttyd: a round's median minus ttyd's in the same round, over every round"
    );
    for (label, ours) in rounds.iter().filter(|(l, _)| l != "ttyd") {
        let d: Vec<f64> = ours.iter().zip(theirs).map(|(a, b)| a - b).collect();
        println!(
            "{:<72} {:>+9.3} ms  (quartiles {:+.3} to {:+.3}; {} rounds)",
            format!("{label} − ttyd"),
            percentile(&d, 0.5),
            percentile(&d, 0.25),
            percentile(&d, 0.75),
            d.len()
        );
    }
    let ttyd_runs = per_run.iter().find(|(l, _)| l == "ttyd").map(|(_, v)| v);
    for (label, v) in per_run.iter().filter(|(l, _)| l != "ttyd") {
        let Some(t) = ttyd_runs else { break };
        let short = if label == "bridge+relay" {
            "separate relay"
        } else {
            label.trim_start_matches("tmux-bridge ")
        };
        for (k, name) in [
            (0, "keystroke echo p50 (ms)"),
            (2, "keystroke echo p99 (ms)"),
            (3, "CPU per key, servers without tmux (µs)"),
        ] {
            summary.push(SummaryRow {
                what: format!("{name}, {short}"),
                ours: percentile(&v.iter().map(|p| p[k]).collect::<Vec<_>>(), 0.5),
                ttyd: percentile(&t.iter().map(|p| p[k]).collect::<Vec<_>>(), 0.5),
            });
        }
    }
    Ok(())
}
