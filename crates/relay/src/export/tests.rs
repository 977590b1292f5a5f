use super::*;
use bytes::Bytes;

fn topo(cols: u16, rows: u16) -> Record {
    let json = format!(
        r#"{{"session":"$1","name":"s","active_window":"@1","windows":[{{"id":"@1","index":0,"name":"w","active":true,"layout":"","visible_layout":"","flags":"*","active_pane":"%3","panes":[{{"id":"%3","x":0,"y":0,"cols":{cols},"rows":{rows},"title":""}},{{"id":"%4","x":0,"y":0,"cols":1,"rows":1,"title":""}}]}}]}}"#
    );
    Record {
        seq: 0,
        time: 0,
        body: RecordBody::Topology(Bytes::from(json)),
    }
}

fn out(pane: &str, time: u64, bytes: &'static [u8]) -> Record {
    Record {
        seq: 0,
        time,
        body: RecordBody::Output {
            pane: pane.parse().expect("pane"),
            bytes: Bytes::from_static(bytes),
        },
    }
}

fn at(mut r: Record, time: u64) -> Record {
    r.time = time;
    r
}

fn run(range: CastRange, records: &[Record]) -> Vec<serde_json::Value> {
    let mut w = CastWriter::new(range);
    let mut lines = Vec::new();
    for r in records {
        lines.extend(w.record(r));
    }
    lines.extend(w.finish());
    lines
        .iter()
        .map(|l| {
            assert!(l.ends_with('\n'));
            serde_json::from_str(l).expect("json line")
        })
        .collect()
}

#[test]
fn header_output_resize_and_utf8_across_records() {
    let lines = run(
        CastRange::default(),
        &[
            at(topo(120, 40), 10_000),
            out("%3", 10_500, b"hello \xc3"),
            out("%4", 10_600, b"other pane"),
            out("%3", 11_000, b"\xa9\r\n"),
            at(topo(100, 30), 12_000),
            out("%3", 12_250, b"\xff"),
        ],
    );
    assert_eq!(lines[0]["version"], 2);
    assert_eq!(
        (lines[0]["width"].as_u64(), lines[0]["height"].as_u64()),
        (Some(120), Some(40))
    );
    assert_eq!(lines[1], serde_json::json!([0.0, "o", "hello "]));
    assert_eq!(lines[2], serde_json::json!([0.5, "o", "é\r\n"]));
    assert_eq!(lines[3], serde_json::json!([1.5, "r", "100x30"]));
    assert_eq!(lines[4], serde_json::json!([1.75, "o", "\u{fffd}"]));
    assert_eq!(lines.len(), 5);
}

#[test]
fn a_range_keeps_its_window_and_times_never_run_backwards() {
    let lines = run(
        CastRange {
            pane: Some("%3".parse().expect("pane")),
            from: Some(20_000),
            to: Some(30_000),
        },
        &[
            at(topo(80, 24), 1_000),
            out("%3", 5_000, b"before"),
            out("%3", 21_000, b"a"),
            out("%3", 20_500, b"b"),
            out("%3", 31_000, b"after"),
            out("%3", 32_000, b"after"),
        ],
    );
    assert_eq!(lines[0]["width"], 80);
    assert_eq!(lines[1], serde_json::json!([1.0, "o", "a"]));
    assert_eq!(lines[2], serde_json::json!([1.0, "o", "b"]));
    assert_eq!(lines.len(), 3);
}

#[test]
fn no_output_gives_a_header_alone() {
    let lines = run(CastRange::default(), &[at(topo(90, 20), 1_000)]);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["width"], 90);
}
