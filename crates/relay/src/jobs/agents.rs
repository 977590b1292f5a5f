//! Agents (issue 12): a coding agent is a job of kind `agent` plus an
//! agent kind and arguments, an idle time, and a state derived from its
//! job's state and its pane's activity; and any pane can be watched for
//! idleness (docs/protocol.md §4.7, §5).
//!
//! - [`derive`]: the agent state of a job and an idle flag (pure).
//! - [`create`]: checks an agent request and creates its job (the agent row
//!   is stored with the job, before any dispatch, by `jobs::create`).
//! - [`refresh`]: after every change of its job or its pane's activity,
//!   the agent's state is derived again; a new state is stored with its
//!   time and pushed as an `agent` event. An agent that starts running
//!   gets its pane watched on the runner; one that ended, unwatched.
//! - [`on_activity`]: a runner's `activity` for a pane: the agents running
//!   there and the pane's watch.
//! - [`on_session_opened`]: after every `opened`, the session's watches
//!   are sent again (the runner keeps none across restarts).
//!
//! Refreshes are serialized by one lock and read the newest job and agent
//! rows each time, so their order does not matter. This module does not
//! parse HTTP (`http/agents.rs` does) and never talks to tmux.

use std::time::Duration;

use protocol::runner::agent::{DEFAULT_IDLE_MS, MAX_IDLE_MS, MIN_IDLE_MS, valid_idle_ms};
use protocol::runner::{AgentKind, AgentSpec, FEATURE_WATCH, JobKind, JobSpec, RelayMsg};
use serde_json::{Value, json};
use store::{AgentRecord, JobRecord, Millis, PaneWatch, StoreError, TerminalSessionId};
use tmux_cc::PaneId;
use tokio::sync::Mutex;
use tracing::{debug, warn};

use super::lifecycle::{CANCELLED, FAILED, LOST, QUEUED, RUNNING, STARTING, SUCCEEDED};
use super::{JobError, NewJob};
use crate::auth::limits::LimitConfig;
use crate::auth::now_ms;
use crate::auth::{Limit, SharedRates};
use crate::notify::Notice;
use crate::state::AppState;

pub const A_STARTING: &str = "starting";
pub const A_RUNNING: &str = "running";
pub const A_IDLE: &str = "idle";
pub const A_STOPPED: &str = "stopped";
pub const A_ERRORED: &str = "errored";

/// Watch and settings changes per account: 60 per minute.
pub const CHANGES_PER_USER: LimitConfig = LimitConfig::new(60, Duration::from_secs(60));

/// The agents' lock and the limiter of watch and setting changes.
pub struct Agents {
    lock: Mutex<()>,
    /// `POST …/watch` and `PUT /api/settings` per account.
    pub change_limit: Limit<String>,
}

impl Default for Agents {
    fn default() -> Self {
        Agents::new(None)
    }
}

impl Agents {
    /// The agents' state, the change limit counted across relays through
    /// `shared` when given.
    pub fn new(shared: Option<&SharedRates>) -> Self {
        Agents {
            lock: Mutex::new(()),
            change_limit: Limit::new("agent_change", CHANGES_PER_USER, shared),
        }
    }
}

/// The agent state of a job in `job_state` (with its exit status and
/// error) whose pane is `idle` or not:
///
/// ```text
/// queued, starting ─▶ starting
/// running ─▶ running, or idle while its pane is idle
/// succeeded, cancelled, failed with an exit code or signal ─▶ stopped
/// failed without one (not installed, start refused), lost ─▶ errored
/// ```
pub fn derive(
    job_state: &str,
    exit_code: Option<i32>,
    signal: Option<i32>,
    idle: bool,
) -> &'static str {
    match job_state {
        QUEUED | STARTING => A_STARTING,
        RUNNING if idle => A_IDLE,
        RUNNING => A_RUNNING,
        SUCCEEDED | CANCELLED => A_STOPPED,
        FAILED if exit_code.is_some() || signal.is_some() => A_STOPPED,
        FAILED | LOST => A_ERRORED,
        _ => A_ERRORED,
    }
}

fn is_live(state: &str) -> bool {
    state == A_RUNNING || state == A_IDLE
}

/// Whether `ms` is an idle time the API takes.
pub fn check_idle_ms(ms: u64) -> Result<u64, JobError> {
    if valid_idle_ms(ms) {
        Ok(ms)
    } else {
        Err(JobError::Invalid(format!(
            "idle_ms must be {MIN_IDLE_MS} to {MAX_IDLE_MS}"
        )))
    }
}

/// What a page asks for (`POST /api/agents`), not yet checked.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub idea: String,
    pub kind: String,
    pub args: Vec<String>,
    /// `custom` only: the command to run.
    pub command: Option<String>,
    pub slot: Option<String>,
    pub name: Option<String>,
    pub cwd: Option<String>,
    pub idle_ms: Option<u64>,
    pub runner_id: Option<String>,
}

/// The agent part of a [`NewJob`], stored with the job.
#[derive(Debug, Clone)]
pub struct JobAgent {
    pub spec: AgentSpec,
    pub idle_ms: Option<u64>,
}

/// Checks `req` and creates the agent's job (queued, then dispatched).
pub async fn create(st: &AppState, user_id: &str, req: NewAgent) -> Result<JobRecord, JobError> {
    let kind = AgentKind::parse(&req.kind)
        .ok_or_else(|| JobError::Invalid("kind is claude-code, codex, cursor or custom".into()))?;
    let command = req.command.unwrap_or_default();
    match (kind, command.trim().is_empty()) {
        (AgentKind::Custom, true) => {
            return Err(JobError::Invalid("a custom agent needs a command".into()));
        }
        (k, false) if k.is_builtin() => {
            return Err(JobError::Invalid(format!(
                "kind {} takes no command (its runner's config names it); give args",
                k.as_str()
            )));
        }
        _ => {}
    }
    let idle_ms = req.idle_ms.map(check_idle_ms).transpose()?;
    let spec = AgentSpec {
        kind,
        args: req.args,
    };
    spec.validate().map_err(JobError::Invalid)?;
    let name = req
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| kind.as_str().to_owned());
    super::create(
        st,
        user_id,
        NewJob {
            kind: JobKind::Agent,
            idea: req.idea,
            slot: req.slot,
            name: Some(name),
            command: if kind.is_builtin() {
                String::new()
            } else {
                command
            },
            cwd: req.cwd,
            env: Default::default(),
            runner_id: req.runner_id,
            agent: Some(JobAgent { spec, idle_ms }),
        },
    )
    .await
}

/// Stores the agent row of a new agent job (called by `jobs::create`
/// before the job can be dispatched).
pub(super) async fn insert(st: &AppState, job: &JobRecord, a: &JobAgent) -> Result<(), JobError> {
    let record = AgentRecord {
        job_id: job.id.clone(),
        user_id: job.user_id.clone(),
        agent_kind: a.spec.kind.as_str().to_owned(),
        args: serde_json::to_string(&a.spec.args).unwrap_or_else(|_| "[]".into()),
        idle_ms: a.idle_ms.and_then(|m| i64::try_from(m).ok()),
        idle: false,
        state: derive(&job.state, job.exit_code, job.signal, false).to_owned(),
        state_at: job.created_at,
    };
    st.store.insert_agent(&record).await?;
    push(st, job, &record).await;
    Ok(())
}

/// `spec` with its agent part, for an agent job (dispatch).
pub(super) async fn with_agent(st: &AppState, mut spec: JobSpec) -> JobSpec {
    if spec.kind != JobKind::Agent || spec.agent.is_some() {
        return spec;
    }
    match st.store.agent(&spec.job).await {
        Ok(Some(a)) => {
            spec.agent = AgentKind::parse(&a.agent_kind).map(|kind| AgentSpec {
                kind,
                args: serde_json::from_str(&a.args).unwrap_or_default(),
            });
        }
        Ok(None) => {}
        Err(e) => warn!(job = %spec.job, error = %e, "reading an agent for its start failed"),
    }
    spec
}

/// The job of an agent changed: derive its state again (in the
/// background; the newest rows are read then).
pub(super) fn job_changed(st: &AppState, job: &JobRecord) {
    if job.kind != JobKind::Agent.as_str() {
        return;
    }
    let st2 = st.clone();
    let id = job.id.clone();
    st.tracker.spawn(async move {
        if let Err(e) = refresh(&st2, &id, None, now_ms()).await {
            warn!(job = %id, error = %e, "refreshing an agent failed");
        }
    });
}

/// The idle time of `a`: its own, else its account's, else the default.
pub async fn idle_ms_of(st: &AppState, a: &AgentRecord) -> Result<u64, StoreError> {
    if a.idle_ms.is_some() {
        return Ok(effective_idle_ms(a, None));
    }
    Ok(effective_idle_ms(
        a,
        st.store.agent_idle_ms(&a.user_id).await?,
    ))
}

/// The idle time of `a` given its account's setting `account`.
pub fn effective_idle_ms(a: &AgentRecord, account: Option<i64>) -> u64 {
    a.idle_ms
        .or(account)
        .and_then(|m| u64::try_from(m).ok())
        .unwrap_or(DEFAULT_IDLE_MS)
}

/// Derives agent `job_id`'s state from its job and, when given, its
/// pane's new activity (`idle`, at `at`); stores and pushes a change.
pub async fn refresh(
    st: &AppState,
    job_id: &str,
    idle: Option<bool>,
    at: Millis,
) -> Result<(), StoreError> {
    let _g = st.jobs.agents.lock.lock().await;
    let (Some(job), Some(agent)) = (st.store.job(job_id).await?, st.store.agent(job_id).await?)
    else {
        return Ok(());
    };
    // Activity means something only while the job runs.
    let idle_in = idle;
    let idle = job.state == RUNNING && idle.unwrap_or(agent.idle);
    let state = derive(&job.state, job.exit_code, job.signal, idle);
    // A change of the running job itself (its pane or session known now,
    // back from `lost`): watch its pane; the runner answers with its state.
    let job_change = idle_in.is_none();
    if job_change && is_live(state) {
        let now = AgentRecord {
            idle,
            state: state.to_owned(),
            ..agent.clone()
        };
        send_agent_watch(st, &job, &now).await;
    }
    if state == agent.state && idle == agent.idle {
        return Ok(());
    }
    let at = if state == agent.state {
        agent.state_at
    } else {
        at
    };
    st.store
        .set_agent_state(job_id, idle, state, &agent.state, at)
        .await?;
    debug!(job = %job_id, from = %agent.state, to = state, "agent state");
    if state != agent.state {
        let now = AgentRecord {
            idle,
            state: state.to_owned(),
            state_at: at,
            ..agent.clone()
        };
        push(st, &job, &now).await;
        if is_live(&agent.state) && !is_live(state) {
            unwatch_ended(st, &job).await?;
        }
    }
    Ok(())
}

/// An agent ended: its pane's watch on the runner goes, unless the page
/// watches that pane itself.
async fn unwatch_ended(st: &AppState, job: &JobRecord) -> Result<(), StoreError> {
    let (Some(session), Some(pane)) = (job.session_id, job.pane.as_deref()) else {
        return Ok(());
    };
    let Some(p) = PaneId::parse_bytes(pane.as_bytes()) else {
        return Ok(());
    };
    if !st
        .store
        .pane_watches(session)
        .await?
        .iter()
        .any(|w| w.pane == pane)
    {
        send_watch(st, session, p, None);
    }
    Ok(())
}

/// Sends the watch of a running agent's pane to the runner serving it.
async fn send_agent_watch(st: &AppState, job: &JobRecord, agent: &AgentRecord) {
    let (Some(session), Some(pane)) = (job.session_id, job.pane.as_deref()) else {
        return;
    };
    let Some(pane) = PaneId::parse_bytes(pane.as_bytes()) else {
        return;
    };
    match idle_ms_of(st, agent).await {
        Ok(ms) => {
            send_watch(st, session, pane, Some(ms));
        }
        Err(e) => warn!(job = %job.id, error = %e, "reading an idle time failed"),
    }
}

/// Queues `watch` for the runner serving `session` (if it is online and
/// takes watches); `false` when it could not be queued.
pub fn send_watch(
    st: &AppState,
    session: TerminalSessionId,
    pane: PaneId,
    idle_ms: Option<u64>,
) -> bool {
    let Some(link) = st.hub.get(session).and_then(|h| h.runner()) else {
        return false;
    };
    if !link.features.iter().any(|f| f == FEATURE_WATCH) {
        return false;
    }
    link.tx
        .try_send(RelayMsg::Watch {
            ch: link.ch,
            pane,
            idle_ms,
        })
        .is_ok()
}

/// A runner (of `user_id`) says `pane` of `session` went idle or active at
/// `at` (its clock, clamped to the last hour of ours).
pub async fn on_activity(
    st: &AppState,
    user_id: &str,
    session: TerminalSessionId,
    pane: PaneId,
    idle: bool,
    at: u64,
) -> Result<(), StoreError> {
    let now = now_ms();
    let at = i64::try_from(at).unwrap_or(now).clamp(now - 3_600_000, now);
    let pane_s = pane.to_string();
    for (agent, p) in st.store.running_agents_in_session(session).await? {
        if p == pane_s && agent.user_id == user_id {
            refresh(st, &agent.job_id, Some(idle), at).await?;
        }
    }
    // A watched pane that closed (no longer in the session's topology) is
    // not idle: it is gone, and so is its watch.
    let closed = st
        .hub
        .get(session)
        .filter(|h| h.runner_online())
        .is_some_and(|h| !h.scope().has_pane(pane));
    if closed {
        if st.store.delete_pane_watch(session, &pane_s).await? {
            debug!(session, pane = %pane_s, "a watched pane closed: watch removed");
            send_watch(st, session, pane, None);
        }
        return Ok(());
    }
    if let Some(w) = st.store.set_pane_idle(session, &pane_s, idle, at).await?
        && w.user_id == user_id
    {
        st.notifier
            .send(user_id, Notice::PaneActivity(watch_json(st, &w).await));
    }
    Ok(())
}

/// The runner opened `session` again (reconnect, restart): its running
/// agents' panes and its watched panes are watched again.
pub async fn on_session_opened(
    st: &AppState,
    session: TerminalSessionId,
) -> Result<(), StoreError> {
    for (agent, pane) in st.store.running_agents_in_session(session).await? {
        if let Some(p) = PaneId::parse_bytes(pane.as_bytes()) {
            let ms = idle_ms_of(st, &agent).await?;
            send_watch(st, session, p, Some(ms));
        }
    }
    // The topology stored last (an empty one knows nothing yet).
    let scope = st
        .hub
        .get(session)
        .map(|h| h.scope())
        .filter(|s| *s != crate::hub::Scope::default());
    for w in st.store.pane_watches(session).await? {
        let Some(p) = PaneId::parse_bytes(w.pane.as_bytes()) else {
            continue;
        };
        // A pane that closed while the runner was away: its watch goes.
        if scope.as_ref().is_some_and(|s| !s.has_pane(p)) {
            st.store.delete_pane_watch(session, &w.pane).await?;
            continue;
        }
        if let Ok(ms) = u64::try_from(w.idle_ms) {
            send_watch(st, session, p, Some(ms));
        }
    }
    Ok(())
}

/// Watches `pane` of `session` (of `user_id`, checked by the caller) for
/// `idle_ms`, or stops with `None`; stored, then sent to the runner.
/// Returns the watch (`None` when stopped).
pub async fn watch_pane(
    st: &AppState,
    user_id: &str,
    session: TerminalSessionId,
    pane: PaneId,
    idle_ms: Option<u64>,
) -> Result<Option<PaneWatch>, JobError> {
    st.jobs
        .agents
        .change_limit
        .try_acquire(&user_id.to_owned())
        .await?;
    let pane_s = pane.to_string();
    let watch = match idle_ms {
        None => {
            st.store.delete_pane_watch(session, &pane_s).await?;
            None
        }
        Some(ms) => {
            let ms = check_idle_ms(ms)?;
            let w = PaneWatch {
                session_id: session,
                pane: pane_s.clone(),
                user_id: user_id.to_owned(),
                idle_ms: i64::try_from(ms).unwrap_or(i64::MAX),
                idle: false,
                changed_at: now_ms(),
            };
            st.store.upsert_pane_watch(&w).await?;
            st.store
                .pane_watches(session)
                .await?
                .into_iter()
                .find(|x| x.pane == pane_s)
        }
    };
    // The runner keeps one watch per pane: a page's watch taken off a
    // running agent's pane gives the pane back to the agent's idle time.
    let mut send = idle_ms;
    if send.is_none() {
        for (agent, p) in st.store.running_agents_in_session(session).await? {
            if p == pane_s {
                send = Some(idle_ms_of(st, &agent).await?);
            }
        }
    }
    send_watch(st, session, pane, send);
    Ok(watch)
}

/// A watched pane as the page reads it (§5 `PaneWatch`, the data of a
/// `pane_activity` event).
pub async fn watch_json(st: &AppState, w: &PaneWatch) -> Value {
    let (idea, slot) = match st.store.session(w.session_id).await {
        Ok(Some(s)) => (Some(s.idea), Some(s.slot)),
        _ => (None, None),
    };
    json!({
        "session_id": w.session_id.to_string(),
        "pane": w.pane,
        "idle_ms": w.idle_ms,
        "idle": w.idle,
        "at": w.changed_at,
        "idea": idea,
        "slot": slot,
    })
}

/// An agent as the page reads it (§5 `Agent`): its job's fields, with the
/// agent's kind, arguments, state and idle time.
pub fn agent_json(job: &JobRecord, a: &AgentRecord, idle_ms: u64) -> Value {
    let args: Value = serde_json::from_str(&a.args).unwrap_or_else(|_| json!([]));
    json!({
        "id": job.id,
        "idea": job.idea,
        "slot": job.slot,
        "name": job.name,
        "kind": a.agent_kind,
        "args": args,
        "command": job.command,
        "cwd": job.cwd,
        "state": a.state,
        "state_at": a.state_at,
        "idle_ms": idle_ms,
        "job_state": job.state,
        "exit_code": job.exit_code,
        "signal": job.signal,
        "error": job.error,
        "runner_id": job.runner_id,
        "session_id": job.session_id.map(|s| s.to_string()),
        "pane": job.pane,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
    })
}

async fn push(st: &AppState, job: &JobRecord, a: &AgentRecord) {
    let ms = idle_ms_of(st, a).await.unwrap_or(DEFAULT_IDLE_MS);
    st.notifier
        .send(&job.user_id, Notice::Agent(agent_json(job, a, ms)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_job_and_the_pane() {
        let cases = [
            ((QUEUED, None, None, false), A_STARTING),
            ((STARTING, None, None, true), A_STARTING),
            ((RUNNING, None, None, false), A_RUNNING),
            ((RUNNING, None, None, true), A_IDLE),
            ((SUCCEEDED, Some(0), None, true), A_STOPPED),
            ((FAILED, Some(2), None, false), A_STOPPED),
            ((FAILED, None, Some(9), false), A_STOPPED),
            ((CANCELLED, None, None, false), A_STOPPED),
            ((FAILED, None, None, false), A_ERRORED),
            ((LOST, None, None, true), A_ERRORED),
        ];
        for ((s, code, sig, idle), want) in cases {
            assert_eq!(
                derive(s, code, sig, idle),
                want,
                "{s} {code:?} {sig:?} {idle}"
            );
        }
    }

    #[test]
    fn idle_times_are_bounded() {
        assert!(check_idle_ms(1_500).is_ok());
        assert!(check_idle_ms(30_000).is_ok());
        assert!(check_idle_ms(10).is_err());
        assert!(check_idle_ms(MAX_IDLE_MS + 1).is_err());
    }
}
