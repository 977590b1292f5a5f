//! Transcript core benchmarks (issue 3):
//!
//! * `feed/<fixture>`: pane bytes through `PaneModel::feed` (MB/s of pane
//!   output; the `%output` payloads of the capture, in the chunks tmux sent);
//! * `snapshot/200x50+10000`: `PaneModel::reset_bytes` of a 200x50 pane with
//!   10 000 lines of coloured scrollback, history lines already rendered by
//!   an earlier snapshot (time; the first snapshot's time, the size and the
//!   pane's memory are printed, as is the memory of an 80x24 pane after the
//!   flood);
//! * `framing`: compressed bytes per MB of pane output for each framing the
//!   codec module compares (printed), and the time of the chosen one.
//!
//! `cargo bench -p benches --bench transcript`.

use std::hint::black_box;
use std::time::Duration;

use benches::tmux_cc_fixture;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protocol::codec::{Framing, framing_size};
use transcript::pane::PaneModel;

/// The `%output` payloads of a capture, in order, all panes together.
fn outputs(name: &str, limit: usize) -> Vec<bytes::Bytes> {
    let log = tmux_cc_fixture(name).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    let mut parser = tmux_cc::Parser::new();
    parser.push(&log);
    parser.finish();
    let mut out = Vec::new();
    let mut total = 0;
    while let Some(ev) = parser.next_event() {
        match ev {
            tmux_cc::Event::Output { data, .. } | tmux_cc::Event::ExtendedOutput { data, .. } => {
                total += data.len();
                out.push(data);
                if total >= limit {
                    break;
                }
            }
            _ => {}
        }
    }
    out
}

fn feed(c: &mut Criterion) {
    for (name, limit) in [
        ("flood", 8 << 20),
        ("unicode", usize::MAX),
        ("colors", usize::MAX),
        ("altscreen", usize::MAX),
    ] {
        let chunks = outputs(name, limit);
        let bytes: usize = chunks.iter().map(|c| c.len()).sum();
        let mut group = c.benchmark_group(format!("feed/{name}"));
        group.throughput(Throughput::Bytes(bytes as u64));
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(if bytes > 1 << 20 { 10 } else { 3 }));
        group.bench_function("pane-model", |b| {
            b.iter(|| {
                let mut m = PaneModel::new(80, 24, 10_000).expect("size");
                for chunk in &chunks {
                    m.feed(black_box(chunk));
                }
                m
            })
        });
        group.finish();
    }
}

fn big_pane() -> PaneModel {
    let mut m = PaneModel::new(200, 50, 10_000).expect("size");
    for i in 0..10_050u32 {
        let line = format!(
            "\x1b[3{}m{i:>6}\x1b[0m \x1b[1mdrwxr-xr-x\x1b[0m user group {:>8} Nov 21 \x1b[34;1mdirectory-{i}\x1b[0m {}\r\n",
            i % 8,
            i * 37,
            "x".repeat((i % 120) as usize)
        );
        m.feed(line.as_bytes());
    }
    m
}

fn snapshot(c: &mut Criterion) {
    let mut m = big_pane();
    // The first snapshot renders every history line; later ones only what
    // scrolled since (the bench measures those).
    let cold = std::time::Instant::now();
    let bytes = m.reset_bytes();
    eprintln!(
        "first snapshot (every history line rendered): {:.2} ms",
        cold.elapsed().as_secs_f64() * 1e3
    );
    let z = protocol::codec::compress(&bytes)
        .map(|z| z.len())
        .unwrap_or(0);
    eprintln!(
        "snapshot 200x50 + {} lines: {} bytes raw, {} bytes zstd (level {})",
        m.scrollback_len(),
        bytes.len(),
        z,
        protocol::codec::LEVEL
    );
    eprintln!(
        "memory: 200x50 pane with {} lines of history: {} bytes ({} in history cells)",
        m.scrollback_len(),
        m.memory_bytes(),
        m.scrollback_bytes()
    );
    let mut flood = PaneModel::new(80, 24, 10_000).expect("size");
    for chunk in outputs("flood", 8 << 20) {
        flood.feed(&chunk);
    }
    eprintln!(
        "memory: 80x24 pane after 8 MiB of the flood capture ({} lines of history): {} bytes",
        flood.scrollback_len(),
        flood.memory_bytes()
    );
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("200x50+10000/reset_bytes", |b| {
        b.iter(|| black_box(m.reset_bytes().len()))
    });
    group.bench_function("200x50+10000/reset_bytes+zstd", |b| {
        b.iter(|| black_box(protocol::codec::compress(&m.reset_bytes()).map(|z| z.len())))
    });
    group.finish();
}

fn framing(c: &mut Criterion) {
    // A mix: 4 MiB of the flood capture and every small fixture's output.
    let mut data: Vec<u8> = Vec::new();
    for chunk in outputs("flood", 4 << 20) {
        data.extend_from_slice(&chunk);
    }
    let mut small = Vec::new();
    for name in [
        "colors",
        "unicode",
        "altscreen",
        "scroll",
        "splits",
        "windows",
        "binary",
        "resize",
    ] {
        for chunk in outputs(name, usize::MAX) {
            small.extend_from_slice(&chunk);
        }
    }
    for (label, input) in [("flood 4 MiB", &data), ("small fixtures", &small)] {
        let mb = input.len() as f64 / 1e6;
        eprintln!(
            "framing over {label} ({} bytes): compressed bytes per MB of output, ratio",
            input.len()
        );
        let framings = [
            (
                "(a) independent 1 KiB",
                Framing::Independent { batch: 1 << 10 },
            ),
            (
                "(a) independent 4 KiB",
                Framing::Independent { batch: 4 << 10 },
            ),
            (
                "(a) independent 16 KiB",
                Framing::Independent { batch: 16 << 10 },
            ),
            (
                "(a) independent 64 KiB",
                Framing::Independent { batch: 64 << 10 },
            ),
            (
                "(b) stream, flush per 4 KiB",
                Framing::StreamFlush { batch: 4 << 10 },
            ),
            (
                "(b) stream, flush per 16 KiB",
                Framing::StreamFlush { batch: 16 << 10 },
            ),
            (
                "(c) dictionary 16 KiB, 4 KiB frames",
                Framing::Dictionary {
                    batch: 4 << 10,
                    dict_bytes: 16 << 10,
                },
            ),
        ];
        for (name, f) in framings {
            match framing_size(input, f) {
                Ok(n) => eprintln!(
                    "  {name:<38} {:>9.0} B/MB  {:>5.2}x",
                    n as f64 / mb,
                    input.len() as f64 / n as f64
                ),
                Err(e) => eprintln!("  {name:<38} failed: {e}"),
            }
        }
    }
    let mut group = c.benchmark_group("framing");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for (name, f) in [
        ("independent-4k", Framing::Independent { batch: 4 << 10 }),
        ("independent-16k", Framing::Independent { batch: 16 << 10 }),
        ("stream-flush-4k", Framing::StreamFlush { batch: 4 << 10 }),
    ] {
        group.bench_function(name, |b| b.iter(|| black_box(framing_size(&data, f).ok())));
    }
    group.finish();
}

criterion_group!(benches, feed, snapshot, framing);
criterion_main!(benches);
