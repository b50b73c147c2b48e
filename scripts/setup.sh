#!/usr/bin/env bash
# setup.sh [BUILD_DIR] [CMAKE_ARGS...]: installs what is missing (Debian
# packages via apt-get, Python packages via pip) and builds with CMake.
# Binaries land in BUILD_DIR/bin (default: build/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true

packages=(build-essential cmake pkg-config libevent-dev libmsgpack-dev libsystemd-dev check
          libjansson-dev libopenblas-dev python3 python3-pip)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 -c 'import msgpack, pytest' 2>/dev/null ||
  python3 -m pip install -q msgpack pytest 2>/dev/null ||
  python3 -m pip install -q --break-system-packages msgpack pytest

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
