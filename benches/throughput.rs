//! Throughput of the streaming filter over generated OpenClaw-like input, the cost of
//! building a scrubber (rule compilation) plus one empty run, and of one empty run alone.
//!
//! `cargo bench --bench throughput` takes a couple of minutes on a 2-core machine;
//! add `-- --quick` for a rough figure in seconds.

use std::hint::black_box;
use std::time::Duration;

use clawscrub::Scrubber;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use clawscrub::sample::{self as corpus, Shape};

/// About 8 MiB per input.
const LEN: usize = 8 << 20;

/// (bench id, shape, secret density); seeds differ so inputs do not share text.
const INPUTS: [(&str, Shape, f64); 5] = [
    ("session_rare", Shape::Session, 0.001),
    ("session_dense", Shape::Session, 1.0),
    ("tslog_rare", Shape::Tslog, 0.001),
    ("plain_rare", Shape::Plain, 0.001),
    ("mixed_clean", Shape::Mixed, 0.0),
];

fn filter(c: &mut Criterion) {
    let scrubber = Scrubber::builder().build().expect("built-in rules compile");
    let mut group = c.benchmark_group("filter");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (seed, (name, shape, density)) in INPUTS.into_iter().enumerate() {
        let input = corpus::generate(seed as u64 + 1, LEN, shape, density).bytes;
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                scrubber
                    .scrub(black_box(&input[..]), std::io::sink())
                    .expect("scrubbing into a sink cannot fail")
            })
        });
    }
    group.finish();
}

fn startup(c: &mut Criterion) {
    let mut group = c.benchmark_group("startup");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("build_and_scrub_empty", |b| {
        b.iter(|| {
            let scrubber = Scrubber::builder().build().expect("built-in rules compile");
            scrubber
                .scrub(black_box(&b""[..]), std::io::sink())
                .expect("scrubbing into a sink cannot fail")
        })
    });
    // The per-call cost alone: an already built scrubber on an empty input.
    let scrubber = Scrubber::builder().build().expect("built-in rules compile");
    group.bench_function("scrub_empty", |b| {
        b.iter(|| {
            scrubber
                .scrub(black_box(&b""[..]), std::io::sink())
                .expect("scrubbing into a sink cannot fail")
        })
    });
    group.finish();
}

criterion_group!(benches, filter, startup);
criterion_main!(benches);
