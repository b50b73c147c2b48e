#!/usr/bin/env bash
# learning_curves.sh [BUILD_DIR] [STEPS]: the validation-loss curves of the
# scalar bigram, the scalar mini-GPT and the tensor bigram at their defaults
# on tiny Shakespeare (an eval every STEPS/10 steps; STEPS defaults to 500),
# as one markdown table, and whether each ends at least 15% under its step-0
# loss (the bar issue 3 sets for 500 steps).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build}/bin
steps=${2:-500}
source scripts/private_daemon.sh

paths=("scalar bigram" "scalar mini-gpt" "tensor bigram")
for i in "${!paths[@]}"; do
  read -r mode kind <<<"${paths[$i]}"
  nc train --mode "$mode" --model-kind "$kind" --steps "$steps" --eval-every $((steps / 10)) --run-id "curve-$i" >/dev/null
done
jq -rs --arg names "$(IFS=,; echo "${paths[*]}")" '
  ($names | split(",")) as $n
  | [.[] | map(select(.type == "eval"))] as $runs
  | "| step | \($n | join(" | ")) |", "|---|\($n | map("---") | join("|"))|",
    (range($runs[0] | length) as $i | "| \($runs[0][$i].step) | \([$runs[] | .[$i].val_loss * 10000 | round / 10000] | join(" | ")) |"),
    "| under step 0 | \([$runs[] | (1 - .[-1].val_loss / .[0].val_loss) * 1000 | round / 10 | "\(.)%"] | join(" | ")) |"
' <(for i in "${!paths[@]}"; do jq -s . "$dir/results/curve-$i/metrics.jsonl"; done)
