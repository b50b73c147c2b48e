# private_daemon.sh: sourced by the benchmark scripts. Starts a nanochatd of
# $bin (one CPU thread, cpu backend) in a temporary folder, stops it on exit,
# and defines `nc ARGS...`: ncctl on that daemon, printing the result as JSON.
dir=$(mktemp -d /tmp/nc-bench.XXXXXX)
sock=$dir/d.sock
trap '"$bin/ncctl" shutdown --socket "$sock" --no-autostart >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
"$bin/nanochatd" --socket "$sock" --data data/tinyshakespeare.txt --results-dir "$dir/results" --checkpoint-dir "$dir/ckpt" \
  --threads 1 --preload-device cpu 2>"$dir/log" &
until "$bin/ncctl" status --socket "$sock" --no-autostart >/dev/null 2>&1; do sleep 0.05; done
nc() { "$bin/ncctl" "$@" --socket "$sock" --no-autostart --json | jq -c 'select(.result) | .result'; }
