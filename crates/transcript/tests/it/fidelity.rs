//! Fidelity: replaying each recorded stream gives, for every pane alive at
//! the end, the rows and cursor tmux's `capture-pane` reported.

use transcript::replay::{self, RowFormat};

use crate::fixtures;

/// Parses the replay output back into (header, rows) per pane.
fn parse(out: &str) -> Vec<(String, Vec<String>)> {
    let mut panes: Vec<(String, Vec<String>)> = Vec::new();
    for line in out.lines() {
        if let Some(h) = line.strip_prefix("=== ") {
            panes.push((h.to_owned(), Vec::new()));
        } else if let Some(p) = panes.last_mut() {
            p.1.push(line.to_owned());
        }
    }
    panes
}

/// Panes whose final screen cannot come from the stream alone, with the
/// cause. Each must still differ (so a fix shrinks this list) and nothing
/// else may.
const TEXT_EXCEPTIONS: &[(&str, &str, &str)] = &[
    // tmux writes "Pane is dead (status …)" into a remain-on-exit pane
    // itself (after a linefeed at the bottom) and sends no %output for it;
    // the bridge resyncs the pane when its pane_dead subscription flips.
    ("pane-exit", "%2", "tmux-generated text"),
    // The pane was resized mid-stream and tmux reflowed the over-long line;
    // vt100 does not reflow. The bridge resyncs a pane after a resize
    // (tested against real tmux in `seed`).
    ("resize", "%0", "reflow on resize"),
    ("splits", "%1", "reflow on resize"),
    ("splits", "%2", "reflow on resize"),
];

/// `--format ansi` adds the attributes vt100 does not store.
const ANSI_EXCEPTIONS: &[(&str, &str, &str)] = &[
    // SGR 9 (strike), 5 (blink), 4:2 (double), 4:3 (curly underline): vt100
    // 0.18 keeps no such attributes (the text is right).
    ("colors", "%0", "attributes vt100 drops"),
];

/// The same for the fixtures recorded with newer tmux (`<name>-<version>`,
/// `scripts/record-fixtures --tmux`): the 3.3a causes above, plus
/// * flood-pause: the flood ended while the pane was paused, and tmux drops
///   a paused pane's output (the bridge resyncs the pane on `%continue`);
/// * 3.7+ reflows `%0` of `splits` too;
/// * 3.7+ `capture-pane -p` keeps a TAB the program wrote as `\t`.
const VERSIONED_TEXT_EXCEPTIONS: &[(&str, &str, &str)] = &[
    ("pane-exit-3.5a", "%2", "tmux-generated text"),
    ("pane-exit-3.7c", "%2", "tmux-generated text"),
    ("pane-exit-3.8", "%2", "tmux-generated text"),
    ("resize-3.5a", "%0", "reflow on resize"),
    ("resize-3.7c", "%0", "reflow on resize"),
    ("resize-3.8", "%0", "reflow on resize"),
    ("splits-3.5a", "%1", "reflow on resize"),
    ("splits-3.5a", "%2", "reflow on resize"),
    ("splits-3.7c", "%0", "reflow on resize"),
    ("splits-3.7c", "%1", "reflow on resize"),
    ("splits-3.7c", "%2", "reflow on resize"),
    ("splits-3.8", "%0", "reflow on resize"),
    ("splits-3.8", "%1", "reflow on resize"),
    ("splits-3.8", "%2", "reflow on resize"),
    ("flood-pause-3.5a", "%0", "output dropped while paused"),
    ("flood-pause-3.7c", "%0", "output dropped while paused"),
    ("flood-pause-3.8", "%0", "output dropped while paused"),
    ("cc-3.7c", "%1", "capture-pane keeps TAB"),
    ("cc-3.8", "%1", "capture-pane keeps TAB"),
    ("scroll-3.7c", "%0", "capture-pane keeps TAB"),
    ("scroll-3.8", "%0", "capture-pane keeps TAB"),
];

/// 3.4+ `capture-pane -e` ends every row in the default state (`ESC[0m`,
/// `SI` after `SO`) where 3.3a carried attributes over to the next row; the
/// rows' text and cells are the same.
const VERSIONED_ANSI_EXCEPTIONS: &[(&str, &str, &str)] = &[
    ("colors-3.5a", "%0", "attributes vt100 drops; row-end reset"),
    ("colors-3.7c", "%0", "attributes vt100 drops; row-end reset"),
    ("colors-3.8", "%0", "attributes vt100 drops; row-end reset"),
    ("altscreen-3.5a", "%0", "row-end reset"),
    ("altscreen-3.7c", "%0", "row-end reset"),
    ("altscreen-3.8", "%0", "row-end reset"),
    ("resync-3.5a", "%0", "row-end reset"),
    ("resync-3.7c", "%0", "row-end reset"),
    ("resync-3.8", "%0", "row-end reset"),
    ("scroll-3.5a", "%0", "SI at row end"),
];

fn mismatches(format: RowFormat) -> Vec<String> {
    let mut exceptions: Vec<(&str, &str, &str)> = TEXT_EXCEPTIONS.to_vec();
    exceptions.extend_from_slice(VERSIONED_TEXT_EXCEPTIONS);
    if format == RowFormat::Ansi {
        exceptions.extend_from_slice(ANSI_EXCEPTIONS);
        exceptions.extend_from_slice(VERSIONED_ANSI_EXCEPTIONS);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut bad = Vec::new();
    for f in fixtures::all() {
        let model = replay::replay(&f.log, (80, 24));
        let got = parse(&replay::render(&model, format));
        let got_ids: Vec<&str> = got
            .iter()
            .map(|(h, _)| h.split(' ').next().unwrap_or(""))
            .collect();
        let want_ids: Vec<&str> = f.panes.keys().map(String::as_str).collect();
        if got_ids != want_ids {
            bad.push(format!(
                "{}: panes {got_ids:?}, tmux has {want_ids:?}",
                f.name
            ));
            continue;
        }
        for ((header, rows), (id, end)) in got.iter().zip(f.panes.iter()) {
            if exceptions.iter().any(|(n, p, _)| *n == f.name && p == id) {
                let want = match format {
                    RowFormat::Text => &end.text,
                    RowFormat::Ansi => &end.ansi,
                };
                let same = rows
                    .iter()
                    .zip(want.iter())
                    .all(|(g, w)| g == w.trim_end_matches(' '));
                if !same || !header.ends_with(&format!("cursor={},{}", end.cursor_x, end.cursor_y))
                {
                    seen.insert((f.name.clone(), id.clone()));
                }
                continue;
            }
            let want_header = format!(
                "{id} {}x{} cursor={},{}",
                end.width, end.height, end.cursor_x, end.cursor_y
            );
            if *header != want_header {
                bad.push(format!(
                    "{}: header {header:?}, tmux {want_header:?}",
                    f.name
                ));
            }
            let want = match format {
                RowFormat::Text => &end.text,
                RowFormat::Ansi => &end.ansi,
            };
            for (i, (g, w)) in rows.iter().zip(want.iter()).enumerate() {
                if g != w.trim_end_matches(' ') {
                    bad.push(format!(
                        "{} {id} row {i}: got {g:?}\n{:>width$} tmux {:?}",
                        f.name,
                        "",
                        w.trim_end_matches(' '),
                        width = f.name.len()
                    ));
                }
            }
        }
    }
    for (n, p, why) in exceptions {
        if !seen.contains(&(n.to_owned(), p.to_owned())) {
            bad.push(format!(
                "{n} {p} now matches tmux: drop its exception ({why})"
            ));
        }
    }
    bad
}

#[test]
fn replay_text_matches_capture_pane_on_every_fixture() {
    let bad = mismatches(RowFormat::Text);
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn replay_ansi_matches_capture_pane_e_on_every_fixture() {
    let bad = mismatches(RowFormat::Ansi);
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
