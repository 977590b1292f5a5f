//! The live stream (`transcript::live`): a model fed the normalized bytes
//! ends exactly as the model fed tmux's raw output, on every fixture and on
//! generated output of every width class, control and sequence, in any
//! chunking; and what tmux swallows never reaches the stream.

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use transcript::emu::Profile;
use transcript::pane::PaneModel;
use transcript::session::SessionView;

use crate::{cases, fixtures};

const PROFILES: [&str; 5] = ["3.3a", "3.5a", "3.6a", "3.7c", "3.8"];

fn model(profile: Profile) -> PaneModel {
    PaneModel::with_profile(30, 8, 50, profile).expect("size")
}

/// Feeds `bytes` cut at `cuts` through `feed_live`, and the live stream
/// into a second model; returns both.
fn raw_and_live(profile: Profile, bytes: &[u8], cuts: &[usize]) -> (PaneModel, PaneModel, Vec<u8>) {
    let mut raw = model(profile);
    let mut live = model(profile);
    let mut stream = Vec::new();
    let mut at = 0;
    for c in cuts.iter().copied().chain([bytes.len()]) {
        let c = c.clamp(at, bytes.len());
        let out = raw.feed_live(&bytes[at..c]).expect("within the bound");
        live.feed(&out);
        stream.extend_from_slice(&out);
        at = c;
    }
    (raw, live, stream)
}

/// The rows of `rows` where model `m` holds only what a terminal can
/// show; the others read "(tmux only)". tmux can keep a wide character cut
/// by the right edge (a terminal would wrap it), padding whose wide
/// character was erased or is off the left edge (a terminal keeps no cell
/// without its character) and, from 3.5, four bytes past U+10FFFF in one
/// cell: the stream draws such rows as tmux draws them on a terminal.
pub fn rows_shown(m: &PaneModel, rows: Vec<String>) -> Vec<String> {
    let s = m.screen();
    let sx = s.sx();
    rows.into_iter()
        .enumerate()
        .map(|(y, row)| {
            let line = s.grid.line(y);
            let mut owner_end = 0;
            let odd = (0..sx).any(|x| {
                let c = line.get(x);
                if c.is_padding() {
                    x >= owner_end
                } else if c.single_cp().is_some_and(|cp| cp > 0x10ffff) {
                    // Bytes past U+10FFFF in one cell (3.5+): a terminal
                    // shows four U+FFFD.
                    true
                } else {
                    let w = usize::from(c.width).max(1);
                    owner_end = x + w;
                    x + w > sx || (w > 1 && (x + 1..x + w).any(|p| !line.get(p).is_padding()))
                }
            });
            if odd {
                String::from("(tmux only)")
            } else {
                row
            }
        })
        .collect()
}

fn same(a: &PaneModel, b: &PaneModel) -> Result<(), TestCaseError> {
    prop_assert_eq!(rows_shown(a, a.rows_text()), rows_shown(a, b.rows_text()));
    prop_assert_eq!(a.cursor(), b.cursor());
    prop_assert_eq!(a.scrollback_len(), b.scrollback_len());
    prop_assert_eq!(a.screen().alternate_screen(), b.screen().alternate_screen());
    Ok(())
}

/// `bytes` with what a tmux fed the live stream cannot repeat put as `x`:
/// characters that join by what came before them in tmux (regional
/// indicators, Hangul jamo and, for tmux 3.2–3.4, ZWJ, kept there as a flag
/// that outlives ASCII and joins the next character to the cell before; a
/// redrawn cell cannot bring that history back into a tmux, and a terminal
/// needs none of it), and, for 3.5+, the lead byte of a sequence past
/// U+10FFFF. The fixtures and the Chromium test cover these.
fn without_history_joins(bytes: &[u8], profile: Profile) -> Vec<u8> {
    let old = profile < Profile::parse("3.5");
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let n = if rest.len() >= 4
            && rest[..3] == [0xf0, 0x9f, 0x87]
            && (0xa6..=0xbf).contains(&rest[3])
        {
            4
        } else if !old
            && rest.len() >= 2
            && ((rest[0] == 0xf4 && rest[1] >= 0x90) || (0xf5..=0xf7).contains(&rest[0]))
        {
            // Past U+10FFFF, which 3.5+ keeps in one cell that a terminal
            // shows as four U+FFFD: drawn as tmux draws it (shifting the
            // rest of the row and the terminal's cursor, as tmux's own
            // terminal is), which a tmux fed the stream does not repeat;
            // the Chromium test checks it (web/tests/fidelity.test.mjs).
            1
        } else if (rest.len() >= 3 && rest[0] == 0xe1 && (0x84..=0x87).contains(&rest[1]))
            || (old && rest.starts_with("\u{200d}".as_bytes()))
        {
            3
        } else {
            0
        };
        if n > 0 {
            out.push(b'x');
            i += n;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Generated output (every width class, controls, sequences, wide
/// characters at the margins; `cases`) cut at random points, through the
/// live stream into a second model of the same tmux version: the same
/// screen. Deterministic (seed `i` for case `i`); `EMU_LIVE_CASES` runs
/// more (default 1,500).
#[test]
fn the_live_stream_rebuilds_the_model() {
    let n: u64 = std::env::var("EMU_LIVE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let mut bad = Vec::new();
    for i in 0..n {
        let mut rng = StdRng::seed_from_u64(i);
        let profile = Profile::parse(PROFILES[(i % PROFILES.len() as u64) as usize]);
        let bytes = cases::case(&mut rng, 30, 8).concat();
        let bytes = without_history_joins(&bytes, profile);
        let mut cuts: Vec<usize> = (0..rng.gen_range(0..6))
            .map(|_| rng.gen_range(0..=bytes.len()))
            .collect();
        cuts.sort_unstable();
        let (raw, live, stream) = raw_and_live(profile, &bytes, &cuts);
        if let Err(e) = same(&raw, &live) {
            bad.push(format!(
                "case {i} ({}): {e}\ninput {:?}\nlive {:?}",
                PROFILES[(i % PROFILES.len() as u64) as usize],
                String::from_utf8_lossy(&bytes),
                String::from_utf8_lossy(&stream)
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {n} cases differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// Every fixture, replayed with its own tmux version: the records (live
/// output and live resets) applied from scratch give tmux's screens.
#[test]
fn every_fixture_through_the_live_stream_equals_the_model() {
    let mut bad = Vec::new();
    for f in fixtures::all() {
        let profile = Profile::parse(&f.version);
        let mut model =
            transcript::session::SessionModel::new(transcript::session::SessionConfig {
                profile,
                ..Default::default()
            });
        let mut view = SessionView::with_profile(10_000, 0, profile);
        let mut parser = tmux_cc::Parser::new();
        parser.push(&f.log);
        parser.finish();
        while let Some(ev) = parser.next_event() {
            for rec in model.apply(&ev) {
                if let Err(e) = view.apply(&rec) {
                    bad.push(format!("{}: {e}", f.name));
                }
            }
        }
        for (id, pane) in model.live_panes() {
            let Some(v) = view.pane(id) else {
                bad.push(format!("{} {id}: missing", f.name));
                continue;
            };
            // Rows tmux holds and no terminal can are drawn as tmux draws
            // them (capture-pane prints them wider than the pane).
            if rows_shown(pane, v.rows_text()) != rows_shown(pane, pane.rows_text())
                || v.cursor() != pane.cursor()
            {
                bad.push(format!(
                    "{} {id}: live {:?} {:?}\nmodel {:?} {:?}",
                    f.name,
                    v.cursor(),
                    v.rows_text(),
                    pane.cursor(),
                    pane.rows_text()
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

fn live(bytes: &[u8]) -> Vec<u8> {
    model(Profile::NEWEST)
        .feed_live(bytes)
        .expect("within the bound")
}

#[test]
fn what_tmux_swallows_is_not_forwarded() {
    // ESC k … ST names the window; tmux prints nothing.
    assert_eq!(live(b"a\x1bkname\x1b\\b"), b"ab");
    // DCS, APC, PM, SOS: nothing; CAN does not end a DCS in tmux.
    assert_eq!(live(b"a\x1bPq#0\x18xyz\x1b\\b"), b"ab");
    assert_eq!(live(b"a\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\b"), b"ab");
    // Unknown and query sequences.
    assert_eq!(live(b"a\x1b[c\x1b[6n\x1b[>0q\x1b[5Ib"), b"ab");
    // An OSC tmux does not pass on (notification); a title passes,
    // re-terminated.
    assert_eq!(live(b"\x1b]9;hi\x07x"), b"x");
    assert_eq!(live(b"\x1b]2;t\x07x"), b"\x1b]2;t\x1b\\x");
}

#[test]
fn split_sequences_are_written_whole_when_they_end() {
    let mut m = model(Profile::NEWEST);
    assert_eq!(live_of(&mut m, b"ab\x1b[1"), b"ab");
    assert_eq!(live_of(&mut m, b";31"), b"");
    assert_eq!(live_of(&mut m, b"mc"), b"\x1b[0;1;31mc");
    // A character split across calls.
    assert_eq!(live_of(&mut m, "x\u{e9}".as_bytes().split_at(2).0), b"x");
}

#[test]
fn invalid_utf8_is_written_as_tmux_stored_it() {
    // 3.7+ writes U+FFFD for an invalid sequence; 3.3 drops it.
    let mut new = model(Profile::parse("3.7c"));
    assert_eq!(live_of(&mut new, b"a\xffb"), "a\u{fffd}b".as_bytes());
    let mut old = model(Profile::parse("3.3a"));
    assert_eq!(live_of(&mut old, b"a\xffb"), b"ab");
}

#[test]
fn cursor_moves_are_absolute() {
    let mut m = model(Profile::NEWEST);
    m.feed(b"hello");
    // CUB 2 → column 3 (1-based 4) on row 1.
    assert_eq!(live_of(&mut m, b"\x1b[2D"), b"\x1b[1;4H");
    // Way past the margin, clamped as tmux clamps.
    assert_eq!(live_of(&mut m, b"\x1b[999C"), b"\x1b[1;30H");
}

#[test]
fn an_erase_that_splits_a_wide_character_redraws_the_row() {
    let mut m = model(Profile::NEWEST);
    m.feed("日本語".as_bytes());
    // To the middle of 本 (column 3), erase to the end of line.
    let out = live_of(&mut m, b"\x1b[1;4H\x1b[K");
    let mut fresh = model(Profile::NEWEST);
    fresh.feed("日本語".as_bytes());
    fresh.feed(&out);
    assert_eq!(fresh.rows_text(), m.rows_text());
    assert!(
        out.windows(4).any(|w| w == b"\x1b[2K"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
}

/// The differential test's saved failures (`tests/regressions/`: inputs
/// real tmux drew, kept for being hard) through the live stream.
#[test]
fn regressions_through_the_live_stream() {
    use base64::Engine;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut bad = Vec::new();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("regressions dir") {
        let path = entry.expect("entry").path();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        let profile = Profile::parse(v["tmux_version"].as_str().unwrap_or(""));
        let (cols, rows) = (
            v["cols"].as_u64().unwrap_or(30) as u32,
            v["rows"].as_u64().unwrap_or(8) as u32,
        );
        let input = base64::engine::general_purpose::STANDARD
            .decode(v["input"].as_str().unwrap_or(""))
            .expect("base64");
        let input = without_history_joins(&input, profile);
        let mut raw = PaneModel::with_profile(cols, rows, 50, profile).expect("size");
        let mut live = PaneModel::with_profile(cols, rows, 50, profile).expect("size");
        let stream = raw.feed_live(&input).expect("within the bound");
        live.feed(&stream);
        n += 1;
        if let Err(e) = same(&raw, &live) {
            bad.push(format!(
                "{}: {e}\ninput {:?}\nlive {:?}",
                path.display(),
                String::from_utf8_lossy(&input),
                String::from_utf8_lossy(&stream)
            ));
        }
    }
    assert!(n > 0);
    assert!(
        bad.is_empty(),
        "{} of {n} differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

fn live_of(m: &mut PaneModel, bytes: &[u8]) -> Vec<u8> {
    m.feed_live(bytes).expect("within the bound")
}

/// Output that makes many redraws out of few bytes (RIS redraws the tab
/// stops; an edit splitting a wide character redraws the row) is bounded:
/// past 16 bytes per byte read plus 64 KiB the stream stops, and the
/// session sends the pane whole instead, which leaves it right.
#[test]
fn amplifying_output_is_bounded_and_becomes_a_reset() {
    let mut m = PaneModel::with_profile(1000, 50, 100, Profile::NEWEST).expect("size");
    let mut hostile = Vec::new();
    for _ in 0..20_000 {
        hostile.extend_from_slice(b"\x1bc");
    }
    assert!(m.feed_live(&hostile).is_none());
    // The model took it all and still streams afterwards.
    assert_eq!(m.feed_live(b"ok").as_deref(), Some(&b"ok"[..]));

    // Through a session: the output becomes a PaneReset of the pane.
    use protocol::wire::RecordBody;
    let mut s =
        transcript::session::SessionModel::new(transcript::session::SessionConfig::default());
    let mut p = tmux_cc::Parser::new();
    let mut log = b"%begin 1 1 0\n%end 1 1 0\n%output %0 ab\n%output %0 ".to_vec();
    for b in hostile {
        log.extend_from_slice(format!("\\{b:03o}").as_bytes());
    }
    log.push(b'\n');
    p.push(&log);
    p.finish();
    let mut kinds = Vec::new();
    while let Some(ev) = p.next_event() {
        for r in s.apply(&ev) {
            kinds.push(match r.body {
                RecordBody::Output { .. } => "output",
                RecordBody::PaneReset { .. } => "reset",
                RecordBody::Topology(_) => "topology",
            });
        }
    }
    assert_eq!(kinds.last(), Some(&"reset"), "{kinds:?}");
}
