//! Jobs on this runner (docs/protocol.md §4.6): a command run in a new
//! window of an idea's session, its exit status as tmux records it, and its
//! log shipped to the relay.
//!
//! Starting a job takes two tmux invocations: `new-window` with a silent
//! placeholder (so nothing can exit before the window is set up), then, in
//! one command list, `remain-on-exit on` for the window, the job id in the
//! pane option `@bridge_job`, `respawn-pane -k` with the real command (its
//! cwd and environment) and `pipe-pane` into the job's log file. tmux runs
//! the whole list before it reads the new pane, so the pipe sees the first
//! byte the command prints, and the dead pane stays with
//! `#{pane_dead_status}` / `#{pane_dead_signal}` for us to read.
//!
//! tmux has no notification for a pane dying under `remain-on-exit`
//! (reference §7.4): while jobs run, [`Jobs::poll`] lists the panes once a
//! second (the rate tmux checks format subscriptions at). After a restart
//! of the runner, the same listing finds the jobs again by `@bridge_job`.
//!
//! The log is everything the pane printed, written by `pipe-pane` to
//! `<data_dir>/jobs/<id>.log`: complete even when the session's live
//! stream is paused in a flood. It goes to the relay in compressed chunks
//! by byte offset, at most [`LOG_WINDOW`] bytes unacknowledged; the
//! relay's `log_ack` says how much it stored and the runner resends from
//! there after a reconnect. A finished job's file is deleted once the
//! relay stored all of it.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use protocol::runner::{ErrorBody, JobKind, JobPhase, JobReport, JobSpec, LogChunk};
use tmux_cc::PaneId;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::detect::{self, PrintedUrls};
use super::now_ms;
use super::ports::PortTable;
use super::server::Server;
use super::sockets;
use crate::tmux::shell_quote;

/// Bytes of log read into one chunk.
const CHUNK: usize = 256 * 1024;
/// Log bytes sent and not yet acknowledged, at most.
pub const LOG_WINDOW: u64 = 4 * 1024 * 1024;
/// A finished job's log is complete once its file stayed this long
/// without growing (the pipe's last bytes trail the pane's death).
const LOG_SETTLE: Duration = Duration::from_secs(2);
/// What a job's pane runs: the command under the user's shell (tmux sets
/// `SHELL` to its `default-shell`), as `default-shell -c` would, then its
/// exit status written to a file, and the same end for tmux to see (a
/// status above 128 is a signal the shell died of: the wrapper dies of it
/// too). tmux 3.3a was seen, under load, to mark such a pane dead and
/// never record its status; the file is the fallback. The wrapper catches
/// SIGINT while the command runs (a caught signal, unlike an ignored one,
/// is back to its default in the command), so a C-c in the pane (a person,
/// or a cancel) never kills the wrapper before it writes the status: a
/// dev server that exits 0 on C-c is seen to exit 0.
const WRAPPER: &str = r#"trap : INT; "${SHELL:-/bin/sh}" -c "$1"; s=$?; trap - INT; printf '%s\n' "$s" > "$2"; if [ "$s" -gt 128 ] && [ "$s" -lt 160 ]; then kill -"$((s - 128))" $$; fi; exit "$s""#;

/// Polls a dead pane may go without an exit status before the job is
/// reported ended without one.
const MAX_UNREAPED_POLLS: u32 = 10;
/// Windows of finished jobs kept per session.
pub const KEEP_FINISHED: usize = 5;
/// Finished jobs remembered after their log is stored.
const DONE_KEPT: usize = 200;
/// The pane option that names a pane's job.
pub const JOB_OPTION: &str = "@bridge_job";
/// The pane option that names a job's kind (absent: a plain job).
pub const KIND_OPTION: &str = "@bridge_job_kind";
/// The environment variable a job's command sees its id in.
pub const JOB_ENV: &str = "TB_JOB_ID";

/// The pane listing [`Jobs::poll`] reads.
const PANES_FORMAT: &str = "#{pane_id}\t#{pane_dead}\t#{pane_dead_status}\t#{pane_dead_signal}\t#{pane_pid}\t#{@bridge_job_kind}\t#{@bridge_job}";

/// One line of [`PANES_FORMAT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneLine {
    pub pane: PaneId,
    pub dead: bool,
    pub status: Option<i32>,
    pub signal: Option<i32>,
    pub pid: Option<i32>,
    /// The job's kind (an unknown or absent name: a plain job).
    pub kind: JobKind,
    pub job: String,
}

/// Parses [`PANES_FORMAT`] lines; lines that do not parse are skipped.
pub fn parse_panes(out: &[u8]) -> Vec<PaneLine> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            let pane = f.next()?.parse().ok()?;
            let dead = f.next()? == "1";
            let status = f.next()?.parse().ok();
            let signal = f.next()?.parse().ok().filter(|&s| s != 0);
            let pid = f.next()?.parse().ok();
            let kind = JobKind::parse(f.next()?).unwrap_or_default();
            // The job id is last: whatever follows the kind.
            let job = f.collect::<Vec<_>>().join("\t");
            Some(PaneLine {
                pane,
                dead,
                status,
                signal,
                pid,
                kind,
                job,
            })
        })
        .collect()
}

/// An exit status as a shell reports it (`$?`): a code, or 128 + the
/// signal that ended the process.
pub fn status_of(code: i32) -> (Option<i32>, Option<i32>) {
    if (129..160).contains(&code) {
        (None, Some(code - 128))
    } else {
        (Some(code), None)
    }
}

/// The exit status the job's wrapper wrote, if it did.
fn status_file(path: &Path) -> Option<(Option<i32>, Option<i32>)> {
    let code = std::fs::read_to_string(path)
        .ok()?
        .trim()
        .parse::<i32>()
        .ok()?;
    Some(status_of(code))
}

/// What a pane's line means for its job.
pub fn phase_of(line: Option<&PaneLine>) -> (JobPhase, Option<i32>, Option<i32>) {
    match line {
        None => (JobPhase::Vanished, None, None),
        Some(l) if !l.dead => (JobPhase::Running, None, None),
        // A signal death has no status (tmux sets only one of the two).
        Some(l) if l.signal.is_some() => (JobPhase::Exited, None, l.signal),
        Some(l) => (JobPhase::Exited, l.status, None),
    }
}

fn error(code: &str, message: impl Into<String>) -> ErrorBody {
    ErrorBody {
        code: code.to_owned(),
        message: message.into(),
    }
}

#[derive(Debug)]
struct Tracked {
    kind: JobKind,
    report: JobReport,
    log: PathBuf,
    /// The wrapper's exit-status file.
    status: PathBuf,
    /// Log bytes read and sent on the current connection.
    sent: u64,
    /// Log bytes the relay stored.
    acked: u64,
    /// The log file's length and when it last changed (after the end).
    settled: (u64, Instant),
    pid: Option<i32>,
    /// When to kill the process group of a cancelled job.
    kill_at: Option<Instant>,
    /// Polls that found the pane dead before tmux had its exit status.
    unreaped: u32,
    /// A dev server's local URLs in its log so far.
    printed: PrintedUrls,
}

/// The jobs this runner knows.
#[derive(Debug)]
pub struct Jobs {
    dir: PathBuf,
    tracked: BTreeMap<String, Tracked>,
    /// Finished jobs whose log is all stored, with their last report
    /// (oldest first, at most [`DONE_KEPT`]): not adopted or started
    /// again, and still in the inventory (a relay that missed the end
    /// learns it there instead of queueing the job again).
    done: VecDeque<JobReport>,
    /// The ports running dev servers listen on (shared with the preview
    /// tunnels, which dial only these).
    ports: PortTable,
}

impl Jobs {
    pub fn new(data_dir: &Path) -> Self {
        Jobs {
            dir: data_dir.join("jobs"),
            tracked: BTreeMap::new(),
            done: VecDeque::new(),
            ports: PortTable::default(),
        }
    }

    /// The detected ports of the running dev servers (a handle on the
    /// same table).
    pub fn ports(&self) -> PortTable {
        self.ports.clone()
    }

    /// Whether a poll is due work: a job runs, waits to be killed, or has
    /// log left to send.
    pub fn busy(&self) -> bool {
        !self.tracked.is_empty()
    }

    fn log_path(&self, job: &str) -> PathBuf {
        self.dir.join(format!("{job}.log"))
    }

    fn status_path(&self, job: &str) -> PathBuf {
        self.dir.join(format!("{job}.status"))
    }

    /// The last report of a job this runner runs or ran (and remembers).
    pub fn known(&self, job: &str) -> Option<JobReport> {
        self.tracked
            .get(job)
            .map(|t| t.report.clone())
            .or_else(|| self.done.iter().find(|d| d.job == job).cloned())
    }

    /// Starts `spec` in a new window of the session `target` (`=name:`),
    /// served on channel `ch`.
    pub async fn start(
        &mut self,
        server: &Server,
        spec: &JobSpec,
        target: &str,
        ch: u32,
    ) -> Result<JobReport, ErrorBody> {
        spec.validate().map_err(|e| error("invalid_job", e))?;
        if let Some(r) = self.known(&spec.job) {
            return Ok(r);
        }
        if let Some(dir) = &spec.cwd
            && !Path::new(dir).is_dir()
        {
            return Err(error(
                "invalid_cwd",
                format!("{dir} is not a directory on this machine"),
            ));
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| error("io", format!("creating {}: {e}", self.dir.display())))?;
        let log = self.log_path(&spec.job);
        let tmux = |e: anyhow::Error| error("tmux", format!("{e:#}"));
        let out = server
            .tmux
            .run(&[
                "new-window",
                "-d",
                "-P",
                "-F",
                "#{window_id} #{pane_id}",
                "-n",
                &spec.name,
                "-t",
                target,
                "sleep 2147483647",
            ])
            .await
            .map_err(tmux)?;
        let out = String::from_utf8_lossy(&out);
        let mut ids = out.split_whitespace();
        let (Some(window), Some(pane)) = (ids.next(), ids.next()) else {
            return Err(error("tmux", format!("new-window printed {out:?}")));
        };
        let pane_id: PaneId = pane
            .parse()
            .map_err(|_| error("tmux", format!("new-window printed {out:?}")))?;
        let job_env = format!("{JOB_ENV}={}", spec.job);
        let envs: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let pipe = format!("exec cat >> {}", shell_quote(&log.to_string_lossy()));
        let mut args: Vec<&str> = vec![
            "set-option",
            "-w",
            "-t",
            window,
            "remain-on-exit",
            "on",
            ";",
            "set-option",
            "-p",
            "-t",
            pane,
            KIND_OPTION,
            spec.kind.as_str(),
            ";",
            "set-option",
            "-p",
            "-t",
            pane,
            JOB_OPTION,
            &spec.job,
            ";",
            "respawn-pane",
            "-k",
            "-t",
            pane,
            "-e",
            &job_env,
        ];
        for e in &envs {
            args.extend(["-e", e.as_str()]);
        }
        if let Some(dir) = &spec.cwd {
            args.extend(["-c", dir.as_str()]);
        }
        let status = self.status_path(&spec.job);
        let status = status.to_string_lossy();
        args.extend([
            "--",
            "/bin/sh",
            "-c",
            WRAPPER,
            "tb-job",
            spec.command.as_str(),
            &status,
            ";",
            "pipe-pane",
            "-t",
            pane,
            &pipe,
        ]);
        if let Err(err) = server.tmux.run(&args).await {
            let _ = server.tmux.run(&["kill-window", "-t", window]).await;
            return Err(tmux(err));
        }
        let report = JobReport {
            job: spec.job.clone(),
            phase: JobPhase::Running,
            ch: Some(ch),
            pane: Some(pane_id),
            started_at: Some(now_ms()),
            ended_at: None,
            exit_code: None,
            signal: None,
            ports: Vec::new(),
        };
        info!(job = %spec.job, kind = spec.kind.as_str(), %window, %pane, "job started");
        tidy(server, target).await;
        self.tracked.insert(
            spec.job.clone(),
            Tracked {
                kind: spec.kind,
                report: report.clone(),
                log,
                status: self.status_path(&spec.job),
                sent: 0,
                acked: 0,
                settled: (0, Instant::now()),
                pid: None,
                kill_at: None,
                unreaped: 0,
                printed: PrintedUrls::default(),
            },
        );
        Ok(report)
    }

    /// Interrupts a job (C-c in its pane), and kills its process group
    /// after `grace` if it still runs then. An unknown or ended job is
    /// success: there is nothing left to cancel.
    pub async fn cancel(
        &mut self,
        server: &Server,
        job: &str,
        grace: Duration,
    ) -> Result<(), ErrorBody> {
        let Some(t) = self.tracked.get_mut(job) else {
            return Ok(());
        };
        if t.report.phase != JobPhase::Running {
            return Ok(());
        }
        if let Some(pane) = t.report.pane {
            let pane = pane.to_string();
            if let Err(err) = server.tmux.run(&["send-keys", "-t", &pane, "C-c"]).await {
                debug!(%job, "C-c: {err:#}");
            }
        }
        t.kill_at = Some(Instant::now() + grace);
        info!(%job, grace_ms = grace.as_millis() as u64, "job cancelled");
        Ok(())
    }

    /// Reads the panes: jobs whose phase changed (their new reports), jobs
    /// found again after a restart, and kills that are due.
    pub async fn poll(&mut self, server: &Server) -> Vec<JobReport> {
        let out = match server
            .tmux
            .run(&["list-panes", "-a", "-F", PANES_FORMAT])
            .await
        {
            Ok(out) => out,
            // No server: every pane is gone.
            Err(err) => {
                debug!("list-panes: {err:#}");
                Vec::new()
            }
        };
        let lines = parse_panes(&out);
        let now = Instant::now();
        let mut changed = Vec::new();
        let mut kills = Vec::new();
        // Jobs of an earlier run of this runner (or started by one that
        // died before it answered).
        for l in lines.iter().filter(|l| !l.job.is_empty()) {
            if self.tracked.contains_key(&l.job)
                || self.done.iter().any(|d| d.job == l.job)
                || !protocol::runner::job::valid_job_id(&l.job)
            {
                continue;
            }
            let (phase, mut exit_code, mut signal) = phase_of(Some(l));
            if phase == JobPhase::Exited && exit_code.is_none() && signal.is_none() {
                // It ended while no runner watched, and tmux kept no status:
                // the wrapper's file has it.
                if let Some((c, s)) = status_file(&self.status_path(&l.job)) {
                    (exit_code, signal) = (c, s);
                }
            }
            let report = JobReport {
                job: l.job.clone(),
                phase,
                ch: None,
                pane: Some(l.pane),
                started_at: None,
                ended_at: (phase != JobPhase::Running).then(now_ms),
                exit_code,
                signal,
                ports: Vec::new(),
            };
            info!(job = %l.job, kind = l.kind.as_str(), pane = %l.pane, ?phase, "found a job");
            let log = self.log_path(&l.job);
            let status = self.status_path(&l.job);
            self.tracked.insert(
                l.job.clone(),
                Tracked {
                    kind: l.kind,
                    report: report.clone(),
                    log,
                    status,
                    sent: 0,
                    acked: 0,
                    settled: (0, now),
                    pid: l.pid,
                    kill_at: None,
                    unreaped: 0,
                    printed: PrintedUrls::default(),
                },
            );
            changed.push(report);
        }
        for t in self.tracked.values_mut() {
            let line = t
                .report
                .pane
                .and_then(|p| lines.iter().find(|l| l.pane == p && l.job == t.report.job));
            if let Some(l) = line {
                t.pid = l.pid.or(t.pid);
            }
            if t.report.phase == JobPhase::Running {
                let (phase, mut exit_code, mut signal) = phase_of(line);
                if phase == JobPhase::Exited && exit_code.is_none() && signal.is_none() {
                    // tmux has no status (yet): the wrapper's file.
                    if let Some((c, s)) = status_file(&t.status) {
                        (exit_code, signal) = (c, s);
                    }
                }
                // tmux marks a pane dead when its output ends, and records
                // the status once it reaps the process: wait for it (a few
                // polls) rather than report an exit without a code.
                let unreaped = phase == JobPhase::Exited
                    && exit_code.is_none()
                    && signal.is_none()
                    && t.unreaped < MAX_UNREAPED_POLLS;
                if unreaped {
                    t.unreaped += 1;
                } else if phase != JobPhase::Running {
                    t.report.phase = phase;
                    t.report.exit_code = exit_code;
                    t.report.signal = signal;
                    t.report.ended_at = Some(now_ms());
                    t.report.ports.clear();
                    self.ports.remove(&t.report.job);
                    t.kill_at = None;
                    t.settled = (t.sent.max(t.acked), now);
                    info!(job = %t.report.job, ?phase, ?exit_code, ?signal, "job ended");
                    changed.push(t.report.clone());
                } else if t.kill_at.is_some_and(|at| at <= now) {
                    t.kill_at = None;
                    if let Some(pid) = t.pid.filter(|&p| p > 1) {
                        kills.push((t.report.job.clone(), pid));
                    }
                }
            }
        }
        for (job, pid) in kills {
            info!(%job, pid, "killing the job's process group");
            // A negative pid names the process group the pane's process
            // leads (tmux starts it with setsid); the pid itself too, in
            // case it left its group.
            let status = tokio::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}"), &pid.to_string()])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .await;
            if let Err(err) = status {
                warn!(%job, %err, "running kill");
            }
        }
        changed.extend(self.detect_ports().await);
        changed
    }

    /// Looks at what running dev servers listen on: the sockets of each
    /// one's process tree and the local URLs it printed. Returns the
    /// reports of those whose ports changed.
    async fn detect_ports(&mut self) -> Vec<JobReport> {
        let mut work = Vec::new();
        for t in self.tracked.values_mut() {
            if t.kind != JobKind::Devserver || t.report.phase != JobPhase::Running {
                continue;
            }
            let Some(pid) = t.pid.and_then(|p| u32::try_from(p).ok()).filter(|&p| p > 1) else {
                continue;
            };
            if t.printed.wants() > 0
                && let Ok(new) = read_at(&t.log, t.printed.offset, t.printed.wants())
            {
                t.printed.feed(&new);
            }
            work.push((t.report.job.clone(), pid, t.printed.ports.clone()));
        }
        if work.is_empty() {
            return Vec::new();
        }
        // /proc is read with blocking calls: off the async threads, and
        // once for every dev server.
        let roots: Vec<u32> = work.iter().map(|&(_, pid, _)| pid).collect();
        let scans = match tokio::task::spawn_blocking(move || sockets::scan(&roots)).await {
            Ok(Ok(scans)) => scans,
            Ok(Err(err)) => {
                debug!(%err, "port detection");
                return Vec::new();
            }
            Err(_) => return Vec::new(),
        };
        let mut changed = Vec::new();
        for ((job, _, printed), s) in work.into_iter().zip(scans) {
            let ports = detect::detected(&s.tree, &s.all, &printed);
            let Some(t) = self.tracked.get_mut(&job) else {
                continue;
            };
            // The job may have ended while the scan ran.
            if t.report.phase == JobPhase::Running && self.ports.set(&job, ports.clone()) {
                info!(%job, ports = ?ports.iter().map(|p| p.port).collect::<Vec<_>>(), "dev server ports");
                t.report.ports = ports;
                changed.push(t.report.clone());
            }
        }
        changed
    }

    /// The next log chunks to send, within [`LOG_WINDOW`].
    pub fn log_chunks(&mut self) -> Vec<LogChunk> {
        let mut out = Vec::new();
        let now = Instant::now();
        let mut finished = Vec::new();
        for (job, t) in &mut self.tracked {
            let len = std::fs::metadata(&t.log).map_or(0, |m| m.len());
            if t.report.phase != JobPhase::Running {
                if len != t.settled.0 {
                    t.settled = (len, now);
                } else if t.acked >= len && now.duration_since(t.settled.1) >= LOG_SETTLE {
                    finished.push(job.clone());
                    continue;
                }
            }
            while t.sent < len && t.sent - t.acked.min(t.sent) < LOG_WINDOW {
                match read_at(&t.log, t.sent, CHUNK) {
                    Ok(data) if !data.is_empty() => {
                        let n = data.len() as u64;
                        match protocol::codec::compress(&data) {
                            Ok(z) => out.push(LogChunk {
                                job: job.clone(),
                                offset: t.sent,
                                data: Bytes::from(z),
                            }),
                            Err(err) => {
                                warn!(%job, %err, "compressing a log chunk");
                                break;
                            }
                        }
                        t.sent += n;
                    }
                    Ok(_) => break,
                    Err(err) => {
                        warn!(%job, %err, "reading the job's log");
                        break;
                    }
                }
            }
        }
        for job in finished {
            if let Some(t) = self.tracked.remove(&job) {
                debug!(%job, bytes = t.acked, "job log complete");
                let _ = std::fs::remove_file(&t.log);
                let _ = std::fs::remove_file(&t.status);
                if self.done.len() >= DONE_KEPT {
                    self.done.pop_front();
                }
                self.done.push_back(t.report);
            }
        }
        out
    }

    /// The relay answered the chunk at `offset`: it stores `stored` bytes
    /// of `job`'s log.
    pub fn acked(&mut self, job: &str, offset: u64, stored: u64) {
        if let Some(t) = self.tracked.get_mut(job) {
            t.acked = t.acked.max(stored);
            if stored < offset || stored > t.sent {
                // The chunk left a gap (refused), or the relay has more
                // than was sent (a runner restart): go on from there.
                t.acked = stored;
                t.sent = stored;
            }
        }
    }

    /// The connection changed: unacknowledged log bytes go again.
    pub fn rewind(&mut self) {
        for t in self.tracked.values_mut() {
            t.sent = t.acked;
        }
    }

    /// Every job known, for the relay after a connect.
    pub fn inventory(&self) -> Vec<JobReport> {
        self.done
            .iter()
            .cloned()
            .chain(self.tracked.values().map(|t| t.report.clone()))
            .collect()
    }
}

/// Closes the windows of finished jobs in the session `target` but the
/// newest [`KEEP_FINISHED`]: each job's window stays for a person to read
/// (the log stays at the relay either way).
async fn tidy(server: &Server, target: &str) {
    let out = match server
        .tmux
        .run(&[
            "list-panes",
            "-s",
            "-t",
            target,
            "-F",
            "#{window_id}\t#{pane_dead}\t#{@bridge_job}",
        ])
        .await
    {
        Ok(out) => out,
        Err(err) => {
            debug!("list-panes: {err:#}");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out);
    let mut finished = finished_job_windows(&text);
    if finished.len() <= KEEP_FINISHED {
        return;
    }
    finished.truncate(finished.len() - KEEP_FINISHED);
    for (_, window) in finished {
        if let Err(err) = server.tmux.run(&["kill-window", "-t", &window]).await {
            debug!(%window, "closing a finished job's window: {err:#}");
        }
    }
}

/// The windows of finished jobs in a `#{window_id}\t#{pane_dead}\t#{@bridge_job}`
/// listing, oldest first (tmux numbers windows in creation order).
fn finished_job_windows(listing: &str) -> Vec<(u32, String)> {
    let mut v: Vec<(u32, String)> = listing
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let window = f.next()?;
            let dead = f.next()? == "1";
            let job = f.next().unwrap_or("");
            let n = window.strip_prefix('@')?.parse().ok()?;
            (dead && !job.is_empty()).then(|| (n, window.to_owned()))
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Up to `max` bytes of `path` from `offset` (fewer at its end).
fn read_at(path: &Path, offset: u64, max: usize) -> std::io::Result<Vec<u8>> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(max.min(64 * 1024));
    f.take(max as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pane_lines_and_their_phases() {
        let out = b"%1\t0\t\t\t100\t\tjob-a\n%2\t1\t3\t\t101\tagent\tjob-b\n%3\t1\t\t9\t102\tdevserver\tjob-c\n%4\t0\t\t\t103\t\t\nbad line\n";
        let lines = parse_panes(out);
        assert_eq!(lines.len(), 4);
        assert_eq!(phase_of(Some(&lines[0])), (JobPhase::Running, None, None));
        assert_eq!(phase_of(Some(&lines[1])), (JobPhase::Exited, Some(3), None));
        assert_eq!(phase_of(Some(&lines[2])), (JobPhase::Exited, None, Some(9)));
        assert_eq!(lines[3].job, "");
        assert_eq!(
            lines.iter().map(|l| l.kind).collect::<Vec<_>>(),
            [
                JobKind::Job,
                JobKind::Agent,
                JobKind::Devserver,
                JobKind::Job
            ]
        );
        assert_eq!(lines[2].pid, Some(102));
        assert_eq!(phase_of(None), (JobPhase::Vanished, None, None));
    }

    #[test]
    fn shell_statuses() {
        assert_eq!(status_of(0), (Some(0), None));
        assert_eq!(status_of(3), (Some(3), None));
        assert_eq!(status_of(137), (None, Some(9)));
        assert_eq!(status_of(128), (Some(128), None));
        assert_eq!(status_of(255), (Some(255), None));
    }

    #[test]
    fn finished_job_windows_oldest_first() {
        let listing = "@12\t1\tj3\n@3\t1\tj1\n@7\t0\tj2\n@1\t1\t\n@9\t1\tj4\nbad\n";
        let got: Vec<u32> = finished_job_windows(listing)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(got, [3, 9, 12], "dead job windows only, by creation");
    }

    #[test]
    fn log_chunks_stay_within_the_window_and_rewind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut jobs = Jobs::new(dir.path());
        std::fs::create_dir_all(&jobs.dir).expect("dir");
        let log = jobs.log_path("j");
        let data: Vec<u8> = (0..(LOG_WINDOW as usize + 3 * CHUNK))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&log, &data).expect("write");
        jobs.tracked.insert(
            "j".into(),
            Tracked {
                report: JobReport {
                    job: "j".into(),
                    phase: JobPhase::Running,
                    ch: None,
                    pane: None,
                    started_at: None,
                    ended_at: None,
                    exit_code: None,
                    signal: None,
                    ports: Vec::new(),
                },
                kind: JobKind::Job,
                status: log.with_extension("status"),
                log,
                sent: 0,
                acked: 0,
                settled: (0, Instant::now()),
                pid: None,
                kill_at: None,
                unreaped: 0,
                printed: PrintedUrls::default(),
            },
        );
        let first = jobs.log_chunks();
        let sent: usize = first.len() * CHUNK;
        assert_eq!(sent as u64, LOG_WINDOW, "stops at the window");
        assert!(jobs.log_chunks().is_empty(), "nothing more until acked");
        jobs.acked("j", CHUNK as u64, 2 * CHUNK as u64);
        let more = jobs.log_chunks();
        assert_eq!(more.len(), 2, "the window moved by two chunks");
        assert_eq!(more[0].offset, LOG_WINDOW);
        jobs.rewind();
        let again = jobs.log_chunks();
        assert_eq!(
            again[0].offset,
            2 * CHUNK as u64,
            "resent from what was stored"
        );
        // A refused chunk (stored below its offset): back to the stored end.
        jobs.acked("j", 5 * CHUNK as u64, 3 * CHUNK as u64);
        assert_eq!(jobs.log_chunks()[0].offset, 3 * CHUNK as u64);
        // The relay has more than this runner sent (it restarted).
        jobs.rewind();
        jobs.acked("j", 0, 5 * CHUNK as u64);
        assert_eq!(jobs.log_chunks()[0].offset, 5 * CHUNK as u64);
        let mut whole = Vec::new();
        for c in first.iter() {
            whole.extend(protocol::codec::decompress(&c.data, CHUNK).expect("chunk"));
        }
        assert_eq!(whole, data[..LOG_WINDOW as usize]);
    }
}
