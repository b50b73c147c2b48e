#!/usr/bin/env bash
# gpu_check.sh: everything that needs a GPU, in one command, for a fresh
# H100/H200 machine without network (device time is scarce: every phase has a
# deadline, nothing stops at the first failure, the summary comes last).
#
#   scripts/gpu_check.sh pack [BUILD_DIR]     here, after building with -DNC_CUDA=ON:
#       packs the GPU programs, the commit they were built from and the shared
#       libraries a CUDA image lacks (OpenBLAS and its Fortran runtime) into
#       build-cuda/gpu-pack.tar.xz (~6 MB); carry that one file to the GPU machine.
#   scripts/gpu_check.sh [--quick] [--out DIR] [--nanochat-dir PATH] [--budget SECONDS]
#       there: device facts, the kernel test (every op against its cpu twin;
#       under compute-sanitizer's memcheck and racecheck too when it fails),
#       the end-to-end GPU training test, the kernel and step benchmarks, then
#       scripts/benchmark_karpathy.py against upstream (when --nanochat-dir is
#       given), within --budget seconds (default 480; 240 with --quick, which
#       runs d6 only and the benchmark's short recipe). The benchmark rewrites
#       its report after each config, so a run cut short keeps what it finished.
#       Out (default $OUT, else ./gpu-check-out), at most 7 files: summary.txt,
#       tests.log, bench.log, karpathy.log and the report's .json/.md/.png.
#       Exits 1 when a phase failed or timed out (a phase left out for want of
#       budget is listed as SKIPPED).
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PACK="$ROOT/build-cuda/gpu-pack.tar.xz"
PROGRAMS="nanochatd ncctl test_kernels test_gpu_train nc-bench-kernels"

pack() {
    local build="${1:-$ROOT/build-cuda}" stage
    stage="$(mktemp -d)"
    mkdir -p "$stage/nc/bin" "$stage/nc/lib"
    for p in $PROGRAMS; do
        local f
        f="$(find "$build/bin" "$build/gpu" -maxdepth 1 -name "$p" -type f 2>/dev/null | head -1)"
        [ -n "$f" ] || { echo "pack: $p not found under $build (build with -DNC_CUDA=ON)"; exit 1; }
        cp "$f" "$stage/nc/bin/"
    done
    # the libraries outside glibc, the C++ runtime and the CUDA toolkit
    ldd "$stage"/nc/bin/* | awk '/=> \//{print $3}' | sort -u |
        grep -E 'libopenblas|libgfortran|libquadmath|libjansson|libevent|libmsgpack|libcheck' |
        while read -r lib; do cp -L "$lib" "$stage/nc/lib/"; done
    (cd "$ROOT" && echo "$(git rev-parse HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (dirty tree)')") \
        >"$stage/nc/COMMIT"
    tar -C "$stage" -cJf "$PACK" nc
    rm -rf "$stage"
    echo "packed $(du -h "$PACK" | cut -f1) of $(tar -xJOf "$PACK" nc/COMMIT) into $PACK:" \
        "carry build-cuda/gpu-pack.tar.xz"
}

# ---- on the GPU machine -------------------------------------------------------------------------------

QUICK=0
OUTDIR="${OUT:-$PWD/gpu-check-out}"
NANOCHAT_DIR=""
BUDGET=""
START=$(date +%s)
NC_LD=""      # the library path our programs run with (not the torch side's)
declare -a ROWS=()

remaining() { echo $((START + BUDGET - $(date +%s))); }

# phase NAME CAP LOG COMMAND...: runs under min(CAP, what the budget leaves), appending to LOG
phase() {
    local name="$1" cap="$2" log="$3" limit t0 rc status
    shift 3
    limit=$(remaining)
    [ "$limit" -gt "$cap" ] && limit=$cap
    if [ "$limit" -lt 10 ]; then
        ROWS+=("$(printf '%-22s %-8s %6s  %s' "$name" SKIPPED - "no time left in the budget")")
        return 0
    fi
    t0=$(date +%s)
    echo "==== $name (limit ${limit}s): $*" >>"$log"
    timeout --kill-after=5 "$limit" "$@" >>"$log" 2>&1
    rc=$?
    case $rc in
        0) status=PASS ;;
        77) status=SKIPPED ;;
        124 | 137) status=TIMEOUT ;;
        *) status="FAIL($rc)" ;;
    esac
    ROWS+=("$(printf '%-22s %-8s %5ss  %s' "$name" "$status" $(($(date +%s) - t0)) "$(note "$name" "$log")")")
    return 0
}

# What phase NAME wrote into LOG (phases share logs): its last section.
section() {
    awk -v h="==== $1 " 'index($0, "==== ") == 1 { on = index($0, h) == 1; if (on) out = "" }
        on { out = out $0 "\n" } END { printf "%s", out }' "$2"
}

# The one line worth reading from a phase's part of its log.
note() {
    local out
    out="$(section "$1" "$2")"
    case "$1" in
        kernels) grep -E 'checks failed|^FAIL: ' <<<"$out" | tail -1 ;;
        memcheck | racecheck) grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' <<<"$out" | tail -1 ;;
        train) grep -E '^[0-9]+ failures|^FAIL: ' <<<"$out" | tail -1 ;;
        bench*) grep -E ' step: ' <<<"$out" | tail -3 | awk '{printf "%s %s tok/s MFU %s; ", $1, $3, $8}' ;;
        karpathy) grep -iE 'verdict|ratio|tok/s|FR-009 overall' <<<"$out" | tail -2 | tr '\n' ' ' | cut -c1-150 ;;
        *) echo "" ;;
    esac
}

facts() {
    echo "date: $(date -u +%FT%TZ)  host: $(hostname)  budget: ${BUDGET}s  quick: $QUICK"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit,temperature.gpu \
        --format=csv 2>&1 | head -3
    nvidia-smi -L 2>&1 | head -2
    command -v nvcc >/dev/null && nvcc --version | tail -1
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1 | tail -1
    echo "cpus: $(nproc)  mem: $(awk '/MemTotal/{print $2/1048576 " GiB"}' /proc/meminfo)"
}

# Where cuBLASLt 13 lives here (the loader's cache, the toolkit, pip's wheels).
cublaslt_dir() {
    ldconfig -p 2>/dev/null | grep -q 'libcublasLt.so.13 ' && return 0
    local f
    f="$(find -L /usr/local/cuda*/lib64 /usr/local/cuda*/targets/*/lib /usr/lib/x86_64-linux-gnu \
        "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)/nvidia" \
        -name 'libcublasLt.so.13*' 2>/dev/null | head -1)"
    [ -n "$f" ] && dirname "$f"
}

# BIN: the programs (unpacked, or a build tree's); NC_LD: their library path.
setup() {
    if [ -f "$PACK" ]; then
        mkdir -p /tmp/nc-gpu && tar -C /tmp/nc-gpu -xJf "$PACK" && BIN=/tmp/nc-gpu/nc/bin
        NC_LD=/tmp/nc-gpu/nc/lib
        echo "pack built from $(cat /tmp/nc-gpu/nc/COMMIT 2>/dev/null || echo '?')"
    elif [ -x "$ROOT/build-cuda/gpu/test_kernels" ]; then
        BIN="$ROOT/build-cuda/bin"
        for p in test_kernels test_gpu_train nc-bench-kernels; do ln -sf "$ROOT/build-cuda/gpu/$p" "$BIN/$p"; done
    else
        echo "no $PACK and no build-cuda: building here"
        cmake -S "$ROOT" -B "$ROOT/build-cuda" -DNC_CUDA=ON >/dev/null &&
            cmake --build "$ROOT/build-cuda" -j"$(nproc)" | tail -3 && BIN="$ROOT/build-cuda/bin" &&
            for p in test_kernels test_gpu_train nc-bench-kernels; do ln -sf "$ROOT/build-cuda/gpu/$p" "$BIN/$p"; done
    fi
    export PATH="$PATH:/usr/local/cuda/bin"
    local lt
    lt="$(cublaslt_dir)"
    [ -n "$lt" ] && NC_LD="$lt${NC_LD:+:$NC_LD}"
    NC_LD="$NC_LD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # a GPU is here: a backend that does not open is a failure, not a skip
    nvidia-smi -L 2>/dev/null | grep -q '^GPU ' && export NC_REQUIRE_GPU=1
    export NC_DATA="$ROOT/data/tinyshakespeare.txt"
    echo "programs: ${BIN:-none}  our LD_LIBRARY_PATH=$NC_LD  NC_REQUIRE_GPU=${NC_REQUIRE_GPU:-0}"
    [ -n "${BIN:-}" ] && [ -x "$BIN/test_kernels" ] || return 1
    for p in $PROGRAMS; do LD_LIBRARY_PATH="$NC_LD" ldd "$BIN/$p" 2>&1 | grep 'not found' | sed "s|^|$p: |"; done
    # the daemon the benchmark spawns, with our libraries
    printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec "%s" "$@"\n' "$NC_LD" "$BIN/nanochatd" >/tmp/nc-gpu-nanochatd
    chmod +x /tmp/nc-gpu-nanochatd
}

# The benchmark against upstream: its scratch (checkpoints, logs) stays in /tmp,
# its report comes to OUTDIR even when the phase is cut short.
karpathy() {
    local log="$1" work=/tmp/nc-karpathy
    shift
    rm -rf "$work" && mkdir -p "$work"
    echo "==== our daemon: $BIN/nanochatd (through /tmp/nc-gpu-nanochatd, for its library path)," \
        "built from $(cat /tmp/nc-gpu/nc/COMMIT 2>/dev/null || git -C "$ROOT" rev-parse HEAD)" >>"$log"
    phase karpathy 420 "$log" env PYTHONUNBUFFERED=1 python3 "$ROOT/scripts/benchmark_karpathy.py" \
        --baseline nanochat --nanochat-dir "$NANOCHAT_DIR" "$@" --nanochatd /tmp/nc-gpu-nanochatd \
        --data "$NC_DATA" --out "$work" --scratch "$work/scratch"
    cp "$work"/benchmark_karpathy_*.json "$work"/benchmark_karpathy_*.md "$work"/benchmark_karpathy_*.png \
        "$OUTDIR/" 2>/dev/null
    if [[ "${ROWS[-1]}" != karpathy*PASS* ]]; then # the runs' own logs explain a failure
        for f in "$work"/scratch/*.log; do
            [ -f "$f" ] && { echo "==== tail of $(basename "$f")"; tail -n 25 "$f"; } >>"$log"
        done
    fi
}

run() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --quick) QUICK=1 ;;
            --out) OUTDIR="$2"; shift ;;
            --nanochat-dir)
                NANOCHAT_DIR="$(cd "$2" 2>/dev/null && pwd)" || { echo "--nanochat-dir $2: no such folder"; exit 2; }
                shift ;;
            --budget) BUDGET="$2"; shift ;;
            *) echo "unknown argument: $1"; exit 2 ;;
        esac
        shift
    done
    [ -n "$BUDGET" ] || BUDGET=$([ $QUICK = 1 ] && echo 240 || echo 480)
    mkdir -p "$OUTDIR"
    local sum="$OUTDIR/summary.txt" tests="$OUTDIR/tests.log" bench="$OUTDIR/bench.log" kp="$OUTDIR/karpathy.log"
    local configs="d6,d12,d20" kcfg=(--config d6 --config d12 --config d20) kq=()
    [ $QUICK = 1 ] && configs="d6" && kcfg=(--config d6 --quick) && kq=(--quick)
    facts >"$sum"
    if ! setup >>"$sum" 2>&1; then
        ROWS+=("setup                  FAIL(1)      -  no programs (see summary.txt)")
    else
        phase kernels 120 "$tests" env "LD_LIBRARY_PATH=$NC_LD" "$BIN/test_kernels" "${kq[@]}"
        # A failing kernel: out-of-bounds accesses and races explain most first-run failures.
        if [[ "${ROWS[-1]}" != kernels*PASS* ]] && command -v compute-sanitizer >/dev/null; then
            phase memcheck 60 "$tests" env "LD_LIBRARY_PATH=$NC_LD" compute-sanitizer --tool memcheck --print-limit 20 \
                --error-exitcode 9 "$BIN/test_kernels" --quick
            phase racecheck 60 "$tests" env "LD_LIBRARY_PATH=$NC_LD" compute-sanitizer --tool racecheck --print-limit 20 \
                --error-exitcode 9 "$BIN/test_kernels" --quick --filter attention
        fi
        phase train 120 "$tests" env "LD_LIBRARY_PATH=$NC_LD" "$BIN/test_gpu_train"
        phase bench 150 "$bench" env "LD_LIBRARY_PATH=$NC_LD" "$BIN/nc-bench-kernels" --config "$configs"
        if [ -n "$NANOCHAT_DIR" ]; then
            karpathy "$kp" "${kcfg[@]}"
        else
            ROWS+=("karpathy               SKIPPED      -  no --nanochat-dir")
        fi
    fi
    {
        echo
        grep -E 'FAIL' "$tests" 2>/dev/null | head -20
        echo
        printf '%-22s %-8s %6s  %s\n' phase status time note
        printf '%s\n' "${ROWS[@]}"
        echo "total $(($(date +%s) - START))s of ${BUDGET}s; logs in $OUTDIR"
    } >>"$sum"
    cat "$sum"
    ! printf '%s\n' "${ROWS[@]}" | grep -qE ' (FAIL|TIMEOUT)'
}

if [ "${1:-}" = pack ]; then
    shift
    pack "$@"
else
    run "$@"
fi
