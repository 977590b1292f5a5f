//! Store append rate (issue 3, issue 16): frames per second, 1 to 4 KiB
//! frames, for SQLite (a file in WAL mode, `synchronous=NORMAL` and
//! `FULL`) and for PostgreSQL when `TEST_DATABASE_URL` is set (a fresh
//! database, dropped afterwards). Four groups:
//!
//! - `store_append`: one writer, one frame per transaction;
//! - `store_commit_1`: one writer through a [`FrameCommitter`], each frame
//!   awaited before the next: a lone frame's commit, as a keystroke's echo
//!   is stored while nothing else is (criterion's time is one commit);
//! - `store_append_8`: 8 writers (8 sessions, as 8 runner channels), one
//!   frame per transaction each: how the relay stored frames before group
//!   commit;
//! - `store_group_commit_8`: the same 8 writers through one
//!   [`FrameCommitter`], each keeping up to 64 frames in flight (the relay
//!   keeps up to 256 per runner connection): many frames per transaction,
//!   each answered after its commit.
//!
//! `cargo bench -p benches --bench store`; criterion's `thrpt` is
//! frames per second. The frames per transaction of the last group are
//! printed after it.

use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use sqlx::Connection;
use std::collections::VecDeque;

use store::{
    CommitOptions, FrameCommitter, NewFrame, SqliteSync, Store, StoreOptions, TerminalSessionId,
};

/// Writers of the concurrent groups.
const WRITERS: usize = 8;
/// Frames a writer of `store_group_commit_8` keeps in flight.
const IN_FLIGHT: usize = 64;

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

/// A group of this bench's settings: throughput in frames, 10 samples of
/// 5 s after 1 s of warm-up.
fn frames_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group
}

/// The store of `t` and a session in it (idea `idea`, slot the target's
/// name), one per group so that each starts at sequence 1.
async fn open(t: &Target, idea: &str) -> (Store, TerminalSessionId) {
    let store = Store::connect_with(&t.url, &t.opts).await.expect("connect");
    let session = store
        .upsert_session("bench", "bench", idea, t.name, "tb_bench")
        .await
        .expect("session")
        .id;
    (store, session)
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

    // One writer, each frame awaited before the next: stored directly, one
    // frame per transaction, then through the group committer.
    let payloads: Vec<bytes::Bytes> = payloads.into_iter().map(bytes::Bytes::from).collect();
    for grouped in [false, true] {
        let name = if grouped {
            "store_commit_1"
        } else {
            "store_append"
        };
        let mut group = frames_group(c, name);
        for t in &targets {
            let (store, session) = rt.block_on(open(t, name));
            let committer = grouped.then(|| {
                let _rt = rt.enter();
                FrameCommitter::spawn(store.clone(), CommitOptions::default())
            });
            let mut seq = 0u64;
            group.bench_function(t.name, |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            seq += 1;
                            let bytes = payloads[(seq % 64) as usize].clone();
                            match &committer {
                                Some(committer) => {
                                    let frame = NewFrame {
                                        session,
                                        first_seq: seq,
                                        last_seq: seq,
                                        bytes,
                                        at: None,
                                    };
                                    committer.append(frame).await.expect("append");
                                }
                                None => {
                                    store
                                        .append_frame(session, seq, seq, &bytes)
                                        .await
                                        .expect("append");
                                }
                            }
                        }
                        start.elapsed()
                    })
                })
            });
            drop(committer);
            rt.block_on(store.close());
        }
        group.finish();
    }

    for grouped in [false, true] {
        let name = if grouped {
            "store_group_commit_8"
        } else {
            "store_append_8"
        };
        let mut group = frames_group(c, name);
        for t in &targets {
            let store = rt
                .block_on(Store::connect_with(&t.url, &t.opts))
                .expect("connect");
            let sessions: Vec<TerminalSessionId> = (0..WRITERS)
                .map(|i| {
                    rt.block_on(store.upsert_session(
                        "bench",
                        "bench",
                        name,
                        &format!("{}-{i}", t.name),
                        "tb_bench",
                    ))
                    .expect("session")
                    .id
                })
                .collect();
            let committer = {
                let _rt = rt.enter();
                FrameCommitter::spawn(store.clone(), CommitOptions::default())
            };
            let before = committer.stats();
            let mut seqs = [0u64; WRITERS];
            group.bench_function(t.name, |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        let mut tasks = Vec::new();
                        for (i, &session) in sessions.iter().enumerate() {
                            let n = iters / WRITERS as u64
                                + u64::from((i as u64) < iters % WRITERS as u64);
                            let (store, committer, payloads) =
                                (store.clone(), committer.clone(), payloads.clone());
                            let mut seq = seqs[i];
                            tasks.push(tokio::spawn(async move {
                                let mut pending = VecDeque::new();
                                for _ in 0..n {
                                    seq += 1;
                                    let bytes = payloads[(seq % 64) as usize].clone();
                                    if grouped {
                                        let frame = NewFrame {
                                            session,
                                            first_seq: seq,
                                            last_seq: seq,
                                            bytes,
                                            at: None,
                                        };
                                        pending.push_back(
                                            committer.submit(frame).await.expect("submit"),
                                        );
                                        if pending.len() >= IN_FLIGHT
                                            && let Some(p) = pending.pop_front()
                                        {
                                            p.await.expect("append");
                                        }
                                    } else {
                                        store
                                            .append_frame(session, seq, seq, &bytes)
                                            .await
                                            .expect("append");
                                    }
                                }
                                for p in pending {
                                    p.await.expect("append");
                                }
                                seq
                            }));
                        }
                        for (i, task) in tasks.into_iter().enumerate() {
                            seqs[i] = task.await.expect("writer");
                        }
                        start.elapsed()
                    })
                })
            });
            if grouped {
                let s = committer.stats();
                let (batches, frames) = (s.batches - before.batches, s.frames - before.frames);
                println!(
                    "{name}/{}: {frames} frames in {batches} transactions ({:.1} per transaction)",
                    t.name,
                    frames as f64 / batches.max(1) as f64
                );
            }
            drop(committer);
            rt.block_on(store.close());
        }
        group.finish();
    }

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
