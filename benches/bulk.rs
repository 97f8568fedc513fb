//! `clawscrub scrub` with 1 and 2 threads: a tree of many session files (files in parallel)
//! and one large file (chunks in parallel), written to a mirror tree.
//!
//! `cargo bench --bench bulk` (about a minute on a 2-core machine). The scaling figure is
//! the ratio of the two thread counts' times for the same input.

use std::path::Path;
use std::time::Duration;

use clawscrub::bulk::{self, BulkOptions, Dest, Progress};
use clawscrub::sample::{self as corpus, Shape};
use clawscrub::walk::{self, Target};
use clawscrub::Scrubber;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Writes `files` files of `len` bytes each under `dir` and returns them as targets.
fn tree(dir: &Path, files: usize, len: usize) -> Vec<Target> {
    for i in 0..files {
        let c = corpus::generate(i as u64 + 1, len, Shape::Mixed, 0.001);
        let agent = dir.join(format!("agent{}/sessions", i % 4));
        std::fs::create_dir_all(&agent).expect("temp dir is writable");
        std::fs::write(agent.join(format!("{i}.jsonl")), c.bytes).expect("temp dir is writable");
    }
    let globs = walk::globs(&[]).expect("no globs");
    walk::walk(&[dir.to_path_buf()], &globs)
        .expect("temp tree walks")
        .targets
}

/// Where the scrubbed copies go: tmpfs where there is one, as a rewritten file is synced
/// before it is renamed into place, and a disk's sync time would swamp the scrubbing this
/// bench is about.
fn output_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    match shm.is_dir() {
        true => tempfile::tempdir_in(shm),
        false => tempfile::tempdir(),
    }
    .expect("temp dir")
}

fn bulk(c: &mut Criterion) {
    let scrubber = Scrubber::builder().build().expect("built-in rules compile");
    let input = tempfile::tempdir().expect("temp dir");
    let inputs = [
        (
            "tree_24x1MiB",
            tree(&input.path().join("tree"), 24, 1 << 20),
        ),
        (
            "one_32MiB_file",
            tree(&input.path().join("one"), 1, 32 << 20),
        ),
    ];
    let mut group = c.benchmark_group("bulk");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (name, targets) in &inputs {
        let bytes: u64 = targets.iter().map(|t| t.len).sum();
        group.throughput(Throughput::Bytes(bytes));
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            let out = output_dir();
            let options = BulkOptions {
                dest: Dest::Mirror(out.path().to_path_buf()),
                ..BulkOptions::default()
            };
            group.bench_function(format!("{name}/{threads}_threads"), |b| {
                b.iter(|| {
                    pool.install(|| {
                        for result in
                            bulk::scrub_all(&scrubber, targets, &options, &Progress::default())
                        {
                            result.expect("bulk scrub succeeds");
                        }
                    })
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bulk);
criterion_main!(benches);
