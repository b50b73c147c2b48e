#!/usr/bin/env bash
# test.sh: sets up, builds, and runs the whole test suite: CTest (the Check
# suites), the harness's pytest, and the fuzz targets for a bounded number of
# inputs each (NC_FUZZ_RUNS, default 20000; 0 skips them). With nvcc present
# it builds and tests both configurations: build/ (CUDA) and build-cpu/
# (NC_CUDA=OFF).
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
run_ctest() {
  echo "== ctest: $1"
  ctest --test-dir "$1" --output-on-failure -j2 || status=1
}
./scripts/setup.sh build -DNC_WERROR=ON
run_ctest build
if command -v nvcc >/dev/null 2>&1; then
  ./scripts/setup.sh build-cpu -DNC_CUDA=OFF -DNC_WERROR=ON
  run_ctest build-cpu
fi
echo "== pytest: tests/python"
python3 -m pytest -q tests/python || status=1
runs=${NC_FUZZ_RUNS:-20000}
if ((runs > 0)); then
  echo "== fuzz: $runs inputs per target"
  ./scripts/fuzz.sh "$runs" || status=1
fi
exit $status
