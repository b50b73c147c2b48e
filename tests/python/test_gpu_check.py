"""scripts/gpu_check.sh without a GPU: its dry run (the stand-ins of gpu_check_dry, a budget of
a few seconds) runs the real schedule, deadlines, benchmark harness and summary; the summary's
notes read the programs' real output formats; its pack carries upstream."""
import glob
import json
import importlib.util
import os
import re
import subprocess
import sys
import tarfile
import time

import pytest

import benchmark_karpathy as bk
from test_benchmark_harness import _doc, _ours_with_figures, _side

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "gpu_check.sh")
DRY_BENCH = os.path.join(ROOT, "tests", "python", "gpu_check_dry", "dry_benchmark.py")
PHASES = ["setup", "kernels", "train", "d6-vs-upstream", "d12-ours", "d20-ours", "memcheck",
          "racecheck", "bench"]
ROW = re.compile(r"^(\S+) +(\S+) +(\S+) +(\S+) +(-|\S+?)s?  (.*)$")
GOAL = "FAIL: d6-vs-upstream, the phase that measures the goals, did not run and pass: "


def dry_run(out, *args, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith("NC_DRY_") and k != "OUT"}
    e.update(env)
    t0 = time.time()
    p = subprocess.run([SCRIPT, "--dry-run", "--out", str(out), *args], env=e, cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    return p, time.time() - t0


def rows(out):
    """{phase: (status, time, limit, deadline s, note)} from summary.txt's table, in order."""
    text = (out / "summary.txt").read_text()
    table = text.split("\nphase ", 1)[1].splitlines()[1:]
    got = {}
    for line in table:
        m = ROW.match(line)
        if m and m.group(1) in PHASES:
            got[m.group(1)] = m.groups()[1:]
    return got


def report(out):
    [path] = glob.glob(str(out / "benchmark_karpathy_*.json"))
    return json.load(open(path))


def secs(x):
    return float(x.rstrip("s"))


def test_dry_run_keeps_the_schedule(tmp_path):
    p, wall = dry_run(tmp_path)  # 10 s budget: the kernel test fails, the training test hangs
    b = 10
    assert p.returncode == 1, p.stdout + p.stderr
    r = rows(tmp_path)
    assert list(r) == PHASES
    assert {k: v[0] for k, v in r.items()} == {
        "setup": "PASS", "kernels": "FAIL(1)", "train": "TIMEOUT", "d6-vs-upstream": "PASS",
        "d12-ours": "PASS", "d20-ours": "PASS", "memcheck": "PASS", "racecheck": "PASS",
        "bench": "PASS"}
    deadlines = [float(v[3]) for v in r.values()]
    assert deadlines == sorted(deadlines) and deadlines[-1] == pytest.approx(b)
    # the shares of 420 s scaled to the budget: the side by side ends at 255/420 of it
    assert deadlines[PHASES.index("d6-vs-upstream")] == pytest.approx(b * 255 / 420, abs=0.11)
    # the hung test is cut at its deadline, and what it left rolls on to the next phases
    train = r["train"]
    assert secs(train[1]) == pytest.approx(secs(train[2]), abs=0.3)
    assert secs(r["d6-vs-upstream"][2]) == pytest.approx(b * 160 / 420, abs=0.2)
    assert secs(r["d12-ours"][2]) > b * (160 + 40) / 420 - 0.5  # d6 used a fraction of its share
    assert "1 of 40 checks failed" in r["kernels"][4]
    # the notes come from the real harness's verdict lines, through its real argument parser
    assert r["d6-vs-upstream"][4] == "pass, tok/s x1.25"
    assert re.fullmatch(r"pass, tok/s x[0-9.]+, vs committed upstream figures", r["d12-ours"][4])
    assert "d20 1000000 tok/s MFU 10.0%" in r["bench"][4]
    assert wall < b
    # one report that each benchmark phase added its config to, the runs' logs, nothing else
    files = sorted(os.listdir(tmp_path))
    assert len(files) <= 7 and all(re.fullmatch(r"[A-Za-z0-9._-]+", f) for f in files)
    doc = report(tmp_path)
    assert [c["name"] for c in doc["configs"]] == ["d6", "d12", "d20"] and "partial" not in doc
    assert doc["sides"] == "mixed" and len(doc["appended"]) == 2
    assert {"ours", "upstream"} <= set(doc["results"]["d6"])
    figures = doc["results"]["d12"]["upstream_figures"]["file"]
    assert figures.startswith("results/h200_upstream_only/")
    summary = (tmp_path / "summary.txt").read_text()
    assert re.search(r"^attention .* FAIL ", summary, re.M) and GOAL not in summary


def test_dry_run_cut_side_by_side_keeps_its_finished_side(tmp_path):
    # our side of d6 hangs: cut at its deadline after upstream's side, which its report keeps
    b = 6
    p, _ = dry_run(tmp_path, "--budget", str(b), NC_DRY_HANG="d6-vs-upstream", NC_DRY_FAIL="")
    assert p.returncode == 1
    r = rows(tmp_path)
    status = {k: v[0] for k, v in r.items()}
    assert status["d6-vs-upstream"] == "TIMEOUT" and status["kernels"] == "PASS"
    assert r["d6-vs-upstream"][4] == "partial report written; pending d6: ours, d6: cross-check"
    assert status["d12-ours"] == status["d20-ours"] == status["bench"] == "PASS"
    assert status["memcheck"] == "SKIPPED" and r["memcheck"][4] == "the kernel test: PASS"
    # the sanitizers' time went to the benchmark after them
    assert secs(r["bench"][2]) > b * (45 + 15 + 15) / 420 - 0.1
    doc = report(tmp_path)
    assert [c["name"] for c in doc["configs"]] == ["d6", "d12", "d20"]
    d6 = doc["results"]["d6"]
    assert "ours" not in d6 and d6["summary"]["upstream"]["tok_per_s_mean"] == pytest.approx(1e6)
    assert doc["partial"] == {"pending": ["d6: ours", "d6: cross-check"]}
    assert GOAL + "TIMEOUT (partial report written" in (tmp_path / "summary.txt").read_text()


def test_dry_run_phases_and_quick(tmp_path):
    # a sanitizer named in --phases runs though the kernel test passed; no d6: no goal to miss
    p, _ = dry_run(tmp_path, "--quick", "--phases", "kernels,memcheck,bench", "--budget", "4",
                   NC_DRY_HANG="", NC_DRY_FAIL="")
    assert p.returncode == 0, p.stdout
    status = {k: v[0] for k, v in rows(tmp_path).items()}
    assert [k for k, v in status.items() if v == "PASS"] == ["setup", "kernels", "memcheck",
                                                            "bench"]
    assert "not in this run (--phases kernels,memcheck,bench)" in rows(tmp_path)["racecheck"][4]
    p, _ = dry_run(tmp_path, "--phases", "nope")
    assert p.returncode == 2 and "no phase nope" in p.stderr


def test_dry_run_without_the_goal_fails(tmp_path):
    p, _ = dry_run(tmp_path, "--budget", "0")  # nothing runs: that is no success
    assert p.returncode == 1
    assert {v[0] for v in rows(tmp_path).values()} == {"SKIPPED"}
    assert GOAL + "SKIPPED (setup SKIPPED: 0.0s left to its deadline)" in p.stdout


def test_dry_run_setup_is_cut_at_its_deadline(tmp_path):
    p, _ = dry_run(tmp_path, "--budget", "1", "--phases", "kernels", NC_DRY_HANG="setup",
                   NC_DRY_FAIL="")  # nvidia-smi hangs
    assert p.returncode == 1
    r = rows(tmp_path)
    assert r["setup"][0] == "TIMEOUT" and secs(r["setup"][1]) < secs(r["setup"][2]) + 0.3
    assert r["kernels"][0] == "PASS"  # what setup found still runs


def test_dry_benchmark_parses_with_the_harness_parser():
    p = subprocess.run([sys.executable, DRY_BENCH, "--baseline", "nanochat", "--upstream-figure",
                        "x"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "unrecognized arguments: --upstream-figure" in p.stderr


# ---- the summary's notes read the programs' real output ---------------------------------------

def c_format(path, marker):
    """The printf format in the C file path that holds marker (its literals joined)."""
    src = open(os.path.join(ROOT, path)).read()
    for m in re.finditer(r'\bf?printf\((?:[\w\[\]]+,)?((?:\s*"(?:[^"\\]|\\.)*")+)', src):
        fmt = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)))
        if marker in fmt:
            return fmt.replace("\\n", "\n")
    raise AssertionError(f"{path}: no printf with {marker!r}")


def note(tmp_path, phase, text):
    log = tmp_path / "log"
    log.write_text(f"==== {phase} (limit 1.0s): x\n{text}")
    p = subprocess.run(["bash", "-c", 'source "$1" && note "$2" "$3"', "bash", SCRIPT, phase,
                        str(log)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_notes_read_the_real_formats(tmp_path):
    check = c_format("tests/gpu/gpu_check.c", "%10.3e") % ("attention", "B 2", 0.5, 0.01, "FAIL",
                                                            0.1, "", "")
    summary = c_format("tests/gpu/test_kernels.c", "checks failed")
    assert note(tmp_path, "kernels", check + summary % (2, 41)) == "2 of 41 checks failed"
    nomatch = c_format("tests/gpu/test_kernels.c", "no op matches") % "nope"
    assert note(tmp_path, "kernels", summary % (0, 0) + nomatch) == \
        "FAIL: no op matches --filter nope"
    train = "tests/gpu/test_gpu_train.c"
    assert note(tmp_path, "train", c_format(train, "%-44s") % ("decoding", "FAIL", "x")
                + c_format(train, "failures") % 1) == "1 failures"
    assert note(tmp_path, "train", c_format(train, "FAIL: ") % ("setup", "no GPU")) \
        == "FAIL: setup: no GPU"
    step = c_format("tests/gpu/bench_kernels.c", "tok/s")
    failed = c_format("tests/gpu/bench_kernels.c", "step: FAILED")
    lines = (step % ("d6", 1234567.0, 13.3, 9.5, 2.5, 1.5, "graph", 1.9)
             + step % ("d12", 654321.0, 50.0, 41.2, 3.5, 12.5, "graph", 2.9)
             + failed % ("d20", "out of memory"))
    assert note(tmp_path, "bench", lines) == \
        "d6 1234567 tok/s MFU 9.5%; d12 654321 tok/s MFU 41.2%; d20 FAILED"
    for phase, line in (("memcheck", "========= ERROR SUMMARY: 3 errors"),  # compute-sanitizer's
                        ("racecheck", "========= RACECHECK SUMMARY: 0 hazards displayed "
                                      "(0 errors, 0 warnings)")):
        assert note(tmp_path, phase, f"{line}\n") == line
    # the harness's FR-009 lines, side by side and against committed figures from another card
    d6 = _doc(_side(1.59, 0.010), _side(1.60, 0.014))["verdict"]["per_config"]["d6"]
    assert note(tmp_path, "d6-vs-upstream", bk.verdict_line("d6", d6) + "\n") == "pass, tok/s x1.40"
    d12 = _ours_with_figures("NVIDIA H100 80GB HBM3")["verdict"]["per_config"]["d12"]
    assert re.fullmatch(r"pass, tok/s x[0-9.]+, vs committed upstream figures \(CARD MISMATCH\)",
                        note(tmp_path, "d12-ours", bk.verdict_line("d12", d12) + "\n"))


def _git(*a, cwd=None):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c",
                           "commit.gpgsign=false", *a], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_pack_carries_a_shallow_upstream_clone(tmp_path):
    up = tmp_path / "nanochat-up"
    (up / "nanochat").mkdir(parents=True)
    _git("init", "-q", str(up))
    for i in range(2):
        (up / "nanochat" / "gpt.py").write_text(f"# v{i}\n")
        _git("add", "-A", cwd=up)
        _git("commit", "-qm", f"c{i}", cwd=up)
    pinned = _git("rev-parse", "HEAD~1", cwd=up)  # not the branch tip: fetched by its SHA
    build = tmp_path / "build"
    (build / "bin").mkdir(parents=True)
    for prog in ("nanochatd", "ncctl", "test_kernels", "test_gpu_train", "nc-bench-kernels"):
        (build / "bin" / prog).write_text("#!/bin/sh\n")
        (build / "bin" / prog).chmod(0o755)
    pack = tmp_path / "gpu-pack.tar.xz"
    env = dict(os.environ, NC_UPSTREAM_REF=pinned)
    p = subprocess.run([SCRIPT, "pack", str(build), "--upstream", str(up), "--pack", str(pack)],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"and upstream {pinned}" in p.stdout and "bytes, of 64 MiB" in p.stdout
    names = tarfile.open(pack).getnames()
    assert "nc/nanochat/.git/shallow" in names and "nc/nanochat/nanochat/gpt.py" in names
    assert "nc/bin/test_kernels" in names and "nc/COMMIT" in names
    if importlib.util.find_spec("rustbpe"):  # the -bpe configs' tokenizer, trained here
        assert "nc/tok32768/tokenizer.json" in names
    # there, the dry run finds upstream in the pack without --nanochat-dir
    p, _ = dry_run(tmp_path / "out", "--pack", str(pack), "--phases", "kernels", NC_DRY_HANG="",
                   NC_DRY_FAIL="")
    assert p.returncode == 0, p.stdout
    assert f"upstream {pinned[:12]} in " in rows(tmp_path / "out")["setup"][4]
    # a checkout without the pinned commit is refused
    env["NC_UPSTREAM_REF"] = "0" * 40
    p = subprocess.run([SCRIPT, "pack", str(build), "--upstream", str(up), "--pack", str(pack)],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "has no commit" in p.stdout
