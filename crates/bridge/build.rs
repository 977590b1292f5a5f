//! Lays out the functions an idle runner runs next to each other (issue 16).
//!
//! `link-order.txt` lists them (written by `scripts/link-order` from
//! callgrind profiles of an idle runner, both builds). The linker places
//! them first, so the 64 KiB the kernel maps around each page an idle
//! runner touches holds idle code, not its neighbours; with the trim
//! (`bridge::resident`) the idle runner's resident code falls by about
//! two thirds (README, "Where the runner's idle memory goes").
//!
//! Only for LLD, which takes `--symbol-ordering-file` and is rustc's own
//! linker on x86_64-unknown-linux-gnu from 1.90 on; with another linker,
//! a linker of one's own (`target.*.linker`, `-C linker`, `-fuse-ld`) or
//! `TMUX_BRIDGE_NO_LINK_ORDER=1` the binary links as it would without.
//! A symbol the list names that the binary lacks (another compiler,
//! changed code) is skipped; a stale list costs the gain, nothing else.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=link-order.txt");
    println!("cargo::rerun-if-env-changed=TMUX_BRIDGE_NO_LINK_ORDER");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let list = Path::new(&dir).join("link-order.txt");
    if !links_with_lld() || !list.is_file() {
        return;
    }
    println!(
        "cargo::rustc-link-arg-bin=tmux-bridge=-Wl,--symbol-ordering-file={}",
        list.display()
    );
    println!("cargo::rustc-link-arg-bin=tmux-bridge=-Wl,--no-warn-symbol-ordering");
}

/// Whether the binary links with rustc's own LLD (and the list is wanted).
fn links_with_lld() -> bool {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    if !var("TMUX_BRIDGE_NO_LINK_ORDER").is_empty()
        || var("TARGET") != "x86_64-unknown-linux-gnu"
        || !var("RUSTC_LINKER").is_empty()
        || flags.contains("linker")
        || flags.contains("fuse-ld")
    {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // "rustc 1.95.0 (59807616e 2026-04-14)": LLD by default from 1.90.
    version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|minor| minor >= 90)
}
