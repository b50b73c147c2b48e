#!/usr/bin/env python3
"""gpu_check.sh --dry-run's benchmark: scripts/benchmark_karpathy.py itself (its argument
parser, so a flag gpu_check.sh passes that the harness lacks fails the dry run; its reports,
--append-to, --upstream-figures read from the committed figures, the report rewritten after
each side) with canned sides in place of the GPU runs. When the phase it runs in (NC_PHASE) is
in NC_DRY_HANG (default train) our side hangs, after upstream's is done and written; in
NC_DRY_FAIL (default kernels) our side fails."""
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import benchmark_karpathy as bk  # noqa: E402


def _phase_in(var, default):
    phase = os.environ.get("NC_PHASE")
    return bool(phase) and phase in os.environ.get(var, default).split(",")


def canned(cfg, tok_per_s):
    """A side's record as a run makes it: every step at tok_per_s, val loss down to 1.6."""
    n, e = cfg["steps"], cfg["eval_every"]
    dt = cfg["tokens_per_step"] / tok_per_s
    return {"step_log": [{"step": s, "loss": 4 - 2.4 * s / n, "dt": dt} for s in range(1, n + 1)],
            "evals": [{"step": s, "val_loss": 1.6 + (n - s) / n, "bpb": (1.6 + (n - s) / n) / 0.69}
                      for s in range(e, n + 1, e)],
            "time_to_first_step_s": 1.0, "sample": {"text": "ROMEO: (dry run)"}}


def run_ours(cfg, ctx, rec):
    if _phase_in("NC_DRY_HANG", "train"):
        print("[ours] hanging (dry run)", flush=True)
        time.sleep(600)
    if _phase_in("NC_DRY_FAIL", "kernels"):
        raise RuntimeError("our side fails (dry run)")
    rec.update(canned(cfg, 1.25e6), time_to_first_step_warm_s=0.1)


def probe(cmd, log_path, env, timeout):
    assert cmd[0] == "probe", cmd  # the only runner left: the sides and cross-check are canned
    with open(cmd[cmd.index("--out") + 1], "w") as f:
        json.dump({"torch": "dry run", "peak_flops": 989e12, "compute_dtype": "bfloat16"}, f)


bk.nvidia_smi = lambda: {"name": "NVIDIA H200", "driver": "dry run", "memory": "143771 MiB",
                         "count": 1, "cuda_version": "13.0"}
bk.resolve_upstream = lambda a: (os.path.abspath(a.nanochat_dir or "."), bk.PINNED_REF, "dry run")
bk.run_upstream = lambda cfg, ctx: canned(cfg, 1e6)
bk.run_ours = run_ours
bk.export_init = lambda cfg, ctx: None
bk._run_runner = probe
bk.plot_curves = lambda doc, path: open(path, "wb").close()

if __name__ == "__main__":
    sys.exit(bk.main())
