#!/usr/bin/env bash
# bench_cpu.sh [BUILD_DIR]: training throughput of the CPU paths through
# nanochatd (one thread): steps/s and tokens/s at each model's default batch
# and at batch size 1, with each optimizer at batch size 1.
#
#   step/s   steps over the summed time of the model's train_step calls
#   tok/s    tokens of steps 11..N over their summed time (the train result)
#   wall/s   steps over the whole command's wall time: batch sampling,
#            logging, the two evals (2 windows) and the final checkpoint
#
# Each section is a function bench_<name> listed in `sections`; add a path by
# adding one (the GPT section goes here). SECTIONS="a b" runs only those.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build}/bin
source scripts/private_daemon.sh

# run MODE KIND BATCH(0: default) OPTIMIZER STEPS [FLAGS...]: one table row.
run() {
  local mode=$1 kind=$2 batch=$3 opt=$4 steps=$5
  shift 5
  local t0 t1 res
  t0=$(date +%s.%N)
  res=$(nc train --mode "$mode" --model-kind "$kind" --batch-size "$batch" --optimizer "$opt" --steps "$steps" \
    --eval-windows 2 --log-every 1000000000 "$@")
  t1=$(date +%s.%N)
  jq -r --arg path "$mode $kind" --arg opt "$opt" --argjson batch "$batch" --argjson t0 "$t0" --argjson t1 "$t1" \
    '($t1 - $t0) as $wall | "| \($path) | \(if $batch == 0 then "default" else $batch end) | \($opt) | \(.steps) | \(.steps / .train_s | floor) | \(.tok_per_s | floor) | \(.steps / $wall | floor) | \(.final_train_loss * 1000 | round / 1000) |"' <<<"$res"
}

bench_scalar_bigram() {
  run scalar bigram 0 adamw 1000
  run scalar bigram 1 adamw 20000
  run scalar bigram 1 sgd 20000 --lr 0.1
}

bench_scalar_minigpt() {
  run scalar mini-gpt 0 adamw 500
  run scalar mini-gpt 1 adamw 4000
  run scalar mini-gpt 1 sgd 4000 --lr 0.05
}

bench_tensor_bigram() {
  run tensor bigram 0 adamw 30000
  run tensor bigram 0 sgd 50000
  run tensor bigram 1 adamw 50000
  run tensor bigram 1 sgd 1000000 --lr 0.1
}

sections=${SECTIONS:-"scalar_bigram scalar_minigpt tensor_bigram"}
echo "nanochatd on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)), one engine thread"
echo
echo "| path | batch | optimizer | steps | step/s | tok/s | wall/s | last loss |"
echo "|---|---|---|---|---|---|---|---|"
for s in $sections; do "bench_$s"; done
