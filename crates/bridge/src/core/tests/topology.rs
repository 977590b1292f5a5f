//! Windows and clients: `list-windows` after the events that need it, its
//! reply applied to the model; `list-clients` on attach and detach and
//! every 5 s, counting terminals only.

use super::*;

#[test]
fn windows_are_listed_and_applied() {
    let mut h = H::ready();
    let e = h.ev(Event::WindowAdd {
        window: WindowId(1),
    });
    assert!(cmds(&e)[0].starts_with("list-windows -t '$0'"), "{e:?}");
    h.drained();
    h.reply(
        true,
        &[
            &format!("@0 0 {ONE_PANE} {ONE_PANE} * 1 shell"),
            "@1 3 b25e,80x24,0,0,4 b25e,80x24,0,0,4 - 0 my window",
            "garbage",
        ],
    );
    let e = h.drained();
    assert_eq!(bundles(&e), [(PaneId(4), 10_000, false)], "the new pane");
    let top = h.m.model().topology();
    let w = top
        .windows
        .iter()
        .find(|w| w.id == WindowId(1))
        .expect("@1");
    assert_eq!((w.index, w.name.as_str()), (Some(3), "my window"));
}

#[test]
fn clients_are_counted_without_control_clients_and_ourselves() {
    let mut h = H::ready();
    let detach = |h: &mut H| {
        h.ev(Event::ClientDetached {
            client: Bytes::from_static(b"/dev/pts/1"),
        })
    };
    assert_eq!(cmds(&detach(&mut h)).len(), 1);
    // Ours, another control client, a tty client that is our pid (a stale
    // line), terminals on other sessions or on none yet are not people
    // attached to this session.
    let e = h.reply(
        true,
        &[
            "1 100 $0 ",
            "1 555 $0 ",
            "0 100 $0 /dev/pts/4",
            "0 321 $0 /dev/pts/2",
            "0 322 $1 /dev/pts/3",
            "0 323  /dev/pts/5",
            "bad",
        ],
    );
    assert_eq!(
        texts(&e),
        [ToRelay::Status {
            attached_clients: 1
        }]
    );
    detach(&mut h);
    assert!(texts(&h.clients(&[321])).is_empty(), "unchanged: no status");
    assert_eq!(h.m.attached_clients(), 1);
}

#[test]
fn clients_are_listed_every_five_seconds() {
    let mut h = H::new();
    h.input(Input::Start);
    h.clients(&[]);
    assert_eq!(h.m.next_wakeup(), Some(h.t0 + Duration::from_secs(5)));
    h.at(4999);
    assert!(h.tick().is_empty());
    h.at(5000);
    let e = h.tick();
    assert!(cmds(&e)[0].starts_with("list-clients"));
    assert_eq!(h.m.next_wakeup(), Some(h.t0 + Duration::from_secs(10)));
}

#[test]
fn a_tick_at_the_wakeup_moves_the_wakeup_on() {
    // Whatever is due, handling it moves the next wakeup past now (the
    // loop would spin otherwise).
    let mut h = H::ready();
    h.relay(RelayMsg::Resize {
        cols: 100,
        rows: 30,
    });
    h.output(0, b"changed");
    h.drained();
    for _ in 0..10 {
        let at = h.m.next_wakeup().expect("a wakeup");
        h.now = at;
        h.tick();
        for (pane, _, _) in bundles(&h.drained()) {
            h.answer_resync(pane, &["x"], false);
        }
        assert!(h.m.next_wakeup().expect("clients") > at);
    }
}

#[test]
fn a_changed_count_is_reported_without_a_connection_too() {
    let mut h = H::ready();
    h.input(Input::RelayLost { generation: 1 });
    h.ev(Event::ClientDetached {
        client: Bytes::from_static(b"/dev/pts/1"),
    });
    let e = h.clients(&[3, 4]);
    assert_eq!(
        texts(&e),
        [ToRelay::Status {
            attached_clients: 2
        }]
    );
    // And again, with the current count, when the relay opens the session.
    let e = h.input(Input::RelayOpened {
        generation: 2,
        last_seq: 2,
    });
    assert_eq!(
        texts(&e),
        [ToRelay::Status {
            attached_clients: 2
        }]
    );
}
