//! Subcommands of `tmux-bridge`, one file each.

pub mod connect;
pub mod events;
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
        None => std::io::stdin().read_to_end(&mut buf).context("reading standard input")?,
        Some(p) if p == Path::new("-") => {
            std::io::stdin().read_to_end(&mut buf).context("reading standard input")?
        }
        Some(p) => {
            return std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        }
    };
    Ok(buf)
}
