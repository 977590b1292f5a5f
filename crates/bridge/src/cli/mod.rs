//! Subcommands of `tmux-bridge`, one file each.

pub mod connect;
pub mod events;
pub mod login_link;
pub mod pair;
pub mod replay;
pub mod up;

use std::io::Read;
use std::path::Path;

use anyhow::Context;

/// Reads FILE, or standard input when the path is `-` or absent.
pub fn read_input(path: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    match path {
        None => std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?,
        Some(p) if p == Path::new("-") => std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?,
        Some(p) => {
            return std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        }
    };
    Ok(buf)
}

/// Serves one session until Ctrl-C/SIGTERM (then `Ok`) or until the session
/// ends by itself (its result, e.g. the relay refused the token).
pub async fn serve_until_signal(cfg: crate::session::SessionConfig) -> anyhow::Result<()> {
    let cancel = tokio_util::sync::CancellationToken::new();
    let task_cancel = cancel.clone();
    let mut task = tokio::spawn(async move { crate::session::run(cfg, task_cancel).await });
    let ended = tokio::select! {
        _ = shutdown_signal() => None,
        r = &mut task => Some(r),
    };
    cancel.cancel();
    let result = match ended {
        Some(r) => r,
        None => {
            tracing::info!("shutting down");
            match tokio::time::timeout(std::time::Duration::from_secs(5), task).await {
                Ok(r) => r,
                Err(_) => return Ok(()),
            }
        }
    };
    result.map_err(|err| anyhow::anyhow!("the bridge task failed: {err}"))?
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
