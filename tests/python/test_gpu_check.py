"""scripts/gpu_check.sh without a GPU: its dry run (stand-ins for the GPU programs, a budget of
a few seconds) runs the real schedule, deadlines and summary; its pack carries upstream."""
import glob
import json
import os
import re
import subprocess
import tarfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "gpu_check.sh")
PHASES = ["setup", "kernels", "train", "d6-vs-upstream", "d12-ours", "d20-ours", "bench",
          "memcheck", "racecheck"]
ROW = re.compile(r"^(\S+) +(\S+) +(\S+) +(\S+) +(\S+)s  ?(.*)$")


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
        "d12-ours": "PASS", "d20-ours": "PASS", "bench": "PASS", "memcheck": "PASS",
        "racecheck": "PASS"}
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
    assert r["d12-ours"][4] == "pass, tok/s x1.00, vs committed upstream figures"
    assert "d20 1000000 tok/s MFU 10.0%" in r["bench"][4]
    assert wall < b
    # one report that each benchmark phase added its config to, the runs' logs, nothing else
    files = sorted(os.listdir(tmp_path))
    assert len(files) <= 8 and all(re.fullmatch(r"[A-Za-z0-9._-]+", f) for f in files)
    reports = glob.glob(str(tmp_path / "benchmark_karpathy_*.json"))
    assert len(reports) == 1 and os.path.exists(reports[0][:-5] + ".md")
    configs = json.load(open(reports[0]))["configs"]
    assert [(c["name"], c["sides"]) for c in configs] == [("d6", "both"), ("d12", "ours"),
                                                         ("d20", "ours")]
    assert configs[1]["upstream_figures"].endswith("results/h200_upstream_only")
    assert "FAIL: attention (dry run)" in (tmp_path / "summary.txt").read_text()


def test_dry_run_cut_side_by_side_leaves_the_rest(tmp_path):
    p, _ = dry_run(tmp_path, "--budget", "6", NC_DRY_HANG="d6-vs-upstream", NC_DRY_FAIL="")
    assert p.returncode == 1
    r = rows(tmp_path)
    status = {k: v[0] for k, v in r.items()}
    assert status["d6-vs-upstream"] == "TIMEOUT" and status["kernels"] == "PASS"
    assert status["d12-ours"] == status["d20-ours"] == status["bench"] == "PASS"
    assert status["memcheck"] == "SKIPPED" and r["memcheck"][4] == "the kernel test: PASS"
    reports = glob.glob(str(tmp_path / "benchmark_karpathy_*.json"))
    assert [c["name"] for c in json.load(open(reports[0]))["configs"]] == ["d12", "d20"]


def test_dry_run_phases_and_quick(tmp_path):
    p, _ = dry_run(tmp_path, "--quick", "--phases", "kernels,bench", "--budget", "4",
                   NC_DRY_HANG="", NC_DRY_FAIL="")
    assert p.returncode == 0, p.stdout
    status = {k: v[0] for k, v in rows(tmp_path).items()}
    assert [k for k, v in status.items() if v == "PASS"] == ["setup", "kernels", "bench"]
    assert "not in this run (--phases kernels,bench)" in (tmp_path / "summary.txt").read_text()
    p, _ = dry_run(tmp_path, "--phases", "nope")
    assert p.returncode == 2 and "no phase nope" in p.stderr


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
    # there, the dry run finds upstream in the pack without --nanochat-dir
    p, _ = dry_run(tmp_path / "out", "--pack", str(pack), "--budget", "20", NC_DRY_HANG="",
                   NC_DRY_FAIL="")
    assert p.returncode == 0, p.stdout
    assert f"upstream {pinned[:12]} in " in rows(tmp_path / "out")["setup"][4]
    # a checkout without the pinned commit is refused
    env["NC_UPSTREAM_REF"] = "0" * 40
    p = subprocess.run([SCRIPT, "pack", str(build), "--upstream", str(up), "--pack", str(pack)],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "has no commit" in p.stdout
