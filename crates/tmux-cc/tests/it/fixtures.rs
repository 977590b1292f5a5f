//! The parser over the control-mode captures recorded from real tmux in
//! `fixtures/tmux-cc/<name>.log`: each one's events, in the JSON form of
//! `tmux-bridge events`, must equal the committed `<name>.expected.jsonl`.
//!
//! After a deliberate change (or a re-recording), regenerate them with
//! `UPDATE_EXPECT=1 cargo test -p tmux-cc --test it fixtures` and review the
//! diff.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tmux_cc::json::event_to_json;
use tmux_cc::{Event, Parser};

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tmux-cc")
}

/// Every `*.log` fixture (the compressed flood is for benchmarks), by name.
pub fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let dir = fixture_dir();
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("listing fixtures").path();
        if path.extension().is_some_and(|e| e == "log") {
            let name = path
                .file_stem()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            out.push((name, bytes));
        }
    }
    out.sort();
    assert!(
        out.len() >= 10,
        "expected the recorded fixtures in {}",
        dir.display()
    );
    out
}

pub fn parse_all(input: &[u8]) -> Vec<Event> {
    let mut p = Parser::new();
    p.push(input);
    p.finish();
    p.collect()
}

fn to_jsonl(events: &[Event]) -> String {
    let mut s = String::new();
    for e in events {
        s.push_str(&event_to_json(e));
        s.push('\n');
    }
    s
}

#[test]
fn fixtures_match_expected_events() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    for (name, bytes) in fixtures() {
        let got = to_jsonl(&parse_all(&bytes));
        let path = fixture_dir().join(format!("{name}.expected.jsonl"));
        if update {
            std::fs::write(&path, &got)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                // Otherwise one is a prefix of the other: they part where
                // the shorter ends.
                .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
            failures.push(format!("{name}: first difference at event {line}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{failures:#?}\nrerun with UPDATE_EXPECT=1 if the change is intended"
    );
}

/// Kinds tmux 3.3a can produce, by the `kind` of their JSON form.
const KINDS_3_3A: &[&str] = &[
    "reply",
    "output",
    "pause",
    "continue",
    "layout-change",
    "window-add",
    "window-close",
    "unlinked-window-add",
    "unlinked-window-close",
    "window-renamed",
    "unlinked-window-renamed",
    "session-changed",
    "client-session-changed",
    "session-renamed",
    "sessions-changed",
    "session-window-changed",
    "window-pane-changed",
    "pane-mode-changed",
    "client-detached",
    "subscription-changed",
    "exit",
    "stray",
];

/// Kinds no committed fixture holds yet. Both were seen on tmux 3.3a with a
/// throw-away script (`link-window` a window into the client's session,
/// `copy-mode` + `send-keys -X cancel`, then `unlink-window` it from the
/// *other* session gives `%pane-mode-changed` twice and `%window-close`);
/// the recorder (issue 2) still needs that workload.
const NOT_YET_RECORDED: &[&str] = &["window-close", "pane-mode-changed"];

#[test]
fn fixtures_cover_every_kind_of_tmux_3_3a() {
    let mut seen = BTreeSet::new();
    let mut extended = false;
    for (_, bytes) in fixtures() {
        for e in parse_all(&bytes) {
            extended |= matches!(e, Event::ExtendedOutput { .. });
            let json = event_to_json(&e);
            let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
            seen.insert(v["kind"].as_str().expect("kind").to_owned());
        }
    }
    assert!(extended, "no %extended-output in any fixture");
    let missing: Vec<_> = KINDS_3_3A
        .iter()
        .filter(|k| !seen.contains(**k) && !NOT_YET_RECORDED.contains(k))
        .collect();
    assert!(missing.is_empty(), "no fixture produces {missing:?}");
    assert!(
        !seen.contains("error") && !seen.contains("unknown"),
        "real tmux output gave {seen:?}"
    );
}

#[test]
fn hooks_fixture_keeps_spoofed_guards_as_payload() {
    let bytes = fixtures()
        .into_iter()
        .find(|(n, _)| n == "hooks")
        .expect("hooks fixture")
        .1;
    let events = parse_all(&bytes);
    let reply = events
        .iter()
        .find_map(|e| match e {
            Event::Reply(r) if r.lines.iter().any(|l| l.starts_with(b"%end 1 2 1")) => Some(r),
            _ => None,
        })
        .expect("the capture with a spoofed %end");
    assert!(reply.lines.iter().any(|l| &l[..] == b"%exit"));
    assert!(reply.lines.iter().any(|l| l.starts_with(b"%begin 3 4 1")));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Reply(r) if r.flags == 0 && !r.lines.is_empty()))
    );
    assert!(matches!(events.last(), Some(Event::Exit { .. })));
}

#[test]
fn flood_pause_fixture_has_in_block_continue() {
    let bytes = fixtures()
        .into_iter()
        .find(|(n, _)| n == "flood-pause")
        .expect("flood-pause fixture")
        .1;
    let events = parse_all(&bytes);
    let i = events
        .iter()
        .position(|e| matches!(e, Event::Continue { .. }))
        .expect("a %continue");
    // The %continue came from inside the refresh-client block: the reply
    // follows it and has no lines.
    assert!(matches!(&events[i + 1], Event::Reply(r) if r.lines.is_empty() && r.flags == 1));
}

#[test]
fn cc_fixture_has_no_framing_leftovers() {
    let bytes = fixtures()
        .into_iter()
        .find(|(n, _)| n == "cc")
        .expect("cc fixture")
        .1;
    assert!(bytes.starts_with(b"\x1bP1000p") && bytes.ends_with(b"\x1b\\"));
    let events = parse_all(&bytes);
    assert!(matches!(events.first(), Some(Event::Reply(r)) if r.flags == 0));
    assert!(matches!(events.last(), Some(Event::Exit { reason: None })));
    for e in &events {
        let json = event_to_json(e);
        assert!(!json.contains("\\r") && !json.contains("\\u001b"), "{json}");
        assert!(
            !matches!(e, Event::Stray { .. } | Event::Malformed(_)),
            "{json}"
        );
    }
}

#[test]
fn layouts_in_fixtures_parse_and_verify() {
    let mut n = 0;
    for (name, bytes) in fixtures() {
        for e in parse_all(&bytes) {
            if let Event::LayoutChange {
                layout,
                visible_layout,
                ..
            } = e
            {
                for l in std::iter::once(layout).chain(visible_layout) {
                    let parsed =
                        tmux_cc::Layout::parse(&l).unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert!(
                        parsed.checksum_ok(),
                        "{name}: {}",
                        String::from_utf8_lossy(&l)
                    );
                    assert_eq!(parsed.to_string().as_bytes(), &l[..]);
                    n += 1;
                }
            }
        }
    }
    assert!(n >= 10, "only {n} layouts in the fixtures");
}
