//! The naming scheme against a real tmux: hostile (idea, slot) pairs make
//! sessions whose names tmux stores unchanged and that parse back.

use tmux_cc::SessionId;
use tmux_cc::command::{self, Target};
use tmux_cc::naming::{self, BRIDGE_ID_OPTION, NamingError, SessionName};

use crate::real_tmux::Tmux;

#[test]
fn hostile_ideas_round_trip_through_tmux() {
    let mut t = Tmux::start(|_| "cat".to_owned());
    let dir = t.dir.path().display().to_string();
    let marker = format!("#(touch {dir}/pwned)");
    let pairs: Vec<(&str, &str)> = vec![
        ("a:b", "1"),
        ("a.b", "c.d"),
        ("#{session_id}", "#{x}"),
        ("$x", "$HOME"),
        ("with space", "tab\there"),
        ("semi;colon", "'quote\""),
        ("café", "😀"),
        ("-flag", "-"),
        ("a_b", "__"),
        ("~", "~root"),
        (&marker, "slot"),
        ("idea/with/slash", "50%"),
    ];
    let mut made = Vec::new();
    for (idea, slot) in &pairs {
        let name = naming::session_name(idea, slot).expect("name");
        // New session, targeted by the `$id` tmux prints.
        let sid =
            t.text(&command::new_session(&name, 80, 24, Some(&["cat"])).expect("new-session"));
        let sid: SessionId = String::from_utf8_lossy(&sid).parse().expect("$id");
        let target = Target::Session(sid);
        let stored = t.text(&command::display_message(&target, "#{session_name}").expect("fmt"));
        assert_eq!(
            stored,
            name.as_str().as_bytes(),
            "tmux changed the name of ({idea:?}, {slot:?})"
        );
        let stored = String::from_utf8_lossy(&stored).into_owned();
        assert_eq!(
            naming::parse_name(&stored),
            Ok((idea.to_string(), slot.to_string()))
        );
        // The logical id is stored verbatim in the user option.
        let id = naming::logical_id(idea, slot).expect("logical id");
        t.ok(&command::set_option_user(&target, BRIDGE_ID_OPTION, &id).expect("set"));
        // `=NAME` finds exactly this session.
        let by_name = Target::SessionName(name.clone());
        let sid_by_name =
            t.text(&command::display_message(&by_name, "#{session_id}").expect("fmt"));
        assert_eq!(sid_by_name, sid.to_string().as_bytes());
        made.push((sid, id, idea.to_string(), slot.to_string()));
    }
    // A restarted bridge rebuilds its map from list-sessions.
    let listing = t.text(&command::list_sessions("#{session_id} #{@bridge_id}").expect("fmt"));
    let listing = String::from_utf8_lossy(&listing).into_owned();
    for (sid, id, idea, slot) in &made {
        let line = format!("{sid} {id}");
        assert!(
            listing.lines().any(|l| l == line),
            "{line:?} not in {listing:?}"
        );
        assert_eq!(
            naming::parse_logical_id(id),
            Ok((idea.clone(), slot.clone()))
        );
    }
    // A prefix of a name does not match with `=`.
    let first = naming::session_name("a:b", "1").expect("name");
    let prefix = SessionName::new(&first.as_str()[..first.as_str().len() - 1]).expect("prefix");
    let scope = command::WindowScope::Session(Target::SessionName(prefix));
    let r = t.send(&command::list_windows(&scope, "#{session_id}").expect("fmt"));
    assert!(!r[0].success, "=prefix must not match");
    let scope = command::WindowScope::Session(Target::SessionName(first.clone()));
    assert_eq!(
        t.text(&command::list_windows(&scope, "#{session_id}").expect("fmt")),
        b"$1"
    );
    // The option is readable through `=NAME:` too.
    let id = t.text(
        &command::show_option(&Target::SessionName(first.clone()), BRIDGE_ID_OPTION).expect("show"),
    );
    assert_eq!(id, naming::logical_id("a:b", "1").expect("id").as_bytes());
    // Same check with a plain client: has-session -t =NAME.
    let out = t.plain(&["has-session", "-t", &format!("={}", first.as_str())]);
    assert!(out.status.success());
    assert!(
        t.path("pwned").metadata().is_err(),
        "a name ran a shell command"
    );
    t.assert_alive();
}

#[test]
fn empty_parts_are_refused() {
    assert_eq!(
        naming::session_name("", "x"),
        Err(NamingError::Empty("idea"))
    );
    assert_eq!(
        naming::session_name("x", ""),
        Err(NamingError::Empty("slot"))
    );
    assert!(naming::logical_id("", "x").is_err());
}
