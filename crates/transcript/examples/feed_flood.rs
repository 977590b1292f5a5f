//! Feeds the flood capture's pane output to a model, for profiling:
//! `cargo run --release -p transcript --example feed_flood`.

fn main() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/tmux-cc/flood.log.zst"
    );
    let raw = std::fs::read(path).expect("flood fixture");
    let log = zstd::decode_all(&raw[..]).expect("zstd");
    let mut parser = tmux_cc::Parser::new();
    parser.push(&log);
    parser.finish();
    let mut chunks = Vec::new();
    let mut total = 0;
    while let Some(ev) = parser.next_event() {
        if let tmux_cc::Event::Output { data, .. } | tmux_cc::Event::ExtendedOutput { data, .. } =
            ev
        {
            total += data.len();
            chunks.push(data);
            if total >= 8 << 20 {
                break;
            }
        }
    }
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let t = std::time::Instant::now();
    for _ in 0..reps {
        let mut m = transcript::pane::PaneModel::new(80, 24, 10_000).expect("size");
        for c in &chunks {
            m.feed(c);
        }
        std::hint::black_box(m.cursor());
    }
    let s = t.elapsed().as_secs_f64();
    println!("{:.1} MB/s", (total * reps) as f64 / s / 1e6);
}
