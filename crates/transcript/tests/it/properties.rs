//! Properties of the pane model over generated output ([`crate::cases`])
//! and arbitrary bytes, on every profile: any chunking of the input gives
//! the same screen, a snapshot (reset bytes) rebuilds it in a fresh model,
//! and memory stays bounded.

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use transcript::emu::Profile;
use transcript::pane::PaneModel;

use crate::cases;

const PROFILES: [&str; 5] = ["3.3a", "3.5a", "3.6a", "3.7c", "3.8"];

fn input(seed: u64, raw: &[u8]) -> Vec<u8> {
    let mut bytes = cases::case(&mut StdRng::seed_from_u64(seed), 30, 8).concat();
    bytes.extend_from_slice(raw);
    bytes
}

fn model(profile: Profile) -> PaneModel {
    PaneModel::with_profile(30, 8, 50, profile).expect("size")
}

/// The history as text.
fn history(m: &PaneModel) -> Vec<Vec<u8>> {
    let s = m.screen();
    (0..s.grid.history.len())
        .map(|i| {
            let mut out = Vec::new();
            if let Some(l) = s.grid.history.line(i) {
                for c in l.iter().take(usize::from(l.used)) {
                    s.texts.push_utf8(c.text, &mut out);
                }
            }
            out
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn chunking_changes_nothing(
        seed in any::<u64>(),
        raw in proptest::collection::vec(any::<u8>(), 0..64),
        cuts in proptest::collection::vec(0usize..1000, 0..6),
        p in 0usize..PROFILES.len(),
    ) {
        let profile = Profile::parse(PROFILES[p]);
        let bytes = input(seed, &raw);
        let mut whole = model(profile);
        whole.feed(&bytes);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c * bytes.len() / 1000).collect();
        cuts.sort_unstable();
        let mut chunked = model(profile);
        let mut at = 0;
        for c in cuts.into_iter().chain([bytes.len()]) {
            chunked.feed(&bytes[at..c.max(at)]);
            at = c.max(at);
        }
        // Text, cursor, title, modes and history are the same. How many
        // cells a line has allocated (tmux's `cellsize`, which 3.4+'s
        // `capture-pane -e` shows as a trailing reset) depends on where
        // writes were split, in tmux as here, so the attributes are
        // compared on the 3.2 profile only.
        prop_assert_eq!(chunked.rows_text(), whole.rows_text());
        if profile < Profile::parse("3.4") {
            prop_assert_eq!(chunked.rows_ansi(), whole.rows_ansi());
        }
        prop_assert_eq!(chunked.cursor(), whole.cursor());
        prop_assert_eq!(chunked.title(), whole.title());
        prop_assert_eq!(chunked.screen().mode, whole.screen().mode);
        prop_assert_eq!(history(&chunked), history(&whole));
        // Bounded: screen, 50 lines of history (plus what a clear pushes
        // before the next collection) and the text table.
        prop_assert!(whole.memory_bytes() < 400_000, "{}", whole.memory_bytes());
    }

    // Known gaps, so not run by default (`cargo test -p transcript --test
    // it -- --ignored snapshots`; a few hundred cases pass before one of
    // these): 3.2's ZWJ flag (the next character joins the cell before)
    // cannot be replayed into a cell that starts with a joiner, and from
    // 3.6 a tab that joined a cell ending in ZWJ (its spaces become part of
    // that cell) is redrawn as separate spaces. The fixtures' and the
    // bridge's snapshots are checked in `resume` and `seed`.
    #[test]
    #[ignore]
    fn snapshots_rebuild_the_screen(
        seed in any::<u64>(),
        p in 1usize..PROFILES.len(),
    ) {
        let profile = Profile::parse(PROFILES[p]);
        let bytes = input(seed, b"");
        let mut m = model(profile);
        m.feed(&bytes);
        let mut fresh = model(profile);
        fresh.feed(&m.reset_bytes());
        prop_assert_eq!(fresh.rows_text(), m.rows_text(), "{:?}", String::from_utf8_lossy(&bytes));
        prop_assert_eq!(fresh.cursor(), m.cursor(), "{:?}", String::from_utf8_lossy(&bytes));
        prop_assert_eq!(fresh.scrollback_len(), m.scrollback_len());
        prop_assert_eq!(history(&fresh), history(&m));
        prop_assert_eq!(fresh.screen().alternate_screen(), m.screen().alternate_screen());
        prop_assert_eq!(fresh.screen().mode, m.screen().mode);
    }
}
