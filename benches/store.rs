//! Store append rate (issue 3): frames per second, one frame per
//! transaction as the relay stores them, 1 to 4 KiB frames, for SQLite (a
//! file in WAL mode, `synchronous=NORMAL` and `FULL`) and for PostgreSQL
//! when `TEST_DATABASE_URL` is set (a fresh database, dropped afterwards).
//!
//! `cargo bench -p benches --bench store`; criterion's `thrpt` is
//! frames per second.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sqlx::Connection;
use store::{SqliteSync, Store, StoreOptions, TerminalSessionId};

/// 64 frames of 1 to 4 KiB of incompressible bytes (they are zstd output
/// in production).
fn frames() -> Vec<Vec<u8>> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..64)
        .map(|i| {
            let len = 1024 + (i * 977) % 3072;
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect()
}

struct Target {
    name: &'static str,
    url: String,
    opts: StoreOptions,
    drop_db: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

fn sqlite(name: &'static str, sync: SqliteSync) -> Target {
    // On the target directory's disk, not a tmpfs where fsync is free.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut opts = StoreOptions::default();
    opts.sqlite_sync = sync;
    Target {
        name,
        url,
        opts,
        drop_db: None,
        _dir: Some(dir),
    }
}

async fn postgres(admin: &str) -> Target {
    let name = format!("tb_bench_store_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("connect TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create db");
    let base = admin.split('?').next().unwrap_or(admin);
    let slash = base.rfind('/').expect("url with a database path");
    Target {
        name: "postgres",
        url: format!("{}/{name}", &base[..slash]),
        opts: StoreOptions::default(),
        drop_db: Some((admin.to_owned(), name)),
        _dir: None,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let payloads = frames();
    let mut targets = vec![
        sqlite("sqlite_wal_normal", SqliteSync::Normal),
        sqlite("sqlite_wal_full", SqliteSync::Full),
    ];
    if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
        targets.push(rt.block_on(postgres(&url)));
    }

    let mut group = c.benchmark_group("store_append");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for t in &targets {
        let store = rt
            .block_on(Store::connect_with(&t.url, &t.opts))
            .expect("connect");
        let session: TerminalSessionId = rt
            .block_on(store.upsert_session("bench", "bench", "bench", t.name, "tb_bench"))
            .expect("session")
            .id;
        let mut seq = 0u64;
        group.bench_function(t.name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        seq += 1;
                        let bytes = &payloads[(seq % 64) as usize];
                        store
                            .append_frame(session, seq, seq, bytes)
                            .await
                            .expect("append");
                    }
                    start.elapsed()
                })
            })
        });
        rt.block_on(store.close());
    }
    group.finish();

    for t in targets {
        if let Some((admin, name)) = t.drop_db {
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect");
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .expect("drop db");
            });
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
