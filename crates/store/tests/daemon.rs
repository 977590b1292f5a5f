//! Storage of the runner daemon (issue 9): sessions identified by
//! (runner, idea, slot, instance), closing and deleting them, the topology
//! scope, the activity feed, and migration 0030 on a database of protocol
//! 1 (SQLite rebuilds `terminal_sessions`: no frame may be lost).
//! Against SQLite, and PostgreSQL when `TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use store::{NewEvent, OpenSession, Since, Store, StoreError};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `(url, temp dir, pg database to drop)` per database.
async fn databases() -> Vec<(String, Option<tempfile::TempDir>, Option<(String, String)>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut out = vec![(
        format!("sqlite://{}", dir.path().join("d.db").display()),
        Some(dir),
        None,
    )];
    if let Ok(admin) = std::env::var("TEST_DATABASE_URL")
        && !admin.is_empty()
    {
        let name = format!(
            "tb_daemon_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin.split('?').next().unwrap_or(&admin);
        let slash = base.rfind('/').unwrap();
        out.push((
            format!("{}/{name}", &base[..slash]),
            None,
            Some((admin, name)),
        ));
    }
    out
}

async fn drop_pg(pg: Option<(String, String)>) {
    if let Some((admin, name)) = pg {
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

fn open<'a>(runner: &'a str, user: &'a str, slot: &'a str, instance: &'a str) -> OpenSession<'a> {
    OpenSession {
        runner_id: runner,
        user_id: user,
        idea: "idea",
        slot,
        instance,
        tmux_session: "tb_idea__1",
        attach: "tmux attach -t '=tb_idea__1'",
        host: "laptop",
        at: 1_000,
    }
}

#[tokio::test]
async fn instances_sessions_and_events() {
    for (url, _dir, pg) in databases().await {
        let store = Store::connect(&url).await.unwrap();
        let a = store
            .open_session(&open("r1", "u1", "1", "i1"))
            .await
            .unwrap();
        assert!(a.created && a.superseded.is_empty());
        assert_eq!(a.record.attach, "tmux attach -t '=tb_idea__1'");
        assert_eq!(
            (a.record.host.as_str(), a.record.instance.as_str()),
            ("laptop", "i1")
        );
        // The same instance again: found, not created.
        let again = store
            .open_session(&open("r1", "u1", "1", "i1"))
            .await
            .unwrap();
        assert_eq!((again.record.id, again.created), (a.record.id, false));
        // Another user's runner row: refused.
        assert!(matches!(
            store.open_session(&open("r1", "u2", "1", "i1")).await,
            Err(StoreError::OwnerMismatch { .. })
        ));
        // Frames stored, with the activity time.
        store
            .append_frame_at(a.record.id, 1, 2, b"frame", Some(5_000))
            .await
            .unwrap();
        // A new instance: a new session, the old one closed and readable.
        let b = store
            .open_session(&open("r1", "u1", "1", "i2"))
            .await
            .unwrap();
        assert!(b.created);
        assert_ne!(b.record.id, a.record.id);
        assert_eq!(b.superseded.len(), 1);
        assert_eq!(b.superseded[0].id, a.record.id);
        let old = store.session(a.record.id).await.unwrap().unwrap();
        assert_eq!(old.closed_at, Some(1_000));
        assert_eq!(old.last_activity_at, Some(5_000));
        assert!(
            matches!(store.since(a.record.id, 0).await.unwrap(), Since::Frames(f) if f.len() == 1)
        );
        // Closing twice reports once; the scope is kept.
        assert!(store.close_session(b.record.id, 2_000).await.unwrap());
        assert!(!store.close_session(b.record.id, 3_000).await.unwrap());
        store.set_panes(b.record.id, "%1 %2 @1").await.unwrap();
        assert_eq!(
            store.session(b.record.id).await.unwrap().unwrap().panes,
            "%1 %2 @1"
        );
        // Reopening a closed instance opens it again.
        let b2 = store
            .open_session(&open("r1", "u1", "1", "i2"))
            .await
            .unwrap();
        assert_eq!(b2.record.closed_at, None);
        // Deleting takes the frames along.
        assert!(store.delete_session(a.record.id).await.unwrap());
        assert!(store.session(a.record.id).await.unwrap().is_none());
        assert!(!store.delete_session(a.record.id).await.unwrap());
        // The activity feed pages newest first.
        for i in 0..5 {
            let e = NewEvent {
                user_id: "u1",
                at: i,
                kind: "session_created",
                runner_id: "r1",
                runner_name: "laptop",
                session_id: Some(b.record.id),
                idea: Some("idea"),
                slot: Some("1"),
                detail: None,
            };
            // Events reference users: make the user first.
            if i == 0 {
                store.create_user("u1", "user-one", None, 0).await.unwrap();
            }
            store.add_event(&e).await.unwrap();
        }
        let page = store.events_for_user("u1", None, 3).await.unwrap();
        assert_eq!(page.iter().map(|e| e.at).collect::<Vec<_>>(), vec![4, 3, 2]);
        let rest = store
            .events_for_user("u1", Some(page[2].id), 3)
            .await
            .unwrap();
        assert_eq!(rest.iter().map(|e| e.at).collect::<Vec<_>>(), vec![1, 0]);
        assert!(
            store
                .events_for_user("u2", None, 3)
                .await
                .unwrap()
                .is_empty()
        );
        store.close().await;
        drop_pg(pg).await;
    }
}

/// A SQLite database made by the migrations before 0030 (protocol 1), with
/// a session, its frames, a snapshot and a share link, keeps all of them
/// through 0030's table rebuild; the first instance that opens the session
/// adopts it.
#[tokio::test]
async fn migration_0030_keeps_protocol_1_data() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    {
        use std::str::FromStr;
        let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        let mut old = sqlx::migrate::Migrator::new(path).await.unwrap();
        old.migrations = old
            .migrations
            .iter()
            .filter(|m| m.version < 30)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        old.run(&pool).await.unwrap();
        let old_store_sql = [
            "INSERT INTO users (id, name, created_at) VALUES ('u1', 'one', 0)",
            "INSERT INTO terminal_sessions (id, runner_id, user_id, idea, slot, tmux_session, last_seq) \
             VALUES (7, 'r1', 'u1', 'idea', '1', 'tb_idea__1', 2)",
            "INSERT INTO frames (session_id, first_seq, last_seq, size, bytes) VALUES (7, 1, 2, 3, x'616263')",
            "INSERT INTO snapshots (session_id, at_seq, size, bytes) VALUES (7, 2, 1, x'73')",
            "INSERT INTO share_links (id, secret_hash, user_id, session_id, label, created_at, expires_at) \
             VALUES ('s1', 'h', 'u1', 7, 'l', 0, 99999999999999)",
        ];
        for sql in old_store_sql {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
    let store = Store::connect(&url).await.unwrap();
    let rec = store.session(7).await.unwrap().unwrap();
    assert_eq!((rec.instance.as_str(), rec.last_seq), ("", 2));
    match store.since(7, 0).await.unwrap() {
        Since::Snapshot { snapshot, frames } => {
            assert_eq!(snapshot.at_seq, 2);
            assert!(frames.is_empty());
        }
        Since::Frames(f) => assert_eq!(f.len(), 1),
    }
    assert_eq!(store.frames_after(7, 0, 1 << 20).await.unwrap().len(), 1);
    let n: i64 = match store.db() {
        store::Db::Sqlite(pool) => {
            sqlx::query_scalar("SELECT count(*) FROM share_links WHERE session_id = 7")
                .fetch_one(pool)
                .await
                .unwrap()
        }
        store::Db::Postgres(_) => unreachable!(),
    };
    assert_eq!(n, 1, "the share link survived");
    // Foreign keys are enforced again, and point at the new table.
    assert!(store.delete_session(7).await.unwrap());
    assert_eq!(store.frames_after(7, 0, 1 << 20).await.unwrap().len(), 0);
    // A fresh session of (r1, idea, 1) opened by an instance adopts nothing
    // now (the old row is gone) and gets a new id.
    let o = store
        .open_session(&open("r1", "u1", "1", "i9"))
        .await
        .unwrap();
    assert!(
        o.created && o.record.id > 7,
        "ids are not reused: {}",
        o.record.id
    );
}

#[tokio::test]
async fn the_first_instance_adopts_a_protocol_1_session() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let old = store
        .upsert_session("r1", "u1", "idea", "1", "tb_idea__1")
        .await
        .unwrap();
    assert_eq!(old.instance, "");
    let o = store
        .open_session(&open("r1", "u1", "1", "i1"))
        .await
        .unwrap();
    assert_eq!((o.record.id, o.created), (old.id, false));
    assert_eq!(o.record.instance, "i1");
}
