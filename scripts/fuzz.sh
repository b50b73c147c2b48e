#!/usr/bin/env bash
# fuzz.sh [RUNS]: builds the libFuzzer targets (preset "fuzz": clang, ASan and
# UBSan) and runs each for RUNS executions (default 200000) from the committed
# seed corpus in tests/fuzz/corpus, with leak detection on. Exits non-zero on
# any crash, leak, sanitizer report or failed round trip.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200000}
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target fuzz_frame -j"$(nproc)" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
build-fuzz/fuzz/fuzz_frame -runs="$runs" -seed=1 -max_len=65536 -dict=tests/fuzz/frame.dict \
  -artifact_prefix="$work/" "$work" tests/fuzz/corpus 2>&1 | tail -n 4
echo "fuzz_frame: $runs executions, no crash, no leak"
