//! The dev server events derived from consecutive states (pure).

use super::*;
use crate::jobs::lifecycle::{self, CANCELLED, QUEUED, RUNNING, STARTING};
use protocol::runner::{JobPhase, JobReport};

fn sock(port: u16, addr: &str) -> DetectedPort {
    DetectedPort {
        port,
        addr: addr.into(),
        source: PortSource::Socket,
    }
}

fn out(port: u16) -> DetectedPort {
    DetectedPort {
        port,
        addr: "localhost".into(),
        source: PortSource::Output,
    }
}

fn detected(port: u16, addr: &str, source: PortSource) -> DevEvent {
    DevEvent::PortDetected {
        port,
        addr: addr.into(),
        source,
    }
}

fn check(old: &[DetectedPort], new: &[DetectedPort], exit: Option<Exit>, want: &[DevEvent]) {
    assert_eq!(derive(old, new, exit), want, "{old:?} -> {new:?}, {exit:?}");
}

#[test]
fn nothing_changes_nothing_happens() {
    check(&[], &[], None, &[]);
    check(&[sock(5173, "::1")], &[sock(5173, "::1")], None, &[]);
}

#[test]
fn a_new_port_is_detected() {
    check(
        &[],
        &[sock(5173, "127.0.0.1")],
        None,
        &[detected(5173, "127.0.0.1", PortSource::Socket)],
    );
}

#[test]
fn a_missing_port_is_closed() {
    check(
        &[sock(5173, "::1"), sock(8080, "0.0.0.0")],
        &[sock(8080, "0.0.0.0")],
        None,
        &[DevEvent::PortClosed { port: 5173 }],
    );
}

#[test]
fn closed_ports_come_before_detected_ones_each_by_number() {
    check(
        &[sock(9000, "::1"), sock(3000, "::1")],
        &[sock(4001, "::1"), sock(4000, "::1")],
        None,
        &[
            DevEvent::PortClosed { port: 3000 },
            DevEvent::PortClosed { port: 9000 },
            detected(4000, "::1", PortSource::Socket),
            detected(4001, "::1", PortSource::Socket),
        ],
    );
}

#[test]
fn one_port_on_two_addresses_is_one_port() {
    // Detected once, preferring the listening socket to the printed URL
    // and then the smallest address.
    check(
        &[],
        &[out(5173), sock(5173, "::1"), sock(5173, "127.0.0.1")],
        None,
        &[detected(5173, "127.0.0.1", PortSource::Socket)],
    );
    // Losing one of its addresses, or its source changing, closes nothing.
    check(
        &[sock(5173, "::1"), sock(5173, "127.0.0.1")],
        &[out(5173)],
        None,
        &[],
    );
}

#[test]
fn a_printed_url_is_detected_with_its_source() {
    check(
        &[],
        &[out(8000)],
        None,
        &[detected(8000, "localhost", PortSource::Output)],
    );
}

#[test]
fn an_exit_closes_every_port_then_says_so() {
    let exit = Exit {
        exit_code: Some(1),
        signal: None,
    };
    check(
        &[sock(5173, "::1"), sock(8080, "::1")],
        // Whatever the last report says, an ended process listens on none.
        &[sock(5173, "::1")],
        Some(exit),
        &[
            DevEvent::PortClosed { port: 5173 },
            DevEvent::PortClosed { port: 8080 },
            DevEvent::ProcessExited {
                exit_code: Some(1),
                signal: None,
            },
        ],
    );
    check(
        &[],
        &[],
        Some(Exit {
            exit_code: None,
            signal: Some(15),
        }),
        &[DevEvent::ProcessExited {
            exit_code: None,
            signal: Some(15),
        }],
    );
}

// ---- step: through the jobs' own state changes ----------------------------

fn devserver(state: &str) -> JobRecord {
    JobRecord {
        id: "jdev".into(),
        user_id: "u".into(),
        kind: "devserver".into(),
        idea: "i".into(),
        slot: "primary".into(),
        name: "python3".into(),
        command: "python3 -m http.server".into(),
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
        started_at: Some(2),
        ended_at: None,
        ports: "[]".into(),
    }
}

fn report(
    phase: JobPhase,
    ports: Vec<DetectedPort>,
    code: Option<i32>,
    signal: Option<i32>,
) -> JobReport {
    JobReport {
        job: "jdev".into(),
        phase,
        ch: Some(1),
        pane: None,
        started_at: Some(2),
        ended_at: Some(30),
        exit_code: code,
        signal,
        ports,
    }
}

/// Applies `r` as the relay does and returns the events of that step.
fn apply(job: &mut JobRecord, r: &JobReport) -> Vec<DevEvent> {
    let before = job.clone();
    lifecycle::apply_report(job, r, None, 99);
    step(&before, job)
}

#[test]
fn a_dev_server_through_its_reports() {
    let mut j = devserver(RUNNING);
    assert_eq!(
        apply(&mut j, &report(JobPhase::Running, vec![], None, None)),
        []
    );
    assert_eq!(
        apply(
            &mut j,
            &report(JobPhase::Running, vec![sock(8123, "127.0.0.1")], None, None)
        ),
        [detected(8123, "127.0.0.1", PortSource::Socket)]
    );
    // The same report again: nothing new.
    assert_eq!(
        apply(
            &mut j,
            &report(JobPhase::Running, vec![sock(8123, "127.0.0.1")], None, None)
        ),
        []
    );
    assert_eq!(
        apply(
            &mut j,
            &report(
                JobPhase::Running,
                vec![sock(8123, "127.0.0.1"), out(9000)],
                None,
                None
            )
        ),
        [detected(9000, "localhost", PortSource::Output)]
    );
    j.cancel_requested = true;
    assert_eq!(
        apply(&mut j, &report(JobPhase::Exited, vec![], None, Some(2))),
        [
            DevEvent::PortClosed { port: 8123 },
            DevEvent::PortClosed { port: 9000 },
            DevEvent::ProcessExited {
                exit_code: None,
                signal: Some(2),
            },
        ]
    );
    assert_eq!(j.state, CANCELLED);
    // A late report after the end changes nothing, so says nothing.
    assert_eq!(
        apply(
            &mut j,
            &report(JobPhase::Running, vec![sock(8123, "::1")], None, None)
        ),
        []
    );
}

#[test]
fn a_window_closed_in_tmux_is_an_exit_without_status() {
    let mut j = devserver(RUNNING);
    j.ports = serde_json::to_string(&[sock(3000, "::1")]).expect("json");
    assert_eq!(
        apply(&mut j, &report(JobPhase::Vanished, vec![], None, None)),
        [
            DevEvent::PortClosed { port: 3000 },
            DevEvent::ProcessExited {
                exit_code: None,
                signal: None,
            },
        ]
    );
}

#[test]
fn an_immediate_failure_exits_once() {
    // The first report the relay sees is the exit (the port was taken).
    let mut j = devserver(STARTING);
    j.started_at = None;
    assert_eq!(
        apply(&mut j, &report(JobPhase::Exited, vec![], Some(1), None)),
        [DevEvent::ProcessExited {
            exit_code: Some(1),
            signal: None,
        }]
    );
}

#[test]
fn a_dev_server_that_never_ran_never_exited() {
    let before = devserver(QUEUED);
    let mut before = before;
    before.started_at = None;
    let mut after = before.clone();
    after.state = CANCELLED.into();
    after.ended_at = Some(5);
    assert_eq!(step(&before, &after), []);
}

#[test]
fn a_lost_dev_server_closes_its_ports() {
    // The runner came back without it: ended, no status; the stored
    // ports are stale and close.
    let mut before = devserver(RUNNING);
    before.ports = serde_json::to_string(&[sock(3000, "::1")]).expect("json");
    let mut after = before.clone();
    after.state = lifecycle::LOST.into();
    after.ended_at = Some(40);
    assert_eq!(
        step(&before, &after),
        [
            DevEvent::PortClosed { port: 3000 },
            DevEvent::ProcessExited {
                exit_code: None,
                signal: None,
            },
        ]
    );
}

#[test]
fn other_kinds_have_no_dev_server_events() {
    let mut j = devserver(RUNNING);
    j.kind = "job".into();
    assert_eq!(
        apply(
            &mut j,
            &report(JobPhase::Running, vec![sock(8123, "::1")], None, None)
        ),
        []
    );
}

#[test]
fn bad_stored_ports_read_as_none() {
    let mut j = devserver(RUNNING);
    j.ports = "not json".into();
    assert!(ports_of(&j).is_empty());
}

#[test]
fn event_json_has_the_preview_url_of_a_detected_port() {
    let j = devserver(RUNNING);
    let rec = |kind: &str, port: Option<i32>| DevserverEventRecord {
        id: 7,
        job_id: "jdev".into(),
        at: 123,
        kind: kind.into(),
        port,
        addr: port.map(|_| "127.0.0.1".into()),
        source: port.map(|_| "socket".into()),
        exit_code: None,
        signal: None,
    };
    let v = event_json(&j, &rec(PORT_DETECTED, Some(8123)));
    assert_eq!(v["url"], "/preview/jdev/8123");
    assert_eq!(
        (v["id"].as_str(), v["port"].as_u64(), v["idea"].as_str()),
        (Some("7"), Some(8123), Some("i"))
    );
    let v = event_json(&j, &rec(PORT_CLOSED, Some(8123)));
    assert!(v.get("url").is_none());
    let v = event_json(&j, &rec(PROCESS_EXITED, None));
    assert!(v.get("port").is_none());
    assert!(v["exit_code"].is_null() && v["signal"].is_null());
    let mut with_ports = j.clone();
    with_ports.ports = serde_json::to_string(&[sock(8123, "::1")]).expect("json");
    let d = devserver_json(&with_ports, &[rec(PORT_DETECTED, Some(8123))]);
    assert_eq!(d["ports"][0]["url"], "/preview/jdev/8123");
    assert_eq!(d["ports"][0]["source"], "socket");
    assert_eq!(d["kind"], "devserver");
    assert_eq!(d["events"].as_array().map(Vec::len), Some(1));
}
