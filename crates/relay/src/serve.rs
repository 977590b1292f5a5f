//! The relay's HTTP server: the listening socket and one hyper HTTP/1.1
//! connection per client, with the limits of [`Limits`] (issue 10).
//!
//! Why not `axum::serve`: it gives hyper no timer, so hyper's own
//! `header_read_timeout` never fires, and a client sending one header byte
//! every few seconds (or an idle keep-alive connection) holds a connection
//! forever. Here hyper's HTTP/1 builder gets tokio's timer and the header
//! timeout; body and whole-request timeouts are tower-http layers on the
//! router ([`crate::http::router`]). Everything else matches
//! `axum::serve`: `ConnectInfo<SocketAddr>` for the handlers, upgrades for
//! WebSockets, graceful shutdown (connections finish their request; the
//! upgraded WebSockets are closed by their own tasks).
//!
//! With `--tls-cert/--tls-key` each accepted connection first goes through
//! the TLS handshake ([`crate::tls`], under `Limits::tls_handshake_timeout`)
//! inside its own task, so the accept loop never waits on a client; the
//! TLS stream then goes to [`serve_connection`] with the same timeouts.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::Limits;

/// Binds `addr` with the accepted connections' send buffer set (Linux
/// copies the listener's `SO_SNDBUF` to every accepted socket).
pub(crate) fn bind(addr: SocketAddr, send_buffer: Option<u32>) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    if let Some(n) = send_buffer {
        socket.set_send_buffer_size(n)?;
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Serves `app` on `listener` (over TLS when `tls` is set) until
/// `shutdown` is cancelled, then waits for the open HTTP connections to
/// finish their current request.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (tcp, peer) = match accepted {
            Ok(c) => c,
            Err(err) => {
                // Out of file descriptors and the like: wait instead of
                // spinning (what axum::serve does too).
                tracing::warn!(%err, "accepting a connection");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        // Keystroke echoes are small frames; Nagle plus delayed ACKs would
        // hold them for ~40 ms.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%err, "TCP_NODELAY");
        }
        let app = app.clone();
        let stop = shutdown.clone();
        match &tls {
            None => {
                connections.spawn(serve_connection(tcp, peer, app, limits, stop));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    let handshake =
                        crate::tls::handshake(&acceptor, tcp, limits.tls_handshake_timeout);
                    let stream = tokio::select! {
                        () = stop.cancelled() => return,
                        r = handshake => match r {
                            Ok(s) => s,
                            Err(err) => {
                                tracing::debug!(%peer, %err, "TLS connection dropped");
                                return;
                            }
                        },
                    };
                    serve_connection(stream, peer, app, limits, stop).await;
                });
            }
        }
    }
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Serves one connection (plain TCP, or a TLS stream wrapped around it)
/// from `peer` until it closes, times out, or `shutdown` asks it to finish.
pub fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = app.map_request(move |mut req: axum::http::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.map(Body::new)
    });
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = http1
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .with_upgrades();
    async move {
        let mut conn = std::pin::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(err) = r {
                    tracing::debug!(%err, "HTTP connection ended");
                }
                return;
            }
            () = shutdown.cancelled() => conn.as_mut().graceful_shutdown(),
        }
        if let Err(err) = conn.await {
            tracing::debug!(%err, "HTTP connection ended");
        }
    }
}
