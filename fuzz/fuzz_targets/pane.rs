//! Fuzz target `pane`: arbitrary pane output, split into chunks at offsets
//! taken from the input's first two bytes, fed to a pane model of the
//! profile the first byte picks. It must never panic, keep its memory
//! within the bound for its size and history limit, give the same screen
//! (text, cursor, history) whatever the chunking, and its reset bytes must
//! feed a fresh model without panicking.
//!
//! `cargo +nightly fuzz run pane` from `fuzz/` (needs cargo-fuzz); seed the
//! corpus with the `.log` fixtures or `crates/transcript/tests/regressions`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use transcript::emu::Profile;
use transcript::pane::PaneModel;

const PROFILES: [&str; 5] = ["3.3a", "3.5a", "3.6a", "3.7c", "3.8"];

fuzz_target!(|data: &[u8]| {
    let Some((&head, input)) = data.split_first() else {
        return;
    };
    let profile = Profile::parse(PROFILES[usize::from(head) % PROFILES.len()]);
    let step = usize::from(head / 5) + 1;
    let new = || PaneModel::with_profile(20, 6, 30, profile).expect("size");

    let mut whole = new();
    whole.feed(input);
    let mut chunked = new();
    for c in input.chunks(step) {
        chunked.feed(c);
    }
    assert_eq!(chunked.rows_text(), whole.rows_text());
    assert_eq!(chunked.cursor(), whole.cursor());
    assert_eq!(chunked.scrollback_len(), whole.scrollback_len());
    // 20x6 with 30 lines of history (a clear can push a screenful more
    // before the next collection), 20-byte cells, and the text table.
    assert!(whole.memory_bytes() < 64 * 1024 + (1 << 16) * 64, "{}", whole.memory_bytes());

    let mut fresh = new();
    fresh.feed(&whole.reset_bytes());
    let _ = fresh.rows_ansi();
});
