#!/usr/bin/env bash
# Builds and runs every cargo-fuzz target for N seconds each (default 60).
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
# FUZZ_SANITIZER (default none; e.g. address) picks cargo-fuzz's sanitizer. The crate's only
# unsafe code is the AVX2 and AVX-512 literal search (src/prefilter.rs), whose loads are bounds-checked by
# its loop condition and tested against brute force; without ASan the targets run about 4x as
# many inputs per second. Run with FUZZ_SANITIZER=address after changing that file.
# FUZZ_BUDGET (default 540) caps the whole script, installing cargo-fuzz and building included,
# in seconds: when the build leaves less than N seconds a target, each gets an equal share of
# what is left (at least 10 s), so that CI's fuzz step stays under 10 minutes on 2 cores as
# targets are added. 0 turns the cap off.
# FUZZ_SEED (default: libFuzzer picks one and prints it) fixes libFuzzer's random seed, so that a
# run can be repeated: CI sets it, and a failure there replays locally with the same seed.
# Exploration (long runs, new seeds) is done locally, with no seed set.
# Exits non-zero if any target crashes (the crashing input is left in fuzz/artifacts/<target>/).
set -euo pipefail

secs="${1:-60}"
shift || true
cd "$(dirname "$0")"

# The fuzz crate is a workspace of its own, so cargo would resolve every dependency afresh, to
# versions the tests never ran with. It starts from the crate's lock file instead and adds only
# the fuzzing crates.
cp ../Cargo.lock Cargo.lock

# cargo-fuzz needs nightly flags (-Zsanitizer); the stable toolchain accepts them with this.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

sanitizer="${FUZZ_SANITIZER:-none}"

# Build first, so that the seconds per target below are all fuzzing: with no target named, every
# target in one cargo invocation (the crate and its dependencies once, the binaries in parallel).
if [ "$#" -gt 0 ]; then
    targets=("$@")
    for t in "${targets[@]}"; do
        cargo fuzz build --sanitizer "$sanitizer" "$t"
    done
else
    mapfile -t targets < <(cargo fuzz list)
    cargo fuzz build --sanitizer "$sanitizer"
fi

budget="${FUZZ_BUDGET:-540}"
# What a target costs beyond its fuzzing time: start-up, loading the corpus, final stats.
overhead=5
seed=()
if [ -n "${FUZZ_SEED:-}" ]; then
    seed=(-seed="$FUZZ_SEED")
fi
status=0
left="${#targets[@]}"
for t in "${targets[@]}"; do
    run_secs="$secs"
    if [ "$budget" -gt 0 ]; then
        share=$(( (budget - SECONDS) / left - overhead ))
        if [ "$share" -lt "$run_secs" ]; then
            run_secs=$(( share < 10 ? 10 : share ))
            echo "(FUZZ_BUDGET=${budget}s, ${SECONDS}s used: ${run_secs}s for $t instead of ${secs}s)"
        fi
    fi
    left=$(( left - 1 ))
    echo "=== fuzz target $t: ${run_secs}s ==="
    # Work on a copy of the seed corpus so a CI run leaves the tree clean.
    work="$(mktemp -d)"
    cp -r "corpus/$t/." "$work/" 2>/dev/null || true
    if ! cargo fuzz run --sanitizer "$sanitizer" "$t" "$work" -- \
        -max_total_time="$run_secs" -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 \
        "${seed[@]}"; then
        echo "!!! fuzz target $t failed; see fuzz/artifacts/$t/" >&2
        status=1
    fi
    rm -rf "$work"
done
exit "$status"
