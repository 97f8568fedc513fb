#!/usr/bin/env bash
# Whole-process timings on generated OpenClaw-like session transcripts: clawscrub's filter
# against `cat` (the floor) and ripgrep replacing OpenClaw's 16 default redaction patterns
# (`rg -P`: PCRE2, as two of them use a backreference), plus start-up and bulk 1 vs 2 threads.
#
#   benches/compare.sh [DIR]        (needs hyperfine and rg; SIZE_MB=100 by default)
#
# Bulk output goes to OUT (tmpfs when there is one), so that the thread ratio measures the
# scrubbing and not the disk's write-back.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/clawscrub-compare}
size=${SIZE_MB:-100}
if [ -z "${OUT:-}" ]; then
    if [ -d /dev/shm ]; then OUT=/dev/shm/clawscrub-compare; else OUT=$dir/out; fi
fi
mkdir -p "$dir"
cargo build --release --quiet --bin clawscrub --example gen_corpus
bin=target/release/clawscrub
for spec in rare:0.001 dense:1.0; do
    name=${spec%%:*}
    file="$dir/session-$name.jsonl"
    [ -s "$file" ] || target/release/examples/gen_corpus "$file" "$size" "${spec#*:}" session
done
for name in rare dense; do
    file="$dir/session-$name.jsonl"
    hyperfine -N -w1 -r5 --output=null \
        "cat $file" \
        "rg -P -i --passthru -r [REDACTED] -f benches/openclaw-16.txt $file" \
        "$bin --no-openclaw-config $file"
done
hyperfine -N -w3 -r30 --output=null "$bin --no-openclaw-config /dev/null"
hyperfine -N -w1 -r5 --prepare "rm -rf $OUT" \
    "$bin scrub --no-openclaw-config --threads 1 --out $OUT $dir/session-rare.jsonl" \
    "$bin scrub --no-openclaw-config --threads 2 --out $OUT $dir/session-rare.jsonl"
rm -rf "$OUT"
