//! Storage tests (issue 3): every test runs against SQLite (a fresh temp
//! file) and PostgreSQL (a fresh database on the server of
//! `TEST_DATABASE_URL`, dropped at the end). When `CI` is set and
//! `TEST_DATABASE_URL` is not, the tests fail instead of skipping
//! PostgreSQL. Separate from `tests/it/` (the transcript core's tests).

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::future::Future;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use sqlx::Connection;
use store::{
    Appended, CommitOptions, Db, FrameCommitter, NewFrame, RetentionPolicy, Since, Store,
    StoreError, StoredFrame, TerminalSessionId, spawn_pruner,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------
// Harness

/// One database a test runs against.
struct Target {
    dialect: &'static str,
    url: String,
    _dir: Option<tempfile::TempDir>,
    /// (admin url, database name) to drop at the end.
    pg: Option<(String, String)>,
}

impl Target {
    async fn cleanup(self) {
        if let Some((admin, name)) = &self.pg {
            let mut conn = sqlx::PgConnection::connect(admin)
                .await
                .expect("connect to TEST_DATABASE_URL for cleanup");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .expect("drop test database");
        }
    }
}

fn pg_admin_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but TEST_DATABASE_URL is not: the PostgreSQL storage tests must run \
                 in CI (run .ci/pg-setup and export the URL it prints)"
            );
            None
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

async fn targets(test: &str) -> Vec<Target> {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let mut out = vec![Target {
        dialect: "sqlite",
        url,
        _dir: Some(dir),
        pg: None,
    }];
    if let Some(admin) = pg_admin_url() {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let short: String = test
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(32)
            .collect();
        let name = format!(
            "tb_{}_{}_{}",
            short.to_ascii_lowercase(),
            std::process::id(),
            n
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let base = admin.split('?').next().unwrap_or(&admin);
        let slash = base.rfind('/').expect("database url has a path");
        let url = format!("{}/{name}", &base[..slash]);
        out.push(Target {
            dialect: "postgres",
            url,
            _dir: None,
            pg: Some((admin, name)),
        });
    }
    out
}

/// Runs `f` once per database with a freshly migrated store; drops the
/// database afterwards even when `f` panics, then re-raises the panic.
async fn each_db<F, Fut>(test: &str, f: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    for target in targets(test).await {
        eprintln!("--- {test} on {}", target.dialect);
        let store = Store::connect(&target.url).await.expect("connect");
        assert_eq!(store.dialect(), target.dialect);
        let res = tokio::spawn(f(store.clone())).await;
        store.close().await;
        target.cleanup().await;
        if let Err(e) = res {
            match e.try_into_panic() {
                Ok(p) => std::panic::resume_unwind(p),
                Err(e) => panic!("test task failed: {e}"),
            }
        }
    }
}

async fn session(store: &Store, slot: &str) -> TerminalSessionId {
    store
        .upsert_session(
            "runner-1",
            "user-1",
            "local",
            slot,
            &format!("tb_local_{slot}"),
        )
        .await
        .expect("upsert")
        .id
}

/// Deterministic frame bytes for records `first..=last`, 1 to 4 KiB, with
/// every byte value present (the store must not touch them).
fn payload(first: u64, last: u64) -> Vec<u8> {
    let len = 1024 + (first * 997 % 3072) as usize;
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&first.to_le_bytes());
    v.extend_from_slice(&last.to_le_bytes());
    let mut x = first.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v
}

async fn append(store: &Store, s: TerminalSessionId, first: u64, last: u64) {
    let r = store
        .append_frame(s, first, last, &payload(first, last))
        .await;
    assert_eq!(r.expect("append"), Appended::Stored, "{first}..={last}");
}

fn ranges(list: &[StoredFrame]) -> Vec<(u64, u64)> {
    list.iter().map(|f| (f.first_seq, f.last_seq)).collect()
}

/// Checks that `since(k)` hands a client at `k` exactly records
/// `k+1..=head`: gap-free, no duplicate, bytes intact.
fn check_since(k: u64, head: u64, since: &Since) {
    let (mut next, list) = match since {
        Since::Frames(list) => (k + 1, list),
        Since::Snapshot { snapshot, frames } => {
            assert!(
                snapshot.at_seq >= k,
                "snapshot at {} < k {k}",
                snapshot.at_seq
            );
            assert_eq!(
                snapshot.bytes.as_ref(),
                snap_payload(snapshot.at_seq).as_slice()
            );
            (snapshot.at_seq + 1, frames)
        }
    };
    for f in list {
        assert_eq!(
            f.first_seq,
            next,
            "k={k}: gap or duplicate in {:?}",
            ranges(list)
        );
        assert_eq!(
            f.bytes.as_ref(),
            payload(f.first_seq, f.last_seq).as_slice()
        );
        next = f.last_seq + 1;
    }
    assert_eq!(next - 1, head, "k={k}: does not reach head");
}

fn snap_payload(at: u64) -> Vec<u8> {
    format!("snapshot@{at}").into_bytes().repeat(50)
}

// ---------------------------------------------------------------------------
// Sessions

#[tokio::test]
async fn sessions_upsert_lookup_and_timestamps() {
    each_db("sessions", |store| async move {
        let a = store
            .upsert_session("r1", "u1", "local", "primary", "tb_a")
            .await
            .unwrap();
        assert_eq!(
            (a.last_seq, a.last_connected_at, a.last_detached_at),
            (0, None, None)
        );
        assert!(
            a.created_at > 1_600_000_000_000,
            "created_at in ms: {}",
            a.created_at
        );
        // Same (runner, idea, slot): same row, new tmux session name.
        let again = store
            .upsert_session("r1", "u1", "local", "primary", "tb_b")
            .await
            .unwrap();
        assert_eq!(again.id, a.id);
        assert_eq!(again.tmux_session, "tb_b");
        let other = store
            .upsert_session("r1", "u1", "local", "second", "tb_c")
            .await
            .unwrap();
        assert_ne!(other.id, a.id);
        let elsewhere = store
            .upsert_session("r2", "u2", "local", "primary", "tb_d")
            .await
            .unwrap();
        assert_ne!(elsewhere.id, a.id);
        // Another user never takes over an existing transcript.
        match store
            .upsert_session("r1", "u2", "local", "primary", "tb_e")
            .await
        {
            Err(StoreError::OwnerMismatch { id }) => assert_eq!(id, a.id),
            other => panic!("expected OwnerMismatch, got {other:?}"),
        }
        let mine: Vec<_> = store
            .sessions_for_user("u1")
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(mine, vec![a.id, other.id]);
        assert!(store.sessions_for_user("nobody").await.unwrap().is_empty());

        store.mark_connected(a.id, 1_700_000_000_123).await.unwrap();
        store.mark_detached(a.id, 1_700_000_000_456).await.unwrap();
        let got = store.session(a.id).await.unwrap().expect("exists");
        assert_eq!(got.last_connected_at, Some(1_700_000_000_123));
        assert_eq!(got.last_detached_at, Some(1_700_000_000_456));
        assert_eq!(got.tmux_session, "tb_b");
        assert_eq!(store.session(999_999).await.unwrap(), None);
        assert!(matches!(
            store.mark_connected(999_999, 1).await,
            Err(StoreError::NoSuchSession(999_999))
        ));
    })
    .await;
}

#[tokio::test]
async fn unsupported_url_is_refused() {
    match Store::connect("mysql://user:secret@host/db").await {
        Err(StoreError::UnsupportedUrl { url }) => assert!(!url.contains("secret"), "{url}"),
        other => panic!("expected UnsupportedUrl, got {other:?}"),
    }
}

#[tokio::test]
async fn sqlite_file_and_missing_directories_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/tmux-bridge/relay.db");
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let s = session(&store, "dir").await;
    append(&store, s, 1, 1).await;
    store.close().await;
    assert!(path.is_file());
    let mode: String = {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn memory_database_works_across_calls() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let s = session(&store, "mem").await;
    append(&store, s, 1, 2).await;
    assert_eq!(store.last_seq(s).await.unwrap(), 2);
}

// ---------------------------------------------------------------------------
// Appends

#[tokio::test]
async fn append_is_gap_free_and_idempotent() {
    each_db("append", |store| async move {
        let s = session(&store, "primary").await;
        append(&store, s, 1, 3).await;
        append(&store, s, 4, 4).await;
        append(&store, s, 5, 9).await;
        assert_eq!(store.last_seq(s).await.unwrap(), 9);
        assert_eq!(store.session(s).await.unwrap().unwrap().last_seq, 9);

        // Resends of stored frames: Ok, nothing written.
        for (f, l) in [(1, 3), (4, 4), (5, 9)] {
            let r = store.append_frame(s, f, l, &payload(f, l)).await.unwrap();
            assert_eq!(r, Appended::Duplicate);
        }
        let all = store.frames_after(s, 0, u64::MAX).await.unwrap();
        assert_eq!(ranges(&all), vec![(1, 3), (4, 4), (5, 9)]);
        for f in &all {
            assert_eq!(
                f.bytes.as_ref(),
                payload(f.first_seq, f.last_seq).as_slice()
            );
        }

        match store.append_frame(s, 11, 12, b"x").await {
            Err(StoreError::Gap { expected, got }) => assert_eq!((expected, got), (10, 11)),
            other => panic!("expected Gap, got {other:?}"),
        }
        match store.append_frame(s, 8, 12, b"x").await {
            Err(StoreError::Overlap {
                first,
                last,
                stored,
            }) => assert_eq!((first, last, stored), (8, 12, 9)),
            other => panic!("expected Overlap, got {other:?}"),
        }
        assert!(matches!(
            store.append_frame(s, 0, 1, b"x").await,
            Err(StoreError::InvalidRange { .. })
        ));
        assert!(matches!(
            store.append_frame(s, 12, 10, b"x").await,
            Err(StoreError::InvalidRange { .. })
        ));
        assert!(matches!(
            store.append_frame(s, 10, u64::MAX, b"x").await,
            Err(StoreError::SeqOutOfRange(_))
        ));
        assert!(matches!(
            store.append_frame(777_777, 1, 1, b"x").await,
            Err(StoreError::NoSuchSession(777_777))
        ));
        // Refusals wrote nothing.
        assert_eq!(store.last_seq(s).await.unwrap(), 9);
        // An empty payload is stored as given.
        assert_eq!(
            store.append_frame(s, 10, 10, b"").await.unwrap(),
            Appended::Stored
        );
        let tail = store.frames_after(s, 9, u64::MAX).await.unwrap();
        assert_eq!(tail.len(), 1);
        assert!(tail[0].bytes.is_empty());
    })
    .await;
}

#[tokio::test]
async fn sessions_have_independent_sequences() {
    each_db("independent", |store| async move {
        let a = session(&store, "a").await;
        let b = session(&store, "b").await;
        append(&store, a, 1, 5).await;
        append(&store, b, 1, 1).await;
        append(&store, b, 2, 2).await;
        assert_eq!(store.last_seq(a).await.unwrap(), 5);
        assert_eq!(store.last_seq(b).await.unwrap(), 2);
        assert_eq!(
            ranges(&store.frames_after(b, 0, u64::MAX).await.unwrap()),
            vec![(1, 1), (2, 2)]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resends_store_each_frame_once() {
    each_db("concurrent", |store| async move {
        let sessions = [session(&store, "c1").await, session(&store, "c2").await];
        // Four writers per session race to append the same 60 frames: the
        // relay sees this when a bridge reconnects while an old socket is
        // still draining. Each frame must be stored exactly once.
        let mut tasks = Vec::new();
        for &s in &sessions {
            for _ in 0..4 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let mut stored = 0u32;
                    let mut seq = 1u64;
                    while seq <= 60 {
                        match store.append_frame(s, seq, seq, &payload(seq, seq)).await {
                            Ok(Appended::Stored) => {
                                stored += 1;
                                seq += 1;
                            }
                            Ok(Appended::Duplicate) => seq += 1,
                            // Another writer is behind us; wait for it.
                            Err(StoreError::Gap { .. }) => tokio::task::yield_now().await,
                            Err(e) => panic!("append {seq}: {e:?}"),
                        }
                    }
                    stored
                }));
            }
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        assert_eq!(total, 120, "every frame stored exactly once");
        for s in sessions {
            let all = store.frames_after(s, 0, u64::MAX).await.unwrap();
            assert_eq!(ranges(&all), (1..=60).map(|i| (i, i)).collect::<Vec<_>>());
        }
    })
    .await;
}

#[tokio::test]
async fn frames_after_pages_by_bytes() {
    each_db("frames_after", |store| async move {
        let s = session(&store, "p").await;
        for i in 1..=10 {
            store.append_frame(s, i, i, &[i as u8; 100]).await.unwrap();
        }
        let page = store.frames_after(s, 2, 250).await.unwrap();
        // 100 + 100 + 100 reaches the budget; the frame that crosses it is
        // the last one returned.
        assert_eq!(ranges(&page), vec![(3, 3), (4, 4), (5, 5)]);
        // A budget smaller than one frame still returns one.
        assert_eq!(
            ranges(&store.frames_after(s, 9, 1).await.unwrap()),
            vec![(10, 10)]
        );
        assert!(store.frames_after(s, 10, 1000).await.unwrap().is_empty());
        // Paging from the last returned seq walks everything once.
        let mut k = 0;
        let mut seen = Vec::new();
        loop {
            let page = store.frames_after(s, k, 300).await.unwrap();
            let Some(last) = page.last() else { break };
            k = last.last_seq;
            seen.extend(ranges(&page));
        }
        assert_eq!(seen, (1..=10).map(|i| (i, i)).collect::<Vec<_>>());
    })
    .await;
}

// ---------------------------------------------------------------------------
// Group commit (issue 16)

fn new_frame(s: TerminalSessionId, first: u64, last: u64) -> NewFrame {
    NewFrame {
        session: s,
        first_seq: first,
        last_seq: last,
        bytes: Bytes::from(payload(first, last)),
        at: Some(1_000 + i64::try_from(last).unwrap()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_stores_many_sessions_in_order_and_answers_after_commit() {
    each_db("group_commit", |store| async move {
        let committer = FrameCommitter::spawn(store.clone(), CommitOptions::default());
        let mut sessions = Vec::new();
        for i in 0..6 {
            sessions.push(session(&store, &format!("g{i}")).await);
        }
        // One producer per session, as one runner channel: it submits its
        // frames one after the other without waiting for their answers
        // (the relay keeps reading its socket), then takes the answers in
        // order. Each answer must mean "committed": since() sees it.
        let mut tasks = Vec::new();
        for &s in &sessions {
            let (store, committer) = (store.clone(), committer.clone());
            tasks.push(tokio::spawn(async move {
                let mut pending = std::collections::VecDeque::new();
                let mut seq = 0u64;
                for i in 0..200u64 {
                    let (first, last) = (seq + 1, seq + 1 + i % 3);
                    seq = last;
                    let p = committer.submit(new_frame(s, first, last)).await.unwrap();
                    pending.push_back((first, last, p));
                    // Take the answers that are in, as the relay's loop does.
                    while pending.len() > 32 {
                        let (first, last, p) = pending.pop_front().unwrap();
                        assert_eq!(p.await.unwrap(), Appended::Stored, "{first}..={last}");
                        let since = store.since(s, first - 1).await.unwrap();
                        let Since::Frames(list) = since else {
                            panic!("no snapshot stored: frames expected")
                        };
                        assert_eq!((list[0].first_seq, list[0].last_seq), (first, last));
                    }
                }
                for (first, last, p) in pending {
                    assert_eq!(p.await.unwrap(), Appended::Stored, "{first}..={last}");
                    assert!(store.last_seq(s).await.unwrap() >= last);
                }
                // A resend of stored records is a duplicate; a gap and an
                // overlap are refused, alone.
                let dup = committer.submit(new_frame(s, 5, 5)).await.unwrap();
                let gap = committer
                    .submit(new_frame(s, seq + 2, seq + 2))
                    .await
                    .unwrap();
                let over = committer.submit(new_frame(s, seq, seq + 1)).await.unwrap();
                let next = committer
                    .submit(new_frame(s, seq + 1, seq + 1))
                    .await
                    .unwrap();
                assert_eq!(dup.await.unwrap(), Appended::Duplicate);
                assert!(matches!(gap.await, Err(StoreError::Gap { .. })));
                assert!(matches!(over.await, Err(StoreError::Overlap { .. })));
                assert_eq!(next.await.unwrap(), Appended::Stored);
                seq + 1
            }));
        }
        for (t, &s) in tasks.into_iter().zip(&sessions) {
            let head = t.await.unwrap();
            assert_eq!(store.last_seq(s).await.unwrap(), head);
            let all = store.frames_after(s, 0, u64::MAX).await.unwrap();
            let mut next = 1;
            for f in &all {
                assert_eq!(f.first_seq, next, "gap-free, in order");
                assert_eq!(
                    f.bytes.as_ref(),
                    payload(f.first_seq, f.last_seq).as_slice()
                );
                next = f.last_seq + 1;
            }
            assert_eq!(next - 1, head);
            let rec = store.session(s).await.unwrap().unwrap();
            assert_eq!(
                rec.last_activity_at,
                Some(1_000 + i64::try_from(head).unwrap())
            );
        }
        let stats = committer.stats();
        eprintln!("{}: {stats:?}", store.dialect());
        assert_eq!(stats.frames, 6 * 204);
        assert!(
            stats.batches < stats.frames,
            "frames of several channels shared transactions: {stats:?}"
        );
        assert_eq!(stats.failed, 0);
    })
    .await;
}

/// One batch, one run per session (SQLite stores it in one round trip,
/// issue 16): runs that continue their session are stored together, and
/// each run that does not gets its own answer from the frame-by-frame
/// path, with nothing of it written.
#[tokio::test]
async fn one_batch_answers_each_session_on_its_own() {
    each_db("mixed_batch", |store| async move {
        let names = ["ma", "mb", "mc", "md"];
        let mut ids = Vec::new();
        for n in names {
            ids.push(session(&store, n).await);
        }
        let [a, b, c, d] = ids[..] else {
            unreachable!()
        };
        append(&store, b, 1, 2).await;
        append(&store, c, 1, 1).await;
        let nobody: TerminalSessionId = d + 1000;
        let frames = [
            // a: a run of three frames from the start.
            new_frame(a, 1, 1),
            new_frame(a, 2, 3),
            new_frame(a, 4, 4),
            // b: a resend of what is stored.
            new_frame(b, 1, 2),
            // c: a gap (2 is missing).
            new_frame(c, 3, 3),
            // d: its first frame; then a session that does not exist.
            new_frame(d, 1, 2),
            new_frame(nobody, 1, 1),
        ];
        let answers = store.append_frames(&frames).await.expect("committed");
        let answers: Vec<String> = answers.iter().map(|a| format!("{a:?}")).collect();
        assert_eq!(answers[..3], ["Ok(Stored)"; 3], "{answers:?}");
        assert_eq!(answers[3], "Ok(Duplicate)");
        assert!(answers[4].starts_with("Err(Gap"), "{answers:?}");
        assert_eq!(answers[5], "Ok(Stored)");
        assert!(answers[6].starts_with("Err(NoSuchSession"), "{answers:?}");
        for (s, head) in [(a, 4), (b, 2), (c, 1), (d, 2)] {
            assert_eq!(store.last_seq(s).await.unwrap(), head);
            check_since(0, head, &store.since(s, 0).await.unwrap());
        }
        // The activity time is the run's last frame's.
        let a_row = store.session(a).await.unwrap().expect("a");
        assert_eq!(a_row.last_activity_at, Some(1_004));
        // Then every session continues, in one more batch.
        let next = [new_frame(a, 5, 5), new_frame(b, 3, 3), new_frame(c, 2, 3)];
        for answer in store.append_frames(&next).await.expect("committed") {
            assert_eq!(answer.unwrap(), Appended::Stored);
        }
        for (s, head) in [(a, 5), (b, 3), (c, 3)] {
            check_since(0, head, &store.since(s, 0).await.unwrap());
        }
    })
    .await;
}

/// A trigger that fails the transaction inserting a frame of `size` bytes.
async fn poison_frames_of_size(store: &Store, size: usize) {
    match store.db() {
        Db::Sqlite(pool) => {
            sqlx::query(&format!(
                "CREATE TRIGGER poison BEFORE INSERT ON frames WHEN NEW.size = {size} \
                 BEGIN SELECT RAISE(ABORT, 'poisoned frame'); END"
            ))
            .execute(pool)
            .await
            .unwrap();
        }
        Db::Postgres(pool) => {
            sqlx::query(&format!(
                "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN \
                 IF NEW.size = {size} THEN RAISE EXCEPTION 'poisoned frame'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql"
            ))
            .execute(pool)
            .await
            .unwrap();
            sqlx::query(
                "CREATE TRIGGER poison BEFORE INSERT ON frames \
                 FOR EACH ROW EXECUTE FUNCTION poison()",
            )
            .execute(pool)
            .await
            .unwrap();
        }
    }
}

async fn unpoison(store: &Store) {
    match store.db() {
        Db::Sqlite(pool) => {
            sqlx::query("DROP TRIGGER poison")
                .execute(pool)
                .await
                .unwrap();
        }
        Db::Postgres(pool) => {
            sqlx::query("DROP TRIGGER poison ON frames")
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn a_failed_batch_refuses_exactly_its_frames() {
    each_db("failed_batch", |store| async move {
        let (a, b, c) = (
            session(&store, "fa").await,
            session(&store, "fb").await,
            session(&store, "fc").await,
        );
        const POISONED: usize = 7777;
        poison_frames_of_size(&store, POISONED).await;
        // One thread: the twelve frames are queued before the committer
        // runs, so batches of four are exactly [0..4], [4..8], [8..12].
        let committer =
            FrameCommitter::spawn(store.clone(), CommitOptions::default().with_batch_frames(4));
        let mut poison = new_frame(b, 3, 3);
        poison.bytes = Bytes::from(vec![0xAB; POISONED]);
        let frames = [
            new_frame(a, 1, 1),
            new_frame(b, 1, 1),
            new_frame(a, 2, 2),
            new_frame(b, 2, 2),
            // Batch 2: b's frame 3 fails its transaction.
            new_frame(a, 3, 4),
            poison,
            new_frame(a, 5, 5),
            new_frame(b, 4, 5),
            // Batch 3: another session.
            new_frame(c, 1, 1),
            new_frame(c, 2, 2),
            new_frame(c, 3, 4),
            new_frame(c, 5, 5),
        ];
        let mut pending = Vec::new();
        for f in &frames {
            pending.push(committer.submit(f.clone()).await.unwrap());
        }
        let mut answers = Vec::new();
        for p in pending {
            answers.push(p.await);
        }
        for (i, answer) in answers.iter().enumerate() {
            if (4..8).contains(&i) {
                assert!(
                    matches!(answer, Err(StoreError::Batch(_))),
                    "frame {i} shared the failed transaction: {answer:?}"
                );
            } else {
                assert_eq!(answer.as_ref().unwrap(), &Appended::Stored, "frame {i}");
            }
        }
        assert_eq!(committer.stats().batches, 3);
        assert_eq!(committer.stats().failed, 1);
        assert_eq!(store.last_seq(a).await.unwrap(), 2);
        assert_eq!(store.last_seq(b).await.unwrap(), 2);
        assert_eq!(store.last_seq(c).await.unwrap(), 5);
        // The runner resends what was not acked; now it goes through.
        unpoison(&store).await;
        for f in [
            new_frame(a, 3, 4),
            new_frame(b, 3, 3),
            new_frame(a, 5, 5),
            new_frame(b, 4, 5),
        ] {
            assert_eq!(committer.append(f).await.unwrap(), Appended::Stored);
        }
        for s in [a, b, c] {
            check_since(0, 5, &store.since(s, 0).await.unwrap());
        }
    })
    .await;
}

#[tokio::test]
async fn a_slow_store_backpressures_submitters() {
    // SQLite only: another connection holds the write lock, so the
    // committer's transaction waits; the queue fills and submit waits
    // instead of buffering. Releasing the lock lets everything through.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = Store::connect(&url).await.unwrap();
    let s = session(&store, "slow").await;
    let mut opts = CommitOptions::default();
    opts.queue_frames = 8;
    let committer = FrameCommitter::spawn(store.clone(), opts);
    let Db::Sqlite(pool) = store.db() else {
        unreachable!()
    };
    let mut blocker = pool.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let submitter = {
        let committer = committer.clone();
        tokio::spawn(async move {
            let mut pending = Vec::new();
            for seq in 1..=40u64 {
                pending.push(committer.submit(new_frame(s, seq, seq)).await.unwrap());
            }
            pending
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !submitter.is_finished(),
        "submit waits while the queue is full"
    );
    sqlx::query("COMMIT").execute(&mut *blocker).await.unwrap();
    drop(blocker);
    let pending = tokio::time::timeout(Duration::from_secs(20), submitter)
        .await
        .expect("submitting resumes")
        .unwrap();
    for p in pending {
        assert_eq!(p.await.unwrap(), Appended::Stored);
    }
    assert_eq!(store.last_seq(s).await.unwrap(), 40);
    store.close().await;
}

// ---------------------------------------------------------------------------
// Snapshots and since

#[tokio::test]
async fn snapshots_are_checked_and_found() {
    each_db("snapshots", |store| async move {
        let s = session(&store, "snap").await;
        assert_eq!(store.latest_snapshot(s).await.unwrap(), None);
        append(&store, s, 1, 4).await;
        append(&store, s, 5, 8).await;
        match store.put_snapshot(s, 9, b"x").await {
            Err(StoreError::SnapshotAhead { at, stored }) => assert_eq!((at, stored), (9, 8)),
            other => panic!("expected SnapshotAhead, got {other:?}"),
        }
        match store.put_snapshot(s, 6, b"x").await {
            Err(StoreError::SnapshotMisaligned { at, first, last }) => {
                assert_eq!((at, first, last), (6, 5, 8))
            }
            other => panic!("expected SnapshotMisaligned, got {other:?}"),
        }
        store.put_snapshot(s, 4, &snap_payload(4)).await.unwrap();
        store.put_snapshot(s, 8, b"first version").await.unwrap();
        store.put_snapshot(s, 8, &snap_payload(8)).await.unwrap();
        let latest = store.latest_snapshot(s).await.unwrap().unwrap();
        assert_eq!(latest.at_seq, 8);
        assert_eq!(latest.bytes.as_ref(), snap_payload(8).as_slice());
        assert_eq!(
            store
                .snapshot_at_or_after(s, 0)
                .await
                .unwrap()
                .unwrap()
                .at_seq,
            4
        );
        assert_eq!(
            store
                .snapshot_at_or_after(s, 5)
                .await
                .unwrap()
                .unwrap()
                .at_seq,
            8
        );
        assert_eq!(store.snapshot_at_or_after(s, 9).await.unwrap(), None);
        assert!(matches!(
            store.put_snapshot(424_242, 0, b"x").await,
            Err(StoreError::NoSuchSession(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn since_answers_every_k_before_and_after_pruning() {
    each_db("since", |store| async move {
        let s = session(&store, "since").await;
        // Frames of 1 to 3 records; a snapshot after every third frame.
        let mut seq = 0;
        let mut snaps = Vec::new();
        for i in 0..30u64 {
            let n = 1 + i % 3;
            append(&store, s, seq + 1, seq + n).await;
            seq += n;
            if i % 3 == 2 {
                store
                    .put_snapshot(s, seq, &snap_payload(seq))
                    .await
                    .unwrap();
                snaps.push(seq);
            }
        }
        let head = seq;
        let all = ranges(&store.frames_after(s, 0, u64::MAX).await.unwrap());
        // A k strictly inside a frame is no state a client can hold (clients
        // see whole frames); the store answers it from a snapshot or not at
        // all, never with part of a frame.
        let inside = |k: u64| all.iter().any(|&(f, l)| f <= k && k < l);
        let latest = *snaps.last().unwrap();
        for k in 0..=head {
            match store.since(s, k).await {
                Ok(since) => {
                    // Frames when they are complete and weigh no more than
                    // the latest snapshot plus the frames after it.
                    let weight = |after: u64| -> usize {
                        all.iter()
                            .filter(|&&(_, l)| l > after)
                            .map(|&(f, l)| payload(f, l).len())
                            .sum()
                    };
                    let frames_cheaper =
                        latest <= k || weight(k) <= snap_payload(latest).len() + weight(latest);
                    assert_eq!(
                        matches!(since, Since::Frames(_)),
                        !inside(k) && frames_cheaper,
                        "k={k}"
                    );
                    check_since(k, head, &since);
                }
                Err(StoreError::NoResumePoint { .. }) => assert!(inside(k) && k > latest, "k={k}"),
                Err(e) => panic!("k={k}: {e:?}"),
            }
        }
        assert!(matches!(
            store.since(s, head + 1).await,
            Err(StoreError::Ahead { .. })
        ));

        let stats = store
            .prune(
                s,
                RetentionPolicy {
                    keep_snapshots: 3,
                    max_bytes: u64::MAX,
                },
            )
            .await
            .unwrap();
        assert_eq!(stats.snapshots_deleted as usize, snaps.len() - 3);
        let oldest_kept = snaps[snaps.len() - 3];
        let stored = store.frames_after(s, 0, u64::MAX).await.unwrap();
        assert_eq!(
            stored[0].first_seq,
            oldest_kept + 1,
            "frames before the oldest kept snapshot are gone"
        );
        assert_eq!(
            stats.frames_deleted as usize,
            all.iter().filter(|&&(_, l)| l <= oldest_kept).count()
        );
        for k in 0..=head {
            match store.since(s, k).await {
                Ok(since) => {
                    if k < oldest_kept {
                        match &since {
                            Since::Snapshot { snapshot, .. } => assert_eq!(snapshot.at_seq, latest),
                            Since::Frames(_) => panic!("k={k}: frames were pruned"),
                        }
                    }
                    check_since(k, head, &since);
                }
                Err(StoreError::NoResumePoint { .. }) => assert!(inside(k) && k > latest, "k={k}"),
                Err(e) => panic!("k={k}: {e:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn since_prefers_the_smaller_exact_answer() {
    each_db("since_smaller", |store| async move {
        let small = session(&store, "small").await;
        let big = session(&store, "big").await;
        for i in 1..=10u64 {
            store.append_frame(small, i, i, &[3u8; 1000]).await.unwrap();
            store.append_frame(big, i, i, &[3u8; 1000]).await.unwrap();
        }
        store.put_snapshot(small, 8, &[1u8; 100]).await.unwrap();
        store.put_snapshot(big, 8, &[1u8; 50_000]).await.unwrap();
        let kind = |s: &Since| match s {
            Since::Frames(f) => ("frames", f.first().map(|f| f.first_seq)),
            Since::Snapshot { snapshot, frames } => {
                assert_eq!(
                    frames.first().map(|f| f.first_seq),
                    Some(snapshot.at_seq + 1)
                );
                ("snapshot", Some(snapshot.at_seq))
            }
        };
        // 10 000 bytes of frames against a 100-byte snapshot and 2 000.
        assert_eq!(
            kind(&store.since(small, 0).await.unwrap()),
            ("snapshot", Some(8))
        );
        // 3 000 against 2 100.
        assert_eq!(
            kind(&store.since(small, 7).await.unwrap()),
            ("snapshot", Some(8))
        );
        // 2 000 against 2 100.
        assert_eq!(
            kind(&store.since(small, 8).await.unwrap()),
            ("frames", Some(9))
        );
        assert_eq!(
            kind(&store.since(small, 9).await.unwrap()),
            ("frames", Some(10))
        );
        // A snapshot heavier than the history is never preferred.
        assert_eq!(
            kind(&store.since(big, 0).await.unwrap()),
            ("frames", Some(1))
        );
    })
    .await;
}

#[derive(Debug, Clone)]
enum Op {
    Append(u64),
    Snapshot,
    Prune { keep: u32, max_bytes: u64 },
}

fn ops() -> impl proptest::strategy::Strategy<Value = Vec<Op>> {
    use proptest::prelude::*;
    let op = prop_oneof![
        6 => (1u64..=4).prop_map(Op::Append),
        2 => Just(Op::Snapshot),
        1 => (0u32..=3, 0u64..=30_000).prop_map(|(keep, max_bytes)| Op::Prune { keep, max_bytes }),
    ];
    proptest::collection::vec(op, 1..40)
}

/// Applies `ops` to a fresh session, then checks `since(k)` for every k:
/// always exact (no gap, no duplicate, bytes intact) for every k a client
/// can hold, whatever was pruned.
async fn run_history(store: &Store, slot: &str, ops: &[Op]) {
    let s = session(store, slot).await;
    let mut head = 0u64;
    let mut all = Vec::new();
    let mut latest = None;
    for op in ops {
        match *op {
            Op::Append(n) => {
                append(store, s, head + 1, head + n).await;
                all.push((head + 1, head + n));
                head += n;
            }
            Op::Snapshot => {
                store
                    .put_snapshot(s, head, &snap_payload(head))
                    .await
                    .unwrap();
                latest = Some(head);
            }
            Op::Prune { keep, max_bytes } => {
                store
                    .prune(
                        s,
                        RetentionPolicy {
                            keep_snapshots: keep,
                            max_bytes,
                        },
                    )
                    .await
                    .unwrap();
                // The latest snapshot and every frame after it survive.
                let snap = store.latest_snapshot(s).await.unwrap().map(|x| x.at_seq);
                assert_eq!(snap, latest);
                if let Some(m) = latest {
                    let tail = store.frames_after(s, m, u64::MAX).await.unwrap();
                    check_since(m, head, &Since::Frames(tail));
                }
            }
        }
    }
    assert_eq!(store.last_seq(s).await.unwrap(), head);
    let inside = |k: u64| all.iter().any(|&(f, l)| f <= k && k < l);
    for k in 0..=head {
        match store.since(s, k).await {
            Ok(since) => {
                check_since(k, head, &since);
                // since_cost weighs exactly this answer, without reading it.
                let cost = store.since_cost(s, k).await.unwrap();
                let (snap, list) = match &since {
                    Since::Frames(list) => (0, list),
                    Since::Snapshot { snapshot, frames } => (snapshot.bytes.len(), frames),
                };
                let bytes = snap + list.iter().map(|f| f.bytes.len()).sum::<usize>();
                assert_eq!(cost.bytes, bytes as u64, "k={k}");
                assert_eq!(cost.head, head);
                let latest_size = store
                    .latest_snapshot(s)
                    .await
                    .unwrap()
                    .map(|x| x.bytes.len() as u64);
                assert_eq!(cost.snapshot_bytes, latest_size);
            }
            Err(StoreError::NoResumePoint { .. }) => {
                assert!(inside(k) && latest.is_none_or(|m| m < k), "k={k}")
            }
            Err(e) => panic!("k={k}: {e:?}"),
        }
    }
}

#[test]
fn random_histories_resume_exactly() {
    use proptest::test_runner::{Config, TestRunner};
    let rt = tokio::runtime::Runtime::new().unwrap();
    for target in rt.block_on(targets("random")) {
        eprintln!("--- random_histories on {}", target.dialect);
        let store = rt.block_on(Store::connect(&target.url)).unwrap();
        let cases = if target.dialect == "sqlite" { 64 } else { 16 };
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let n = AtomicU32::new(0);
        let result = runner.run(&ops(), |ops| {
            let slot = format!("case{}", n.fetch_add(1, Ordering::Relaxed));
            rt.block_on(run_history(&store, &slot, &ops));
            Ok(())
        });
        let dialect = target.dialect;
        rt.block_on(store.close());
        rt.block_on(target.cleanup());
        if let Err(e) = result {
            panic!("{dialect}: {e}");
        }
    }
}

#[tokio::test]
async fn prune_respects_byte_budget_and_keeps_latest_snapshot() {
    each_db("prune", |store| async move {
        let s = session(&store, "prune").await;
        let bare = session(&store, "bare").await;
        for i in 1..=10u64 {
            store.append_frame(s, i, i, &vec![7u8; 1000]).await.unwrap();
            store
                .append_frame(bare, i, i, &vec![7u8; 1000])
                .await
                .unwrap();
            if i % 2 == 0 {
                store.put_snapshot(s, i, &vec![1u8; 500]).await.unwrap();
            }
        }
        // Snapshots at 2,4,6,8,10. Keep 3 within a roomy budget: 6, 8, 10.
        let st = store
            .prune(
                s,
                RetentionPolicy {
                    keep_snapshots: 3,
                    max_bytes: 1 << 30,
                },
            )
            .await
            .unwrap();
        assert_eq!((st.snapshots_deleted, st.frames_deleted), (2, 6));
        assert_eq!(
            store
                .snapshot_at_or_after(s, 0)
                .await
                .unwrap()
                .unwrap()
                .at_seq,
            6
        );
        // Budget 4000 bytes: 10 (500) + 8 (500) + frames 9..10 (2000) fits,
        // adding 6 and frames 7..8 (3500 more) does not.
        let st = store
            .prune(
                s,
                RetentionPolicy {
                    keep_snapshots: 3,
                    max_bytes: 4000,
                },
            )
            .await
            .unwrap();
        assert_eq!((st.snapshots_deleted, st.frames_deleted), (1, 2));
        assert_eq!(
            ranges(&store.frames_after(s, 0, u64::MAX).await.unwrap()),
            vec![(9, 9), (10, 10)]
        );
        // A budget of zero still keeps the latest snapshot.
        store
            .prune(
                s,
                RetentionPolicy {
                    keep_snapshots: 3,
                    max_bytes: 0,
                },
            )
            .await
            .unwrap();
        let latest = store.latest_snapshot(s).await.unwrap().unwrap();
        assert_eq!(latest.at_seq, 10);
        match store.since(s, 0).await.unwrap() {
            Since::Snapshot { snapshot, frames } => {
                assert_eq!(snapshot.at_seq, 10);
                assert!(frames.is_empty());
            }
            other => panic!("expected a snapshot, got {other:?}"),
        }
        // Appends continue after pruning.
        store.append_frame(s, 11, 11, b"more").await.unwrap();
        assert_eq!(
            ranges(&store.frames_after(s, 0, u64::MAX).await.unwrap()),
            vec![(11, 11)]
        );
        // keep_snapshots 0 means 1.
        let st = store
            .prune(
                s,
                RetentionPolicy {
                    keep_snapshots: 0,
                    max_bytes: u64::MAX,
                },
            )
            .await
            .unwrap();
        assert_eq!(st, Default::default());
        // No snapshot: nothing can go.
        let st = store
            .prune(
                bare,
                RetentionPolicy {
                    keep_snapshots: 1,
                    max_bytes: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(st, Default::default());
        assert_eq!(
            store.frames_after(bare, 0, u64::MAX).await.unwrap().len(),
            10
        );
        assert!(matches!(
            store.prune(555_555, RetentionPolicy::default()).await,
            Err(StoreError::NoSuchSession(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn background_pruner_prunes_and_stops_on_cancel() {
    each_db("pruner", |store| async move {
        let s = session(&store, "bg").await;
        for i in 1..=6u64 {
            store.append_frame(s, i, i, b"frame").await.unwrap();
            store.put_snapshot(s, i, b"snap").await.unwrap();
        }
        let cancel = CancellationToken::new();
        let policy = RetentionPolicy {
            keep_snapshots: 2,
            max_bytes: u64::MAX,
        };
        let task = spawn_pruner(
            store.clone(),
            policy,
            Duration::from_millis(20),
            cancel.clone(),
        );
        // Poll the database (the pruner reports nothing else) for up to 10 s.
        let mut pruned = false;
        for _ in 0..500 {
            if store
                .snapshot_at_or_after(s, 0)
                .await
                .unwrap()
                .map(|x| x.at_seq)
                == Some(5)
            {
                pruned = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(pruned, "pruner did not run");
        assert_eq!(
            ranges(&store.frames_after(s, 0, u64::MAX).await.unwrap()),
            vec![(6, 6)]
        );
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("pruner stops on cancel")
            .expect("pruner task did not panic");
    })
    .await;
}

#[tokio::test]
async fn data_survives_reopen() {
    for target in targets("reopen").await {
        let store = Store::connect(&target.url).await.unwrap();
        let s = session(&store, "re").await;
        append(&store, s, 1, 2).await;
        store.put_snapshot(s, 2, &snap_payload(2)).await.unwrap();
        store.close().await;
        // Migrations run again on reopen and must be a no-op.
        let store = Store::connect(&target.url).await.unwrap();
        assert_eq!(store.last_seq(s).await.unwrap(), 2);
        assert_eq!(session(&store, "re").await, s);
        check_since(0, 2, &store.since(s, 0).await.unwrap());
        store.close().await;
        target.cleanup().await;
    }
}

// ---------------------------------------------------------------------------
// Crash durability

const CHILD_URL: &str = "TB_STORE_CHILD_URL";
const CHILD_SESSION: &str = "TB_STORE_CHILD_SESSION";

/// Not a test on its own: the writer process of
/// `kill_9_loses_no_acknowledged_frame`, which runs this binary again with
/// `--ignored --exact durability_child` and the database in the
/// environment. Appends frames forever, printing `ACK <seq>` after each
/// `Ok`.
#[tokio::test]
#[ignore = "child process of kill_9_loses_no_acknowledged_frame"]
async fn durability_child() {
    let (Ok(url), Ok(session)) = (std::env::var(CHILD_URL), std::env::var(CHILD_SESSION)) else {
        // Run by `--include-ignored` outside the parent: nothing to write to.
        eprintln!("durability_child only works as the child of kill_9_loses_no_acknowledged_frame");
        return;
    };
    let session: TerminalSessionId = session.parse().expect("session id");
    let store = Store::connect(&url).await.expect("child connect");
    let mut seq = store.last_seq(session).await.expect("last_seq");
    loop {
        let first = seq + 1;
        let last = seq + 1 + first % 3;
        store
            .append_frame(session, first, last, &payload(first, last))
            .await
            .expect("child append");
        seq = last;
        if seq % 50 == 0 {
            store
                .put_snapshot(session, seq, &snap_payload(seq))
                .await
                .expect("child snapshot");
        }
        // println! takes the stdout lock and flushes on newline only for a
        // terminal; write and flush explicitly so the parent sees every ack.
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "ACK {seq}").expect("stdout");
        out.flush().expect("flush");
    }
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_frame() {
    for target in targets("kill9").await {
        let store = Store::connect(&target.url).await.unwrap();
        let s = session(&store, "crash").await;
        store.close().await;

        let exe = std::env::current_exe().expect("current_exe");
        let mut child = tokio::process::Command::new(exe)
            .args([
                "--ignored",
                "--exact",
                "durability_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_URL, &target.url)
            .env(CHILD_SESSION, s.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut acked = 0u64;
        let mut acks = 0u32;
        // Kill after 400 acknowledged frames, while the child is writing.
        while acks < 400 {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .expect("child stalled")
                .expect("read child stdout");
            let Some(line) = line else {
                panic!("child exited early")
            };
            if let Some(n) = line.strip_prefix("ACK ") {
                let n: u64 = n.parse().expect("ack number");
                assert!(n > acked);
                acked = n;
                acks += 1;
            }
        }
        child.start_kill().expect("SIGKILL");
        let status = child.wait().await.expect("wait child");
        assert!(!status.success(), "child was killed: {status:?}");
        // Acks already in the pipe count too.
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(n) = line
                .strip_prefix("ACK ")
                .and_then(|n| n.parse::<u64>().ok())
            {
                acked = acked.max(n);
            }
        }

        let store = Store::connect(&target.url)
            .await
            .expect("reopen after kill -9");
        let head = store.last_seq(s).await.unwrap();
        eprintln!("[{}] acked {acked}, stored {head}", target.dialect);
        assert!(
            head >= acked,
            "acknowledged up to {acked} but only {head} survived"
        );
        assert!(
            head <= acked + 4,
            "at most the in-flight frame is beyond the last ack"
        );
        let all = store.frames_after(s, 0, u64::MAX).await.unwrap();
        check_since(0, head, &Since::Frames(all));
        // The store keeps working after the crash.
        let r = store
            .append_frame(s, head + 1, head + 1, &payload(head + 1, head + 1))
            .await
            .unwrap();
        assert_eq!(r, Appended::Stored);
        store.close().await;
        target.cleanup().await;
    }
}

// ---------------------------------------------------------------------------
// Issue 10: the SQLite files are the owner's alone

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Whoever opens a SQLite store first (the relay, `tmux-relay user add`,
/// any tool), the directory it creates is 0700 and the database with its
/// `-wal` and `-shm` files 0600, under the usual umask 022; an existing
/// database file readable by others is narrowed to 0600.
#[cfg(unix)]
#[tokio::test]
async fn issue_10_sqlite_files_are_created_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fresh").join("data");
    let db = dir.join("relay.db");
    let store = Store::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    // A write, so the WAL and shared-memory files exist.
    store.create_user("u1", "u1", None, 0).await.unwrap();
    assert_eq!(mode(&dir), 0o700, "data dir");
    for suffix in ["", "-wal", "-shm"] {
        let f = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        assert!(f.exists(), "{} exists", f.display());
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    store.close().await;

    // A database someone made world-readable is narrowed when opened.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    assert_eq!(mode(&db), 0o600);
    assert_eq!(
        store.user_by_id("u1").await.unwrap().map(|u| u.id),
        Some("u1".into())
    );
    store.close().await;
}

/// Read-only share links (issue 14): created, found by their secret's hash,
/// listed while active, revoked once, by their owner only, and pruned.
#[tokio::test]
async fn share_links_are_found_listed_revoked_and_pruned() {
    each_db("share_links", |store| async move {
        use store::shares::ShareRecord;
        store
            .create_user("user-1", "alice", None, 0)
            .await
            .unwrap()
            .expect("new user");
        let s = session(&store, "shared").await;
        let rec = |id: &str, expires_at| ShareRecord {
            id: id.into(),
            user_id: "user-1".into(),
            session_id: s,
            label: "for bob".into(),
            created_at: 10,
            expires_at,
            revoked_at: None,
        };
        store
            .create_share(&rec("a", 1_000), "hash-a")
            .await
            .unwrap();
        store.create_share(&rec("b", 50), "hash-b").await.unwrap();
        assert!(
            store
                .create_share(&rec("c", 1_000), "hash-a")
                .await
                .is_err(),
            "secret hashes are unique"
        );
        let found = store
            .share_by_secret("hash-a")
            .await
            .unwrap()
            .expect("found");
        assert_eq!(found, rec("a", 1_000));
        assert!(found.is_active(999) && !found.is_active(1_000));
        assert_eq!(store.share_by_secret("nope").await.unwrap(), None);
        let active: Vec<String> = store
            .active_shares("user-1", s, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(active, vec!["a"], "b expired at 50");
        assert!(
            !store.revoke_share("user-2", "a", 200).await.unwrap(),
            "not bob's"
        );
        assert!(store.revoke_share("user-1", "a", 200).await.unwrap());
        assert!(
            !store.revoke_share("user-1", "a", 300).await.unwrap(),
            "once"
        );
        let a = store.share("a").await.unwrap().expect("still stored");
        assert_eq!(a.revoked_at, Some(200));
        assert!(!a.is_active(201));
        assert!(
            store
                .active_shares("user-1", s, 100)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.prune_shares(5_000).await.unwrap(), 2);
        assert_eq!(store.share("a").await.unwrap(), None);
    })
    .await;
}

fn line(pane: &str, seq: u64, text: &str) -> store::search::IndexedLine {
    store::search::IndexedLine {
        pane: pane.into(),
        seq,
        at: 1_000 + seq as i64,
        line: text.into(),
    }
}

fn query(words: &[&str], idea: Option<&str>) -> store::search::SearchQuery {
    store::search::SearchQuery {
        words: words.iter().map(|w| w.to_string()).collect(),
        idea: idea.map(String::from),
        limit: 10,
        context: 2,
    }
}

/// Issue 11: indexed lines are found by their words, with context, only by
/// their owner; progress moves once (a second indexer's save is refused);
/// query syntax in the words is plain text on both dialects.
#[tokio::test]
async fn search_finds_lines_of_the_owner_only() {
    each_db("search_owner", |store| async move {
        let mine = session(&store, "a").await;
        let theirs = store
            .upsert_session("runner-2", "user-2", "other", "b", "tb_other__b")
            .await
            .expect("upsert")
            .id;
        append(&store, mine, 1, 3).await;
        append(&store, theirs, 1, 1).await;
        let todo = store.sessions_to_index(10).await.expect("to index");
        let mut ids: Vec<_> = todo
            .iter()
            .map(|p| (p.session, p.indexed_seq, p.last_seq))
            .collect();
        ids.sort();
        let mut want = vec![(mine, 0, 3), (theirs, 0, 1)];
        want.sort();
        assert_eq!(ids, want);

        let lines = [
            line("%1", 1, "$ ls"),
            line("%1", 1, "Cargo.toml container_info.json"),
            line("%1", 2, "src target"),
            line("%2", 3, "other pane container"),
        ];
        assert!(
            store
                .save_index(mine, 0, 3, &lines, "{\"%1\":\"$ \"}")
                .await
                .expect("save")
        );
        // A second indexer that read the same progress writes nothing.
        assert!(
            !store
                .save_index(mine, 0, 3, &lines, "{}")
                .await
                .expect("save again")
        );
        assert!(
            store
                .save_index(
                    theirs,
                    0,
                    1,
                    &[line("%9", 1, "container_info.json secret")],
                    "{}"
                )
                .await
                .expect("save theirs")
        );
        let todo = store.sessions_to_index(10).await.expect("to index");
        assert!(todo.is_empty(), "{todo:?}");

        let hits = store
            .search("user-1", &query(&["container_info.json"], None))
            .await
            .expect("search");
        assert_eq!(hits.len(), 1, "{hits:?}");
        let h = &hits[0];
        assert_eq!((h.session, h.pane.as_str(), h.seq), (mine, "%1", 1));
        assert_eq!(h.line, "Cargo.toml container_info.json");
        assert_eq!(h.before, vec!["$ ls".to_string()]);
        assert_eq!(h.after, vec!["src target".to_string()]);
        assert_eq!((h.idea.as_str(), h.slot.as_str()), ("local", "a"));

        // Every word must be there; the other user's lines never show.
        let hits = store
            .search("user-1", &query(&["container"], None))
            .await
            .expect("search");
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert!(hits.iter().all(|h| h.session == mine));
        let hits = store
            .search("user-1", &query(&["container", "pane"], None))
            .await
            .expect("search");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].pane, "%2");
        assert!(
            store
                .search("user-1", &query(&["secret"], None))
                .await
                .expect("search")
                .is_empty()
        );
        assert_eq!(
            store
                .search("user-2", &query(&["secret"], None))
                .await
                .expect("search")
                .len(),
            1
        );
        // The idea narrows.
        assert!(
            store
                .search("user-1", &query(&["container"], Some("other")))
                .await
                .expect("search")
                .is_empty()
        );
        assert_eq!(
            store
                .search("user-1", &query(&["container"], Some("local")))
                .await
                .expect("search")
                .len(),
            2
        );
        // Query syntax is text: no error, nothing matched by accident.
        for words in [
            &["NOT", "container"][..],
            &["\"", "("],
            &["a*", "OR", "b"],
            &["NEAR(x", "y)"],
            &["-", ":", "^"],
        ] {
            let r = store.search("user-1", &query(words, None)).await;
            assert!(r.is_ok(), "{words:?}: {r:?}");
        }
    })
    .await;
}

/// Deleting a session removes its indexed lines (and, on SQLite, their
/// FTS5 entries: a search finds nothing afterwards).
#[tokio::test]
async fn search_lines_go_with_their_session() {
    each_db("search_delete", |store| async move {
        let s = session(&store, "gone").await;
        append(&store, s, 1, 1).await;
        assert!(
            store
                .save_index(s, 0, 1, &[line("%1", 1, "unique-word-xyzzy")], "{}")
                .await
                .expect("save")
        );
        assert_eq!(
            store
                .search("user-1", &query(&["xyzzy"], None))
                .await
                .expect("search")
                .len(),
            1
        );
        let sql = "DELETE FROM terminal_sessions WHERE id = $1";
        match store.db() {
            store::Db::Sqlite(pool) => sqlx::query(sql).bind(s).execute(pool).await.map(drop),
            store::Db::Postgres(pool) => sqlx::query(sql).bind(s).execute(pool).await.map(drop),
        }
        .expect("delete");
        assert!(
            store
                .search("user-1", &query(&["xyzzy"], None))
                .await
                .expect("search")
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn jobs_are_stored_updated_listed_and_their_logs_tile() {
    each_db("jobs", |store| async move {
        use store::JobRecord;
        store
            .create_user("user-1", "alice", None, 0)
            .await
            .unwrap()
            .expect("new user");
        let job = |id: &str, idea: &str, at| JobRecord {
            id: id.into(),
            user_id: "user-1".into(),
            kind: if id == "j3" { "devserver" } else { "job" }.into(),
            idea: idea.into(),
            slot: "primary".into(),
            name: "make".into(),
            command: "make test".into(),
            cwd: Some("/src".into()),
            env: r#"{"A":"b"}"#.into(),
            want_runner_id: None,
            runner_id: None,
            state: "queued".into(),
            exit_code: None,
            signal: None,
            error: None,
            session_id: None,
            pane: None,
            cancel_requested: false,
            log_bytes: 0,
            created_at: at,
            started_at: None,
            ended_at: None,
            ports: "[]".into(),
        };
        store.insert_job(&job("j1", "x", 10)).await.unwrap();
        store.insert_job(&job("j2", "x", 20)).await.unwrap();
        store.insert_job(&job("j3", "y", 30)).await.unwrap();
        assert!(
            store.insert_job(&job("j1", "x", 40)).await.is_err(),
            "ids are unique"
        );

        let mut j1 = store.job("j1").await.unwrap().expect("j1");
        assert_eq!(j1, job("j1", "x", 10));
        j1.state = "failed".into();
        j1.runner_id = Some("r1".into());
        j1.exit_code = Some(3);
        j1.signal = Some(9);
        j1.cancel_requested = true;
        j1.started_at = Some(11);
        j1.ended_at = Some(12);
        j1.ports = r#"[{"port":5173,"addr":"::1","source":"socket"}]"#.into();
        store.update_job(&j1).await.unwrap();
        assert_eq!(store.job("j1").await.unwrap().expect("j1"), j1);

        // A claim moves a job only from the state named: the first of two
        // relays dispatching j2 at once starts it, the second does not.
        assert!(
            store
                .claim_job("j2", "r2", "queued", "starting")
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_job("j2", "r3", "queued", "starting")
                .await
                .unwrap()
        );
        let j2 = store.job("j2").await.unwrap().expect("j2");
        assert_eq!(
            (j2.state.as_str(), j2.runner_id.as_deref()),
            ("starting", Some("r2"))
        );
        assert!(
            !store
                .claim_job("j1", "r2", "queued", "starting")
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_job("nope", "r2", "queued", "starting")
                .await
                .unwrap()
        );
        // Put back, as when its runner was gone before it was sent.
        let mut j2 = j2;
        j2.state = "queued".into();
        j2.runner_id = None;
        store.update_job(&j2).await.unwrap();
        assert_eq!(
            store.job("j3").await.unwrap().expect("j3").kind,
            "devserver"
        );

        assert_eq!(store.job("nope").await.unwrap(), None);

        let ids = |v: Vec<JobRecord>| v.into_iter().map(|j| j.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store
                .jobs_for_user("user-1", None, Some("devserver"), 10)
                .await
                .unwrap()),
            ["j3"]
        );
        assert_eq!(
            ids(store
                .jobs_for_user("user-1", Some("x"), None, 10)
                .await
                .unwrap()),
            ["j2", "j1"]
        );
        assert_eq!(
            ids(store.jobs_for_user("user-1", None, None, 2).await.unwrap()),
            ["j3", "j2"]
        );
        assert!(
            store
                .jobs_for_user("user-2", None, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            ids(store
                .jobs_in_states(Some("user-1"), None, &["queued"])
                .await
                .unwrap()),
            ["j2", "j3"]
        );
        assert_eq!(
            ids(store
                .jobs_in_states(None, Some("r1"), &["failed", "running"])
                .await
                .unwrap()),
            ["j1"]
        );
        assert!(
            store
                .jobs_in_states(None, None, &["x' OR 1=1 --"])
                .await
                .is_err()
        );

        // Chunks continue the log exactly; resends, overlaps and gaps
        // store nothing and say how much is stored.
        assert_eq!(store.append_job_log("j2", 0, 5, b"aaaaa").await.unwrap(), 5);
        assert_eq!(store.append_job_log("j2", 0, 5, b"aaaaa").await.unwrap(), 5);
        assert_eq!(store.append_job_log("j2", 3, 5, b"bbbbb").await.unwrap(), 5);
        assert_eq!(store.append_job_log("j2", 9, 1, b"c").await.unwrap(), 5);
        assert_eq!(store.append_job_log("j2", 5, 3, b"ddd").await.unwrap(), 8);
        assert!(store.append_job_log("nope", 0, 1, b"e").await.is_err());
        assert_eq!(store.job("j2").await.unwrap().expect("j2").log_bytes, 8);
        let chunks = store.job_log_chunks("j2", 0, 10).await.unwrap();
        let tiles: Vec<_> = chunks
            .iter()
            .map(|c| (c.start_byte, c.len, c.data.clone()))
            .collect();
        assert_eq!(tiles, [(0, 5, b"aaaaa".to_vec()), (5, 3, b"ddd".to_vec())]);
        let from = store.job_log_chunks("j2", 6, 10).await.unwrap();
        assert_eq!(from.len(), 1);
        assert_eq!(from[0].start_byte, 5);
        assert!(store.job_log_chunks("j2", 8, 10).await.unwrap().is_empty());

        // Retention: jobs that ended before the cut go with their logs;
        // unfinished ones stay whatever their age; so do newer lines.
        let mut j2 = store.job("j2").await.unwrap().expect("j2");
        j2.ended_at = Some(50);
        store.update_job(&j2).await.unwrap();
        store
            .ingest_lines(
                "user-1",
                "r1",
                Some("x"),
                "ci",
                &[(40, "old".into()), (70, "new".into())],
            )
            .await
            .unwrap();
        assert_eq!(store.prune_logs(60).await.unwrap(), (2, 1));
        assert_eq!(store.job("j2").await.unwrap(), None);
        assert_eq!(store.job("j1").await.unwrap(), None, "ended at 12");
        assert!(store.job("j3").await.unwrap().is_some(), "never ended");
        assert!(store.job_log_chunks("j2", 0, 10).await.unwrap().is_empty());
        let left = store.ingested_for_idea("user-1", "x", 10).await.unwrap();
        assert_eq!(
            left.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(),
            ["new"]
        );
    })
    .await;
}

/// Issue 12: a dev server's events are stored in order per job, read back
/// newest-last, capped per job (the oldest go), and go with their job.
#[tokio::test]
async fn issue_12_devserver_events_are_kept_per_job_bounded_and_pruned() {
    each_db("devserver_events", |store| async move {
        use store::{JobRecord, NewDevserverEvent};
        store
            .create_user("user-1", "alice", None, 0)
            .await
            .unwrap()
            .expect("new user");
        for id in ["d1", "d2"] {
            store
                .insert_job(&JobRecord {
                    id: id.into(),
                    user_id: "user-1".into(),
                    kind: "devserver".into(),
                    idea: "x".into(),
                    slot: "primary".into(),
                    name: "vite".into(),
                    command: "npm run dev".into(),
                    cwd: None,
                    env: "{}".into(),
                    want_runner_id: None,
                    runner_id: None,
                    state: "running".into(),
                    exit_code: None,
                    signal: None,
                    error: None,
                    session_id: None,
                    pane: None,
                    cancel_requested: false,
                    log_bytes: 0,
                    created_at: 1,
                    started_at: Some(2),
                    ended_at: None,
                    ports: "[]".into(),
                })
                .await
                .unwrap();
        }
        let detected = |port: u16| NewDevserverEvent {
            kind: "port-detected".into(),
            port: Some(port),
            addr: Some("127.0.0.1".into()),
            source: Some("socket".into()),
            exit_code: None,
            signal: None,
        };
        let exited = NewDevserverEvent {
            kind: "process-exited".into(),
            port: None,
            addr: None,
            source: None,
            exit_code: Some(130),
            signal: None,
        };
        let got = store
            .add_devserver_events("d1", 10, &[detected(5173), detected(8080)])
            .await
            .unwrap();
        assert_eq!(got.len(), 2);
        assert!(got[0].id < got[1].id);
        assert_eq!(
            (got[1].port, got[1].at, got[1].source.as_deref()),
            (Some(8080), 10, Some("socket"))
        );
        store
            .add_devserver_events("d2", 11, &[detected(3000)])
            .await
            .unwrap();
        store
            .add_devserver_events("d1", 12, std::slice::from_ref(&exited))
            .await
            .unwrap();
        assert!(
            store
                .add_devserver_events("d1", 13, &[])
                .await
                .unwrap()
                .is_empty()
        );
        let d1 = store.devserver_events("d1", 10).await.unwrap();
        assert_eq!(
            d1.iter()
                .map(|e| (e.kind.as_str(), e.port, e.exit_code))
                .collect::<Vec<_>>(),
            [
                ("port-detected", Some(5173), None),
                ("port-detected", Some(8080), None),
                ("process-exited", None, Some(130)),
            ]
        );
        let newest = store.devserver_events("d1", 1).await.unwrap();
        assert_eq!(newest.len(), 1);
        assert_eq!(newest[0].kind, "process-exited");
        assert!(
            store
                .add_devserver_events("nope", 1, &[detected(1)])
                .await
                .is_err(),
            "events belong to a job"
        );

        // The cap: a flapping port keeps only the newest events.
        let kept = Store::DEVSERVER_EVENTS_KEPT;
        let many: Vec<_> = (0..kept + 50)
            .map(|i| detected(u16::try_from(1000 + i).unwrap()))
            .collect();
        store.add_devserver_events("d2", 20, &many).await.unwrap();
        let d2 = store.devserver_events("d2", kept * 2).await.unwrap();
        assert_eq!(d2.len(), kept as usize);
        assert_eq!(
            d2.last().unwrap().port,
            Some(i32::try_from(1000 + kept + 49).unwrap())
        );
        assert_eq!(d2.first().unwrap().port, Some(1050));

        // Pruning a finished dev server drops its events too.
        let mut d1j = store.job("d1").await.unwrap().expect("d1");
        d1j.state = "cancelled".into();
        d1j.ended_at = Some(30);
        store.update_job(&d1j).await.unwrap();
        store.prune_logs(60).await.unwrap();
        assert_eq!(store.job("d1").await.unwrap(), None);
        assert!(store.devserver_events("d1", 10).await.unwrap().is_empty());
        assert_eq!(store.devserver_events("d2", 1).await.unwrap().len(), 1);
    })
    .await;
}

/// Issue 11's benchmark: `save_index` writes many lines per statement; a
/// save larger than one statement keeps every line, in order, on both
/// dialects (context reads across the statements' boundaries).
#[tokio::test]
async fn issue_11_save_index_writes_a_long_save_in_order() {
    each_db("search_long_save", |store| async move {
        let s = session(&store, "long").await;
        append(&store, s, 1, 3).await;
        let texts: Vec<String> = (0..1_001).map(|i| format!("row{i} every")).collect();
        let lines: Vec<_> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| line("%1", 1 + (i as u64 * 3) / 1_001, t))
            .collect();
        assert!(store.save_index(s, 0, 3, &lines, "{}").await.expect("save"));

        let mut q = query(&["row200"], None);
        q.context = 2;
        let hits = store.search("user-1", &q).await.expect("search");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].before, ["row198 every", "row199 every"]);
        assert_eq!(hits[0].after, ["row201 every", "row202 every"]);

        let mut q = query(&["every"], None);
        q.limit = 3;
        let newest: Vec<String> = store
            .search("user-1", &q)
            .await
            .expect("search")
            .into_iter()
            .map(|h| h.line)
            .collect();
        assert_eq!(newest, ["row1000 every", "row999 every", "row998 every"]);
    })
    .await;
}

/// Issue 11's benchmark: on PostgreSQL the tsvector column keeps a
/// thousand-fold statistics target (migration 0041), without which a rare
/// word walked every line newest first instead of taking the GIN index.
#[tokio::test]
async fn issue_11_postgres_keeps_detailed_search_statistics() {
    each_db("search_statistics", |store| async move {
        let store::Db::Postgres(pool) = store.db() else {
            return;
        };
        let target: i32 = sqlx::query_scalar(
            "SELECT attstattarget::int4 FROM pg_attribute \
             WHERE attrelid = 'search_lines'::regclass AND attname = 'tsv'",
        )
        .fetch_one(pool)
        .await
        .expect("statistics target");
        assert_eq!(target, 1000);
    })
    .await;
}

#[tokio::test]
async fn agents_their_transitions_pane_watches_and_settings() {
    each_db("agents", |store| async move {
        use store::{AgentRecord, JobRecord, PaneWatch, TRANSITIONS_KEPT};
        store
            .create_user("user-1", "alice", None, 0)
            .await
            .unwrap()
            .expect("new user");
        let s = session(&store, "primary").await;
        let job = |id: &str, idea: &str, at| JobRecord {
            id: id.into(),
            user_id: "user-1".into(),
            kind: "agent".into(),
            idea: idea.into(),
            slot: "primary".into(),
            name: "claude-code".into(),
            command: String::new(),
            cwd: None,
            env: "{}".into(),
            want_runner_id: None,
            runner_id: None,
            state: "queued".into(),
            exit_code: None,
            signal: None,
            error: None,
            session_id: None,
            pane: None,
            cancel_requested: false,
            log_bytes: 0,
            created_at: at,
            started_at: None,
            ended_at: None,
            ports: "[]".into(),
        };
        let agent = |id: &str| AgentRecord {
            job_id: id.into(),
            user_id: "user-1".into(),
            agent_kind: "claude-code".into(),
            args: r#"["-p"]"#.into(),
            idle_ms: Some(1500),
            idle: false,
            state: "starting".into(),
            state_at: 10,
        };
        for (id, idea, at) in [("a1", "x", 10), ("a2", "y", 20)] {
            store.insert_job(&job(id, idea, at)).await.unwrap();
            store.insert_agent(&agent(id)).await.unwrap();
        }
        assert!(
            store.insert_agent(&agent("a1")).await.is_err(),
            "one row per job"
        );
        let listed = store.agents_for_user("user-1", None, 10).await.unwrap();
        assert_eq!(
            listed.iter().map(|a| a.job_id.as_str()).collect::<Vec<_>>(),
            ["a2", "a1"]
        );
        let x = store
            .agents_for_user("user-1", Some("x"), 10)
            .await
            .unwrap();
        assert_eq!(x, [agent("a1")]);
        assert!(
            store
                .agents_for_user("user-2", None, 10)
                .await
                .unwrap()
                .is_empty()
        );

        // Transitions: stored on change only, with their times.
        assert!(
            store
                .set_agent_state("a1", false, "running", "starting", 20)
                .await
                .unwrap()
        );
        assert!(
            !store
                .set_agent_state("a1", false, "running", "running", 25)
                .await
                .unwrap()
        );
        assert!(
            store
                .set_agent_state("a1", true, "idle", "running", 30)
                .await
                .unwrap()
        );
        let a = store.agent("a1").await.unwrap().expect("agent");
        assert_eq!((a.state.as_str(), a.idle, a.state_at), ("idle", true, 30));
        let t: Vec<(String, i64)> = store
            .agent_transitions("a1")
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.state, t.at))
            .collect();
        assert_eq!(
            t,
            [
                ("starting".into(), 10),
                ("running".into(), 20),
                ("idle".into(), 30)
            ]
        );
        // The running agents of a session, with their panes.
        let mut j = store.job("a1").await.unwrap().expect("job");
        j.state = "running".into();
        j.session_id = Some(s);
        j.pane = Some("%3".into());
        store.update_job(&j).await.unwrap();
        let running = store.running_agents_in_session(s).await.unwrap();
        assert_eq!(running.len(), 1);
        assert_eq!(
            (running[0].0.job_id.as_str(), running[0].1.as_str()),
            ("a1", "%3")
        );
        // Bounded history.
        let mut prev = "idle".to_owned();
        for i in 0..(TRANSITIONS_KEPT + 10) {
            let next = if i % 2 == 0 { "running" } else { "idle" };
            store
                .set_agent_state("a1", next == "idle", next, &prev, 100 + i)
                .await
                .unwrap();
            prev = next.into();
        }
        let t = store.agent_transitions("a1").await.unwrap();
        assert_eq!(t.len() as i64, TRANSITIONS_KEPT);
        assert_eq!(t.last().map(|t| t.at), Some(100 + TRANSITIONS_KEPT + 9));

        // Pane watches.
        let w = PaneWatch {
            session_id: s,
            pane: "%1".into(),
            user_id: "user-1".into(),
            idle_ms: 30_000,
            idle: false,
            changed_at: 5,
        };
        store.upsert_pane_watch(&w).await.unwrap();
        store
            .upsert_pane_watch(&PaneWatch {
                idle_ms: 2_000,
                ..w.clone()
            })
            .await
            .unwrap();
        let ws = store.pane_watches(s).await.unwrap();
        assert_eq!(
            ws,
            [PaneWatch {
                idle_ms: 2_000,
                ..w.clone()
            }]
        );
        let changed = store.set_pane_idle(s, "%1", true, 50).await.unwrap();
        assert_eq!(changed.map(|w| (w.idle, w.changed_at)), Some((true, 50)));
        assert_eq!(store.set_pane_idle(s, "%1", true, 60).await.unwrap(), None);
        assert_eq!(store.set_pane_idle(s, "%9", true, 60).await.unwrap(), None);
        assert!(store.delete_pane_watch(s, "%1").await.unwrap());
        assert!(!store.delete_pane_watch(s, "%1").await.unwrap());

        // Settings.
        assert_eq!(store.agent_idle_ms("user-1").await.unwrap(), None);
        store
            .set_agent_idle_ms("user-1", Some(60_000))
            .await
            .unwrap();
        store
            .set_agent_idle_ms("user-1", Some(45_000))
            .await
            .unwrap();
        assert_eq!(store.agent_idle_ms("user-1").await.unwrap(), Some(45_000));
        store.set_agent_idle_ms("user-1", None).await.unwrap();
        assert_eq!(store.agent_idle_ms("user-1").await.unwrap(), None);
    })
    .await;
}
