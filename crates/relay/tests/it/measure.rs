//! Figures for the report (ignored by default; run with
//! `cargo test -p tmux-relay --release --test it measure -- --ignored --nocapture`):
//! store-and-ack throughput of one runner, fan-out to several browsers,
//! and the latency of a small frame from runner to browser.

use std::time::{Duration, Instant};

use crate::harness::*;
use crate::principal::*;

fn median_min_max(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run explicitly"]
async fn measure() {
    let db = databases().pop().unwrap_or(Db::Sqlite);
    println!("database: {db:?}");
    const FRAMES: u64 = 2000;
    const LEN: usize = 16 * 1024;
    const BROWSERS: usize = 4;
    let mut ingest = Vec::new();
    let mut fanout = Vec::new();
    for _ in 0..5 {
        let relay = TestRelay::start(&db).await;
        let p = new_principal(&relay).await;
        let mut r =
            RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
        let mut tasks = Vec::new();
        for _ in 0..BROWSERS {
            // Browser tokens are single use (issue 10): one per socket.
            let tok = browser_token(&relay, &p, &r.session_id);
            let mut b =
                BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
            tasks.push(tokio::spawn(async move {
                b.read_until(FRAMES).await;
                b.frames.len()
            }));
        }
        let frames: Vec<_> = (1..=FRAMES).map(|s| batch(s, s, LEN)).collect();
        let start = Instant::now();
        for f in frames {
            r.send(f).await;
        }
        r.wait_ack(FRAMES).await;
        let acked = start.elapsed();
        for t in tasks {
            assert_eq!(t.await.expect("browser task"), FRAMES as usize);
        }
        let all = start.elapsed();
        ingest.push(FRAMES as f64 * LEN as f64 / acked.as_secs_f64() / 1e6);
        fanout.push(all.as_secs_f64() * 1000.0);
    }
    let (m, lo, hi) = median_min_max(ingest);
    println!(
        "ingest: {FRAMES} frames x {} KiB stored+acked: median {m:.1} MB/s (min {lo:.1}, max {hi:.1})",
        LEN / 1024
    );
    let (m, lo, hi) = median_min_max(fanout);
    println!(
        "fan-out to {BROWSERS} browsers, last frame received: median {m:.0} ms (min {lo:.0}, max {hi:.0})"
    );

    // Latency of a small frame (a keystroke echo's size), one at a time.
    let relay = TestRelay::start(&db).await;
    let p = new_principal(&relay).await;
    let mut r = RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
    let tok = browser_token(&relay, &p, &r.session_id);
    let mut b = BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
    let mut lat: Vec<Duration> = Vec::new();
    for seq in 1..=500u64 {
        let f = batch(seq, seq, 16);
        let t = Instant::now();
        r.send(f).await;
        b.read_until(seq).await;
        lat.push(t.elapsed());
    }
    lat.sort();
    let pct = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1000.0;
    println!(
        "runner -> relay (stored) -> browser, 16-byte frame: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
        pct(0.5),
        pct(0.95),
        pct(0.99)
    );
}
