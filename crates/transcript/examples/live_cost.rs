//! What the live stream costs against forwarding tmux's raw output
//! (docs/protocol.md §2.3): bytes, compressed bytes (independent zstd
//! frames of about 4 KiB, level 3, as the bridge sends them) and feed
//! throughput, on the flood capture and on every 3.3a fixture's panes:
//! `cargo run --release -p transcript --example live_cost`.

use transcript::pane::PaneModel;

fn outputs(log: &[u8], limit: usize) -> Vec<bytes::Bytes> {
    let mut parser = tmux_cc::Parser::new();
    parser.push(log);
    parser.finish();
    let mut chunks = Vec::new();
    let mut total = 0;
    while let Some(ev) = parser.next_event() {
        if let tmux_cc::Event::Output { data, .. } | tmux_cc::Event::ExtendedOutput { data, .. } =
            ev
        {
            total += data.len();
            chunks.push(data);
            if total >= limit {
                break;
            }
        }
    }
    chunks
}

/// Compressed size as ~4 KiB independent frames.
fn framed(chunks: &[Vec<u8>]) -> usize {
    let mut size = 0;
    let mut frame = Vec::new();
    for c in chunks {
        frame.extend_from_slice(c);
        if frame.len() >= 4096 {
            size += zstd::encode_all(&frame[..], 3).map_or(0, |v| v.len());
            frame.clear();
        }
    }
    if !frame.is_empty() {
        size += zstd::encode_all(&frame[..], 3).map_or(0, |v| v.len());
    }
    size
}

fn measure(name: &str, chunks: &[bytes::Bytes], reps: usize) {
    let raw: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
    let total: usize = raw.iter().map(Vec::len).sum();
    let mut m = PaneModel::new(80, 24, 10_000).expect("size");
    let live: Vec<Vec<u8>> = chunks
        .iter()
        .map(|c| m.feed_live(c).unwrap_or_else(|| m.live_reset_bytes()))
        .collect();
    let live_total: usize = live.iter().map(Vec::len).sum();
    let t = std::time::Instant::now();
    for _ in 0..reps {
        let mut m = PaneModel::new(80, 24, 10_000).expect("size");
        for c in chunks {
            m.feed(c);
        }
        std::hint::black_box(m.cursor());
    }
    let plain = (total * reps) as f64 / t.elapsed().as_secs_f64() / 1e6;
    let t = std::time::Instant::now();
    for _ in 0..reps {
        let mut m = PaneModel::new(80, 24, 10_000).expect("size");
        for c in chunks {
            std::hint::black_box(m.feed_live(c));
        }
    }
    let teed = (total * reps) as f64 / t.elapsed().as_secs_f64() / 1e6;
    println!(
        "| {name} | {total} | {live_total} ({:+.1} %) | {} | {} ({:+.1} %) | {plain:.0} | {teed:.0} |",
        (live_total as f64 / total.max(1) as f64 - 1.0) * 100.0,
        framed(&raw),
        framed(&live),
        (framed(&live) as f64 / framed(&raw).max(1) as f64 - 1.0) * 100.0,
    );
}

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tmux-cc");
    println!(
        "| capture | raw bytes | live bytes | raw compressed | live compressed | feed MB/s | feed_live MB/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    let flood = std::fs::read(format!("{dir}/flood.log.zst")).expect("flood fixture");
    let flood = zstd::decode_all(&flood[..]).expect("zstd");
    measure("flood (8 MiB)", &outputs(&flood, 8 << 20), 3);
    for name in ["colors", "unicode", "altscreen", "scroll", "binary"] {
        let log = std::fs::read(format!("{dir}/{name}.log")).expect("fixture");
        measure(name, &outputs(&log, usize::MAX), 200);
    }
}
