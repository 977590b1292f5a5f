//! Control-mode parse throughput (issue 2): MB/s of raw `tmux -C` output
//! through `tmux_cc::Parser` (fed in 64 KiB reads, events drained after
//! each, as the bridge's reader does; `tmux-cc` copies each read with
//! `push`, `tmux-cc-owned` hands it over with `push_bytes`, its copy
//! standing for the read into a fresh buffer), and in the same group a plain memchr
//! line split + octal unescape loop over the same bytes (the baseline), so
//! the ratio is visible. Inputs: the output-heavy `flood` capture (53.5 MB,
//! `fixtures/tmux-cc/flood.log.zst`) and small recorded fixtures.
//!
//! `cargo bench -p benches --bench parser`; criterion's `thrpt` is the rate.

use std::hint::black_box;
use std::time::Duration;

use benches::{baseline_split_unescape, parse_chunked, tmux_cc_fixture};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const READ_CHUNK: usize = 64 << 10;

fn bench(c: &mut Criterion) {
    for name in ["flood", "flood-pause", "unicode", "hooks"] {
        let input = tmux_cc_fixture(name).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
        let mut group = c.benchmark_group(format!("parse/{name}"));
        group.throughput(Throughput::Bytes(input.len() as u64));
        if input.len() > 1 << 20 {
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(8));
        } else {
            group.measurement_time(Duration::from_secs(3));
        }
        group.warm_up_time(Duration::from_secs(1));
        group.bench_function("tmux-cc", |b| {
            b.iter(|| parse_chunked(black_box(&input), READ_CHUNK, false))
        });
        group.bench_function("tmux-cc-owned", |b| {
            b.iter(|| parse_chunked(black_box(&input), READ_CHUNK, true))
        });
        let mut out = Vec::with_capacity(1 << 16);
        group.bench_function("baseline", |b| {
            b.iter(|| baseline_split_unescape(black_box(&input), &mut out))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
