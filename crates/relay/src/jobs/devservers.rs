//! Dev servers (issue 12): jobs of kind `devserver`, and the events the
//! relay derives from their reports: `port-detected` (a port number that
//! was not in the previous report), `port-closed` (one missing from the
//! next report, and every port when the process ends) and
//! `process-exited` (with the exit code or signal).
//!
//! [`derive`] and [`step`] are pure (no I/O, no clock): they compare two
//! consecutive states of a dev server. [`changed`] stores what they find
//! and pushes each event to the account's pages as a `devserver`
//! Server-Sent Event. Starting, listing and stopping go through the jobs
//! machinery (`crate::jobs`): a dev server is created, dispatched,
//! rate-limited and cancelled exactly like a job. This module does not
//! detect ports (the runner does) nor serve previews (the preview route
//! does); it only names the preview path, [`preview_url`].

use std::collections::BTreeMap;

use protocol::runner::{DetectedPort, JobKind, PortSource};
use serde_json::{Value, json};
use store::{DevserverEventRecord, JobRecord, NewDevserverEvent};
use tracing::{debug, warn};

use super::lifecycle::job_json;
use crate::auth::now_ms;
use crate::notify::Notice;
use crate::state::AppState;

pub const PORT_DETECTED: &str = "port-detected";
pub const PORT_CLOSED: &str = "port-closed";
pub const PROCESS_EXITED: &str = "process-exited";

/// Events shown with a dev server (its newest).
pub const EVENTS_SHOWN: u32 = 50;

/// What happened to a dev server between two of its states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevEvent {
    /// A port number it did not listen on before.
    PortDetected {
        port: u16,
        addr: String,
        source: PortSource,
    },
    /// A port number it listened on before and no longer does.
    PortClosed { port: u16 },
    /// Its process ended (both `None`: the runner knows no status, as when
    /// its window was closed in tmux or the runner lost it).
    ProcessExited {
        exit_code: Option<i32>,
        signal: Option<i32>,
    },
}

/// How a process ended, for [`derive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

/// The ports by number: a server listening on `127.0.0.1` and `::1` with
/// one port has one preview. Of several entries for a number, a listening
/// socket is preferred to a printed URL, then the smallest address.
fn by_number(ports: &[DetectedPort]) -> BTreeMap<u16, &DetectedPort> {
    let mut out: BTreeMap<u16, &DetectedPort> = BTreeMap::new();
    for p in ports {
        out.entry(p.port)
            .and_modify(|have| {
                if (p.source, &p.addr) < (have.source, &have.addr) {
                    *have = p;
                }
            })
            .or_insert(p);
    }
    out
}

/// The events between a report with `old` ports and the next with `new`
/// ports; `exit` when the process ended in between (then every port it
/// had is closed, whatever `new` says). Order: closed ports, detected
/// ports (each by number), then the exit.
pub fn derive(old: &[DetectedPort], new: &[DetectedPort], exit: Option<Exit>) -> Vec<DevEvent> {
    let old = by_number(old);
    let new = if exit.is_some() {
        BTreeMap::new()
    } else {
        by_number(new)
    };
    let mut out: Vec<DevEvent> = old
        .keys()
        .filter(|p| !new.contains_key(p))
        .map(|&port| DevEvent::PortClosed { port })
        .collect();
    out.extend(
        new.iter()
            .filter(|(p, _)| !old.contains_key(p))
            .map(|(&port, d)| DevEvent::PortDetected {
                port,
                addr: d.addr.clone(),
                source: d.source,
            }),
    );
    if let Some(e) = exit {
        out.push(DevEvent::ProcessExited {
            exit_code: e.exit_code,
            signal: e.signal,
        });
    }
    out
}

/// A job's stored ports (a JSON array of `DetectedPort`; anything else
/// reads as none).
pub fn ports_of(job: &JobRecord) -> Vec<DetectedPort> {
    serde_json::from_str(&job.ports).unwrap_or_default()
}

/// The events between two states of the same dev server as stored
/// (before and after a report, or after the runner lost it). Its process
/// ended when `after` has an end time `before` had not, and it had
/// started: a dev server cancelled while queued, or refused by its
/// runner, never ran, so nothing exited. Not a dev server: none.
pub fn step(before: &JobRecord, after: &JobRecord) -> Vec<DevEvent> {
    if after.kind != JobKind::Devserver.as_str() {
        return Vec::new();
    }
    let exit =
        (before.ended_at.is_none() && after.ended_at.is_some() && after.started_at.is_some())
            .then_some(Exit {
                exit_code: after.exit_code,
                signal: after.signal,
            });
    derive(&ports_of(before), &ports_of(after), exit)
}

/// The app-origin path that previews `port` of dev server `job` (the
/// preview route redirects its owner to the preview origin).
pub fn preview_url(job: &str, port: u16) -> String {
    format!("/preview/{job}/{port}")
}

fn stored(e: &DevEvent) -> NewDevserverEvent {
    let blank = |kind: &str| NewDevserverEvent {
        kind: kind.to_owned(),
        port: None,
        addr: None,
        source: None,
        exit_code: None,
        signal: None,
    };
    match e {
        DevEvent::PortDetected { port, addr, source } => NewDevserverEvent {
            port: Some(*port),
            addr: Some(addr.clone()),
            source: Some(
                match source {
                    PortSource::Socket => "socket",
                    PortSource::Output => "output",
                }
                .to_owned(),
            ),
            ..blank(PORT_DETECTED)
        },
        DevEvent::PortClosed { port } => NewDevserverEvent {
            port: Some(*port),
            ..blank(PORT_CLOSED)
        },
        DevEvent::ProcessExited { exit_code, signal } => NewDevserverEvent {
            exit_code: *exit_code,
            signal: *signal,
            ..blank(PROCESS_EXITED)
        },
    }
}

/// A stored event as the page reads it (§5 `DevserverEvent`): the fields
/// of its kind, and for a detected port the `url` that previews it.
pub fn event_json(job: &JobRecord, e: &DevserverEventRecord) -> Value {
    let mut v = json!({
        "id": e.id.to_string(),
        "job": e.job_id,
        "idea": job.idea,
        "kind": e.kind,
        "at": e.at,
    });
    if let Some(map) = v.as_object_mut() {
        if let Some(port) = e.port.and_then(|p| u16::try_from(p).ok()) {
            map.insert("port".into(), json!(port));
            if e.kind == PORT_DETECTED {
                map.insert("url".into(), json!(preview_url(&e.job_id, port)));
            }
        }
        for (k, val) in [("addr", &e.addr), ("source", &e.source)] {
            if let Some(val) = val {
                map.insert(k.into(), json!(val));
            }
        }
        if e.kind == PROCESS_EXITED {
            map.insert("exit_code".into(), json!(e.exit_code));
            map.insert("signal".into(), json!(e.signal));
        }
    }
    v
}

/// The dev server as the page reads it (§5 `Devserver`): the job, each
/// port with the `url` that previews it, and its newest events.
pub fn devserver_json(job: &JobRecord, events: &[DevserverEventRecord]) -> Value {
    let mut v = job_json(job);
    let ports: Vec<Value> = ports_of(job)
        .iter()
        .map(|p| {
            json!({
                "port": p.port,
                "addr": p.addr,
                "source": p.source,
                "url": preview_url(&job.id, p.port),
            })
        })
        .collect();
    let events: Vec<Value> = events.iter().map(|e| event_json(job, e)).collect();
    if let Some(map) = v.as_object_mut() {
        map.insert("ports".into(), json!(ports));
        map.insert("events".into(), json!(events));
    }
    v
}

/// Stores the events between `before` and `after` (two states of one
/// job; nothing for other kinds) and sends each to the account's pages.
/// A store failure is logged, never fatal to the report that caused it.
pub async fn changed(st: &AppState, before: &JobRecord, after: &JobRecord) {
    let events = step(before, after);
    if events.is_empty() {
        return;
    }
    let new: Vec<NewDevserverEvent> = events.iter().map(stored).collect();
    match st
        .store
        .add_devserver_events(&after.id, now_ms(), &new)
        .await
    {
        Ok(recs) => {
            for r in &recs {
                debug!(job = %after.id, kind = %r.kind, port = ?r.port, "dev server event");
                st.notifier
                    .send(&after.user_id, Notice::Devserver(event_json(after, r)));
            }
        }
        Err(e) => warn!(job = %after.id, error = %e, "storing dev server events failed"),
    }
}

#[cfg(test)]
mod tests;
