//! Fidelity: replaying each recorded stream gives, for every pane alive at
//! the end, the rows and cursor tmux's `capture-pane` reported.

use transcript::emu::Profile;
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

/// Panes whose final screen is not in the stream, found in the stream
/// itself: tmux dropped output for a pane it paused (`%pause`, before the
/// bridge resyncs it), and tmux writes "Pane is dead" into a
/// `remain-on-exit` pane without `%output` (the fixture's subscription
/// reports `%P=<pane_dead>/<status>`, `1/…` once dead).
fn incomplete_panes(log: &[u8]) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut parser = tmux_cc::Parser::new();
    parser.push(log);
    parser.finish();
    while let Some(e) = parser.next_event() {
        match e {
            tmux_cc::Event::Pause { pane } => {
                out.insert(pane.to_string());
            }
            tmux_cc::Event::SubscriptionChanged { pane, value, .. } => {
                // The value is the fixture's format, `%2=1/7`: dead, status.
                let v = value.rsplit(|&b| b == b'=').next().unwrap_or(&value[..]);
                if let Some(p) = pane
                    && v.starts_with(b"1/")
                {
                    out.insert(p.to_string());
                }
            }
            _ => {}
        }
    }
    out
}

fn mismatches(format: RowFormat) -> Vec<String> {
    let mut bad = Vec::new();
    let mut checked = 0;
    for f in fixtures::all() {
        let profile = Profile::parse(&f.version);
        let model = replay::replay_with(&f.log, (80, 24), profile);
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
        let incomplete = incomplete_panes(&f.log);
        for ((header, rows), (id, end)) in got.iter().zip(f.panes.iter()) {
            if incomplete.contains(id) {
                continue;
            }
            checked += 1;
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
    assert!(checked >= 50, "only {checked} panes checked");
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
