//! The thin loop (`Core`): wiring only. Command lines reach the tmux
//! channel, frames the uplink channel, and each way of ending is reported.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::core::{Core, Ended, RelayEvent};
use crate::tmux::TmuxOutput;

struct Wiring {
    tmux_rx: mpsc::Receiver<Bytes>,
    uplink_rx: mpsc::Receiver<ToRelay>,
    events_tx: mpsc::Sender<TmuxOutput>,
    relay_tx: mpsc::UnboundedSender<RelayEvent>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<Ended>>,
    _dir: tempfile::TempDir,
}

fn start() -> Wiring {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tmux_tx, tmux_rx) = mpsc::channel(16);
    let (uplink_tx, uplink_rx) = mpsc::channel(16);
    let (events_tx, events_rx) = mpsc::channel(16);
    let (relay_tx, relay_rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let core = Core::new(
        CoreConfig::default(),
        tmux_tx,
        uplink_tx,
        dir.path().to_path_buf(),
        Some(OWN_PID),
    );
    let task = tokio::spawn(core.run(events_rx, relay_rx, cancel.clone()));
    Wiring {
        tmux_rx,
        uplink_rx,
        events_tx,
        relay_tx,
        cancel,
        task,
        _dir: dir,
    }
}

async fn line(w: &mut Wiring) -> String {
    let bytes = w.tmux_rx.recv().await.expect("a command line");
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

#[tokio::test]
async fn commands_and_frames_flow_and_tmux_exit_ends_the_loop() {
    let mut w = start();
    assert!(line(&mut w).await.starts_with("list-clients "));
    w.relay_tx
        .send(RelayEvent::Opened {
            generation: 3,
            last_seq: 0,
        })
        .expect("send");
    // Rebase (the first connection numbers over), batch (topology),
    // snapshot, status.
    for _ in 0..4 {
        match w.uplink_rx.recv().await.expect("to relay") {
            ToRelay::Rebase { generation } | ToRelay::Frame { generation, .. } => {
                assert_eq!(generation, 3)
            }
            ToRelay::Status { attached_clients } => assert_eq!(attached_clients, 0),
            other => panic!("{other:?}"),
        }
    }
    w.events_tx
        .send(TmuxOutput::Events(vec![
            Event::SessionChanged {
                session: SessionId(0),
                name: Bytes::from_static(b"s"),
            },
            Event::Exit {
                reason: Some(Bytes::from_static(b"server exited")),
            },
        ]))
        .await
        .expect("send");
    assert!(line(&mut w).await.starts_with("list-windows "));
    w.events_tx.send(TmuxOutput::Closed).await.expect("send");
    let ended = w.task.await.expect("join").expect("ok");
    assert_eq!(
        ended,
        Ended::TmuxExited {
            reason: Some("server exited".into())
        }
    );
}

#[tokio::test]
async fn cancel_detaches_and_a_rejection_is_an_error() {
    let mut w = start();
    line(&mut w).await;
    w.cancel.cancel();
    assert_eq!(line(&mut w).await, "detach-client\n");
    assert_eq!(w.task.await.expect("join").expect("ok"), Ended::Cancelled);

    let w = start();
    w.relay_tx
        .send(RelayEvent::Rejected {
            reason: "revoked".into(),
        })
        .expect("send");
    let err = w.task.await.expect("join").expect_err("rejected");
    assert!(err.is::<crate::session::Rejected>(), "{err:#}");
}
