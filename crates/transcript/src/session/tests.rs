use super::*;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn output(p: u32, s: &str) -> Event {
    Event::Output {
        pane: PaneId(p),
        data: b(s),
    }
}

fn layout(w: u32, l: &str) -> Event {
    Event::LayoutChange {
        window: WindowId(w),
        layout: b(l),
        visible_layout: Some(b(l)),
        flags: Some(b("*")),
    }
}

fn feed(m: &mut SessionModel, events: &[Event]) -> Vec<Record> {
    events.iter().flat_map(|e| m.apply(e)).collect()
}

#[test]
fn sequence_is_gap_free_from_the_configured_start() {
    let mut m = SessionModel::new(SessionConfig {
        first_seq: 41,
        ..SessionConfig::default()
    });
    let recs = feed(
        &mut m,
        &[
            Event::WindowAdd {
                window: WindowId(0),
            },
            Event::SessionChanged {
                session: SessionId(0),
                name: b("main"),
            },
            output(0, "hello"),
            layout(0, "8205,80x24,0,0{40x24,0,0,0,39x24,41,0,1}"),
            output(1, "right"),
        ],
    );
    let seqs: Vec<u64> = recs.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (41..41 + seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(m.last_seq(), 41 + seqs.len() as u64 - 1);
}

#[test]
fn layout_sizes_panes_and_topology_matches_protocol_shape() {
    let mut m = SessionModel::new(SessionConfig::default());
    feed(
        &mut m,
        &[
            Event::WindowAdd {
                window: WindowId(1),
            },
            Event::SessionChanged {
                session: SessionId(1),
                name: b("tb_local_primary"),
            },
            Event::SessionWindowChanged {
                session: SessionId(1),
                window: WindowId(1),
            },
            layout(
                1,
                "d67e,80x24,0,0{40x24,0,0,0,39x24,41,0[39x12,41,0,1,39x11,41,13,2]}",
            ),
            Event::WindowPaneChanged {
                window: WindowId(1),
                pane: PaneId(2),
            },
        ],
    );
    m.set_window_info(WindowId(1), Some(0), b"bash");
    assert_eq!(m.pane(PaneId(2)).map(PaneModel::size), Some((39, 11)));
    assert_eq!(m.pane_window(PaneId(1)), Some(WindowId(1)));
    let json = serde_json::to_value(m.topology()).expect("serializes");
    assert_eq!(json["session"], "$1");
    assert_eq!(json["name"], "tb_local_primary");
    assert_eq!(json["active_window"], "@1");
    let w = &json["windows"][0];
    assert_eq!(w["id"], "@1");
    assert_eq!(w["index"], 0);
    assert_eq!(w["name"], "bash");
    assert_eq!(w["active"], true);
    assert_eq!(w["flags"], "*");
    assert_eq!(w["active_pane"], "%2");
    assert_eq!(
        w["panes"][2],
        serde_json::json!({"id":"%2","x":41,"y":13,"cols":39,"rows":11,"title":""})
    );
}

#[test]
fn a_pane_left_out_of_a_layout_is_dead_and_a_moved_pane_keeps_its_screen() {
    let mut m = SessionModel::new(SessionConfig::default());
    feed(
        &mut m,
        &[
            layout(0, "8205,80x24,0,0{40x24,0,0,0,39x24,41,0,1}"),
            output(1, "keep me"),
        ],
    );
    feed(&mut m, &[layout(0, "b25d,80x24,0,0,0")]);
    assert_eq!(
        m.live_panes().map(|(id, _)| id).collect::<Vec<_>>(),
        vec![PaneId(0)]
    );
    feed(&mut m, &[layout(2, "b25e,39x24,0,0,1")]);
    assert_eq!(m.pane_window(PaneId(1)), Some(WindowId(2)));
    assert_eq!(
        m.pane(PaneId(1))
            .map(|p| p.rows_text()[0].clone())
            .as_deref(),
        Some("keep me")
    );
}

#[test]
fn records_rebuild_the_session_in_a_view() {
    let mut m = SessionModel::new(SessionConfig::default());
    let events = [
        Event::WindowAdd {
            window: WindowId(0),
        },
        output(0, "before layout\r\n"),
        layout(0, "8205,80x24,0,0{40x24,0,0,0,39x24,41,0,1}"),
        output(0, "\x1b[31mred"),
        output(1, "\x1b[?1049hfull screen"),
    ];
    let mut view = SessionView::new(100, 0);
    for r in feed(&mut m, &events) {
        view.apply(&r).expect("in order");
    }
    for (id, pane) in m.live_panes() {
        let v = view.pane(id).expect("view has the pane");
        assert_eq!(v.rows_ansi(), pane.rows_ansi());
        assert_eq!(v.cursor(), pane.cursor());
    }
    let snap = m.snapshot();
    assert_eq!(snap.seq, m.last_seq());
    let from_snap = SessionView::from_snapshot(100, &snap).expect("valid");
    assert_eq!(
        from_snap.pane(PaneId(1)).map(PaneModel::rows_text),
        view.pane(PaneId(1)).map(PaneModel::rows_text)
    );
    assert!(snap.frame().is_some());
}

#[test]
fn view_refuses_gaps_and_ignores_duplicates() {
    let mut v = SessionView::new(10, 5);
    let r = |seq| Record {
        time: 0,
        seq,
        body: RecordBody::Topology(Bytes::from_static(b"{}")),
    };
    assert_eq!(v.apply(&r(7)), Err(ApplyError::Gap { last: 5, got: 7 }));
    assert_eq!(v.apply(&r(5)), Ok(()));
    assert_eq!(v.apply(&r(6)), Ok(()));
    assert_eq!(v.last_seq, 6);
}
