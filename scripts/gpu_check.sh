#!/usr/bin/env bash
# gpu_check.sh: everything that needs a GPU, in one command of at most 420 s, for a fresh
# H100/H200 machine without network (device time is scarce: every phase has a deadline,
# nothing stops at the first failure, the summary comes last).
#
#   scripts/gpu_check.sh pack [BUILD_DIR] [--upstream PATH] [--pack FILE]
#       here, after building with -DNC_CUDA=ON: packs the GPU programs, the commit they were
#       built from, the shared libraries a CUDA image lacks (OpenBLAS and its Fortran runtime)
#       a shallow clone of upstream nanochat at the pinned commit, made from the local
#       checkout PATH (default upstream/nanochat), and the 32,768-token tokenizer of the
#       benchmark's d12-bpe and d20-bpe configs trained on the bundled corpus (rustbpe is not
#       on the GPU image; tiktoken is), into FILE (default build-cuda/gpu-pack.tar.xz); carry
#       that one file to the GPU machine. There, outside the schedule:
#       benchmark_karpathy.py --config d20-bpe --tokenizer /tmp/nc-gpu/nc/tok32768 ...
#   scripts/gpu_check.sh [--quick] [--budget SECONDS] [--phases A,B] [--out DIR]
#                        [--pack FILE] [--nanochat-dir PATH]
#       there: the phases of SCHEDULE below, in order, each cut at its deadline (the shares
#       of the budget up to and including its own, so time a phase leaves rolls forward).
#       The d6 side by side against upstream comes right after the two tests; d12 and d20 run
#       our side only, beside upstream's H200 figures in results/h200_upstream_only (marked
#       so in the report); the sanitizers rerun a failing kernel test (else their time goes
#       to the benchmark after them). --budget scales the shares (default 420 s, 240 with
#       --quick: the two tests, the short d6 side by side and the d6 step benchmark);
#       --phases runs only those (setup always; a sanitizer named there runs whatever the
#       kernel test did), e.g. a warm rerun of one that failed. The upstream checkout is the
#       pack's unless --nanochat-dir names one. Out (default $OUT, else ./gpu-check-out), at
#       most 7 files: summary.txt, tests.log, bench.log, karpathy.log and one report
#       .json/.md/.png that each benchmark phase adds its config to (rewritten after each
#       side, so a phase cut at its deadline keeps the sides it finished). Exits 1 when a
#       phase failed or timed out, or when the d6 side by side (what measures the goals) was
#       in the run and did not pass (skipped included: no upstream, no time).
#   scripts/gpu_check.sh --dry-run [--budget SECONDS] [--out DIR] [--pack FILE] [--phases A,B]
#       here, without a GPU: the same schedule (default budget 10 s) with the stand-ins of
#       tests/python/gpu_check_dry: the GPU programs, nvidia-smi and compute-sanitizer print
#       their real formats, the benchmark is the real harness (its argument parser and
#       reports) with canned sides. The kernel test fails and the training test hangs (phases
#       named in NC_DRY_FAIL and NC_DRY_HANG, comma lists, override that; a hung benchmark
#       hangs in our side, after upstream's).
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PACK="$ROOT/build-cuda/gpu-pack.tar.xz"
PROGRAMS="nanochatd ncctl test_kernels test_gpu_train nc-bench-kernels"
UPSTREAM_REF="${NC_UPSTREAM_REF:-$(sed -n 's/^PINNED_REF = "\([0-9a-f]*\)"$/\1/p' \
    "$ROOT/scripts/benchmark_karpathy.py")}"
FIGURES="$ROOT/results/h200_upstream_only"

# phase, its share of the budget in seconds: full run, --quick (0: not run). Each column sums
# to that run's default budget.
SCHEDULE=(
    "setup            15  15"
    "kernels          45  30"
    "train            35  30"
    "d6-vs-upstream  160 100"
    "d12-ours         40   0"
    "d20-ours         50   0"
    "memcheck         15  15"
    "racecheck        15  15"
    "bench            45  35"
)

fail() { echo "gpu_check: $*" >&2; exit 2; }

# ---- here: the pack -----------------------------------------------------------------------------

# pack_programs BUILD DEST: the programs and the libraries outside glibc, the C++ runtime and CUDA
pack_programs() {
    local build="$1" dest="$2" p f
    mkdir -p "$dest/bin" "$dest/lib"
    for p in $PROGRAMS; do
        f="$(find "$build/bin" "$build/gpu" -maxdepth 1 -name "$p" -type f 2>/dev/null | head -1)"
        [ -n "$f" ] || { echo "pack: $p not found under $build (build with -DNC_CUDA=ON)"; return 1; }
        cp "$f" "$dest/bin/"
    done
    ldd "$dest"/bin/* 2>/dev/null | awk '/=> \//{print $3}' | sort -u |
        grep -E 'libopenblas|libgfortran|libquadmath|libjansson|libevent|libmsgpack|libcheck' |
        while read -r lib; do cp -L "$lib" "$dest/lib/"; done
    (cd "$ROOT" && echo "$(git rev-parse HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (dirty tree)')") \
        >"$dest/COMMIT"
}

# pack_upstream SRC DEST: a shallow clone of the checkout SRC at UPSTREAM_REF, verified
pack_upstream() {
    local src="$1" dest="$2" head
    [ -d "$src" ] || { echo "pack: no upstream checkout at $src: pass --upstream PATH (a nanochat" \
        "clone holding $UPSTREAM_REF)"; return 1; }
    if ! { git -c init.defaultBranch=pinned init -q "$dest" &&
        git -C "$dest" fetch -q --depth 1 "file://$(cd "$src" && pwd)" "$UPSTREAM_REF" &&
        git -C "$dest" checkout -q --detach FETCH_HEAD; }; then
        echo "pack: $src has no commit $UPSTREAM_REF"
        return 1
    fi
    rm -rf "$dest/.git/hooks"
    head="$(git -C "$dest" rev-parse HEAD)"
    if [ "$head" != "$UPSTREAM_REF" ] || [ -n "$(git -C "$dest" status --porcelain)" ]; then
        echo "pack: the clone is at $head, not $UPSTREAM_REF, or not clean"
        return 1
    fi
    echo "upstream: shallow clone of $src at $head, $(du -sh "$dest" | cut -f1) unpacked"
}

# pack_tokenizer DEST: the -bpe configs' tokenizer (tiny Shakespeare stops it at 21,970 tokens)
pack_tokenizer() {
    python3 "$ROOT/scripts/tokenizer.py" train --data "$ROOT/data/tinyshakespeare.txt" --vocab-size 32768 \
        --out "$1" >/dev/null || echo "pack: no tokenizer (scripts/tokenizer.py train failed): the -bpe configs" \
        "will need --tokenizer there"
    return 0
}

pack() {
    local build="$ROOT/build-cuda" upstream="$ROOT/upstream/nanochat" stage rc=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --upstream) upstream="$2"; shift ;;
            --pack) PACK="$2"; shift ;;
            -*) fail "pack: unknown argument $1" ;;
            *) build="$1" ;;
        esac
        shift
    done
    stage="$(mktemp -d)"
    pack_programs "$build" "$stage/nc" && pack_upstream "$upstream" "$stage/nc/nanochat" &&
        pack_tokenizer "$stage/nc/tok32768" &&
        mkdir -p "$(dirname "$PACK")" && tar --owner=0 --group=0 -C "$stage" -cJf "$PACK" nc || rc=1
    rm -rf "$stage"
    [ $rc = 0 ] || exit 1
    echo "packed $(du -h "$PACK" | cut -f1) ($(stat -c %s "$PACK") bytes, of 64 MiB a call carries)" \
        "of $(tar -xJOf "$PACK" nc/COMMIT) and upstream $UPSTREAM_REF into $PACK: carry that one file"
}

# ---- there: the schedule ------------------------------------------------------------------------

QUICK=0 DRY=0
OUTDIR="${OUT:-$PWD/gpu-check-out}"
NANOCHAT_DIR=""
BUDGET=""
ONLY=""
PACK_GIVEN=0
WORK=/tmp/nc-gpu   # the unpacked programs, the benchmark's scratch
BIN="" NC_LD="" DAEMON="" SANITIZER=compute-sanitizer
BENCH=(env PYTHONUNBUFFERED=1 python3 "$ROOT/scripts/benchmark_karpathy.py")
declare -A SHARE=() DEADLINE=() STATUS=() NOTE=()
declare -a ROWS=() ORDER=()
START=0 BUDGET_MS=0 MIN_MS=0 T0=0 LIMIT_MS=0

now_ms() { date +%s%3N; }
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }   # milliseconds as timeout's seconds
fmt() { printf '%d.%ds' $(($1 / 1000)) $(($1 % 1000 / 100)); }

requested() { [[ ",$ONLY," == *",$1,"* ]]; }   # named in --phases

# plan: SHARE and DEADLINE (ms since epoch) of the phases this run has, scaled to BUDGET
plan() {
    local line name full quick share total=0 cum=0
    for line in "${SCHEDULE[@]}"; do
        read -r name full quick <<<"$line"
        share=$([ $QUICK = 1 ] && echo "$quick" || echo "$full")
        [ -n "$ONLY" ] && [ "$name" != setup ] && ! requested "$name" && share=0
        ORDER+=("$name")
        SHARE[$name]=$share
        total=$((total + share))
    done
    [ -n "$ONLY" ] && for name in ${ONLY//,/ }; do
        [ -n "${SHARE[$name]+x}" ] || fail "--phases: no phase $name (phases: ${ORDER[*]})"
    done
    [ -n "$BUDGET" ] || BUDGET=$([ $DRY = 1 ] && echo 10 || echo "$total")
    BUDGET_MS=$((BUDGET * 1000))
    MIN_MS=$((BUDGET_MS / 42 + 1))   # 10 s of 420: less is not worth starting
    for name in "${ORDER[@]}"; do
        [ "${SHARE[$name]}" = 0 ] && continue
        cum=$((cum + SHARE[$name]))
        DEADLINE[$name]=$((START + cum * BUDGET_MS / total))
    done
}

row() { # NAME STATUS TIME LIMIT NOTE
    local at="-"
    STATUS[$1]=$2 NOTE[$1]=$5
    [ -n "${DEADLINE[$1]:-}" ] && at="$(fmt $((DEADLINE[$1] - START)))"
    ROWS+=("$(printf '%-15s %-9s %7s %7s %8s  %s' "$1" "$2" "$3" "$4" "$at" "$5")")
}

skip() { row "$1" SKIPPED - - "$2"; }

# begin NAME LOG WHAT: T0 and LIMIT_MS (to NAME's deadline); false, with a SKIPPED row, when
# NAME is not in this run or too little time is left
begin() {
    if [ -z "${DEADLINE[$1]:-}" ]; then
        skip "$1" "not in this run ($([ -n "$ONLY" ] && echo "--phases $ONLY" || echo --quick))"
        return 1
    fi
    T0=$(now_ms)
    LIMIT_MS=$((DEADLINE[$1] - T0))
    if [ "$LIMIT_MS" -lt "$MIN_MS" ]; then
        skip "$1" "$(fmt $((LIMIT_MS > 0 ? LIMIT_MS : 0))) left to its deadline"
        return 1
    fi
    echo "==== $1 (limit $(fmt "$LIMIT_MS")): $3" >>"$2"
}

# finish NAME RC LOG: NAME's row
finish() {
    local status
    case $2 in
        0) status=PASS ;;
        77) status=SKIPPED ;;
        124 | 137) status=TIMEOUT ;;
        *) status="FAIL($2)" ;;
    esac
    row "$1" "$status" "$(fmt $(($(now_ms) - T0)))" "$(fmt "$LIMIT_MS")" "$(note "$1" "$3")"
}

# phase NAME LOG COMMAND...: COMMAND cut at NAME's deadline, its output appended to LOG
phase() {
    local name="$1" log="$2"
    shift 2
    begin "$name" "$log" "$*" || return 0
    NC_PHASE="$name" timeout --kill-after=2 "$(secs "$LIMIT_MS")" "$@" >>"$log" 2>&1
    finish "$name" $? "$log"
}

# What phase NAME wrote into LOG (phases share logs): its last section.
section() {
    awk -v h="==== $1 " 'index($0, "==== ") == 1 { on = index($0, h) == 1; if (on) out = "" }
        on { out = out $0 "\n" } END { printf "%s", out }' "$2"
}

# The one line worth reading from a phase's part of its log (else its last line).
note() {
    local out line
    out="$(section "$1" "$2")"
    case "$1" in
        setup) line="$(grep -E '^ready: ' <<<"$out" | tail -1 | cut -c8-)" ;;
        kernels) line="$(grep -E 'checks failed|^FAIL: ' <<<"$out" | tail -1)" ;;
        memcheck | racecheck) line="$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' <<<"$out" | tail -1)" ;;
        train) line="$(grep -E '^[0-9]+ failures|^FAIL: ' <<<"$out" | tail -1)" ;;
        bench) line="$(grep -E ' step: ' <<<"$out" | tail -3 | awk '{printf "%s%s %s", (NR > 1 ? "; " : ""),
            $1, $3 == "FAILED:" ? "FAILED" : $3 " tok/s MFU " $8}')" ;;
        d*-*) line="$(verdict_note "${1%%-*}" "$out")" ;;
    esac
    [ -n "$line" ] || line="$(grep -v '^==== ' <<<"$out" | grep . | tail -1)"
    echo "${line:0:110}"
}

# verdict_note CONFIG OUTPUT: "pass, tok/s x1.23, vs committed upstream figures" from the
# benchmark's FR-009 line for CONFIG; of a run cut short, what its report still lacks
verdict_note() {
    local line
    line="$(grep -E "^FR-009 $1: " <<<"$2" | tail -1)"
    if [ -z "$line" ]; then
        grep -E '^benchmark_karpathy: partial report written' <<<"$2" | tail -1 | cut -c21-
        return 0
    fi
    printf '%s' "$(sed -E 's/^FR-009 [^:]+: ([a-z]+).*/\1/' <<<"$line")"
    grep -oE 'tok/s x[0-9.]+' <<<"$line" | head -1 | sed 's/^/, /' | tr -d '\n'
    grep -q 'not run side by side' <<<"$line" && printf ', vs committed upstream figures'
    grep -q 'CARD MISMATCH' <<<"$line" && printf ' (CARD MISMATCH)'
    echo
}

facts() {
    echo "date: $(date -u +%FT%TZ)  host: $(hostname)  budget: ${BUDGET}s  quick: $QUICK" \
        "$([ $DRY = 1 ] && echo ' DRY RUN: stand-ins for the GPU programs')"
    if command -v nvidia-smi >/dev/null; then
        bounded nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit,temperature.gpu \
            --format=csv 2>&1 | head -3
    else
        echo "no nvidia-smi"
    fi
    if [ $DRY = 0 ]; then # (this host's CUDA and torch are not the GPU machine's)
        command -v nvcc >/dev/null && bounded nvcc --version | tail -1
        bounded python3 -c 'import importlib.metadata as m; print("torch", m.version("torch"))' 2>/dev/null
    fi
    echo "cpus: $(nproc)  mem: $(awk '/MemTotal/{print $2/1048576 " GiB"}' /proc/meminfo)"
    echo "schedule (phase share s):$(for n in "${ORDER[@]}"; do printf ' %s %s' "$n" "${SHARE[$n]}"; done)"
}

# Where cuBLASLt 13 lives here (the loader's cache, the toolkit, pip's wheels).
cublaslt_dir() {
    bounded ldconfig -p 2>/dev/null | grep -q 'libcublasLt.so.13 ' && return 0
    local f
    f="$(bounded find -L /usr/local/cuda*/lib64 /usr/local/cuda*/targets/*/lib /usr/lib/x86_64-linux-gnu \
        "$(bounded python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)/nvidia" \
        -name 'libcublasLt.so.13*' 2>/dev/null | head -1)"
    [ -n "$f" ] && dirname "$f"
}

# BIN: the programs from the pack (or a build tree, or stand-ins); NC_LD: their library path.
find_programs() {
    local p
    if [ -f "$PACK" ] && { [ $DRY = 0 ] || [ $PACK_GIVEN = 1 ]; }; then
        bounded tar --no-same-owner -C "$WORK" -xJf "$PACK" || return
        BIN="$WORK/nc/bin" NC_LD="$WORK/nc/lib"
        echo "pack built from $(cat "$WORK/nc/COMMIT" 2>/dev/null || echo '?')"
    fi
    if [ $DRY = 1 ]; then
        BIN="$WORK/stubs"
        [ -n "$NANOCHAT_DIR" ] || [ -d "$WORK/nc/nanochat" ] || NANOCHAT_DIR="$WORK/stubs"
    elif [ -z "$BIN" ] && [ -x "$ROOT/build-cuda/gpu/test_kernels" ]; then
        BIN="$ROOT/build-cuda/bin"
    elif [ -z "$BIN" ]; then
        echo "no $PACK and no build-cuda: building here (minutes)"
        # shellcheck disable=SC2016 # $1 is sh's
        bounded sh -c 'cmake -S "$1" -B "$1/build-cuda" -DNC_CUDA=ON >/dev/null &&
            cmake --build "$1/build-cuda" -j"$(nproc)" | tail -3' sh "$ROOT" || return
        BIN="$ROOT/build-cuda/bin"
    fi
    [ "$BIN" = "$ROOT/build-cuda/bin" ] &&
        for p in test_kernels test_gpu_train nc-bench-kernels; do ln -sf "$ROOT/build-cuda/gpu/$p" "$BIN/$p"; done
    return 0
}

setup() {
    local lt="" p d
    facts
    find_programs || return
    export PATH="$PATH:/usr/local/cuda/bin"
    [ $DRY = 1 ] || lt="$(cublaslt_dir)"
    [ -n "$lt" ] && NC_LD="$lt${NC_LD:+:$NC_LD}"
    NC_LD="$NC_LD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # a GPU is here: a backend that does not open is a failure, not a skip
    bounded nvidia-smi -L 2>/dev/null | grep -q '^GPU ' && export NC_REQUIRE_GPU=1
    export NC_DATA="$ROOT/data/tinyshakespeare.txt"
    for d in "$WORK/nc/nanochat" "$ROOT/upstream/nanochat"; do
        [ -z "$NANOCHAT_DIR" ] && [ -d "$d/nanochat" ] && NANOCHAT_DIR="$d"
    done
    echo "programs: ${BIN:-none}  our LD_LIBRARY_PATH=$NC_LD  NC_REQUIRE_GPU=${NC_REQUIRE_GPU:-0}"
    if [ -z "$BIN" ] || [ ! -x "$BIN/test_kernels" ]; then echo "ready: no programs"; return 1; fi
    [ $DRY = 1 ] || for p in $PROGRAMS; do
        LD_LIBRARY_PATH="$NC_LD" bounded ldd "$BIN/$p" 2>&1 | grep 'not found' | sed "s|^|$p: |"
    done
    # the daemon the benchmark spawns, with our libraries
    DAEMON="$WORK/nanochatd"
    printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec "%s" "$@"\n' "$NC_LD" "$BIN/nanochatd" >"$DAEMON"
    chmod +x "$DAEMON"
    echo "ready: ours $(cut -c1-12 "$WORK/nc/COMMIT" 2>/dev/null || echo "from $BIN")$(grep -o ' (dirty tree)' \
        "$WORK/nc/COMMIT" 2>/dev/null), upstream $(bounded git -C "${NANOCHAT_DIR:-/nonexistent}" rev-parse \
        --short=12 HEAD 2>/dev/null || echo none) in ${NANOCHAT_DIR:--}"
}

# bounded COMMAND...: COMMAND cut at setup's deadline. Setup runs in this shell (what it finds
# stays), so each of its commands that could hang is bounded instead of setup as a whole.
bounded() {
    local left=$((DEADLINE[setup] - $(now_ms)))
    timeout --kill-after=1 "$(secs $((left > 0 ? left : 1)))" "$@"
}

# run_setup LOG: setup's row (TIMEOUT when it ended past its deadline); false when the programs
# are not ready
run_setup() {
    local rc
    begin setup "$1" "facts, programs, upstream" || return 1
    NC_PHASE=setup setup >>"$1" 2>&1
    rc=$?
    finish setup "$([ "$(now_ms)" -le "${DEADLINE[setup]}" ] && echo $rc || echo 124)" "$1"
    return $rc
}

# karpathy NAME ARGS...: one benchmark run, its config added to the report this run started
karpathy() {
    local name="$1" report="" f scratch="$WORK/karpathy/$1"
    shift
    [ -n "$NANOCHAT_DIR" ] || { skip "$name" "no upstream checkout (pack one, or --nanochat-dir)"; return; }
    for f in "$OUTDIR"/benchmark_karpathy_*.json; do [ "$f" -nt "$WORK/started" ] && report="$f"; done
    rm -rf "$scratch"
    phase "$name" "$KLOG" "${BENCH[@]}" --baseline nanochat --nanochat-dir "$NANOCHAT_DIR" "$@" \
        --nanochatd "$DAEMON" --data "$NC_DATA" --out "$OUTDIR" --scratch "$scratch" \
        ${report:+--append-to "$report"}
    [ "${STATUS[$name]:-}" = PASS ] && return
    for f in "$scratch"/*.log; do # the runs' own logs explain a failure
        [ -f "$f" ] && { echo "==== tail of $name/$(basename "$f")"; tail -n 25 "$f"; } >>"$KLOG"
    done
}

# sanitize NAME ARGS...: the kernel test under compute-sanitizer, when it failed or --phases
# names NAME
sanitize() {
    local name="$1" kernels="${STATUS[kernels]:-}" why=""
    shift
    requested "$name" || [[ "$kernels" == FAIL* || "$kernels" == TIMEOUT ]] ||
        why="the kernel test: ${kernels:-not run}"
    command -v "$SANITIZER" >/dev/null || why="no compute-sanitizer"
    if [ -n "$why" ] && [ -n "${DEADLINE[$name]:-}" ]; then
        skip "$name" "$why"
    else # (begin skips it when it is not in this run)
        phase "$name" "$TLOG" env "LD_LIBRARY_PATH=$NC_LD" "$SANITIZER" --tool "$name" --print-limit 20 \
            --error-exitcode 9 "$BIN/test_kernels" --quick "$@"
    fi
}

run_phases() {
    local kq=() configs="d6,d12,d20"
    [ $QUICK = 1 ] && kq=(--quick) && configs=d6
    if ! run_setup "$SUM"; then
        for n in "${ORDER[@]:1}"; do skip "$n" "setup ${STATUS[setup]}: ${NOTE[setup]}"; done
        return
    fi
    phase kernels "$TLOG" env "LD_LIBRARY_PATH=$NC_LD" "$BIN/test_kernels" "${kq[@]}"
    phase train "$TLOG" env "LD_LIBRARY_PATH=$NC_LD" "$BIN/test_gpu_train"
    karpathy d6-vs-upstream --config d6 "${kq[@]}"
    karpathy d12-ours --config d12 --sides ours --upstream-figures "$FIGURES"
    karpathy d20-ours --config d20 --sides ours --upstream-figures "$FIGURES"
    sanitize memcheck
    sanitize racecheck --filter attention
    phase bench "$BLOG" env "LD_LIBRARY_PATH=$NC_LD" "$BIN/nc-bench-kernels" --config "$configs"
}

# goal: why the run fails when the d6 side by side, the phase that measures the goals, was in
# this run and did not pass (also when it was skipped: no upstream, no time left)
goal() {
    local d6=d6-vs-upstream
    [ "${SHARE[$d6]}" = 0 ] || [ "${STATUS[$d6]:-}" = PASS ] && return 0
    echo "FAIL: $d6, the phase that measures the goals, did not run and pass: ${STATUS[$d6]}" \
        "(${NOTE[$d6]})"
    return 1
}

run() {
    local rc=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --quick) QUICK=1 ;;
            --dry-run) DRY=1 ;;
            --out) OUTDIR="$2"; shift ;;
            --nanochat-dir)
                NANOCHAT_DIR="$(cd "$2" 2>/dev/null && pwd)" || fail "--nanochat-dir $2: no such folder"
                shift ;;
            --budget) BUDGET="$2"; shift ;;
            --phases) ONLY="$2"; shift ;;
            --pack) PACK="$(realpath -m "$2")" PACK_GIVEN=1; shift ;;
            *) fail "unknown argument: $1" ;;
        esac
        shift
    done
    [[ "$BUDGET" =~ ^[0-9]*$ ]] || fail "--budget takes whole seconds"
    [ $DRY = 1 ] && WORK="$(mktemp -d)" && make_stubs
    START=$(now_ms)
    plan
    mkdir -p "$OUTDIR" "$WORK"
    touch "$WORK/started"
    SUM="$OUTDIR/summary.txt" TLOG="$OUTDIR/tests.log" BLOG="$OUTDIR/bench.log" KLOG="$OUTDIR/karpathy.log"
    : >"$SUM"
    run_phases
    {
        echo
        grep -E 'FAIL' "$TLOG" 2>/dev/null | head -20
        echo
        printf '%-15s %-9s %7s %7s %8s  %s\n' phase status time limit deadline note
        printf '%s\n' "${ROWS[@]}"
        goal || rc=1
        echo "total $(fmt $(($(now_ms) - START))) of ${BUDGET}s; logs in $OUTDIR"
    } >>"$SUM"
    cat "$SUM"
    [ $DRY = 1 ] && rm -rf "$WORK"
    printf '%s\n' "${STATUS[@]}" | grep -qE '^(FAIL|TIMEOUT)' && rc=1
    return $rc
}

# The dry run's stand-ins (tests/python/gpu_check_dry): the GPU programs, nvidia-smi and
# compute-sanitizer, first on PATH; the benchmark: the real harness with canned sides.
make_stubs() {
    local p dry="$ROOT/tests/python/gpu_check_dry"
    mkdir -p "$WORK/stubs"
    for p in $PROGRAMS nvidia-smi compute-sanitizer; do ln -sf "$dry/stub" "$WORK/stubs/$p"; done
    export PATH="$WORK/stubs:$PATH"
    BENCH=(env PYTHONUNBUFFERED=1 python3 "$dry/dry_benchmark.py")
}

# sourced (tests/python/test_gpu_check.py): the functions alone
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0
if [ "${1:-}" = pack ]; then
    shift
    pack "$@"
else
    run "$@"
fi
