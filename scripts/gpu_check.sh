#!/usr/bin/env bash
# gpu_check.sh: everything that needs a GPU, in one command of at most 420 s, for a fresh
# H100/H200 machine without network (device time is scarce: every phase has a deadline,
# nothing stops at the first failure, the summary comes last).
#
#   scripts/gpu_check.sh pack [BUILD_DIR] [--upstream PATH] [--pack FILE]
#       here, after building with -DNC_CUDA=ON: packs the GPU programs, the commit they were
#       built from, the shared libraries a CUDA image lacks (OpenBLAS and its Fortran runtime)
#       and a shallow clone of upstream nanochat at the pinned commit, made from the local
#       checkout PATH (default upstream/nanochat), into FILE (default
#       build-cuda/gpu-pack.tar.xz); carry that one file to the GPU machine.
#   scripts/gpu_check.sh [--quick] [--budget SECONDS] [--phases A,B] [--out DIR]
#                        [--pack FILE] [--nanochat-dir PATH]
#       there: the phases of SCHEDULE below, in order, each cut at its deadline (the shares
#       of the budget up to and including its own, so time a phase leaves rolls forward).
#       The d6 side by side against upstream comes right after the two tests; d12 and d20 run
#       our side only, beside upstream's H200 figures in results/h200_upstream_only (marked
#       so in the report); the sanitizers rerun a failing kernel test with the time left.
#       --budget scales the shares (default 420 s, 240 with --quick: the two tests, the short
#       d6 side by side and the d6 step benchmark); --phases runs only those (setup always),
#       e.g. a warm rerun of one that failed. The upstream checkout is the pack's unless
#       --nanochat-dir names one. Out (default $OUT, else ./gpu-check-out), at most 7 files:
#       summary.txt, tests.log, bench.log, karpathy.log and one report .json/.md/.png that
#       each benchmark phase adds its config to. Exits 1 when a phase failed or timed out.
#   scripts/gpu_check.sh --dry-run [--budget SECONDS] [--out DIR] [--pack FILE]
#       here, without a GPU: the same schedule (default budget 10 s) with stand-ins for the GPU
#       programs and the benchmark; the kernel test fails and the training test hangs (phases
#       named in NC_DRY_FAIL and NC_DRY_HANG, comma lists, override that).
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
    "bench            45  35"
    "memcheck         15  15"
    "racecheck        15  15"
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
declare -A SHARE=() DEADLINE=()
declare -a ROWS=() ORDER=()
START=0 BUDGET_MS=0 MIN_MS=0 T0=0 LIMIT_MS=0

now_ms() { date +%s%3N; }
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }   # milliseconds as timeout's seconds
fmt() { printf '%d.%ds' $(($1 / 1000)) $(($1 % 1000 / 100)); }

# plan: SHARE and DEADLINE (ms since epoch) of the phases this run has, scaled to BUDGET
plan() {
    local line name full quick share total=0 cum=0
    for line in "${SCHEDULE[@]}"; do
        read -r name full quick <<<"$line"
        share=$([ $QUICK = 1 ] && echo "$quick" || echo "$full")
        [ -n "$ONLY" ] && [ "$name" != setup ] && [[ ",$ONLY," != *",$name,"* ]] && share=0
        ORDER+=("$name")
        SHARE[$name]=$share
        total=$((total + share))
    done
    [ -n "$ONLY" ] && for name in ${ONLY//,/ }; do
        [ -n "${SHARE[$name]+x}" ] || fail "--phases: no phase $name (phases: ${ORDER[*]})"
    done
    [ -n "$BUDGET" ] || BUDGET=$([ $DRY = 1 ] && echo 10 || echo "$total")
    BUDGET_MS=$((BUDGET * 1000))
    MIN_MS=$((BUDGET_MS / 42))   # 10 s of 420: less is not worth starting
    for name in "${ORDER[@]}"; do
        [ "${SHARE[$name]}" = 0 ] && continue
        cum=$((cum + SHARE[$name]))
        DEADLINE[$name]=$((START + cum * BUDGET_MS / total))
    done
}

row() { # NAME STATUS TIME LIMIT NOTE
    local at="-"
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

status_of() { printf '%s\n' "${ROWS[@]}" | awk -v n="$1" '$1 == n { s = $2 } END { print s }'; }

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
        bench) line="$(grep -E ' step: ' <<<"$out" | tail -3 |
            awk '{printf "%s%s %s tok/s MFU %s", (NR > 1 ? "; " : ""), $1, $3, $8}')" ;;
        d*-*) line="$(verdict_note "${1%%-*}" "$out")" ;;
    esac
    [ -n "$line" ] || line="$(grep -v '^==== ' <<<"$out" | grep . | tail -1)"
    echo "${line:0:110}"
}

# verdict_note CONFIG OUTPUT: "pass, tok/s x1.23, vs committed upstream figures" from the
# benchmark's FR-009 line for CONFIG
verdict_note() {
    local line
    line="$(grep -E "^FR-009 $1: " <<<"$2" | tail -1)"
    [ -n "$line" ] || return 0
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
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit,temperature.gpu \
            --format=csv 2>&1 | head -3
    else
        echo "no nvidia-smi"
    fi
    command -v nvcc >/dev/null && nvcc --version | tail -1
    python3 -c 'import importlib.metadata as m; print("torch", m.version("torch"))' 2>/dev/null
    echo "cpus: $(nproc)  mem: $(awk '/MemTotal/{print $2/1048576 " GiB"}' /proc/meminfo)"
    echo "schedule (phase share s):$(for n in "${ORDER[@]}"; do printf ' %s %s' "$n" "${SHARE[$n]}"; done)"
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

# BIN: the programs from the pack (or a build tree, or stand-ins); NC_LD: their library path.
find_programs() {
    local p
    if [ -f "$PACK" ] && { [ $DRY = 0 ] || [ $PACK_GIVEN = 1 ]; }; then
        timeout "$(secs "$LIMIT_MS")" tar --no-same-owner -C "$WORK" -xJf "$PACK" || return
        BIN="$WORK/nc/bin" NC_LD="$WORK/nc/lib"
        echo "pack built from $(cat "$WORK/nc/COMMIT" 2>/dev/null || echo '?')"
    fi
    if [ $DRY = 1 ]; then
        make_stubs "$WORK/stubs"
        BIN="$WORK/stubs" SANITIZER="$WORK/stubs/compute-sanitizer" BENCH=("$WORK/stubs/benchmark_karpathy")
        [ -n "$NANOCHAT_DIR" ] || [ -d "$WORK/nc/nanochat" ] || NANOCHAT_DIR="$WORK/stubs"
    elif [ -z "$BIN" ] && [ -x "$ROOT/build-cuda/gpu/test_kernels" ]; then
        BIN="$ROOT/build-cuda/bin"
    elif [ -z "$BIN" ]; then
        echo "no $PACK and no build-cuda: building here (minutes)"
        # shellcheck disable=SC2016 # $1 is sh's
        timeout "$(secs "$LIMIT_MS")" sh -c 'cmake -S "$1" -B "$1/build-cuda" -DNC_CUDA=ON >/dev/null &&
            cmake --build "$1/build-cuda" -j"$(nproc)" | tail -3' sh "$ROOT" || return
        BIN="$ROOT/build-cuda/bin"
    fi
    [ "$BIN" = "$ROOT/build-cuda/bin" ] &&
        for p in test_kernels test_gpu_train nc-bench-kernels; do ln -sf "$ROOT/build-cuda/gpu/$p" "$BIN/$p"; done
    return 0
}

setup() {
    local lt p d
    facts
    find_programs || return
    export PATH="$PATH:/usr/local/cuda/bin"
    lt="$(cublaslt_dir)"
    [ -n "$lt" ] && NC_LD="$lt${NC_LD:+:$NC_LD}"
    NC_LD="$NC_LD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # a GPU is here: a backend that does not open is a failure, not a skip
    nvidia-smi -L 2>/dev/null | grep -q '^GPU ' && export NC_REQUIRE_GPU=1
    export NC_DATA="$ROOT/data/tinyshakespeare.txt"
    for d in "$WORK/nc/nanochat" "$ROOT/upstream/nanochat"; do
        [ -z "$NANOCHAT_DIR" ] && [ -d "$d/nanochat" ] && NANOCHAT_DIR="$d"
    done
    echo "programs: ${BIN:-none}  our LD_LIBRARY_PATH=$NC_LD  NC_REQUIRE_GPU=${NC_REQUIRE_GPU:-0}"
    if [ -z "$BIN" ] || [ ! -x "$BIN/test_kernels" ]; then echo "ready: no programs"; return 1; fi
    for p in $PROGRAMS; do LD_LIBRARY_PATH="$NC_LD" ldd "$BIN/$p" 2>&1 | grep 'not found' | sed "s|^|$p: |"; done
    # the daemon the benchmark spawns, with our libraries
    DAEMON="$WORK/nanochatd"
    printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec "%s" "$@"\n' "$NC_LD" "$BIN/nanochatd" >"$DAEMON"
    chmod +x "$DAEMON"
    echo "ready: ours $(cut -c1-12 "$WORK/nc/COMMIT" 2>/dev/null || echo "from $BIN")$(grep -o ' (dirty tree)' \
        "$WORK/nc/COMMIT" 2>/dev/null), upstream $(git -C "${NANOCHAT_DIR:-/nonexistent}" rev-parse \
        --short=12 HEAD 2>/dev/null || echo none) in ${NANOCHAT_DIR:--}"
}

run_setup() {
    begin setup "$1" "facts, programs, upstream" || return 0
    setup >>"$1" 2>&1
    finish setup $? "$1"
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
    [ "$(status_of "$name")" = PASS ] && return
    for f in "$scratch"/*.log; do # the runs' own logs explain a failure
        [ -f "$f" ] && { echo "==== tail of $name/$(basename "$f")"; tail -n 25 "$f"; } >>"$KLOG"
    done
}

# sanitize NAME ARGS...: the kernel test under compute-sanitizer, when it failed
sanitize() {
    local name="$1" kernels
    shift
    kernels="$(status_of kernels)"
    if [[ "$kernels" != FAIL* && "$kernels" != TIMEOUT ]]; then
        skip "$name" "the kernel test: ${kernels:-not run}"
    elif ! command -v "$SANITIZER" >/dev/null; then
        skip "$name" "no compute-sanitizer"
    else
        phase "$name" "$TLOG" env "LD_LIBRARY_PATH=$NC_LD" "$SANITIZER" --tool "$name" --print-limit 20 \
            --error-exitcode 9 "$BIN/test_kernels" --quick "$@"
    fi
}

run_phases() {
    local kq=() configs="d6,d12,d20"
    [ $QUICK = 1 ] && kq=(--quick) && configs=d6
    run_setup "$SUM"
    if [ "$(status_of setup)" != PASS ]; then
        for n in "${ORDER[@]:1}"; do skip "$n" "no setup"; done
        return
    fi
    phase kernels "$TLOG" env "LD_LIBRARY_PATH=$NC_LD" "$BIN/test_kernels" "${kq[@]}"
    phase train "$TLOG" env "LD_LIBRARY_PATH=$NC_LD" "$BIN/test_gpu_train"
    karpathy d6-vs-upstream --config d6 "${kq[@]}"
    karpathy d12-ours --config d12 --sides ours --upstream-figures "$FIGURES"
    karpathy d20-ours --config d20 --sides ours --upstream-figures "$FIGURES"
    phase bench "$BLOG" env "LD_LIBRARY_PATH=$NC_LD" "$BIN/nc-bench-kernels" --config "$configs"
    sanitize memcheck
    sanitize racecheck --filter attention
}

run() {
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
    [ $DRY = 1 ] && WORK="$(mktemp -d)"
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
        echo "total $(fmt $(($(now_ms) - START))) of ${BUDGET}s; logs in $OUTDIR"
    } >>"$SUM"
    cat "$SUM"
    [ $DRY = 1 ] && rm -rf "$WORK"
    ! printf '%s\n' "${ROWS[@]}" | grep -qE '^[^ ]+ +(FAIL|TIMEOUT)'
}

# The dry run's stand-ins: each prints what its real program prints for the summary's notes,
# fails when its phase is in NC_DRY_FAIL and hangs when in NC_DRY_HANG. The benchmark's stand-in
# writes a report (.json and .md) where the real one does, --append-to included.
make_stubs() {
    local p
    mkdir -p "$1"
    cat >"$1/stub" <<'EOF'
#!/usr/bin/env bash
me="$(basename "$0")"
case ",${NC_DRY_HANG-train}," in *",$NC_PHASE,"*) echo "$me: hanging (dry run)"; exec sleep 600 ;; esac
f=0
case ",${NC_DRY_FAIL-kernels}," in *",$NC_PHASE,"*) f=1 ;; esac
case "$me" in
    test_kernels) [ $f = 1 ] && echo "FAIL: attention (dry run)"; echo "$f of 40 checks failed" ;;
    test_gpu_train) echo "$f failures" ;;
    nc-bench-kernels) for c in ${2//,/ }; do echo "$c  step:  1000000 tok/s  1.00 ms/step  MFU  10.0%"; done ;;
    compute-sanitizer) echo "========= ERROR SUMMARY: $f errors" ;;
    benchmark_karpathy) exec python3 "$(dirname "$0")/benchmark_stub.py" "$@" ;;
esac
exit $f
EOF
    cat >"$1/benchmark_stub.py" <<'EOF'
import argparse, datetime, json, os
p = argparse.ArgumentParser()
for o in ("--out", "--append-to", "--sides", "--upstream-figures", "--nanochat-dir", "--scratch"):
    p.add_argument(o)
p.add_argument("--config", action="append", default=[])
a, _ = p.parse_known_args()
os.makedirs(a.scratch, exist_ok=True)
doc = {"timestamp_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
       "dry_run": True, "configs": []}
if a.append_to:
    with open(a.append_to) as f:
        doc = json.load(f)
for c in a.config:
    fig = f" [upstream figures from {a.upstream_figures}, not run side by side]" if a.upstream_figures else ""
    doc["configs"].append({"name": c, "sides": a.sides or "both", "upstream_figures": a.upstream_figures})
    print(f"FR-009 {c}: pass (dry run; tok/s x1.00){fig}")
base = os.path.join(a.out, "benchmark_karpathy_" + doc["timestamp_utc"])
with open(base + ".json", "w") as f:
    json.dump(doc, f, indent=1)
with open(base + ".md", "w") as f:
    f.write("# dry run\n\n" + "".join(f"- {c['name']}: {c['sides']}\n" for c in doc["configs"]))
EOF
    for p in $PROGRAMS compute-sanitizer benchmark_karpathy; do ln -sf stub "$1/$p"; done
    chmod +x "$1/stub"
}

if [ "${1:-}" = pack ]; then
    shift
    pack "$@"
else
    run "$@"
fi
