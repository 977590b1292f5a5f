//! Feeds the flood capture's pane output to a model, for profiling:
//! `cargo run --release -p transcript --example feed_flood [REPS [FIXTURE]]`
//! (FIXTURE: another capture of `fixtures/tmux-cc`, e.g. `unicode`, fed
//! whole; the flood is cut at 8 MiB as in the criterion bench).

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let name = std::env::args().nth(2).unwrap_or_else(|| "flood".into());
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tmux-cc/");
    let log = match std::fs::read(format!("{dir}{name}.log")) {
        Ok(log) => log,
        Err(_) => {
            let raw = std::fs::read(format!("{dir}{name}.log.zst")).expect("fixture");
            zstd::decode_all(&raw[..]).expect("zstd")
        }
    };
    let limit = if name == "flood" { 8 << 20 } else { usize::MAX };
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
            if total >= limit {
                break;
            }
        }
    }
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
