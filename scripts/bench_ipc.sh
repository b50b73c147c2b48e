#!/usr/bin/env bash
# bench_ipc.sh [BUILD_DIR]: round-trip latency of `status` (p50, p99) with 1
# and 64 concurrent clients, while idle and while a training job runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build}/bin
dir=$(mktemp -d /tmp/nc-bench-ipc.XXXXXX)
sock=$dir/d.sock
trap '"$bin/ncctl" shutdown --socket "$sock" --no-autostart >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
"$bin/nanochatd" --socket "$sock" --results-dir "$dir/results" --checkpoint-dir "$dir/ckpt" 2>"$dir/log" &
until "$bin/ncctl" status --socket "$sock" --no-autostart >/dev/null 2>&1; do sleep 0.05; done
bench() { printf '%-8s ' "$1"; "$bin/nc-bench-ipc" "$sock" "$2" "$3"; }
bench idle 1 20000
bench idle 64 500
"$bin/ncctl" train --socket "$sock" --no-autostart --mode scalar --model-kind bigram --steps 100000000 \
  --eval-windows 16 --log-every 100 >/dev/null 2>&1 &
train=$!
sleep 1
bench training 1 20000
bench training 64 500
"$bin/ncctl" cancel --socket "$sock" --no-autostart >/dev/null
wait "$train" || true
