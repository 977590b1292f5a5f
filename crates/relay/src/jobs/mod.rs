//! Jobs (issue 11): commands the page runs on the account's runners, each
//! in a tmux window of its idea's session, with their states and logs
//! (docs/protocol.md §4.6 and §5).
//!
//! - [`lifecycle`]: the states and how reports move them (pure).
//! - [`devservers`]: a dev server's events, derived from its consecutive
//!   states (issue 12).
//! - [`agents`]: agents (jobs of kind `agent`) and idle watching.
//! - this module: creating a job (checked, rate-limited, stored as
//!   `queued`), dispatching queued jobs to a runner (the named one, else
//!   the one serving the idea's session, else the least busy online one),
//!   the runner's reports, inventories and log chunks, cancelling, and
//!   what happens when a runner goes away.
//!
//! Every change is stored first, then pushed to the account's pages as a
//! `job` event. Read-modify-write of a job happens under one lock, so a
//! report and a cancel never overwrite each other's fields. Jobs live in
//! the store: a relay restart loses none, and queued ones are dispatched
//! when their runner connects.

pub mod agents;
pub mod devservers;
pub mod lifecycle;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use protocol::runner::{
    CommandOp, FEATURE_JOBS, JobKind, JobPhase, JobReport, JobSpec, LogChunk, job::MAX_LOG_CHUNK,
};
use store::{JobRecord, TerminalSessionId};
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use crate::auth::limits::{LimitConfig, RetryAfter};
use crate::auth::now_ms;
use crate::auth::{Limit, LimitError, SharedRates};
use crate::notify::Notice;
use crate::runners::CommandError;
use crate::state::AppState;
use lifecycle::{CANCELLED, FAILED, LOST, QUEUED, RUNNING, STARTING, is_final, job_json};

/// Job creations per account: 10 per minute.
pub const CREATE_PER_USER: LimitConfig = LimitConfig::new(10, Duration::from_secs(60));
/// Lines `POST /api/logs/ingest` takes per runner: 1,000 per minute.
pub const INGEST_PER_RUNNER: LimitConfig = LimitConfig::new(1000, Duration::from_secs(60));
/// How long a cancelled job has after its C-c before its process group is
/// killed.
pub const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// Jobs a page lists at most.
pub const LIST_LIMIT: u32 = 200;

/// What a page asks for (`POST /api/jobs`), checked.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// A job, an agent or a dev server (issue 12).
    pub kind: JobKind,
    pub idea: String,
    pub slot: Option<String>,
    pub name: Option<String>,
    pub command: String,
    pub cwd: Option<String>,
    pub env: BTreeMap<String, String>,
    pub runner_id: Option<String>,
    /// An agent's kind, args and idle time (kind `agent` only).
    pub agent: Option<agents::JobAgent>,
}

/// Why a job could not be created or cancelled.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such runner")]
    NoRunner,
    #[error("no such job")]
    NotFound,
    #[error("too many jobs: try again in {} s", .0.secs())]
    Limited(RetryAfter),
    #[error("the job has ended already")]
    Ended,
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// The relay's jobs: the lock over their read-modify-writes and the
/// creation limiter. Shared (`Arc`) in [`AppState`].
pub struct Jobs {
    lock: Mutex<()>,
    create_limit: Limit<String>,
    /// Ingested lines per runner.
    pub ingest_limit: Limit<String>,
    /// The agents' lock and limits (issue 12).
    pub agents: agents::Agents,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs::new(None)
    }
}

impl Jobs {
    /// The jobs' state, their limits counted across relays through
    /// `shared` when given (cluster mode), else in this process.
    pub fn new(shared: Option<&SharedRates>) -> Self {
        Jobs {
            lock: Mutex::new(()),
            create_limit: Limit::new("job_create", CREATE_PER_USER, shared),
            ingest_limit: Limit::new("log_ingest", INGEST_PER_RUNNER, shared),
            agents: agents::Agents::new(shared),
        }
    }
}

impl From<LimitError> for JobError {
    fn from(e: LimitError) -> Self {
        match e {
            LimitError::Limited(retry) => JobError::Limited(retry),
            LimitError::Store(e) => JobError::Store(e),
        }
    }
}

impl Jobs {
    /// Job creations refused by the rate limit so far (`/metrics`).
    pub fn refusals(&self) -> u64 {
        self.create_limit.refused()
    }

    /// Ingest batches refused by the rate limit so far (`/metrics`).
    pub fn ingest_refusals(&self) -> u64 {
        self.ingest_limit.refused()
    }
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jobs")
    }
}

fn new_job_id() -> String {
    let bytes: [u8; 10] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("j{hex}")
}

/// The window name of a job: its `name`, else the command's first word.
fn window_name(name: Option<&str>, command: &str) -> String {
    let base = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| command.split_whitespace().next().unwrap_or("job"));
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(protocol::runner::job::MAX_JOB_NAME / 4)
        .collect();
    if clean.is_empty() {
        "job".into()
    } else {
        clean
    }
}

fn notify(st: &AppState, job: &JobRecord) {
    st.notifier.send(&job.user_id, Notice::Job(job_json(job)));
    agents::job_changed(st, job);
}

/// The spec a runner gets for `job`.
fn spec_of(job: &JobRecord) -> JobSpec {
    JobSpec {
        job: job.id.clone(),
        kind: JobKind::parse(&job.kind).unwrap_or_default(),
        idea: job.idea.clone(),
        slot: job.slot.clone(),
        name: job.name.clone(),
        command: job.command.clone(),
        cwd: job.cwd.clone(),
        env: serde_json::from_str(&job.env).unwrap_or_default(),
        agent: None,
    }
}

/// Checks and stores a new job as `queued`, then dispatches.
pub async fn create(st: &AppState, user_id: &str, req: NewJob) -> Result<JobRecord, JobError> {
    let slot = req
        .slot
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "primary".to_owned());
    tmux_cc::naming::session_name(&req.idea, &slot)
        .map_err(|e| JobError::Invalid(e.to_string()))?;
    if req.idea.chars().chain(slot.chars()).any(char::is_control) {
        return Err(JobError::Invalid(
            "idea and slot must not contain control characters".into(),
        ));
    }
    let id = new_job_id();
    let spec = JobSpec {
        job: id.clone(),
        kind: req.kind,
        idea: req.idea.clone(),
        slot: slot.clone(),
        name: window_name(req.name.as_deref(), &req.command),
        command: req.command.clone(),
        cwd: req.cwd.clone().filter(|c| !c.is_empty()),
        env: req.env.clone(),
        agent: req.agent.as_ref().map(|a| a.spec.clone()),
    };
    spec.validate().map_err(JobError::Invalid)?;
    if let Some(r) = &req.runner_id {
        match st.store.runner(r).await? {
            Some(r) if r.user_id == user_id && r.revoked_at.is_none() => {}
            _ => return Err(JobError::NoRunner),
        }
    }
    st.jobs
        .create_limit
        .try_acquire(&user_id.to_owned())
        .await?;
    let job = JobRecord {
        id,
        user_id: user_id.to_owned(),
        kind: spec.kind.as_str().to_owned(),
        idea: spec.idea,
        slot: spec.slot,
        name: spec.name,
        command: spec.command,
        cwd: spec.cwd,
        env: serde_json::to_string(&spec.env).unwrap_or_else(|_| "{}".into()),
        want_runner_id: req.runner_id,
        runner_id: None,
        state: QUEUED.into(),
        exit_code: None,
        signal: None,
        error: None,
        session_id: None,
        pane: None,
        cancel_requested: false,
        log_bytes: 0,
        created_at: now_ms(),
        started_at: None,
        ended_at: None,
        ports: "[]".into(),
    };
    st.store.insert_job(&job).await?;
    if let Some(a) = &req.agent {
        agents::insert(st, &job, a).await?;
    }
    info!(job = %job.id, idea = %job.idea, "job created");
    notify(st, &job);
    spawn_dispatch(st, user_id);
    Ok(job)
}

/// Dispatches `user_id`'s queued jobs in the background.
pub fn spawn_dispatch(st: &AppState, user_id: &str) {
    let st2 = st.clone();
    let user = user_id.to_owned();
    st.tracker.spawn(async move {
        if let Err(e) = dispatch(&st2, &user).await {
            warn!(user = %user, error = %e, "dispatching jobs failed");
        }
    });
}

/// Online runners of `user_id` that take jobs.
fn job_runners(st: &AppState, user_id: &str) -> Vec<String> {
    st.runners
        .online_of_user(user_id)
        .into_iter()
        .filter(|r| {
            st.runners
                .details(r)
                .is_some_and(|d| d.features.iter().any(|f| f == FEATURE_JOBS))
        })
        .collect()
}

/// Sends every queued job of `user_id` that has a runner to its runner,
/// oldest first. A job whose runner is offline stays queued.
pub async fn dispatch(st: &AppState, user_id: &str) -> Result<(), JobError> {
    let online = job_runners(st, user_id);
    if online.is_empty() {
        return Ok(());
    }
    let mut picked: Vec<(JobRecord, String)> = Vec::new();
    {
        let _g = st.jobs.lock.lock().await;
        let queued = st
            .store
            .jobs_in_states(Some(user_id), None, &[QUEUED])
            .await?;
        if queued.is_empty() {
            return Ok(());
        }
        let sessions = st.store.sessions_for_user(user_id).await?;
        let mut load: HashMap<String, usize> = HashMap::new();
        for j in st
            .store
            .jobs_in_states(Some(user_id), None, &[STARTING, RUNNING])
            .await?
        {
            if let Some(r) = j.runner_id {
                *load.entry(r).or_default() += 1;
            }
        }
        for mut job in queued {
            let runner = match &job.want_runner_id {
                Some(r) if online.contains(r) => Some(r.clone()),
                Some(_) => None,
                None => sessions
                    .iter()
                    .filter(|s| s.idea == job.idea && s.closed_at.is_none())
                    .map(|s| &s.runner_id)
                    .find(|r| online.contains(r))
                    .cloned()
                    .or_else(|| {
                        online
                            .iter()
                            .min_by_key(|r| load.get(*r).copied().unwrap_or(0))
                            .cloned()
                    }),
            };
            let Some(runner) = runner else { continue };
            // Another relay of a cluster may dispatch it at the same time,
            // to a runner of its own: the store says which of us does.
            if !st
                .store
                .claim_job(&job.id, &runner, QUEUED, STARTING)
                .await?
            {
                continue;
            }
            *load.entry(runner.clone()).or_default() += 1;
            job.state = STARTING.into();
            job.runner_id = Some(runner.clone());
            notify(st, &job);
            picked.push((job, runner));
        }
    }
    for (job, runner) in picked {
        let reply = st
            .runners
            .command(
                &runner,
                CommandOp::StartJob(agents::with_agent(st, spec_of(&job)).await),
                st.command_timeout,
            )
            .await;
        let _g = st.jobs.lock.lock().await;
        let Some(mut job) = st.store.job(&job.id).await? else {
            continue;
        };
        match reply {
            Ok(r) if r.ok => {
                if let Some(s) = r.session_id {
                    job.session_id = Some(s);
                }
                if job.state == STARTING {
                    job.state = RUNNING.into();
                    job.started_at.get_or_insert_with(now_ms);
                }
            }
            Ok(r) => {
                let why = r
                    .error
                    .map(|e| e.message)
                    .unwrap_or_else(|| "the runner refused the job".into());
                info!(job = %job.id, %why, "runner refused a job");
                job.state = FAILED.into();
                job.error = Some(why);
                job.ended_at = Some(now_ms());
            }
            // Never sent: it waits for a runner again.
            Err(CommandError::Offline) if job.state == STARTING => {
                job.state = QUEUED.into();
                job.runner_id = None;
            }
            // Sent, unanswered: the runner's inventory after it
            // reconnects (or its next report) says whether it started.
            Err(e) => {
                debug!(job = %job.id, error = %e, "start_job got no answer");
            }
        }
        st.store.update_job(&job).await?;
        notify(st, &job);
    }
    Ok(())
}

/// A runner's report on one of its jobs; `session` is the terminal session
/// of the report's channel on that connection.
pub async fn on_report(
    st: &AppState,
    runner_id: &str,
    user_id: &str,
    report: &JobReport,
    session: Option<TerminalSessionId>,
) -> Result<(), JobError> {
    let _g = st.jobs.lock.lock().await;
    let Some(mut job) = st.store.job(&report.job).await? else {
        debug!(job = %report.job, "a report on an unknown job");
        return Ok(());
    };
    if job.user_id != user_id || job.runner_id.as_deref().is_some_and(|r| r != runner_id) {
        warn!(job = %report.job, "a report on a job of another runner or account; ignored");
        return Ok(());
    }
    let before = job.clone();
    job.runner_id = Some(runner_id.to_owned());
    if lifecycle::apply_report(&mut job, report, session, now_ms()) {
        st.store.update_job(&job).await?;
        notify(st, &job);
        devservers::changed(st, &before, &job).await;
    }
    Ok(())
}

/// A runner's full list of jobs after it connected: each report applied;
/// its starting jobs it does not know go back to the queue, its running
/// ones are lost; a job cancelled while the runner was away is cancelled
/// now; then queued jobs are dispatched.
pub async fn on_inventory(
    st: &AppState,
    runner_id: &str,
    user_id: &str,
    reports: &[JobReport],
    sessions: &HashMap<u32, TerminalSessionId>,
) -> Result<(), JobError> {
    for r in reports {
        let session = r.ch.and_then(|c| sessions.get(&c).copied());
        on_report(st, runner_id, user_id, r, session).await?;
    }
    let mut cancel = Vec::new();
    {
        let _g = st.jobs.lock.lock().await;
        for mut job in st
            .store
            .jobs_in_states(None, Some(runner_id), &[STARTING, RUNNING, LOST])
            .await?
        {
            let known = reports.iter().find(|r| r.job == job.id);
            match known {
                Some(r) if r.phase == JobPhase::Running && job.cancel_requested => {
                    cancel.push(job.id.clone());
                }
                Some(_) => {}
                None if job.state == STARTING => {
                    job.state = QUEUED.into();
                    job.runner_id = None;
                    st.store.update_job(&job).await?;
                    notify(st, &job);
                }
                None => {
                    let before = job.clone();
                    job.state = LOST.into();
                    job.error = Some("the runner no longer knows this job".into());
                    job.ended_at.get_or_insert_with(now_ms);
                    st.store.update_job(&job).await?;
                    notify(st, &job);
                    devservers::changed(st, &before, &job).await;
                }
            }
        }
    }
    for id in cancel {
        send_cancel(st, runner_id, &id);
    }
    dispatch(st, user_id).await
}

/// The runner's connection ended: its running jobs are lost until it
/// comes back and reports them.
pub async fn on_runner_gone(st: &AppState, runner_id: &str) -> Result<(), JobError> {
    let _g = st.jobs.lock.lock().await;
    for mut job in st
        .store
        .jobs_in_states(None, Some(runner_id), &[RUNNING])
        .await?
    {
        job.state = LOST.into();
        job.error = Some("the runner went offline".into());
        st.store.update_job(&job).await?;
        notify(st, &job);
    }
    Ok(())
}

fn send_cancel(st: &AppState, runner_id: &str, job: &str) {
    let st2 = st.clone();
    let runner = runner_id.to_owned();
    let op = CommandOp::CancelJob {
        job: job.to_owned(),
        grace_ms: u64::try_from(CANCEL_GRACE.as_millis()).unwrap_or(u64::MAX),
    };
    let job = job.to_owned();
    st.tracker.spawn(async move {
        match crate::cluster::routing::command(&st2, &runner, op, st2.command_timeout).await {
            Ok(r) if r.ok => debug!(%job, "cancel sent"),
            Ok(r) => warn!(%job, error = ?r.error, "the runner refused a cancel"),
            Err(e) => debug!(%job, error = %e, "cancel not delivered"),
        }
    });
}

/// Cancels a job of `user_id`: a queued one at once; a started one gets
/// C-c, then its process group is killed after [`CANCEL_GRACE`]; it is
/// `cancelled` once it ended.
pub async fn cancel(st: &AppState, user_id: &str, id: &str) -> Result<JobRecord, JobError> {
    let runner = {
        let _g = st.jobs.lock.lock().await;
        let mut job = match st.store.job(id).await? {
            Some(j) if j.user_id == user_id => j,
            _ => return Err(JobError::NotFound),
        };
        if is_final(&job.state) || job.cancel_requested {
            return Err(JobError::Ended);
        }
        job.cancel_requested = true;
        if job.state == QUEUED {
            job.state = CANCELLED.into();
            job.ended_at = Some(now_ms());
        }
        st.store.update_job(&job).await?;
        notify(st, &job);
        if job.state == CANCELLED {
            return Ok(job);
        }
        job.runner_id.clone().map(|r| (r, job))
    };
    let Some((runner, job)) = runner else {
        return Err(JobError::NotFound);
    };
    send_cancel(st, &runner, &job.id);
    Ok(job)
}

/// A log chunk from `runner_id`: stored when it continues the job's log.
/// Returns what the runner hears: the stored length, or an error code.
pub async fn on_log(
    st: &AppState,
    runner_id: &str,
    user_id: &str,
    chunk: &LogChunk,
) -> Result<u64, String> {
    let job = match st.store.job(&chunk.job).await {
        Ok(Some(j)) if j.user_id == user_id && j.runner_id.as_deref() == Some(runner_id) => j,
        Ok(_) => return Err("unknown_job".into()),
        Err(e) => {
            warn!(error = %e, "reading a job for its log failed");
            return Err("store".into());
        }
    };
    let data = protocol::codec::decompress(&chunk.data, MAX_LOG_CHUNK)
        .map_err(|e| format!("bad_log_chunk: {e}"))?;
    let have = u64::try_from(job.log_bytes).unwrap_or(0);
    let end = chunk.offset.saturating_add(data.len() as u64);
    // A chunk that overlaps the stored end (a runner that restarted cuts
    // its chunks elsewhere): its new part is stored.
    let (offset, len, bytes) = if chunk.offset < have && have < end {
        let skip = usize::try_from(have - chunk.offset).unwrap_or(usize::MAX);
        let tail = data.get(skip..).unwrap_or(&[]);
        let z = protocol::codec::compress(tail).map_err(|e| format!("store: {e}"))?;
        (have, tail.len() as u64, z)
    } else {
        (chunk.offset, data.len() as u64, chunk.data.to_vec())
    };
    let stored = st
        .store
        .append_job_log(&job.id, offset, len, &bytes)
        .await
        .map_err(|e| {
            warn!(job = %job.id, error = %e, "storing a log chunk failed");
            "store".to_owned()
        })?;
    Ok(stored)
}

/// Spawns the task that deletes finished jobs (with their logs) and
/// ingested lines older than `days`, every `interval`, until `cancel`.
pub fn spawn_log_pruner(
    store: store::Store,
    days: u32,
    interval: Duration,
    cancel: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let keep = i64::from(days) * 86_400_000;
        let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = ticks.tick() => {}
            }
            match store.prune_logs(now_ms().saturating_sub(keep)).await {
                Ok((0, 0)) => {}
                Ok((jobs, lines)) => debug!(jobs, lines, "pruned old jobs and log lines"),
                Err(e) => warn!(error = %e, "pruning old jobs failed"),
            }
        }
    })
}
