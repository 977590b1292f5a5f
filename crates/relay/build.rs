//! The page (web/dist, built by `scripts/web-build`) is embedded in release
//! builds of the relay. A release build without it would serve nothing, so
//! it fails here with what to run; a debug build only warns (it reads
//! web/dist from disk at run time). `TMUX_RELAY_NO_PAGE=1` allows a release
//! build without the page (it answers 503 until one is configured with
//! `--web-dir`).

use std::path::Path;

fn main() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    println!("cargo:rerun-if-env-changed=TMUX_RELAY_NO_PAGE");
    if dist.join("index.html").exists() {
        return;
    }
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let allowed = std::env::var_os("TMUX_RELAY_NO_PAGE").is_some();
    if release && !allowed {
        eprintln!(
            "error: the web page is not built ({} is missing).\n\
             Run scripts/web-build (needs node and npm) before a release build,\n\
             or set TMUX_RELAY_NO_PAGE=1 to build a relay without its page.",
            dist.join("index.html").display()
        );
        std::process::exit(1);
    }
    println!(
        "cargo:warning=web/dist is not built: this relay answers 503 for the page until scripts/web-build runs"
    );
}
