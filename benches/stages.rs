//! Each stage of the pipeline alone, to say where the whole-pipeline time goes:
//!
//! - `literal_search`: the block-level literal groups with every hit firing (no hit checks);
//! - `block_search`: the same with the hit checks that prune random hits (what the filter
//!   runs over every byte);
//! - `confirm`: every line looked at closely as plain text (literal automaton, rule regexes,
//!   validators), as the few lines the block search picks are;
//! - `json_strings`: JSON tokenizing and unescaping of every line;
//! - `mask`: rendering the replacement for each secret.
//!
//! `cargo bench --bench stages` (about a minute on a 2-core machine).

use std::hint::black_box;
use std::time::Duration;

use clawscrub::sample::{self as corpus, Shape};
use clawscrub::{stages, Scrubber};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// About 4 MiB per input.
const LEN: usize = 4 << 20;

fn stages(c: &mut Criterion) {
    let scrubber = Scrubber::builder().build().expect("built-in rules compile");
    let unchecked = Scrubber::builder()
        .check_hits(false)
        .build()
        .expect("built-in rules compile");
    let rare = corpus::generate(1, LEN, Shape::Session, 0.001).bytes;
    let dense = corpus::generate(2, LEN, Shape::Session, 1.0).bytes;
    let mut group = c.benchmark_group("stage");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, input) in [("session_rare", &rare), ("session_dense", &dense)] {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(format!("literal_search/{name}"), |b| {
            b.iter(|| stages::block_search(&unchecked, black_box(input)))
        });
        group.bench_function(format!("block_search/{name}"), |b| {
            b.iter(|| stages::block_search(&scrubber, black_box(input)))
        });
        group.bench_function(format!("confirm/{name}"), |b| {
            b.iter(|| stages::confirm(&scrubber, black_box(input)))
        });
        group.bench_function(format!("json_strings/{name}"), |b| {
            b.iter(|| stages::json_strings(black_box(input)))
        });
    }
    // The secrets of the dense input, as the pipeline hands them to the mask.
    let lines: Vec<&[u8]> = dense.split(|&b| b == b'\n').collect();
    let secrets: Vec<(String, Vec<u8>)> = scrubber
        .findings(&dense)
        .into_iter()
        .map(|f| (f.rule, lines[f.line as usize - 1][f.start..f.end].to_vec()))
        .collect();
    group.throughput(Throughput::Elements(secrets.len() as u64));
    for (style, mask) in [
        ("tag", clawscrub::Mask::Tag),
        ("openclaw", clawscrub::Mask::OpenClaw),
        ("hash", clawscrub::Mask::Hash(b"bench key".to_vec())),
    ] {
        let masked = Scrubber::builder()
            .mask(mask)
            .build()
            .expect("built-in rules compile");
        group.bench_function(format!("mask/{style}"), |b| {
            b.iter(|| stages::mask(&masked, black_box(&secrets)))
        });
    }
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
