#!/usr/bin/env bash
# setup.sh [BUILD_DIR] [CMAKE_ARGS...]: installs what is missing (Debian
# packages via apt-get, Python packages via pip) and builds with CMake.
# Binaries land in BUILD_DIR/bin (default: build/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true

source scripts/packages.sh
need_packages build-essential cmake pkg-config libevent-dev libmsgpack-dev libsystemd-dev check \
  libjansson-dev libopenblas-dev libpcre2-dev nettle-dev python3 python3-pip

python3 -c 'import msgpack, pytest, rustbpe, tiktoken, pyarrow' 2>/dev/null ||
  python3 -m pip install -q msgpack pytest rustbpe tiktoken pyarrow 2>/dev/null ||
  python3 -m pip install -q --break-system-packages msgpack pytest rustbpe tiktoken pyarrow

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
