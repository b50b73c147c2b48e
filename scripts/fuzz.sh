#!/usr/bin/env bash
# fuzz.sh [RUNS]: builds the libFuzzer targets (preset "fuzz": clang, ASan and
# UBSan) and runs each for RUNS executions (default 200000) from its committed
# seed corpus in tests/fuzz/corpus/<target>, with leak detection on:
#   frame        a frame's bytes: decoder, request and argument validation
#   checkpoint   a checkpoint file, its checksum forged right (header, tensors)
#   safetensors  a weights file for `checkpoint import`
#   tokenizer    a tokenizer.json and a text to encode
#   shard        a token shard (`train --data FOLDER`, the token cache)
# Exits non-zero on any crash, leak, sanitizer report or failed check.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200000}
source scripts/packages.sh
need_packages clang libclang-rt-14-dev cmake pkg-config libevent-dev libmsgpack-dev libsystemd-dev check \
  libjansson-dev libopenblas-dev libpcre2-dev nettle-dev
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target fuzz_frame fuzz_checkpoint fuzz_safetensors fuzz_tokenizer fuzz_shard -j"$(nproc)" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# fuzz TARGET MAX_LEN [FLAGS...]: RUNS executions from a copy of the seeds.
fuzz() {
  local target=$1 max_len=$2
  shift 2
  mkdir -p "$work/$target"
  "build-fuzz/fuzz/fuzz_$target" -runs="$runs" -seed=1 -max_len="$max_len" "$@" -artifact_prefix="$work/$target-" \
    "$work/$target" "tests/fuzz/corpus/$target" >"$work/$target.log" 2>&1 || { tail -n 40 "$work/$target.log"; return 1; }
  echo "fuzz_$target: $runs executions, no crash, no leak ($(grep -o 'cov: [0-9]*' "$work/$target.log" | tail -1))"
}
fuzz frame 65536 -dict=tests/fuzz/frame.dict
fuzz checkpoint 393216
fuzz safetensors 65536
fuzz tokenizer 16384
fuzz shard 4096
