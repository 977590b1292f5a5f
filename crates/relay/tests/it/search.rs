//! Issue 11 against a real relay (SQLite, and PostgreSQL when
//! TEST_DATABASE_URL is set): what a pane printed is indexed off the hot
//! path and found by `GET /api/search` (its owner only, query syntax as
//! text, bad queries a 400); `GET /api/sessions/{id}/asciicast` exports a
//! pane as asciicast v2, to its owner only.

use std::time::{Duration, Instant};

use bytes::Bytes;
use protocol::wire::{Frame, Record, RecordBody};

use crate::harness::{TestRelay, databases, header_value, http, unique};
use crate::principal::new_principal;

fn topology(cols: u16, rows: u16) -> Bytes {
    Bytes::from(format!(
        r#"{{"session":"$1","name":"tb_proj__main","active_window":"@1","windows":[{{"id":"@1","index":0,"name":"sh","active":true,"layout":"","visible_layout":"","flags":"*","active_pane":"%1","panes":[{{"id":"%1","x":0,"y":0,"cols":{cols},"rows":{rows},"title":""}}]}}]}}"#
    ))
}

fn output(seq: u64, time: u64, text: &'static str) -> Record {
    Record {
        seq,
        time,
        body: RecordBody::Output {
            pane: tmux_cc::PaneId(1),
            bytes: Bytes::from_static(text.as_bytes()),
        },
    }
}

/// A session of `user`'s runner with a few frames of output: a prompt
/// typed one frame per key, then `ls` output with a word to find.
async fn session_with_output(relay: &TestRelay, user: &str, runner: &str, word: &str) -> i64 {
    let store = relay.handle().store();
    let idea = unique("proj");
    let s = store
        .upsert_session(runner, user, &idea, "main", "tb_proj__main")
        .await
        .expect("session")
        .id;
    let t0 = 1_765_000_000_000u64;
    let listing: &'static str =
        Box::leak(format!("\x1b[1;34mtarget\x1b[0m  {word}_info.json\r\n$ ").into_boxed_str());
    let frames = [
        vec![
            Record {
                seq: 1,
                time: t0,
                body: RecordBody::Topology(topology(100, 30)),
            },
            output(2, t0 + 10, "$ "),
        ],
        vec![output(3, t0 + 500, "l")],
        vec![output(4, t0 + 700, "s")],
        vec![output(5, t0 + 900, "\r\n"), output(6, t0 + 1_000, listing)],
    ];
    for records in frames {
        let frame = Frame::batch(records).expect("batch");
        store
            .append_frame(s, frame.first_seq, frame.last_seq, &frame.encode(true))
            .await
            .expect("append");
    }
    s
}

async fn search(relay: &TestRelay, cookie: &str, q: &str) -> (u16, serde_json::Value) {
    let path = format!("/api/search?q={q}");
    let (status, _, body) = http(relay.addr(), "GET", &path, &[("cookie", cookie)]).await;
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, json)
}

#[tokio::test]
async fn issue_11_search_finds_what_a_pane_printed_for_its_owner_only() {
    for db in databases() {
        let mut relay = TestRelay::start_with(&db, |c| {
            c.search_interval = Some(Duration::from_millis(50));
        })
        .await;
        let a = new_principal(&relay).await;
        let b = new_principal(&relay).await;
        let word = unique("needle").replace('-', "");
        let s = session_with_output(&relay, &a.user_id, &a.runner_id, &word).await;

        // Indexed within a few passes, found by a word inside a file name.
        let deadline = Instant::now() + Duration::from_secs(15);
        let hits = loop {
            let (status, json) = search(&relay, &a.cookie, &word).await;
            assert_eq!(status, 200, "{json}");
            let results = json["results"].as_array().cloned().unwrap_or_default();
            if !results.is_empty() {
                break results;
            }
            assert!(Instant::now() < deadline, "{db:?}: never indexed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(hits.len(), 1, "{hits:?}");
        let hit = &hits[0];
        assert_eq!(hit["session_id"], s.to_string());
        assert_eq!(hit["pane"], "%1");
        assert_eq!(hit["line"], format!("target  {word}_info.json"));
        assert_eq!(
            hit["before"],
            serde_json::json!(["$ ls"]),
            "typed one key per frame"
        );
        assert_eq!(hit["seq"], 6);
        assert_eq!(hit["at"], 1_765_000_001_000u64);

        // Another account finds nothing; no login is a 401.
        let (status, json) = search(&relay, &b.cookie, &word).await;
        assert_eq!(
            (status, json["results"].as_array().map(Vec::len)),
            (200, Some(0))
        );
        let (status, _, _) = http(relay.addr(), "GET", &format!("/api/search?q={word}"), &[]).await;
        assert_eq!(status, 401);
        // Bad queries are 400s with a reason; query syntax is text.
        for q in ["", "%20%20", &"x".repeat(300)] {
            let (status, json) = search(&relay, &a.cookie, q).await;
            assert_eq!(status, 400, "{q:?}: {json}");
            assert!(json["error"].is_string());
        }
        for q in [
            "%22NOT%20(",
            "a*%20OR%20b",
            "NEAR(x",
            "col:umn%20-x",
            "%27%3B--",
        ] {
            let (status, json) = search(&relay, &a.cookie, q).await;
            assert_eq!(status, 200, "{q:?}: {json}");
        }
        relay.stop().await;
    }
}

#[tokio::test]
async fn issue_11_asciicast_export_of_a_pane_for_its_owner_only() {
    for db in databases() {
        let mut relay = TestRelay::start(&db).await;
        let a = new_principal(&relay).await;
        let b = new_principal(&relay).await;
        let s = session_with_output(&relay, &a.user_id, &a.runner_id, "export").await;
        let path = format!("/api/sessions/{s}/asciicast?pane=%251");
        let (status, headers, body) =
            http(relay.addr(), "GET", &path, &[("cookie", &a.cookie)]).await;
        assert_eq!(status, 200);
        assert_eq!(
            header_value(&headers, "content-type"),
            Some("application/x-asciicast")
        );
        let text = String::from_utf8(body).expect("utf-8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines[0]["version"], 2);
        assert_eq!(
            (lines[0]["width"].as_u64(), lines[0]["height"].as_u64()),
            (Some(100), Some(30))
        );
        let events: Vec<(f64, String)> = lines[1..]
            .iter()
            .map(|e| {
                (
                    e[0].as_f64().expect("time"),
                    e[2].as_str().expect("data").to_string(),
                )
            })
            .collect();
        let played: String = events.iter().map(|(_, d)| d.as_str()).collect();
        assert_eq!(
            played,
            "$ ls\r\n\x1b[1;34mtarget\x1b[0m  export_info.json\r\n$ "
        );
        assert_eq!(events[0].0, 0.0);
        assert_eq!(events[1].0, 0.49, "times are the records' own");
        assert!(events.windows(2).all(|w| w[0].0 <= w[1].0));

        for (cookie, want) in [(b.cookie.as_str(), 404), ("", 401)] {
            let (status, _, _) = http(relay.addr(), "GET", &path, &[("cookie", cookie)]).await;
            assert_eq!(status, want);
        }
        let (status, _, _) = http(
            relay.addr(),
            "GET",
            &format!("/api/sessions/{s}/asciicast?pane=bad"),
            &[("cookie", &a.cookie)],
        )
        .await;
        assert_eq!(status, 400);
        relay.stop().await;
    }
}
