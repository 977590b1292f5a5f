//! list-keys parsing and key-table resolution, step by step.

use super::*;

const LIST: &str = r##"bind-key    -T copy-mode    q                      send-keys -X cancel
bind-key    -T copy-mode-vi Escape                 send-keys -X clear-selection
bind-key    -T prefix C-b     send-prefix
bind-key    -T prefix \"      split-window
bind-key    -T prefix \%      split-window -h
bind-key    -T prefix \;      last-pane
bind-key    -T prefix c       new-window
bind-key    -T prefix \$      command-prompt -I "#S" { rename-session "%%" }
bind-key    -T prefix \{      swap-pane -U
bind-key -r -T prefix       Up                   select-pane -U
bind-key -r -T prefix       M-Left               resize-pane -L 5
bind-key    -T root         MouseDown1Pane       select-pane -t = \; send-keys -M
bind-key    -T root         M-x                  kill-pane
"##;

fn bindings() -> KeyBindings {
    let (b, errors) = KeyBindings::parse(LIST);
    assert_eq!(errors, vec![]);
    b
}

#[test]
fn list_keys_lines_parse_with_tmux_quoting() {
    let b = bindings();
    let get = |t: &str, k: &str| b.get(t, k).map(|b| (b.command.as_str(), b.repeat));
    assert_eq!(get("prefix", "\""), Some(("split-window", false)));
    assert_eq!(get("prefix", "%"), Some(("split-window -h", false)));
    assert_eq!(get("prefix", ";"), Some(("last-pane", false)));
    assert_eq!(get("prefix", "{"), Some(("swap-pane -U", false)));
    assert_eq!(
        get("prefix", "$"),
        Some((r##"command-prompt -I "#S" { rename-session "%%" }"##, false))
    );
    assert_eq!(get("prefix", "Up"), Some(("select-pane -U", true)));
    assert_eq!(
        get("root", "MouseDown1Pane"),
        Some((r"select-pane -t = \; send-keys -M", false))
    );
    assert_eq!(get("copy-mode", "q"), Some(("send-keys -X cancel", false)));
    assert_eq!(b.table_len("prefix"), 9);
    let (_, errors) =
        KeyBindings::parse("set -g mouse on\nbind-key -T prefix\nbind-key -T prefix x\n");
    assert_eq!(errors.len(), 3);
}

fn press(st: &mut KeyTables, key: &str, now: u64) -> KeyAction {
    st.press(&bindings(), &KeyOptions::default(), key, None, now)
}

#[test]
fn prefix_then_a_binding_runs_it_and_returns_to_root() {
    let mut st = KeyTables::default();
    assert_eq!(press(&mut st, "C-b", 0), KeyAction::Table("prefix".into()));
    assert_eq!(press(&mut st, "c", 1), KeyAction::Run("new-window".into()));
    assert_eq!(st.table(), "root");
    assert_eq!(press(&mut st, "c", 2), KeyAction::Forward("c".into()));
    // The prefix twice sends the prefix through (C-b in the prefix table is send-prefix).
    press(&mut st, "C-b", 3);
    assert_eq!(
        press(&mut st, "C-b", 4),
        KeyAction::Run("send-prefix".into())
    );
}

#[test]
fn unbound_after_the_prefix_is_dropped_not_typed() {
    let mut st = KeyTables::default();
    press(&mut st, "C-b", 0);
    assert_eq!(press(&mut st, "y", 1), KeyAction::Drop);
    assert_eq!(st.table(), "root");
    assert_eq!(press(&mut st, "y", 2), KeyAction::Forward("y".into()));
}

#[test]
fn root_bindings_run_without_the_prefix() {
    let mut st = KeyTables::default();
    assert_eq!(press(&mut st, "M-x", 0), KeyAction::Run("kill-pane".into()));
    assert_eq!(
        press(&mut st, "Enter", 1),
        KeyAction::Forward("Enter".into())
    );
}

#[test]
fn repeatable_bindings_repeat_within_repeat_time() {
    let mut st = KeyTables::default();
    press(&mut st, "C-b", 0);
    assert_eq!(
        press(&mut st, "Up", 10),
        KeyAction::Run("select-pane -U".into())
    );
    // Within 500 ms: Up again without the prefix, still in the prefix table.
    assert_eq!(
        press(&mut st, "Up", 400),
        KeyAction::Run("select-pane -U".into())
    );
    assert_eq!(
        press(&mut st, "M-Left", 800),
        KeyAction::Run("resize-pane -L 5".into())
    );
    // A non-repeating key ends the repeat and is tried in root: typed.
    assert_eq!(press(&mut st, "c", 900), KeyAction::Forward("c".into()));
    assert_eq!(st.table(), "root");
    // After repeat-time the repeat is over: Up goes to the pane.
    press(&mut st, "C-b", 1000);
    press(&mut st, "Up", 1001);
    assert_eq!(press(&mut st, "Up", 1600), KeyAction::Forward("Up".into()));
}

#[test]
fn a_pane_in_copy_mode_uses_the_mode_table() {
    let b = bindings();
    let o = KeyOptions::default();
    let mut st = KeyTables::default();
    assert_eq!(
        st.press(&b, &o, "q", Some("copy-mode"), 0),
        KeyAction::Run("send-keys -X cancel".into())
    );
    // Unbound in the mode table: dropped (not typed into the program).
    assert_eq!(st.press(&b, &o, "z", Some("copy-mode"), 1), KeyAction::Drop);
    // Root bindings still apply, and so does the prefix.
    assert_eq!(
        st.press(&b, &o, "M-x", Some("copy-mode"), 2),
        KeyAction::Run("kill-pane".into())
    );
    assert_eq!(
        st.press(&b, &o, "C-b", Some("copy-mode"), 3),
        KeyAction::Table("prefix".into())
    );
    assert_eq!(
        st.press(&b, &o, "%", Some("copy-mode"), 4),
        KeyAction::Run("split-window -h".into())
    );
}

#[test]
fn another_prefix_and_prefix2() {
    let b = bindings();
    let o = KeyOptions {
        prefix: "C-a".into(),
        prefix2: Some("F12".into()),
        ..KeyOptions::default()
    };
    let mut st = KeyTables::default();
    assert_eq!(
        st.press(&b, &o, "C-b", None, 0),
        KeyAction::Forward("C-b".into())
    );
    assert_eq!(
        st.press(&b, &o, "C-a", None, 1),
        KeyAction::Table("prefix".into())
    );
    assert_eq!(
        st.press(&b, &o, "\"", None, 2),
        KeyAction::Run("split-window".into())
    );
    assert_eq!(
        st.press(&b, &o, "F12", None, 3),
        KeyAction::Table("prefix".into())
    );
    assert_eq!(
        st.press(&b, &o, "c", None, 4),
        KeyAction::Run("new-window".into())
    );
}

#[test]
fn the_any_binding_matches_unbound_keys() {
    let (b, _) = KeyBindings::parse(
        "bind-key -T root Any display-message hi\nbind-key -T root a send-keys A\n",
    );
    let mut st = KeyTables::default();
    let o = KeyOptions::default();
    assert_eq!(
        st.press(&b, &o, "a", None, 0),
        KeyAction::Run("send-keys A".into())
    );
    assert_eq!(
        st.press(&b, &o, "q", None, 1),
        KeyAction::Run("display-message hi".into())
    );
}
