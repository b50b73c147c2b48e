#!/usr/bin/env bash
# demo.sh: the main job. Sets up and builds, starts nanochatd when none
# answers, trains the default model on the bundled tiny Shakespeare (the
# upstream GPT: a small config on CPU, d6 on a GPU) and samples from it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh build
ncctl=build/bin/ncctl
# ncctl starts nanochatd itself when no daemon answers on the socket.
if nvidia-smi -L >/dev/null 2>&1; then
  $ncctl train --depth 6 --seq-len 256 --batch-size 64 --steps 400 --eval-every 100
else
  $ncctl train --depth 4 --head-dim 64 --seq-len 128 --batch-size 8 --steps 300 --eval-every 100
fi
$ncctl sample --prompt "ROMEO:" --max-new-tokens 300 --temperature 0.8
