//! The supervisor: which bridged sessions are served and on which channel.
//!
//! It rescans the server (`list-sessions`) at start, on every watcher
//! notification and on a slow poll (every second while no watcher is
//! attached, every [`POLL_WITH_WATCHER`] otherwise), serves every bridged
//! session it does not serve yet (giving it an instance id if it has
//! none), and runs the relay's commands one at a time (so a command never
//! races a rescan). When a session's task ends it tells the relay why:
//! `server_exited` when the server is gone or is another process,
//! `killed` when the session (that instance) is gone, else `stopping` (the
//! control client died under a live session, which the next rescan serves
//! again on a new channel, resuming the same terminal session). It attaches
//! a control client only once its own leaving clients are gone (`settle`:
//! tmux before 3.7 crashes otherwise).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use protocol::runner::{Channel, CloseReason, CommandOp, ErrorBody, JobSpec};
use tmux_cc::naming;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::jobs::Jobs;
use super::memory::{CommandResult, Memory};
use super::server::{Bridged, Server};
use super::state::{DaemonState, SessionState};
use super::watcher::{self, Watch};
use super::{DaemonConfig, now_ms};
use crate::core::CoreConfig;
use crate::session::{self, Served};
use crate::uplink::{FromUplink, ToUplink, UplinkEnd};

/// Rescan period while the watcher is attached (it reports changes at once).
const POLL_WITH_WATCHER: u32 = 10;

/// How often job logs are shipped…
const JOB_TICK: Duration = Duration::from_millis(250);
/// …and every how many of those ticks the job panes are listed (1 s: the
/// rate tmux itself checks format subscriptions at).
const JOB_POLL_EVERY: u32 = 4;
/// The longest grace a cancel may ask for.
const MAX_CANCEL_GRACE: Duration = Duration::from_secs(60);

/// A rescan waits until sessions stopped changing for this long…
const QUIET: Duration = Duration::from_millis(150);
/// …but no longer than this after the first change: tmux before 3.7
/// crashes when a control client attaches while sessions are created or
/// killed (a script making sessions in a loop), so the daemon attaches
/// after a burst.
const QUIET_AT_MOST: Duration = Duration::from_secs(5);

fn error(code: &str, message: impl Into<String>) -> ErrorBody {
    ErrorBody {
        code: code.to_owned(),
        message: message.into(),
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

pub struct Supervisor {
    server: Server,
    core: CoreConfig,
    spill_dir: PathBuf,
    initial_size: (u16, u16),
    uplink: mpsc::Sender<ToUplink>,
    served: BTreeMap<Channel, Served>,
    next_ch: Channel,
    memory: Memory,
    ended_tx: mpsc::UnboundedSender<Channel>,
    ended_rx: mpsc::UnboundedReceiver<Channel>,
    watch_tx: mpsc::UnboundedSender<Watch>,
    watch_rx: mpsc::UnboundedReceiver<Watch>,
    watcher: Option<CancellationToken>,
    /// When a rescan is due after changes (debounced), and when the first
    /// change of the burst came.
    rescan_due: Option<(Instant, Instant)>,
    state_path: PathBuf,
    state: DaemonState,
    /// What the state file holds, as last written (it is written again
    /// only when the state differs).
    written: Option<DaemonState>,
    jobs: Jobs,
    agents: crate::daemon::agents::AgentCommands,
}

impl Supervisor {
    pub fn new(
        cfg: &DaemonConfig,
        server: Server,
        uplink: mpsc::Sender<ToUplink>,
        state_path: PathBuf,
    ) -> Self {
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        let (watch_tx, watch_rx) = mpsc::unbounded_channel();
        let state = DaemonState {
            pid: std::process::id(),
            relay_url: cfg.relay_url.clone(),
            relay_urls: if cfg.failover_urls.is_empty() {
                Vec::new()
            } else {
                std::iter::once(cfg.relay_url.clone())
                    .chain(cfg.failover_urls.iter().cloned())
                    .collect()
            },
            connected: false,
            runner_id: None,
            last_error: None,
            tmux: cfg.server.base_args().join(" "),
            started_at: now_ms(),
            sessions: Vec::new(),
        };
        Supervisor {
            server,
            core: cfg.core.clone(),
            spill_dir: cfg.data_dir.join("spill"),
            initial_size: cfg.initial_size,
            uplink,
            served: BTreeMap::new(),
            next_ch: 1,
            memory: Memory::default(),
            ended_tx,
            ended_rx,
            watch_tx,
            watch_rx,
            watcher: None,
            rescan_due: None,
            state_path,
            state,
            written: None,
            jobs: Jobs::new(&cfg.data_dir),
            agents: cfg.agents.clone(),
        }
    }

    /// The detected dev server ports (shared with the preview tunnels).
    pub fn ports(&self) -> super::ports::PortTable {
        self.jobs.ports()
    }

    /// Runs until `cancel` fires (`None`) or the uplink ends by itself
    /// (its end: the relay rejected the token).
    pub async fn run(
        &mut self,
        mut from_uplink: mpsc::UnboundedReceiver<FromUplink>,
        uplink_task: &mut JoinHandle<UplinkEnd>,
        cancel: &CancellationToken,
    ) -> Option<UplinkEnd> {
        self.rescan().await;
        self.poll_jobs().await;
        self.write_state();
        let mut poll = tokio::time::interval(Duration::from_secs(1));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u32;
        let mut job_tick = tokio::time::interval(JOB_TICK);
        job_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut job_ticks = 0u32;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return None,
                end = &mut *uplink_task => return Some(end.unwrap_or(UplinkEnd::Cancelled)),
                msg = from_uplink.recv() => match msg {
                    Some(FromUplink::Command { id, op }) => self.command(id, op).await,
                    Some(FromUplink::Connected { runner_id, url }) => {
                        self.state.connected = true;
                        self.state.relay_url = url;
                        self.state.runner_id = Some(runner_id);
                        self.state.last_error = None;
                        self.jobs.rewind();
                        let jobs = self.jobs.inventory();
                        let _ = self.uplink.send(ToUplink::Jobs(jobs)).await;
                    }
                    Some(FromUplink::Disconnected { reason }) => {
                        self.state.connected = false;
                        self.state.last_error = Some(reason);
                        self.jobs.rewind();
                    }
                    Some(FromUplink::LogAck { job, offset, stored }) => {
                        self.jobs.acked(&job, offset, stored)
                    }
                    None => return None,
                },
                Some(ch) = self.ended_rx.recv() => self.ended(ch).await,
                Some(w) = self.watch_rx.recv() => self.watched(w),
                () = sleep_until(self.rescan_due.map(|(due, _)| due)) => {
                    self.rescan_due = None;
                    self.rescan().await;
                }
                _ = job_tick.tick(), if self.jobs.busy() => {
                    job_ticks = job_ticks.wrapping_add(1);
                    if job_ticks.is_multiple_of(JOB_POLL_EVERY) {
                        self.poll_jobs().await;
                    }
                    for chunk in self.jobs.log_chunks() {
                        let _ = self.uplink.send(ToUplink::Log(chunk)).await;
                    }
                }
                _ = poll.tick() => {
                    ticks = ticks.wrapping_add(1);
                    if self.rescan_due.is_none()
                        && (self.watcher.is_none() || ticks.is_multiple_of(POLL_WITH_WATCHER))
                    {
                        self.rescan().await;
                    }
                }
            }
            self.write_state();
        }
    }

    /// A watcher report: coalesce a burst of changes into one rescan, once
    /// the server is quiet.
    fn watched(&mut self, w: Watch) {
        if w == Watch::Gone {
            self.watcher = None;
        }
        self.rescan_when_quiet();
    }

    /// Asks for a rescan once the server has been quiet for [`QUIET`].
    fn rescan_when_quiet(&mut self) {
        let now = Instant::now();
        let first = self.rescan_due.map_or(now, |(_, first)| first);
        self.rescan_due = Some(((now + QUIET).min(first + QUIET_AT_MOST), first));
    }

    /// Whether sessions changed since the rescan began (it then stops and
    /// waits for quiet again).
    fn changed_meanwhile(&mut self) -> bool {
        let mut changed = false;
        while let Ok(w) = self.watch_rx.try_recv() {
            self.watched(w);
            changed = true;
        }
        changed
    }

    /// Stops every session (their cores send their last frames), within
    /// `grace`.
    pub async fn shutdown(&mut self, grace: Duration) {
        if let Some(w) = self.watcher.take() {
            w.cancel();
        }
        for s in self.served.values() {
            s.cancel.cancel();
        }
        let tasks: Vec<_> = std::mem::take(&mut self.served)
            .into_values()
            .map(|s| s.task)
            .collect();
        let _ = tokio::time::timeout(grace, futures_util::future::join_all(tasks)).await;
    }

    fn write_state(&mut self) {
        self.state.sessions = self
            .served
            .values()
            .map(|s| SessionState {
                ch: s.ch,
                idea: s.open.idea.clone(),
                slot: s.open.slot.clone(),
                instance: s.open.instance.clone(),
                tmux_session: s.open.tmux_session.clone(),
                attach: s.open.attach.clone(),
            })
            .collect();
        // The loop calls this after every event, the poll's tick each
        // second included: an idle daemon must not rewrite the file (a
        // write and a rename a second, kept up for days).
        if self.written.as_ref() == Some(&self.state) {
            return;
        }
        match self.state.write(&self.state_path) {
            Ok(()) => self.written = Some(self.state.clone()),
            Err(err) => debug!(%err, "writing the state file"),
        }
    }

    fn serving(&self, name: &str) -> Option<&Served> {
        self.served.values().find(|s| s.open.tmux_session == name)
    }

    /// Serves every bridged session not served yet; keeps a watcher attached.
    async fn rescan(&mut self) {
        let listing = match self.server.list().await {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(err) => {
                warn!("listing tmux sessions: {err:#}");
                return;
            }
        };
        // Served sessions that are no longer bridged sessions of this
        // server (renamed away, or killed and their client not gone yet):
        // stop them; `ended` tells the relay.
        for s in self.served.values() {
            let still = listing
                .find(&s.open.tmux_session)
                .is_some_and(|b| b.line.instance == s.open.instance);
            if !still && !s.cancel.is_cancelled() {
                info!(ch = s.ch, session = %s.open.tmux_session, "no longer a bridged session");
                s.cancel.cancel();
            }
        }
        // Nothing attaches while a client of ours is leaving (see `settle`).
        self.settle().await;
        for b in &listing.bridged {
            if self.serving(&b.line.name).is_some() {
                continue;
            }
            if self.changed_meanwhile() {
                // Attaching now could meet a creation or kill (tmux 3.3a).
                return;
            }
            if let Err(err) = self.serve(b).await {
                warn!(session = %b.line.name, "cannot serve: {err:#}");
            }
        }
        if self.watcher.is_none() {
            let target = listing
                .bridged
                .first()
                .map(|b| &b.line)
                .or_else(|| listing.all.first());
            if let Some(line) = target {
                let cancel = CancellationToken::new();
                match watcher::start(
                    &self.server,
                    &line.name,
                    self.watch_tx.clone(),
                    cancel.clone(),
                )
                .await
                {
                    Ok(()) => self.watcher = Some(cancel),
                    Err(err) => warn!("starting the session watcher: {err:#}"),
                }
            }
        }
    }

    /// Starts serving `b` on a new channel.
    async fn serve(&mut self, b: &Bridged) -> anyhow::Result<Channel> {
        let instance = self.server.ensure_instance(b).await?;
        let ch = self.next_ch;
        self.next_ch += 1;
        let served = session::start(
            &self.server,
            b,
            instance,
            ch,
            &self.core,
            self.spill_dir.clone(),
            self.uplink.clone(),
            self.ended_tx.clone(),
        )
        .await?;
        info!(ch, session = %b.line.name, instance = %served.open.instance, "serving");
        self.served.insert(ch, served);
        Ok(ch)
    }

    /// Waits until no control client of ours is leaving the server: every
    /// session that was stopped or whose client exited is ended here (the
    /// relay hears why), and `ended`'s `list-sessions` runs after the last
    /// exit. tmux before 3.7 dereferences a control client's state that
    /// exists only once the client finished identifying itself: a
    /// notification such as `%client-detached`, sent by a client leaving
    /// while another control client attaches, kills the server (SIGSEGV in
    /// `control_write`; tmux commit e5a2a25). A leaving client's loss is
    /// handled by the server before it answers a command sent after the
    /// client's process exited, so attaching after that command is safe from
    /// our own clients; clients of other people can still coincide.
    async fn settle(&mut self) {
        let leaving: Vec<Channel> = self
            .served
            .values()
            .filter(|s| s.cancel.is_cancelled() || s.task.is_finished())
            .map(|s| s.ch)
            .collect();
        for ch in leaving {
            self.ended(ch).await;
        }
    }

    /// A session's task ended: tell the relay why.
    async fn ended(&mut self, ch: Channel) {
        let Some(s) = self.served.remove(&ch) else {
            return;
        };
        let _ = s.task.await;
        let reason = match self.server.list().await {
            Ok(Some(l)) if l.server_pid == Some(s.server_pid) => {
                match l.find(&s.open.tmux_session) {
                    Some(b) if b.line.instance == s.open.instance => CloseReason::Stopping,
                    _ => CloseReason::Killed,
                }
            }
            Ok(Some(_)) | Ok(None) => CloseReason::ServerExited,
            Err(err) => {
                warn!("listing tmux sessions: {err:#}");
                CloseReason::ServerExited
            }
        };
        info!(ch, session = %s.open.tmux_session, ?reason, "stopped serving");
        let _ = self.uplink.send(ToUplink::Close { ch, reason }).await;
        // Serve it again (a control client that died under a live session)
        // or restore the watcher, once the server is quiet.
        self.rescan_when_quiet();
    }

    /// One command from the relay, answered exactly once.
    async fn command(&mut self, id: String, op: CommandOp) {
        let result = match self.memory.get(&id) {
            Some(r) => {
                debug!(%id, "a repeated command: the same answer");
                r.clone()
            }
            None => {
                let r = match op {
                    CommandOp::CreateSession {
                        idea,
                        slot,
                        cwd,
                        command,
                    } => {
                        self.create(&idea, &slot, cwd.as_deref(), command.as_deref())
                            .await
                    }
                    CommandOp::KillSession {
                        idea,
                        slot,
                        instance,
                    } => self.kill(&idea, &slot, &instance).await,
                    CommandOp::StartJob(spec) => self.start_job(spec).await,
                    CommandOp::CancelJob { job, grace_ms } => {
                        let grace = Duration::from_millis(grace_ms).min(MAX_CANCEL_GRACE);
                        self.jobs
                            .cancel(&self.server, &job, grace)
                            .await
                            .map(|()| None)
                    }
                    other => Err(error(
                        "unsupported",
                        format!("this runner does not take {other:?}"),
                    )),
                };
                self.memory.put(id.clone(), r.clone());
                r
            }
        };
        let _ = self.uplink.send(ToUplink::Result { id, result }).await;
    }

    async fn create(
        &mut self,
        idea: &str,
        slot: &str,
        cwd: Option<&str>,
        command: Option<&str>,
    ) -> CommandResult {
        let name =
            naming::session_name(idea, slot).map_err(|e| error("invalid_name", e.to_string()))?;
        self.settle().await;
        if let Some(s) = self.serving(name.as_str()) {
            return Ok(Some(s.ch));
        }
        if let Some(dir) = cwd
            && !std::path::Path::new(dir).is_dir()
        {
            return Err(error(
                "invalid_cwd",
                format!("{dir} is not a directory on this machine"),
            ));
        }
        let created = self
            .server
            .create(idea, slot, self.initial_size, cwd, command)
            .await
            .map_err(|e| error("tmux", format!("{e:#}")))?;
        let listing = self
            .server
            .list()
            .await
            .map_err(|e| error("tmux", format!("{e:#}")))?;
        let Some(b) = listing.as_ref().and_then(|l| l.find(name.as_str())) else {
            return Err(error(
                "tmux",
                format!("session {name} ended as soon as it started"),
            ));
        };
        let ch = self
            .serve(b)
            .await
            .map_err(|e| error("tmux", format!("{e:#}")))?;
        info!(session = %name, created, ch, "create_session");
        Ok(Some(ch))
    }

    /// Runs a job in a new window of its idea's session (created and
    /// served first if needed); reports it running.
    async fn start_job(&mut self, spec: JobSpec) -> CommandResult {
        spec.validate().map_err(|e| error("invalid_job", e))?;
        // Started before (the relay did not hear the answer): the same
        // job, not a second window.
        if let Some(report) = self.jobs.known(&spec.job) {
            let ch = report.ch;
            let _ = self.uplink.send(ToUplink::Job(report)).await;
            return Ok(ch);
        }
        // An agent whose program is missing is refused before any window.
        let path = std::env::var_os("PATH");
        let spec = crate::daemon::agents::resolve(spec, &self.agents, path.as_deref())?;
        let ch = self
            .create(&spec.idea, &spec.slot, None, None)
            .await?
            .ok_or_else(|| error("tmux", "the job's session has no channel"))?;
        let name = naming::session_name(&spec.idea, &spec.slot)
            .map_err(|e| error("invalid_name", e.to_string()))?;
        let target = format!("={}:", name.as_str());
        let report = self.jobs.start(&self.server, &spec, &target, ch).await?;
        let _ = self.uplink.send(ToUplink::Job(report)).await;
        Ok(Some(ch))
    }

    /// Lists the job panes; the relay hears of every change.
    async fn poll_jobs(&mut self) {
        for report in self.jobs.poll(&self.server).await {
            let _ = self.uplink.send(ToUplink::Job(report)).await;
        }
    }

    async fn kill(&mut self, idea: &str, slot: &str, instance: &str) -> CommandResult {
        let name =
            naming::session_name(idea, slot).map_err(|e| error("invalid_name", e.to_string()))?;
        let killed = self
            .server
            .kill(name.as_str(), Some(instance))
            .await
            .map_err(|e| error("tmux", format!("{e:#}")))?;
        let ch = self
            .served
            .values()
            .find(|s| s.open.tmux_session == name.as_str() && s.open.instance == instance)
            .map(|s| s.ch);
        if let Some(s) = ch.and_then(|ch| self.served.remove(&ch)) {
            // Its control client exits with the session: let the core send
            // its last frames, then `close` before the result.
            let mut task = s.task;
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                s.cancel.cancel();
                let _ = task.await;
            }
            let _ = self
                .uplink
                .send(ToUplink::Close {
                    ch: s.ch,
                    reason: CloseReason::Killed,
                })
                .await;
        }
        info!(session = %name, killed, "kill_session");
        Ok(None)
    }
}
