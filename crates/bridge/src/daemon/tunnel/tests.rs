//! Tunnels against real loopback sockets: only detected ports are dialled,
//! bytes flow both ways under the credit windows, and streams end when
//! their port goes away.

use std::time::Duration;

use protocol::runner::tunnel::{TUNNEL_WINDOW, channel_stream};
use protocol::runner::{DetectedPort, PortSource, split_channel};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

fn detected(port: u16) -> DetectedPort {
    DetectedPort {
        port,
        addr: "127.0.0.1".into(),
        source: PortSource::Socket,
    }
}

struct Rig {
    tunnels: Tunnels,
    ports: PortTable,
    rx: mpsc::Receiver<ToUplink>,
    listener: TcpListener,
    port: u16,
}

async fn rig() -> Rig {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let ports = PortTable::default();
    ports.set("j1", vec![detected(port)]);
    let (tx, rx) = mpsc::channel(1024);
    let tunnels = Tunnels::new(TunnelSetup {
        ports: ports.clone(),
        to_uplink: tx,
    });
    Rig {
        tunnels,
        ports,
        rx,
        listener,
        port,
    }
}

/// The next thing a stream sent, within a generous bound.
async fn next(rx: &mut mpsc::Receiver<ToUplink>) -> TunnelOut {
    match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
        Ok(Some(ToUplink::Tunnel { generation, out })) => {
            assert_eq!(generation, 1);
            out
        }
        other => panic!("expected a tunnel message, got {other:?}"),
    }
}

#[tokio::test]
async fn undetected_ports_and_other_jobs_ports_are_never_dialled() {
    let mut r = rig().await;
    let refused = |stream| {
        Some(RunnerMsg::TunnelClose {
            stream,
            code: TunnelError::PortNotDetected,
        })
    };
    // Another job's name for the same port, an undetected port, the
    // relay's own channel numbers.
    assert_eq!(r.tunnels.open(1, "j2", r.port, 1), refused(1));
    assert_eq!(r.tunnels.open(2, "j1", r.port + 1, 1), refused(2));
    assert_eq!(
        r.tunnels.open(0, "j1", r.port, 1),
        Some(RunnerMsg::TunnelClose {
            stream: 0,
            code: TunnelError::Protocol
        })
    );
    // Listening on a LAN address only: not reachable on loopback.
    r.ports.set(
        "j3",
        vec![DetectedPort {
            port: r.port,
            addr: "10.1.2.3".into(),
            source: PortSource::Socket,
        }],
    );
    assert_eq!(r.tunnels.open(3, "j3", r.port, 1), refused(3));
    assert!(r.tunnels.is_empty());
    let accepted = tokio::time::timeout(Duration::from_millis(300), r.listener.accept()).await;
    assert!(accepted.is_err(), "nothing may connect");
}

#[tokio::test]
async fn bytes_flow_both_ways_within_the_credit() {
    let mut r = rig().await;
    assert_eq!(r.tunnels.open(5, "j1", r.port, 1), None);
    let (mut server, _) = r.listener.accept().await.expect("accept");
    assert_eq!(
        next(&mut r.rx).await,
        TunnelOut::Msg(RunnerMsg::TunnelOpened { stream: 5 })
    );
    // Relay → dev server.
    assert_eq!(
        r.tunnels.data(5, Bytes::from_static(b"GET / HTTP/1.1\r\n")),
        None
    );
    r.tunnels.eof(5);
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.expect("read");
    assert_eq!(got, b"GET / HTTP/1.1\r\n");
    // Dev server → relay: a megabyte offered, a window delivered.
    let big = vec![7u8; 1024 * 1024];
    let writer = tokio::spawn(async move {
        server.write_all(&big).await.expect("write");
        server.shutdown().await.expect("shutdown");
    });
    let mut received = 0usize;
    while received < TUNNEL_WINDOW as usize {
        match next(&mut r.rx).await {
            TunnelOut::Data(b) => {
                let (ch, data) = split_channel(&b).expect("prefix");
                assert_eq!(channel_stream(ch), Some(5));
                assert!(data.len() <= MAX_TUNNEL_CHUNK);
                received += data.len();
            }
            other => panic!("expected data, got {other:?}"),
        }
    }
    assert_eq!(received, TUNNEL_WINDOW as usize);
    let more = tokio::time::timeout(Duration::from_millis(300), r.rx.recv()).await;
    assert!(more.is_err(), "nothing beyond the credit: {more:?}");
    // Credit for what was consumed; everything arrives, then EOF and done.
    assert_eq!(r.tunnels.credit(5, TUNNEL_WINDOW), None);
    let mut eof = false;
    loop {
        match next(&mut r.rx).await {
            TunnelOut::Data(b) => {
                let n = b.len() - 4;
                received += n;
                assert_eq!(r.tunnels.credit(5, n as u32), None);
            }
            TunnelOut::Msg(RunnerMsg::TunnelEof { stream: 5 }) => eof = true,
            TunnelOut::Msg(m @ RunnerMsg::TunnelClose { .. }) => {
                assert_eq!(
                    m,
                    RunnerMsg::TunnelClose {
                        stream: 5,
                        code: TunnelError::Done
                    }
                );
                r.tunnels.outgoing(&m);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(eof);
    assert_eq!(received, 1024 * 1024);
    assert!(r.tunnels.is_empty());
    writer.await.expect("writer");
}

#[tokio::test]
async fn overruns_reset_and_a_port_that_goes_away_closes_the_stream() {
    let mut r = rig().await;
    assert_eq!(r.tunnels.open(1, "j1", r.port, 1), None);
    let (_server, _) = r.listener.accept().await.expect("accept");
    assert_eq!(
        next(&mut r.rx).await,
        TunnelOut::Msg(RunnerMsg::TunnelOpened { stream: 1 })
    );
    // More credit than a window in total is a protocol error.
    assert_eq!(
        r.tunnels.credit(1, 1),
        Some(RunnerMsg::TunnelClose {
            stream: 1,
            code: TunnelError::Protocol
        })
    );
    assert!(r.tunnels.is_empty());

    assert_eq!(r.tunnels.open(2, "j1", r.port, 1), None);
    let (_server2, _) = r.listener.accept().await.expect("accept");
    assert_eq!(
        next(&mut r.rx).await,
        TunnelOut::Msg(RunnerMsg::TunnelOpened { stream: 2 })
    );
    // A chunk over the limit.
    let huge = Bytes::from(vec![0u8; MAX_TUNNEL_CHUNK + 1]);
    assert_eq!(
        r.tunnels.data(2, huge),
        Some(RunnerMsg::TunnelClose {
            stream: 2,
            code: TunnelError::Protocol
        })
    );

    assert_eq!(r.tunnels.open(3, "j1", r.port, 1), None);
    let (_server3, _) = r.listener.accept().await.expect("accept");
    assert_eq!(
        next(&mut r.rx).await,
        TunnelOut::Msg(RunnerMsg::TunnelOpened { stream: 3 })
    );
    // The job ends: its ports leave the table and the stream closes.
    r.ports.remove("j1");
    assert_eq!(
        next(&mut r.rx).await,
        TunnelOut::Msg(RunnerMsg::TunnelClose {
            stream: 3,
            code: TunnelError::PortClosed
        })
    );
}

#[tokio::test]
async fn a_refused_connection_is_connect_failed_and_streams_are_capped() {
    let mut r = rig().await;
    // Detected but nobody listens any more.
    let port = r.port;
    drop(r.listener);
    assert_eq!(r.tunnels.open(1, "j1", port, 1), None);
    assert_eq!(
        next(&mut r.rx).await,
        TunnelOut::Msg(RunnerMsg::TunnelClose {
            stream: 1,
            code: TunnelError::ConnectFailed
        })
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    r.ports.set("j1", vec![detected(port)]);
    let mut tunnels = Tunnels::new(TunnelSetup {
        ports: r.ports.clone(),
        to_uplink: mpsc::channel(4096).0,
    });
    for s in 1..=MAX_TUNNEL_STREAMS as u32 {
        assert_eq!(tunnels.open(s, "j1", port, 1), None);
    }
    assert_eq!(
        tunnels.open(1000, "j1", port, 1),
        Some(RunnerMsg::TunnelClose {
            stream: 1000,
            code: TunnelError::TooManyStreams
        })
    );
    // A reused number is refused too.
    assert_eq!(
        tunnels.open(1, "j1", port, 1).map(|m| matches!(
            m,
            RunnerMsg::TunnelClose {
                code: TunnelError::Protocol,
                ..
            }
        )),
        Some(true)
    );
    tunnels.clear();
    assert!(tunnels.is_empty());
}
