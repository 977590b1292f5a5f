//! A job's states and how the runner's reports move it (pure: no I/O, the
//! time is an argument).
//!
//! ```text
//! queued ──dispatch──▶ starting ──report running──▶ running ──exit 0──▶ succeeded
//!   │                    │  └─runner lost it─▶ queued      ├─exit≠0/signal─▶ failed
//!   └─cancel─▶ cancelled └─runner refused─▶ failed         ├─cancel requested, ended─▶ cancelled
//!                                                          ├─window closed─▶ cancelled
//!                                          runner gone ──▶ lost ──report──▶ (as running)
//! ```

use protocol::runner::{JobPhase, JobReport};
use serde_json::{Value, json};
use store::{JobRecord, Millis, TerminalSessionId};

pub const QUEUED: &str = "queued";
pub const STARTING: &str = "starting";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";
pub const CANCELLED: &str = "cancelled";
pub const LOST: &str = "lost";

/// Whether a job in `state` has ended for good.
pub fn is_final(state: &str) -> bool {
    matches!(state, SUCCEEDED | FAILED | CANCELLED)
}

/// Applies a runner's report to `job`; returns whether anything changed.
/// Reports never reopen a final state (a late report of a job cancelled
/// while queued, say); a `lost` job comes back with the runner.
pub fn apply_report(
    job: &mut JobRecord,
    report: &JobReport,
    session: Option<TerminalSessionId>,
    now: Millis,
) -> bool {
    if is_final(&job.state) {
        return false;
    }
    let before = job.clone();
    if let Some(s) = session {
        job.session_id = Some(s);
    }
    if let Some(p) = report.pane {
        job.pane = Some(p.to_string());
    }
    let started = report
        .started_at
        .and_then(|t| i64::try_from(t).ok())
        .or(job.started_at)
        .unwrap_or(now);
    job.started_at = Some(started);
    // A report carries every detected port; an ended job listens on none.
    job.ports = if report.phase == JobPhase::Running {
        serde_json::to_string(&report.ports).unwrap_or_else(|_| "[]".into())
    } else {
        "[]".into()
    };
    match report.phase {
        JobPhase::Running => {
            job.state = RUNNING.into();
            job.error = None;
        }
        JobPhase::Exited => {
            job.exit_code = report.exit_code;
            job.signal = report.signal;
            job.ended_at = Some(
                report
                    .ended_at
                    .and_then(|t| i64::try_from(t).ok())
                    .unwrap_or(now),
            );
            job.state = if job.cancel_requested {
                CANCELLED
            } else if report.exit_code == Some(0) && report.signal.is_none() {
                SUCCEEDED
            } else {
                FAILED
            }
            .into();
            if report.exit_code.is_none() && report.signal.is_none() {
                job.error = Some("tmux recorded no exit status".into());
            }
        }
        JobPhase::Vanished => {
            job.ended_at = Some(now);
            job.state = CANCELLED.into();
            job.error = Some(if job.cancel_requested {
                "cancelled".into()
            } else {
                "its window was closed in tmux".into()
            });
        }
    }
    *job != before
}

/// The job as the page reads it (§5 `Job`).
pub fn job_json(j: &JobRecord) -> Value {
    let env: Value = serde_json::from_str(&j.env).unwrap_or_else(|_| json!({}));
    let ports: Value = serde_json::from_str(&j.ports).unwrap_or_else(|_| json!([]));
    json!({
        "id": j.id,
        "kind": j.kind,
        "ports": ports,
        "idea": j.idea,
        "slot": j.slot,
        "name": j.name,
        "command": j.command,
        "cwd": j.cwd,
        "env": env,
        "state": j.state,
        "exit_code": j.exit_code,
        "signal": j.signal,
        "error": j.error,
        "runner_id": j.runner_id,
        "session_id": j.session_id.map(|s| s.to_string()),
        "pane": j.pane,
        "created_at": j.created_at,
        "started_at": j.started_at,
        "ended_at": j.ended_at,
        "log_bytes": j.log_bytes,
        "cancel_requested": j.cancel_requested,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tmux_cc::PaneId;

    fn job(state: &str) -> JobRecord {
        JobRecord {
            id: "j".into(),
            user_id: "u".into(),
            kind: "job".into(),
            idea: "i".into(),
            slot: "primary".into(),
            name: "n".into(),
            command: "true".into(),
            cwd: None,
            env: "{}".into(),
            want_runner_id: None,
            runner_id: Some("r".into()),
            state: state.into(),
            exit_code: None,
            signal: None,
            error: None,
            session_id: None,
            pane: None,
            cancel_requested: false,
            log_bytes: 0,
            created_at: 1,
            started_at: None,
            ended_at: None,
            ports: "[]".into(),
        }
    }

    fn report(phase: JobPhase, code: Option<i32>, signal: Option<i32>) -> JobReport {
        JobReport {
            job: "j".into(),
            phase,
            ch: Some(1),
            pane: Some(PaneId(7)),
            started_at: Some(10),
            ended_at: Some(20),
            exit_code: code,
            signal,
            ports: Vec::new(),
        }
    }

    #[test]
    fn reports_move_the_states() {
        let mut j = job(STARTING);
        assert!(apply_report(
            &mut j,
            &report(JobPhase::Running, None, None),
            Some(5),
            99
        ));
        assert_eq!(
            (j.state.as_str(), j.pane.as_deref(), j.session_id),
            (RUNNING, Some("%7"), Some(5))
        );
        assert!(!apply_report(
            &mut j,
            &report(JobPhase::Running, None, None),
            Some(5),
            99
        ));

        let mut ok = j.clone();
        assert!(apply_report(
            &mut ok,
            &report(JobPhase::Exited, Some(0), None),
            None,
            99
        ));
        assert_eq!(ok.state, SUCCEEDED);

        let mut three = j.clone();
        apply_report(
            &mut three,
            &report(JobPhase::Exited, Some(3), None),
            None,
            99,
        );
        assert_eq!(
            (three.state.as_str(), three.exit_code, three.ended_at),
            (FAILED, Some(3), Some(20))
        );

        let mut killed = j.clone();
        apply_report(
            &mut killed,
            &report(JobPhase::Exited, None, Some(9)),
            None,
            99,
        );
        assert_eq!((killed.state.as_str(), killed.signal), (FAILED, Some(9)));

        let mut asked = j.clone();
        asked.cancel_requested = true;
        apply_report(
            &mut asked,
            &report(JobPhase::Exited, None, Some(2)),
            None,
            99,
        );
        assert_eq!(asked.state, CANCELLED);

        let mut closed = j.clone();
        apply_report(
            &mut closed,
            &report(JobPhase::Vanished, None, None),
            None,
            99,
        );
        assert_eq!(closed.state, CANCELLED);
        assert!(closed.error.is_some());

        let mut lost = job(LOST);
        assert!(apply_report(
            &mut lost,
            &report(JobPhase::Running, None, None),
            None,
            99
        ));
        assert_eq!(lost.state, RUNNING);

        // A final state stays.
        let mut done = job(CANCELLED);
        assert!(!apply_report(
            &mut done,
            &report(JobPhase::Running, None, None),
            None,
            99
        ));
        assert_eq!(done.state, CANCELLED);
    }
}
