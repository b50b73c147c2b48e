#!/usr/bin/env bash
# stress.sh [BUILD_DIR]: the long proofs that nanochatd is a service to trust
# (issue 7), with the figures they measure. The CTest suites run small
# versions of the same scenarios; here they are scaled up through NC_TEST_*
# variables, and what a test cannot do runs here with the real tools:
#
#   hostile clients   every hostile input 2,000 times, 1,000 connections at once
#                     20 times, status latency and descriptor/memory baselines
#   slow client       a byte per second against 3 s timeouts
#   crowd             200 clients during a 1,000-step training run
#   faults            kill -9 during checkpoint writes (60 trials), SIGTERM and
#                     resume, non-finite loss, RLIMIT_FSIZE; and a real full
#                     disk: a 512 KiB tmpfs (needs root)
#   valgrind          memcheck of a lifecycle: start, train, sample, checkpoint,
#                     an interrupted train saved at shutdown
#   sanitizers        the service suites under the asan preset; the fuzzer
#                     (scripts/fuzz.sh) for FUZZ_RUNS executions (1,000,000)
#
# Lines starting with FIGURE are the measurements. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
ROOT=$PWD
export NC_TEST_FIGURES=1 CK_DEFAULT_TIMEOUT=900

section() { printf '\n== %s\n' "$*"; }

# run TEST [VAR=VALUE...]: one suite, scaled up; prints its figures and verdict.
run() {
  local t=$1
  shift
  env "$@" "$B/tests/$t" | grep -E '^FIGURE|Checks|:[FE]:'
}

# A daemon of our own for the tool-driven scenarios: start_daemon DIR [ARGS...]
start_daemon() {
  local dir=$1
  shift
  head -c 65536 data/tinyshakespeare.txt >"$dir/corpus.txt"
  "$@" "$ROOT/$B/bin/nanochatd" --socket "$dir/d.sock" --results-dir "$dir/results" \
    --checkpoint-dir "$dir/ckpt" --data "$dir/corpus.txt" --threads 1 2>"$dir/log" &
  DAEMON=$!
  export NANOCHAT_SOCKET=$dir/d.sock
  for _ in $(seq 300); do ncctl status >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "nanochatd did not start: $(cat "$dir/log")" >&2
  return 1
}

ncctl() { "$ROOT/$B/bin/ncctl" "$1" --no-autostart "${@:2}"; }

bigram() { echo --mode scalar --model-kind bigram --batch-size 8 --eval-windows 64 "$@"; }

disk_full_on_tmpfs() {
  local dir
  dir=$(mktemp -d)
  mkdir "$dir/ckpt"
  mount -t tmpfs -o size=512k tmpfs "$dir/ckpt"
  start_daemon "$dir"
  # shellcheck disable=SC2046
  ncctl train $(bigram --steps 20 --checkpoint full.ckpt) >/dev/null 2>&1
  local before after out
  before=$(md5sum <"$dir/ckpt/full.ckpt")
  dd if=/dev/zero of="$dir/ckpt/filler" bs=4k 2>/dev/null || true # until ENOSPC
  out=$(ncctl checkpoint --action save 2>&1 || true)
  # shellcheck disable=SC2046
  out="$out / $(ncctl train $(bigram --steps 40 --resume full.ckpt --checkpoint full.ckpt) 2>&1 | tail -n 1 || true)"
  after=$(md5sum <"$dir/ckpt/full.ckpt")
  local temps
  temps=$(find "$dir/ckpt" -name '*.tmp.*' | wc -l)
  rm "$dir/ckpt/filler"
  # shellcheck disable=SC2046
  ncctl train $(bigram --steps 40 --resume full.ckpt --checkpoint full.ckpt) >/dev/null 2>&1
  echo "FIGURE tmpfs_full errors=[$out] old_checkpoint_intact=$([ "$before" = "$after" ] && echo yes || echo NO)" \
    "temporaries_left=$temps training_continued=yes"
  [ "$before" = "$after" ] && [ "$temps" = 0 ] && grep -q "No space left on device" <<<"$out"
  ncctl shutdown >/dev/null
  wait "$DAEMON"
  umount "$dir/ckpt"
  rm -rf "$dir"
}

valgrind_lifecycle() {
  local dir rc
  dir=$(mktemp -d)
  start_daemon "$dir" valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 --log-file="$dir/vg.log"
  # shellcheck disable=SC2046
  ncctl train $(bigram --steps 20 --checkpoint life.ckpt) >/dev/null 2>&1
  ncctl sample --max-new-tokens 50 >/dev/null
  ncctl checkpoint --action save --path copy.ckpt >/dev/null
  ncctl checkpoint --action load --path life.ckpt >/dev/null
  # shellcheck disable=SC2046
  ncctl train $(bigram --steps 100000 --resume life.ckpt) >/dev/null 2>&1 &
  sleep 3
  ncctl shutdown | tr -d '\n '
  echo
  wait $! || true
  rc=0
  wait "$DAEMON" || rc=$?
  echo "FIGURE valgrind exit=$rc $(grep -E 'ERROR SUMMARY|in use at exit' "$dir/vg.log" | sed 's/==[0-9]*== //' | tr '\n' ' ')"
  [ "$rc" = 0 ]
  rm -rf "$dir"
}

cmake -S . -B "$B" -DNC_CUDA=OFF >/dev/null
cmake --build "$B" -j"$(nproc)" >/dev/null

section "hostile clients: each input 2,000 times; 1,000 connections at once, 20 times"
run test_daemon_hostile NC_TEST_REPEAT=2000 NC_TEST_BURSTS=20
section "a client sending one byte per second (3 s timeouts)"
run test_daemon_hostile CK_RUN_CASE=timeouts NC_TEST_TIMEOUT_MS=3000 NC_TEST_TRICKLE_MS=1000
section "200 clients asking status and sample during a 1,000-step training run"
run test_daemon_load NC_TEST_CLIENTS=200 NC_TEST_TRAIN_STEPS=1000
section "faults: kill -9 x60 during checkpoint writes, SIGTERM + resume, NaN, RLIMIT_FSIZE"
run test_daemon_faults NC_TEST_KILL_TRIALS=60
section "a real full disk: checkpoints on a 512 KiB tmpfs"
if [ "$(id -u)" = 0 ]; then disk_full_on_tmpfs; else echo "skipped: mounting a tmpfs needs root"; fi
section "valgrind memcheck of a daemon lifecycle"
valgrind_lifecycle
section "the service suites under ASan + UBSan"
cmake --preset asan >/dev/null
cmake --build --preset asan -j"$(nproc)" >/dev/null
ctest --preset asan -R 'test_(daemon|service)_' 2>&1 | grep -E 'tests passed|Failed'
section "fuzzing the frame decoder and request validation"
scripts/fuzz.sh "${FUZZ_RUNS:-1000000}"
