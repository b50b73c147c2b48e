#!/usr/bin/env python3
"""Side-by-side benchmark: nanochat-c (nanochatd) against upstream karpathy/nanochat.

    python3 scripts/benchmark_karpathy.py --baseline nanochat \\
        [--nanochat-dir PATH | --nanochat-repo URL] [--baseline-ref SHA] \\
        [--config NAME ...] [--steps N] [--quick] [--require-gpu | --no-require-gpu] \\
        [--sides ours --upstream-figures results/h200_upstream_only] [--append-to REPORT.json] \\
        [--out results/]

Trains the same model (upstream's GPT architecture) on the same data (character-level tiny
Shakespeare) with the same recipe both ways, on this machine, in one run:

  ours      nanochatd driven over its Unix socket (scripts/ncclient.py): a fresh daemon per
            config (cold time to first step), then a second short run on the same resident
            daemon (warm time to first step)
  upstream  upstream's own GPT + MuonAdamW imported from a pinned checkout, one process per
            config (scripts/upstream_runner.py), torch.compile on GPU, its own dtype choice

and writes results/benchmark_karpathy_<UTC>.{json,md,png}: tok/s, MFU, time to first step,
peak memory, the validation curve on identical windows, samples for "ROMEO:", the FR-009
verdict, and a cross-check that evaluates our trained weights with upstream's GPT in fp32.

This file imports no torch: everything that needs torch runs in upstream_runner.py
processes.  See docs/benchmark.md for the definitions both sides share.
"""

import argparse
import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

SCRIPTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(SCRIPTS_DIR)
sys.path.insert(0, SCRIPTS_DIR)

import upstream_runner as ur  # noqa: E402  (pure helpers only; no torch at import)

PINNED_REF = "92d63d4e8bb4df75c3b71618f31ddde2378b2bcd"
DEFAULT_REPO_URL = "https://github.com/karpathy/nanochat.git"
DEFAULT_CLONE_DIR = os.path.join(REPO_ROOT, "upstream", "nanochat")
DEFAULT_DATA = os.path.join(REPO_ROOT, "data", "tinyshakespeare.txt")
DEFAULT_DAEMON = os.path.join(REPO_ROOT, "build", "bin", "nanochatd")
B_REF = 2 ** 19  # upstream base_train's reference batch size in tokens

# upstream scripts/base_train.py defaults; both sides get these times sqrt(B*T / 2^19)
BASE_LRS = {"embedding_lr": 0.3, "unembedding_lr": 0.008, "matrix_lr": 0.02,
            "scalar_lr": 0.5, "weight_decay": 0.28}
RECIPE = {"warmup_steps": 40, "warmdown_ratio": 0.65, "final_lr_frac": 0.05,
          "aspect_ratio": 64, "window_pattern": "L"}

# Named configs.  steps/eval are sized so d6+d12+d20 fit in about six minutes on one
# H100/H200 including torch.compile: d6 gives the quality curve (the anchors' 400 steps,
# eval every 50), d12 and d20 mostly measure throughput.  The -bpe configs train on the
# tokens of a BPE tokenizer (bpe_vocab: trained on --data by scripts/tokenizer.py as
# upstream's tok_train trains, or --tokenizer DIR): cpu-bpe is upstream's runs/runcpu.sh
# shape scaled to 2 cores, d12-bpe and d20-bpe upstream's speedrun shapes.
CONFIGS = {
    "cpu": {"depth": 4, "head_dim": 64, "seq_len": 256, "batch_size": 8, "steps": 120,
            "eval_every": 40, "eval_windows": 64, "quick_steps": 50, "quick_eval_windows": 16,
            "cross_check": True},
    "cpu-bpe": {"depth": 4, "head_dim": 64, "seq_len": 512, "batch_size": 8, "steps": 120,
                "eval_every": 40, "eval_windows": 32, "quick_steps": 40, "quick_eval_windows": 8,
                "cross_check": True, "bpe_vocab": 4096},
    "d6": {"depth": 6, "head_dim": 128, "seq_len": 256, "batch_size": 64, "steps": 400,
           "eval_every": 50, "eval_windows": 20 * 64, "quick_steps": 100,
           "quick_eval_windows": 4 * 64, "cross_check": True},
    "d12": {"depth": 12, "head_dim": 128, "seq_len": 1024, "batch_size": 32, "steps": 80,
            "eval_every": 40, "eval_windows": 20 * 32, "quick_steps": 30,
            "quick_eval_windows": 4 * 32, "cross_check": False},
    "d20": {"depth": 20, "head_dim": 128, "seq_len": 2048, "batch_size": 16, "steps": 60,
            "eval_every": 30, "eval_windows": 20 * 16, "quick_steps": 25,
            "quick_eval_windows": 4 * 16, "cross_check": False},
    "d12-bpe": {"depth": 12, "head_dim": 128, "seq_len": 2048, "batch_size": 16, "steps": 60,
                "eval_every": 30, "eval_windows": 10 * 16, "quick_steps": 25,
                "quick_eval_windows": 2 * 16, "cross_check": False, "bpe_vocab": 32768,
                "upstream_fp8": True},
    "d20-bpe": {"depth": 20, "head_dim": 128, "seq_len": 2048, "batch_size": 16, "steps": 40,
                "eval_every": 20, "eval_windows": 10 * 16, "quick_steps": 20,
                "quick_eval_windows": 2 * 16, "cross_check": False, "bpe_vocab": 32768,
                "upstream_fp8": True},
}
GPU_DEFAULT_CONFIGS = ["d6", "d12", "d20"]
CPU_DEFAULT_CONFIGS = ["cpu"]

# ANCHORS.md: upstream d6 val loss by step (400-step schedule, H200, 20 random val batches).
ANCHOR_D6_VAL = {50: 2.215, 100: 1.825, 150: 1.670, 200: 1.621, 250: 1.572, 300: 1.581,
                 350: 1.594, 400: 1.592}

SAMPLE = {"prompt": ur.SAMPLE_PROMPT, "max_new_tokens": 200, "temperature": 0.8, "top_k": 0,
          "seed": 42}
CROSS_CHECK_RTOL = 1e-4
FR009_LOSS_TOL = 0.05
WARM_STEPS = 12


class HarnessError(Exception):
    """A precondition failed; the message says what to do.  Exit status 2."""


# ==========================================================================================
# Config resolution (pure)


def lr_scale(batch_size, seq_len):
    return math.sqrt(batch_size * seq_len / B_REF)


def scaled_lrs(batch_size, seq_len):
    s = lr_scale(batch_size, seq_len)
    return {k: v * s for k, v in BASE_LRS.items()}


def estimate_flops_per_token(depth, n_embd, n_head, seq_len, vocab_size, pad_to=64):
    """upstream GPT.estimate_flops() for window pattern L, n_kv_head == n_head (no torch).

    6 * (matmul weights) + 12 * heads * head_dim * seq_len per layer.  Matmul weights:
    per layer q,k,v,proj (4 C^2) + MLP (8 C^2) + ve_gate (12 * heads) on value-embedding
    layers; lm_head (padded vocab * C); smear gate (24).
    """
    padded = ((vocab_size + pad_to - 1) // pad_to) * pad_to
    matmul = 0
    for i in range(depth):
        matmul += 12 * n_embd * n_embd
        if i % 2 == (depth - 1) % 2:  # upstream has_ve()
            matmul += 12 * n_head
    matmul += padded * n_embd + 24
    head_dim = n_embd // n_head
    return 6 * matmul + depth * 12 * n_head * head_dim * seq_len


def resolve_configs(names=None, device="cuda", steps=None, quick=False, overrides=None,
                    eval_every=None, eval_windows=None, seed=1337, cross_check="auto"):
    """Turn CLI choices into a list of fully specified configs.

    names      config names (None: d6 d12 d20 on cuda, cpu on cpu); comma lists allowed
    overrides  {depth, seq_len, batch_size, head_dim} applied to every config; given without
               names they define one config named custom-d{depth}-T{T}-B{B}
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    flat = []
    for n in names or []:
        flat += [x for x in re.split(r"[,\s]+", n) if x]
    custom = False
    if not flat:
        if overrides:
            flat = ["cpu" if device == "cpu" else "d6"]
            custom = True
        else:
            flat = list(CPU_DEFAULT_CONFIGS if device == "cpu" else GPU_DEFAULT_CONFIGS)
    unknown = [n for n in flat if n not in CONFIGS]
    if unknown:
        raise HarnessError(f"unknown config(s) {', '.join(unknown)}; known: {', '.join(CONFIGS)}")
    if len(set(flat)) != len(flat):
        raise HarnessError(f"config listed twice: {' '.join(flat)}")
    if cross_check not in ("auto", "all", "none"):
        raise HarnessError(f"--cross-check must be auto, all or none, not {cross_check!r}")
    out = []
    for n in flat:
        c = dict(CONFIGS[n])
        c["base"] = n
        c["name"] = n
        c.update(overrides)
        if overrides:
            c["overrides"] = dict(overrides)
            c["name"] = (f"custom-d{c['depth']}-T{c['seq_len']}-B{c['batch_size']}" if custom
                         else f"{n}-custom")
        if quick:
            c["steps"] = c["quick_steps"]
            c["eval_windows"] = c["quick_eval_windows"]
        if steps is not None:
            c["steps"] = steps
        if eval_windows is not None:
            c["eval_windows"] = eval_windows
        if eval_every is not None:
            c["eval_every"] = eval_every
        for k in ("depth", "seq_len", "batch_size", "head_dim", "steps"):
            if not isinstance(c[k], int) or c[k] < 1:
                raise HarnessError(f"{c['name']}: {k} must be a positive integer, got {c[k]!r}")
        if c["seq_len"] < 2:
            raise HarnessError(f"{c['name']}: seq_len must be at least 2")
        if c["eval_windows"] < 2:
            raise HarnessError(f"{c['name']}: eval windows must be at least 2")
        if c["eval_every"] <= 0 or c["eval_every"] > c["steps"]:
            c["eval_every"] = c["steps"]  # evaluate at the end only
        c.update(RECIPE)
        c["seed"] = seed
        c["n_embd"], c["n_head"] = ur.model_dims(c["depth"], c["aspect_ratio"], c["head_dim"])
        c["tokens_per_step"] = c["batch_size"] * c["seq_len"]
        c["lr_scale"] = lr_scale(c["batch_size"], c["seq_len"])
        c["lrs"] = scaled_lrs(c["batch_size"], c["seq_len"])
        c["cross_check"] = {"auto": bool(c["cross_check"]), "all": True, "none": False}[cross_check]
        c["sample"] = dict(SAMPLE, max_new_tokens=max(1, min(SAMPLE["max_new_tokens"],
                                                             c["seq_len"] - len(SAMPLE["prompt"]))))
        c["device"] = device
        c["bpe_vocab"] = c.get("bpe_vocab")
        c["upstream_fp8"] = bool(c.get("upstream_fp8")) and device == "cuda"
        out.append(c)
    return out


def prepare_tokenizers(configs, data, work, tokenizer=None):
    """Give each config its vocabulary: characters, or for a -bpe config a tokenizer folder
    (`tokenizer`, or one trained on `data` per vocabulary size by scripts/tokenizer.py, as
    upstream's tok_train trains; rustbpe stops early when the text has no more pairs to
    merge: tiny Shakespeare gives 21,970 of 32,768). Returns the size of the data's
    character vocabulary."""
    with open(data, encoding="utf-8") as f:
        chars = len(set(f.read()))
    made = {}
    for c in configs:
        v = c.get("bpe_vocab")
        if not v:
            c["vocab_size"], c["tokenizer"] = chars, None
            continue
        folder = os.path.abspath(tokenizer) if tokenizer else made.get(v)
        if folder is None:
            folder = made[v] = os.path.join(work, f"tok{v}")
            p = subprocess.run([sys.executable, os.path.join(SCRIPTS_DIR, "tokenizer.py"), "train",
                                "--data", data, "--vocab-size", str(v), "--out", folder],
                               capture_output=True, text=True)
            if p.returncode != 0:
                raise HarnessError(f"training a {v}-token tokenizer failed: {p.stderr.strip()}")
        path = os.path.join(folder, "tokenizer.json")
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise HarnessError(f"no tokenizer at {folder}: {e}")
        c["tokenizer"] = folder
        c["tokenizer_sha256"] = hashlib.sha256(raw).hexdigest()
        c["vocab_size"] = len(json.loads(raw)["token_bytes"])
    return chars


def gemm_ceiling(daemon_binary, threads):
    """The machine's fp32 GEMM ceiling: nc-bench-sgemm (OpenBLAS sgemm at 2048^3 on `threads`
    threads, best of 5), built beside nanochatd; None when it is not there."""
    binary = os.path.join(os.path.dirname(os.path.abspath(daemon_binary)), "nc-bench-sgemm")
    if not os.access(binary, os.X_OK):
        return None
    p = subprocess.run([binary, "2048", str(threads)], capture_output=True, text=True, timeout=120)
    return json.loads(p.stdout) if p.returncode == 0 else None


def our_train_args(cfg, run_id, steps=None, eval_every=None):
    """The `train` request for nanochatd; LRs are already scaled, so batch_scaling none."""
    lrs = cfg["lrs"]
    return {
        "mode": "tensor", "model_kind": "gpt", "device": cfg["device"],
        "steps": steps if steps is not None else cfg["steps"],
        "batch_size": cfg["batch_size"], "seq_len": cfg["seq_len"], "seed": cfg["seed"],
        "depth": cfg["depth"], "aspect_ratio": cfg["aspect_ratio"], "head_dim": cfg["head_dim"],
        "window_pattern": cfg["window_pattern"],
        "embedding_lr": lrs["embedding_lr"], "unembedding_lr": lrs["unembedding_lr"],
        "matrix_lr": lrs["matrix_lr"], "scalar_lr": lrs["scalar_lr"],
        "weight_decay": lrs["weight_decay"],
        "warmup_steps": cfg["warmup_steps"], "warmdown_ratio": cfg["warmdown_ratio"],
        "final_lr_frac": cfg["final_lr_frac"], "batch_scaling": "none",
        "log_every": 1,
        "eval_every": cfg["eval_every"] if eval_every is None else eval_every,
        "eval_windows": cfg["eval_windows"], "checkpoint_every": 0, "run_id": run_id,
        "deterministic": False, **({"tokenizer": cfg["tokenizer"]} if cfg.get("tokenizer") else {}),
    }


def upstream_spec(cfg, nanochat_dir, data, compile_mode):
    keys = ("name", "depth", "head_dim", "aspect_ratio", "seq_len", "batch_size", "steps", "seed",
            "window_pattern", "lrs", "warmup_steps", "warmdown_ratio", "final_lr_frac",
            "eval_every", "eval_windows", "sample", "device")
    spec = {k: cfg[k] for k in keys}
    spec["tokenizer"] = cfg.get("tokenizer")
    spec["init_weights"] = cfg.get("init_weights")
    spec.update({"nanochat_dir": nanochat_dir, "data": data, "compile": compile_mode,
                 "log_every": max(1, cfg["steps"] // 10)})
    return spec


# ==========================================================================================
# The fields we read from nanochatd.  Every name lives here; the first present one wins.

# The field names of nanochatd's replies (proto/PROTOCOL.md) that the harness reads.
OUR_FIELDS = {
    # train result
    "run_id": "run_id",
    "run_dir": "run_dir",
    "final_val_loss": "final_val_loss",
    "final_bpb": "final_bpb",
    "final_train_loss": "final_train_loss",
    "tok_per_s": "tok_per_s",
    "tok_per_s_median": "tok_per_s_median",
    "backend": "backend",
    "device": "device",
    "using_gpu": "using_gpu",
    "time_to_first_step_s": "time_to_first_step_s",
    "peak_host_rss_bytes": "peak_host_rss_bytes",
    "peak_device_bytes": "peak_device_bytes",
    "compute_dtype": "compute_dtype",
    "flops_per_token": "flops_per_token",
    "mfu": "mfu",
    # progress / eval events
    "step": "step",
    "loss": "loss",
    "step_ms": "step_ms",
    "elapsed_s": "elapsed_s",
    "val_loss": "val_loss",
    "bpb": "bpb",
    # sample / export results
    "text": "text",
    "path": "path",
}
OUR_EVENT_PROGRESS = "progress"
OUR_EVENT_EVAL = "eval"
OUR_EVAL_FP32_ARGS = {"device": "cpu"}  # the cross-check evaluates an fp32 cpu copy of our weights


def pick(d, field, default=None):
    v = d.get(OUR_FIELDS[field]) if isinstance(d, dict) else None
    return default if v is None else v


# ==========================================================================================
# Statistics, verdicts and the report (pure; tested from canned inputs)


def summarize_side(rec, cfg, flops_per_token=None, peak_flops=None, gemm_gflops=None):
    """Normalize one side's record into the metrics the report shows."""
    if not rec or rec.get("error") and not rec.get("evals"):
        return None
    tps = cfg["tokens_per_step"]
    dts = [s.get("dt") for s in rec.get("step_log") or []]
    tp = ur.throughput(dts, tps) if any(dts) else {}
    mean = tp.get("tok_per_s_mean") or rec.get("tok_per_s_mean") or rec.get("tok_per_s_reported")
    median = tp.get("tok_per_s_median") or rec.get("tok_per_s_median")
    mfu = None
    if mean and flops_per_token and peak_flops and math.isfinite(peak_flops):
        mfu = flops_per_token * mean / peak_flops
    gflops = flops_per_token * mean / 1e9 if mean and flops_per_token else None
    evals = sorted(rec.get("evals") or [], key=lambda e: e["step"])
    final = evals[-1] if evals else {}
    return {
        "tok_per_s_mean": mean,
        "tok_per_s_median": median,
        "mfu": mfu,
        "gflops": gflops,
        "gemm_frac": gflops / gemm_gflops if gflops and gemm_gflops else None,
        "time_to_first_step_s": rec.get("time_to_first_step_s"),
        "time_to_first_step_warm_s": rec.get("time_to_first_step_warm_s"),
        "peak_host_rss_bytes": rec.get("peak_host_rss_bytes"),
        "peak_device_bytes": rec.get("peak_device_bytes") if cfg["device"] == "cuda" else None,
        "final_val_loss": final.get("val_loss", rec.get("final_val_loss")),
        "final_bpb": final.get("bpb", rec.get("final_bpb")),
        "final_step": final.get("step"),
        "train_seconds": sum(dts) if dts and all(d is not None for d in dts) else None,
    }


def steps_to_loss(rec, target):
    """First eval step whose validation loss is at or below target (None if never)."""
    for e in sorted(rec.get("evals") or [], key=lambda e: e["step"]):
        if e.get("val_loss") is not None and e["val_loss"] <= target:
            return e["step"]
    return None


def time_to_loss(rec, summary, target, tokens_per_step):
    """Steady-state training seconds to reach target: steps x tokens / mean tok/s.

    Uses the steady-state rate so that one-off costs (torch.compile in upstream's first
    step, daemon start-up) stay in the time-to-first-step figures instead.
    """
    k = steps_to_loss(rec, target)
    if k is None or not summary or not summary.get("tok_per_s_mean"):
        return None
    return k * tokens_per_step / summary["tok_per_s_mean"]


def fr009_verdict(ours_rec, up_rec, ours_sum, up_sum, tokens_per_step, tol=FR009_LOSS_TOL):
    """FR-009: final val loss within 5% of upstream's, or faster to upstream's final loss."""
    if not ours_sum or not up_sum or ours_sum.get("final_val_loss") is None \
            or up_sum.get("final_val_loss") is None:
        return {"status": "incomplete",
                "reason": "one side has no final validation loss"}
    o, u = ours_sum["final_val_loss"], up_sum["final_val_loss"]
    ratio = o / u
    within = o <= u * (1.0 + tol)
    t_ours = time_to_loss(ours_rec, ours_sum, u, tokens_per_step)
    t_up = time_to_loss(up_rec, up_sum, u, tokens_per_step)
    faster = t_ours is not None and t_up is not None and t_ours < t_up
    speed = None
    if ours_sum.get("tok_per_s_mean") and up_sum.get("tok_per_s_mean"):
        speed = ours_sum["tok_per_s_mean"] / up_sum["tok_per_s_mean"]
    why = []
    if within:
        why.append(f"final val loss {o:.4f} vs {u:.4f} (x{ratio:.4f}, within {tol:.0%})")
    else:
        why.append(f"final val loss {o:.4f} vs {u:.4f} (x{ratio:.4f}, outside {tol:.0%})")
    if t_ours is not None and t_up is not None:
        why.append(f"time to upstream's final loss {t_ours:.2f} s vs {t_up:.2f} s")
    if speed:
        why.append(f"tok/s x{speed:.2f}")
    return {"status": "pass" if (within or faster) else "fail", "loss_ratio": ratio,
            "within_tolerance": within, "faster_at_matched_loss": faster,
            "seconds_to_upstream_final_loss": {"ours": t_ours, "upstream": t_up},
            "speed_ratio": speed, "reason": "; ".join(why)}


def overall_verdict(per_config):
    st = [v["status"] for v in per_config.values()]
    if any(s == "pass" for s in st):
        return "pass"
    if st and all(s == "fail" for s in st):
        return "fail"
    return "incomplete" if not st or any(s == "incomplete" for s in st) else "fail"


def cross_check_verdict(ours_loss, upstream_loss, rtol=CROSS_CHECK_RTOL):
    rel = abs(ours_loss - upstream_loss) / abs(upstream_loss)
    return {"status": "pass" if rel <= rtol else "fail", "ours_val_loss": ours_loss,
            "upstream_val_loss": upstream_loss, "rel_diff": rel, "rtol": rtol}


# Committed upstream figures (--upstream-figures): upstream's side of a config read from an
# earlier report instead of run here.  The shape must match; a recipe that differs (fewer
# steps, other windows) keeps the speed figures but not the loss verdict.
FIGURES_SHAPE_KEYS = ("depth", "head_dim", "aspect_ratio", "seq_len", "batch_size",
                      "window_pattern")
FIGURES_RECIPE_KEYS = ("steps", "eval_every", "eval_windows", "seed", "warmup_steps",
                       "warmdown_ratio", "final_lr_frac")


def card_kind(name):
    """The card's model from its name: 'H200' from 'NVIDIA H200', 'H100' from 'NVIDIA H100
    80GB HBM3'; the name itself when no such word is in it."""
    if not name:
        return None
    m = re.search(r"\b([A-Z]{1,3}\d{2,4}[A-Z]?)\b", name.replace("NVIDIA", ""))
    return m.group(1) if m else name.strip()


def load_reports(path):
    """[(path as shown, report)] from a report .json or a folder of them, newest first."""
    files = ([os.path.join(path, f) for f in os.listdir(path) if f.endswith(".json")]
             if os.path.isdir(path) else [path])
    out = []
    for f in files:
        try:
            with open(f) as fh:
                d = json.load(fh)
        except (OSError, ValueError) as e:
            raise HarnessError(f"--upstream-figures: cannot read {f}: {e}")
        f = os.path.abspath(f)
        if isinstance(d, dict) and isinstance(d.get("results"), dict):
            shown = os.path.relpath(f, REPO_ROOT) if f.startswith(REPO_ROOT + os.sep) else f
            out.append((shown, d))
    if not out:
        raise HarnessError(f"--upstream-figures {path}: no benchmark report there")
    return sorted(out, key=lambda x: x[1].get("timestamp_utc", ""), reverse=True)


def committed_upstream(cfg, reports, gpu, up_commit=None):
    """(upstream's record, where it came from) for cfg from the newest report in reports that
    ran upstream's side of a config of that name and shape; (None, why not) when none did."""
    this_gpu = (gpu or {}).get("name") if cfg["device"] == "cuda" else "CPU"
    for path, d in reports:
        theirs = next((c for c in d.get("configs") or [] if c.get("name") == cfg["name"]), None)
        r = d["results"].get(cfg["name"]) or {}
        rec = r.get("upstream")  # upstream's own run there, not figures it took from elsewhere
        if (not theirs or not rec or rec.get("error") or "upstream_figures" in r
                or any(theirs.get(k) != cfg[k] for k in FIGURES_SHAPE_KEYS)
                or theirs.get("tokenizer_sha256") != cfg.get("tokenizer_sha256")):  # other tokens
            continue
        env = d.get("environment") or {}
        their_gpu = (env.get("gpu") or {}).get("name") if d.get("device") == "cuda" else "CPU"
        meta = {"file": path, "timestamp_utc": d.get("timestamp_utc"), "gpu": their_gpu,
                "this_gpu": this_gpu, "card_match": card_kind(their_gpu) == card_kind(this_gpu),
                "peak_flops": env.get("peak_flops"),
                "upstream_commit": (d.get("upstream") or {}).get("commit"),
                "differs": {k: [theirs.get(k), cfg[k]] for k in FIGURES_RECIPE_KEYS
                            if theirs.get(k) != cfg[k]}}
        if up_commit and meta["upstream_commit"] != up_commit:
            meta["differs"]["upstream commit"] = [meta["upstream_commit"], up_commit]
        return rec, meta
    return None, {"file": None, "reason": f"no report among {', '.join(p for p, _ in reports)} "
                  f"ran upstream's {cfg['name']} at this shape"}


def figures_note(meta):
    """The marker every row built on committed upstream figures carries."""
    if not meta.get("file"):
        return f"no upstream figures: {meta.get('reason')}"
    s = f"upstream figures from {meta['file']}, not run side by side"
    if not meta["card_match"]:
        s += (f"; CARD MISMATCH: this run's card is {meta['this_gpu']} "
              f"({card_kind(meta['this_gpu'])}), the figures' {meta['gpu']} "
              f"({card_kind(meta['gpu'])}), so the speed ratios compare different cards")
    if meta["differs"]:
        s += "; their run differs in " + ", ".join(f"{k} ({a} there, {b} here)"
                                                  for k, (a, b) in meta["differs"].items())
    return s


def mark_committed(verdict, meta):
    """FR-009 against committed figures: marked, and incomplete when the recipes differ."""
    v = dict(verdict, upstream_figures=meta.get("file"))
    if meta.get("differs") and v["status"] != "incomplete":
        v["status"] = "incomplete"
        v["reason"] = "the committed run's recipe differs, so the losses do not compare; " \
            + v["reason"]
    v["reason"] += f" [{figures_note(meta)}]"
    return v


def _fmt_num(x, kind):
    if x is None:
        return "—"
    if kind == "tok":
        return f"{x / 1e6:.3f} M" if x >= 1e6 else (f"{x / 1e3:.1f} K" if x >= 1e4 else f"{x:,.0f}")
    if kind == "pct":
        return f"{100 * x:.2f} %"
    if kind == "s":
        return f"{x:.2f} s"
    if kind == "bytes":
        return f"{x / 2**30:.2f} GiB" if x >= 2**30 else f"{x / 2**20:.1f} MiB"
    if kind == "loss":
        return f"{x:.4f}"
    if kind == "gflops":
        return f"{x:.1f}"
    return str(x)


def _ratio(a, b):
    if a is None or b is None or not b:
        return "—"
    return f"{a / b:.3f}"


METRIC_ROWS = [
    ("tok/s (mean, steps 11..N)", "tok_per_s_mean", "tok", "higher is better"),
    ("tok/s (median per step)", "tok_per_s_median", "tok", "higher is better"),
    ("MFU", "mfu", "pct", "higher is better"),
    ("GFLOP/s (flops/token x tok/s)", "gflops", "gflops", "higher is better"),
    ("of the fp32 GEMM ceiling", "gemm_frac", "pct", "higher is better"),
    ("time to first step, cold", "time_to_first_step_s", "s", "lower is better"),
    ("time to first step, warm", "time_to_first_step_warm_s", "s", "lower is better"),
    ("peak host RSS", "peak_host_rss_bytes", "bytes", "lower is better"),
    ("peak device memory", "peak_device_bytes", "bytes", "lower is better"),
    ("final val loss (nats/token)", "final_val_loss", "loss", "lower is better"),
    ("final bits per byte", "final_bpb", "loss", "lower is better"),
]


def render_markdown(doc):
    """The .md report from the JSON document (pure)."""
    env = doc["environment"]
    L = []
    on_gpu = doc["device"] == "cuda"
    L.append(f"# nanochat-c vs upstream nanochat: side-by-side benchmark ({doc['timestamp_utc']})")
    L.append("")
    if not on_gpu:
        L.append("> **CPU RESULTS.** This run used the CPU (`--no-require-gpu`): the numbers show "
                 "the instrument works and that both sides compute the same thing; they are not "
                 "the GPU speed claim.")
        L.append("")
    gpu = env.get("gpu") or {}
    dev = (f"{gpu.get('name')} (driver {gpu.get('driver')}, CUDA {env.get('cuda_version') or '?'})"
           if on_gpu else f"CPU: {env.get('cpu_model')} ({env.get('cpu_threads')} threads)")
    up = doc["upstream"]
    L.append(f"- Device: {dev}")
    L.append(f"- Upstream: karpathy/nanochat @ `{up.get('commit')}` "
             f"({up.get('source')}); torch {env.get('torch') or '?'}, "
             f"compute dtype {env.get('upstream_compute_dtype') or '?'}, "
             f"attention {env.get('upstream_attention') or '?'}, "
             f"torch.compile {'on' if env.get('upstream_compile') else 'off (eager)'}")
    L.append(f"- Ours: nanochat-c @ `{env.get('our_commit') or 'uncommitted'}`"
             f"{' (dirty tree)' if env.get('our_dirty') else ''}")
    L.append(f"- Command: `{doc.get('command')}`")
    for a in doc.get("appended") or []:
        L.append(f"- Appended {a['timestamp_utc']}: `{a['command']}`")
    L.append("")
    if doc.get("partial"):
        L.append(f"> **PARTIAL REPORT.** Written after each side of each config; not run (yet, "
                 f"or the run was cut short): {', '.join(doc['partial']['pending'])}.")
        L.append("")
    L.append("## Verdict (FR-009)")
    L.append("")
    L.append("FR-009 passes for a config when our final validation loss is within 5% of "
             "upstream's (or lower), or when we reach upstream's final loss in less steady-state "
             "training time (eval step x tokens per step / mean tok/s). Overall it passes when "
             "at least one config passes.")
    L.append("")
    for name, v in doc["verdict"]["per_config"].items():
        L.append(f"- **{name}: {v['status'].upper()}** — {v.get('reason', '')}")
    L.append(f"- **Overall: {doc['verdict']['overall'].upper()}**"
             + ("" if on_gpu else " (CPU run)"))
    L.append("")
    for c in doc["configs"]:
        name = c["name"]
        r = doc["results"][name]
        so, su = r.get("summary", {}).get("ours"), r.get("summary", {}).get("upstream")
        L.append(f"## {name}: depth {c['depth']}, n_embd {c['n_embd']} ({c['n_head']} heads of "
                 f"{c['head_dim']}), T {c['seq_len']}, B {c['batch_size']}, {c['steps']} steps")
        L.append("")
        if c.get("tokenizer"):
            short = c.get("bpe_vocab") != c.get("vocab_size")
            L.append(f"Tokens: a byte-level BPE of {c['vocab_size']:,} tokens (`tokenizer.json` "
                     f"sha256 {c.get('tokenizer_sha256', '?')[:16]}...)"
                     + (f", asked for {c['bpe_vocab']:,}: the text has no more pairs to merge"
                        if short else "")
                     + "; the corpus is one document, `<|bos|>` first.")
            L.append("")
        L.append(f"LRs x{c['lr_scale']:.4f} (sqrt(B*T/2^19)): "
                 + ", ".join(f"{k} {v:.5g}" for k, v in c["lrs"].items())
                 + f"; warmup {c['warmup_steps']}, warmdown {c['warmdown_ratio']}, final lr "
                 f"{c['final_lr_frac']}; seed {c['seed']}; flops/token "
                 f"{r.get('flops_per_token') or 0:.4g}.")
        L.append("")
        for side in ("ours", "upstream"):
            err = (r.get(side) or {}).get("error")
            if err:
                L.append(f"> {side} side failed: {err}")
                L.append("")
        fig = r.get("upstream_figures")
        if fig:
            L.append(f"> {figures_note(fig)}.")
            L.append("")
        if r.get("upstream") and not fig and not c.get("init_weights"):
            L.append("> Upstream started from its own initial weights"
                     + (f" (ours were not exported: {r['init_error']})" if r.get("init_error") else "")
                     + ": the loss curves differ by the init as well.")
            L.append("")
        L.append(f"| metric | ours | upstream{' (committed figures)' if fig else ''} | "
                 f"ours / upstream |")
        L.append("|---|---|---|---|")
        for label, key, kind, better in METRIC_ROWS:
            a = so.get(key) if so else None
            b = su.get(key) if su else None
            if a is None and b is None:
                continue
            L.append(f"| {label} ({better}) | {_fmt_num(a, kind)} | {_fmt_num(b, kind)} | "
                     f"{_ratio(a, b)} |")
        L.append("")
        fp8 = r.get("upstream_fp8")
        if fp8:
            s8 = (r.get("summary") or {}).get("upstream_fp8")
            if fp8.get("error") or not s8:
                L.append(f"Upstream with `--fp8`: not run ({fp8.get('error', 'no result')}).")
            else:
                L.append(f"Upstream with `--fp8` (tensorwise, its fastest setting): "
                         f"{_fmt_num(s8['tok_per_s_mean'], 'tok')} tok/s, final val loss "
                         f"{_fmt_num(s8['final_val_loss'], 'loss')}; ours / upstream fp8: "
                         f"{_ratio((so or {}).get('tok_per_s_mean'), s8['tok_per_s_mean'])} in tok/s.")
            L.append("")
        L.append(f"Validation on identical windows: W = {c['eval_windows']} windows of "
                 f"{c['seq_len'] + 1} tokens from the val split (starts "
                 f"floor(i*(n_val-T-1)/(W-1))).")
        L.append("")
        curve_o = {e["step"]: e for e in (r.get("ours") or {}).get("evals") or []}
        curve_u = {e["step"]: e for e in (r.get("upstream") or {}).get("evals") or []}
        steps = sorted(set(curve_o) | set(curve_u))
        anchors = c["base"] == "d6" and c["steps"] == 400 and not c.get("overrides")
        if steps:
            hdr = "| step | ours val loss | upstream val loss | ours bpb | upstream bpb |"
            sep = "|---|---|---|---|---|"
            if anchors:
                hdr += " anchors (upstream, 20 random batches) |"
                sep += "---|"
            L.append(hdr)
            L.append(sep)
            for s in steps:
                eo, eu = curve_o.get(s, {}), curve_u.get(s, {})
                row = (f"| {s} | {_fmt_num(eo.get('val_loss'), 'loss')} | "
                       f"{_fmt_num(eu.get('val_loss'), 'loss')} | {_fmt_num(eo.get('bpb'), 'loss')} | "
                       f"{_fmt_num(eu.get('bpb'), 'loss')} |")
                if anchors:
                    a = ANCHOR_D6_VAL.get(s)
                    row += f" {'—' if a is None else f'{a:.3f}'} |"
                L.append(row)
            L.append("")
        L.append(f"Samples: prompt {c['sample']['prompt']!r}, {c['sample']['max_new_tokens']} new "
                 f"tokens, temperature {c['sample']['temperature']}, seed {c['sample']['seed']}.")
        L.append("")
        for side in ("ours", "upstream"):
            text = ((r.get(side) or {}).get("sample") or {}).get("text")
            if text is not None:
                L.append(f"**{side}**")
                L.append("")
                L.append("```text")
                L.append(text.replace("```", "'''"))
                L.append("```")
                L.append("")
        cc = r.get("cross_check") or {"status": "skipped", "reason": "not run"}
        if cc["status"] in ("pass", "fail"):
            L.append(f"Cross-check ({cc['status'].upper()}): our trained weights loaded into "
                     f"upstream's GPT evaluate to {cc['upstream_val_loss']:.6f} in fp32 on the "
                     f"same windows; our evaluation gave {cc['ours_val_loss']:.6f} (relative "
                     f"difference {cc['rel_diff']:.2e}, tolerance {cc['rtol']:.0e})."
                     + (f" Note: {cc['note']}." if cc.get("note") else ""))
        else:
            L.append(f"Cross-check: {cc['status']} ({cc.get('reason', '')}).")
        L.append("")
    if doc.get("plot"):
        L.append(f"![validation loss]({doc['plot']})")
        L.append("")
    L.append("## Environment")
    L.append("")
    L.append("| item | value |")
    L.append("|---|---|")
    for k in ("gpu", "cuda_version", "torch", "torch_cuda", "python", "cpu_model", "cpu_threads",
              "torch_threads", "os", "our_commit", "our_dirty", "daemon", "upstream_compute_dtype",
              "upstream_attention", "upstream_compile", "upstream_optimizer_compiled"):
        v = env.get(k)
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        L.append(f"| {k} | {v if v is not None else '—'} |")
    L.append(f"| upstream commit | {up.get('commit')} |")
    L.append("")
    L.append("## Method")
    L.append("")
    L.append("- Same data both ways: `data/tinyshakespeare.txt`, in characters (vocabulary = "
             "sorted code points; upstream pads it to 128) or, for the -bpe configs, in the "
             "tokens of the same tokenizer.json (nanochatd's encoder; tiktoken on upstream's "
             "side, the same ids); the first 90% of tokens train, the rest validate; each step "
             "B random windows of T+1 tokens.")
    L.append("- Same model, same batches: upstream's side starts from our initial weights (a "
             "0-step run of nanochatd with the same seed, exported in upstream's names) and draws "
             "its windows from nanochatd's batch stream (xoshiro256** from the seed; "
             "upstream_runner.DataStream), so the curves differ only by arithmetic.")
    L.append("- tok/s: tokens of steps 11..N over their summed (synchronized) step time; the median "
             "is over per-step tok/s of the same steps. MFU = upstream's estimate_flops() x tok/s / "
             "peak (upstream's get_peak_flops by GPU name). GFLOP/s = flops/token x mean tok/s, "
             "held on the CPU against the machine's fp32 GEMM ceiling: OpenBLAS sgemm at 2048^3 "
             "on the cores both sides use (nc-bench-sgemm, best of 5)"
             + (f": {doc['gemm_ceiling']['gflops']:.1f} GFLOP/s on {doc['gemm_ceiling']['threads']} "
                f"threads." if doc.get("gemm_ceiling") else "."))
    L.append("- Time to first step, cold: upstream from process launch (import torch, build, "
             "torch.compile) to the end of step 1; ours from daemon spawn to the first progress "
             "event. Warm: ours on the resident daemon from the train request to the first "
             "progress event of a second run (upstream runs a fresh process per config).")
    L.append("- Upstream samples come from its GPT.generate (naive, no KV cache), ours from "
             "nanochatd `sample`.")
    L.append("")
    return "\n".join(L)


def plot_curves(doc, path):
    """Validation (and train) loss by step for both sides, one panel per config."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cfgs = doc["configs"]
    fig, axes = plt.subplots(1, len(cfgs), figsize=(5.2 * len(cfgs), 4.0), squeeze=False)
    for ax, c in zip(axes[0], cfgs):
        r = doc["results"][c["name"]]
        for side, color in (("ours", "tab:blue"), ("upstream", "tab:orange")):
            rec = r.get(side) or {}
            if side == "upstream" and r.get("upstream_figures"):
                side = "upstream (committed)"
            sl = rec.get("step_log") or []
            if sl:
                ax.plot([s["step"] for s in sl], [s["loss"] for s in sl], color=color,
                        alpha=0.25, linewidth=0.8, label=f"{side} train")
            ev = sorted(rec.get("evals") or [], key=lambda e: e["step"])
            if ev:
                ax.plot([e["step"] for e in ev], [e["val_loss"] for e in ev], color=color,
                        marker="o", markersize=3, linewidth=1.6, label=f"{side} val")
        if c["base"] == "d6" and c["steps"] == 400 and not c.get("overrides"):
            xs = sorted(ANCHOR_D6_VAL)
            ax.plot(xs, [ANCHOR_D6_VAL[x] for x in xs], color="gray", linestyle=":",
                    marker="x", markersize=3, label="anchors (upstream)")
        ax.set_title(f"{c['name']} (d{c['depth']}, T{c['seq_len']}, B{c['batch_size']}, "
                     f"{'GPU' if doc['device'] == 'cuda' else 'CPU'})", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/char)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def torch_facts(doc):
    """The torch side's facts in a report: its probe's, else its first upstream run's (not
    committed figures': those come from another machine)."""
    return doc.get("probe") or next(
        (r["upstream"]["env"] for r in doc["results"].values()
         if isinstance(r.get("upstream"), dict) and r["upstream"].get("env")
         and "upstream_figures" not in r), None)


def environment_of(doc, gpu, probe):
    """The report's environment: the probe's torch facts, else the report's own; our commit
    and tree as they were when the run began (an edit during a run is not the run's code)."""
    env = doc["environment"]
    return dict(collect_environment(gpu, probe or torch_facts(doc)), daemon=env["daemon"],
                our_commit=env.get("our_commit"), our_dirty=env.get("our_dirty"))


def write_partial(doc, pending, out_dir, stamp, gpu, probe):
    """The report of the configs begun so far, marked partial with what is pending (configs,
    or "config: side"), without the plot."""
    part = dict(doc, configs=[c for c in doc["configs"] if c["name"] in doc["results"]],
                partial={"pending": pending})
    part["environment"] = environment_of(part, gpu, probe)
    assemble(part)
    write_outputs(part, out_dir, stamp, plot=False)


def load_prior(path, device):
    """The report --append-to adds to; it must be of the same device."""
    try:
        with open(path) as f:
            prior = json.load(f)
    except (OSError, ValueError) as e:
        raise HarnessError(f"--append-to {path}: {e}")
    if not isinstance(prior, dict) or not isinstance(prior.get("results"), dict):
        raise HarnessError(f"--append-to {path}: not a benchmark report")
    if prior.get("device") != device:
        raise HarnessError(f"--append-to {path}: that report ran on {prior.get('device')}, "
                           f"this run on {device}")
    return prior


def append_to_prior(doc, prior, configs):
    """doc becomes prior's report plus this run: prior's configs that this run does not redo
    come first (returned), its name and command stay, this run is listed as appended. What
    prior's run left pending in the configs kept stays pending (doc["partial"])."""
    redo = {c["name"] for c in configs}
    kept = [c for c in prior["configs"] if c["name"] not in redo]
    cut = [p for p in (prior.get("partial") or {}).get("pending", [])
           if p.split(":")[0] in {c["name"] for c in kept}]
    if cut:
        doc["partial"] = {"pending": cut}
    doc["appended"] = (prior.get("appended") or []) + [
        {"timestamp_utc": doc["timestamp_utc"], "command": doc["command"]}]
    doc.update(timestamp_utc=prior["timestamp_utc"], command=prior["command"],
               sides="mixed" if prior.get("sides") != doc["sides"] else doc["sides"],
               configs=kept + configs,
               results={c["name"]: prior["results"][c["name"]] for c in kept})
    return kept


def write_outputs(doc, out_dir, stamp, plot=True):
    """Write benchmark_karpathy_<stamp>.{json,md,png}; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, f"benchmark_karpathy_{stamp}")
    paths = {"json": base + ".json", "md": base + ".md"}
    doc["plot"] = None
    if plot:
        try:
            plot_curves(doc, base + ".png")
            paths["png"] = base + ".png"
            doc["plot"] = os.path.basename(base + ".png")
        except Exception as e:  # a missing matplotlib must not lose the results
            doc["plot_error"] = f"{type(e).__name__}: {e}"
    # whole files only (a run killed while writing keeps the previous ones)
    for path, text in ((paths["json"], json.dumps(doc, indent=1, default=str)),
                       (paths["md"], render_markdown(doc))):
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    return paths


def assemble(doc):
    """Fill summaries, cross-check verdicts and FR-009 verdicts into doc (pure)."""
    per = {}
    peak = doc["environment"].get("peak_flops")
    ceiling = (doc.get("gemm_ceiling") or {}).get("gflops")
    for c in doc["configs"]:
        r = doc["results"][c["name"]]
        fpt = r.get("flops_per_token") or estimate_flops_per_token(
            c["depth"], c["n_embd"], c["n_head"], c["seq_len"], c.get("vocab_size") or doc.get("vocab_size", 65))
        r["flops_per_token"] = fpt
        fig = r.get("upstream_figures")
        so = summarize_side(r.get("ours"), c, fpt, peak, ceiling)
        su = summarize_side(r.get("upstream"), c, fpt, (fig or {}).get("peak_flops") or peak, ceiling)
        r["summary"] = {"ours": so, "upstream": su}
        if r.get("upstream_fp8"):
            r["summary"]["upstream_fp8"] = summarize_side(r["upstream_fp8"], c, fpt, peak, ceiling)
        per[c["name"]] = fr009_verdict(r.get("ours") or {}, r.get("upstream") or {}, so, su,
                                       c["tokens_per_step"])
        if fig:
            per[c["name"]] = mark_committed(per[c["name"]], fig)
    doc["verdict"] = {"per_config": per, "overall": overall_verdict(per),
                      "rule": "final val loss <= 1.05 x upstream's, or less steady-state "
                              "training time (steps x tokens / mean tok/s) to reach upstream's "
                              "final val loss; overall: any config passes",
                      "on_gpu": doc["device"] == "cuda"}
    return doc


# ==========================================================================================
# Upstream checkout: pin, clone, verify


def _git(args, cwd=None, check=True):
    p = subprocess.run(["git"] + args, cwd=cwd, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise HarnessError(f"git {' '.join(args)} failed: {p.stderr.strip() or p.stdout.strip()}")
    return p.stdout.strip() if p.returncode == 0 else None


def resolve_commit(repo_dir, ref):
    """Full SHA that ref names in repo_dir, or None when the repo does not have it."""
    return _git(["-C", repo_dir, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                check=False)


def check_checkout(repo_dir, ref=PINNED_REF, allow_dirty=False):
    """Verify repo_dir is a git checkout at ref; returns its HEAD SHA or raises HarnessError."""
    if not os.path.isdir(repo_dir):
        raise HarnessError(f"--nanochat-dir {repo_dir}: no such directory")
    head = _git(["-C", repo_dir, "rev-parse", "HEAD"], check=False)
    if not head:
        raise HarnessError(f"{repo_dir} is not a git checkout (git rev-parse HEAD failed); the "
                           f"harness must verify the upstream commit {ref}")
    want = resolve_commit(repo_dir, ref) or ref
    if head != want:
        raise HarnessError(f"upstream checkout {repo_dir} is at {head}, but the baseline ref is "
                           f"{want}; check out {want} there (or pass --baseline-ref {head} to "
                           f"benchmark against that commit instead)")
    if not os.path.isfile(os.path.join(repo_dir, "nanochat", "gpt.py")):
        raise HarnessError(f"{repo_dir} has no nanochat/gpt.py; is it a nanochat checkout?")
    dirty = _git(["-C", repo_dir, "status", "--porcelain", "--untracked-files=no"], check=False)
    if dirty and not allow_dirty:
        raise HarnessError(f"upstream checkout {repo_dir} has local changes to tracked files:\n"
                           f"{dirty}\nrestore them (git -C {repo_dir} checkout -- .) or pass "
                           f"--allow-dirty-baseline")
    return head


def clone_checkout(url, dest, ref=PINNED_REF):
    """Clone url into dest (or reuse an earlier clone) and check out exactly ref, detached."""
    if os.path.isdir(os.path.join(dest, ".git")) or (os.path.isdir(dest) and
                                                     _git(["-C", dest, "rev-parse", "--git-dir"],
                                                          check=False)):
        if not resolve_commit(dest, ref):
            _git(["-C", dest, "fetch", "--quiet", "origin"])
    else:
        if os.path.exists(dest) and os.listdir(dest):
            raise HarnessError(f"{dest} exists and is not a git checkout; remove it or pass "
                               f"--nanochat-dir")
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        _git(["clone", "--quiet", "--no-checkout", url, dest])
    sha = resolve_commit(dest, ref)
    if not sha:
        raise HarnessError(f"{url} has no commit {ref}")
    _git(["-C", dest, "checkout", "--quiet", "--detach", sha])
    return dest


def resolve_upstream(args):
    """Returns (checkout dir, HEAD sha, description of where it came from).

    --nanochat-dir: verify only (no network).  Otherwise clone --nanochat-repo (default
    upstream's GitHub URL) into --clone-dir (default upstream/nanochat, git-ignored), or
    reuse that clone when it already has the ref, and check the ref out detached.
    """
    ref = args.baseline_ref
    if args.nanochat_dir:
        d = os.path.abspath(args.nanochat_dir)
        return d, check_checkout(d, ref, args.allow_dirty_baseline), f"checkout {d}"
    url = args.nanochat_repo or DEFAULT_REPO_URL
    d = os.path.abspath(args.clone_dir or DEFAULT_CLONE_DIR)
    clone_checkout(url, d, ref)
    return d, check_checkout(d, ref, args.allow_dirty_baseline), f"clone of {url} in {d}"


# ==========================================================================================
# Environment


def nvidia_smi():
    """GPU name/driver/memory and the driver's CUDA version, or None without a GPU."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        q = subprocess.run([exe, "--query-gpu=name,driver_version,memory.total",
                            "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        if q.returncode != 0 or not q.stdout.strip():
            return None
        name, driver, mem = [x.strip() for x in q.stdout.strip().splitlines()[0].split(",")]
        info = {"name": name, "driver": driver, "memory": mem,
                "count": len(q.stdout.strip().splitlines())}
        h = subprocess.run([exe], capture_output=True, text=True, timeout=20)
        m = re.search(r"CUDA Version:\s*([\d.]+)", h.stdout or "")
        info["cuda_version"] = m.group(1) if m else None
        return info
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def our_commit():
    sha = _git(["-C", REPO_ROOT, "rev-parse", "HEAD"], check=False)
    dirty = _git(["-C", REPO_ROOT, "status", "--porcelain", "--untracked-files=no"], check=False)
    return sha, bool(dirty) if sha else None


def doc_threads():
    """The cores this process may use (both sides use them all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def collect_environment(gpu, probe):
    sha, dirty = our_commit()
    threads = doc_threads()
    env = {
        "gpu": gpu,
        "cuda_version": (gpu or {}).get("cuda_version"),
        "cpu_model": cpu_model(),
        "cpu_threads": threads,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "our_commit": sha,
        "our_dirty": dirty,
    }
    if probe:
        env.update({
            "torch": probe.get("torch"),
            "torch_cuda": probe.get("torch_cuda"),
            "torch_threads": probe.get("torch_threads"),
            "upstream_compute_dtype": probe.get("compute_dtype"),
            "upstream_attention": probe.get("attention"),
            "upstream_has_fa3": probe.get("has_fa3"),
            "upstream_compile": probe.get("compile"),
            "upstream_optimizer_compiled": probe.get("optimizer_compiled"),
            "peak_flops": probe.get("peak_flops"),
            "torch_gpu_name": probe.get("gpu_name"),
        })
    return env


# ==========================================================================================
# Running the sides


def _run_runner(cmd_args, log_path, env_extra, timeout):
    """Run upstream_runner.py; echo its [upstream] lines; full output to log_path."""
    env = dict(os.environ)
    env.update(env_extra)
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [sys.executable, os.path.join(SCRIPTS_DIR, "upstream_runner.py")] + cmd_args
    with open(log_path, "a") as log:
        log.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n")
        log.flush()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=env, cwd=os.path.dirname(log_path), bufsize=1)
        killer = threading.Timer(timeout, p.kill)
        killer.start()
        tail = []
        try:
            for line in p.stdout:
                log.write(line)
                tail = (tail + [line.rstrip()])[-15:]
                if line.startswith("[upstream]"):
                    print(line.rstrip(), flush=True)
            p.wait()
        finally:
            killer.cancel()
    if p.returncode != 0:
        noise = ("leaked", "nanobind", "skipped remainder", "See https://nanobind")
        tail = [t for t in tail if not any(n in t for n in noise)]
        raise RuntimeError(f"upstream runner exited with {p.returncode}: "
                           + " | ".join(tail[-4:]) + f" (log: {log_path})")


class Ctx:
    """What the sides need: paths, options, the upstream checkout."""

    def __init__(self, args, work_dir, nanochat_dir, data):
        self.args = args
        self.work = work_dir
        self.nanochat_dir = nanochat_dir
        self.data = data
        self.runner_env = {} if args.allow_fa3_download else {"HF_HUB_OFFLINE": "1"}


def run_upstream(cfg, ctx, fp8=False):
    """Upstream's side of cfg; fp8: with base_train's --fp8 (tensorwise), where the card has it."""
    spec = upstream_spec(cfg, ctx.nanochat_dir, ctx.data, ctx.args.upstream_compile)
    spec["fp8"] = fp8
    name = cfg["name"] + ("-fp8" if fp8 else "")
    spec_path = os.path.join(ctx.work, f"upstream_{name}_spec.json")
    out_path = os.path.join(ctx.work, f"upstream_{name}.json")
    spec["t_launch"] = time.time()
    with open(spec_path, "w") as f:
        json.dump(spec, f, indent=1)
    _run_runner(["train", "--spec", spec_path, "--out", out_path],
                os.path.join(ctx.work, f"upstream_{name}.log"), ctx.runner_env,
                ctx.args.runner_timeout)
    with open(out_path) as f:
        return json.load(f)


def run_upstream_crosscheck(cfg, ctx, weights):
    spec = upstream_spec(cfg, ctx.nanochat_dir, ctx.data, "off")
    name = cfg["name"]
    spec_path = os.path.join(ctx.work, f"crosscheck_{name}_spec.json")
    out_path = os.path.join(ctx.work, f"crosscheck_{name}.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f, indent=1)
    _run_runner(["crosscheck", "--spec", spec_path, "--weights", weights, "--out", out_path],
                os.path.join(ctx.work, f"crosscheck_{name}.log"),
                dict(ctx.runner_env, NANOCHAT_DTYPE="float32"), ctx.args.runner_timeout)
    with open(out_path) as f:
        return json.load(f)


def _f4(x, fmt="{:.4f}"):
    return fmt.format(x) if isinstance(x, (int, float)) else str(x)


class _EventLog:
    """Collects nanochatd progress/eval events with the time each arrived."""

    def __init__(self, label, echo_every):
        self.label = label
        self.echo_every = max(1, echo_every)
        self.progress, self.evals = [], []
        self.first_progress_at = None

    def __call__(self, name, data):
        now = time.time()
        if name == OUR_EVENT_PROGRESS:
            if self.first_progress_at is None:
                self.first_progress_at = now
            self.progress.append((now, data))
            step = pick(data, "step")
            if step is not None and (step % self.echo_every == 0 or step == 1):
                print(f"[ours] {self.label}: step {step} | loss {_f4(pick(data, 'loss'))} | "
                      f"tok/s {_f4(pick(data, 'tok_per_s'), '{:,.0f}')}", flush=True)
        elif name == OUR_EVENT_EVAL:
            self.evals.append((now, data))
            print(f"[ours] {self.label}: step {pick(data, 'step')} | val loss "
                  f"{_f4(pick(data, 'val_loss'))} | bpb {_f4(pick(data, 'bpb'))}", flush=True)

    def step_log(self):
        """One entry per step (log_every 1): its synchronized wall time, eval excluded."""
        return [{"step": pick(d, "step"), "loss": pick(d, "loss"), "dt": pick(d, "step_ms") / 1e3}
                for _, d in self.progress]

    def eval_log(self):
        return [{"step": pick(d, "step"), "val_loss": pick(d, "val_loss"), "bpb": pick(d, "bpb")}
                for _, d in self.evals]


@contextlib.contextmanager
def our_daemon(cfg, ctx, rec, log_name):
    """nanochatd for cfg: attached (--socket) or spawned (its log in the scratch folder);
    rec["daemon"] says which; stopped after a spawn."""
    from ncclient import Daemon  # msgpack only needed on this side
    a = ctx.args
    if a.socket:
        daemon = Daemon.attach(a.socket)
        rec["daemon"] = {"mode": "attached", "socket": a.socket}
    else:
        binary = a.nanochatd
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            raise RuntimeError(f"nanochatd not found at {binary}; build it (cmake -B build && "
                               f"cmake --build build) or pass --nanochatd PATH")
        sock_dir = tempfile.mkdtemp(prefix="ncbench-")
        folders = ["--allow-dir", cfg["tokenizer"]] if cfg.get("tokenizer") else []
        daemon = Daemon.spawn(binary, socket=os.path.join(sock_dir, "nanochatd.sock"),
                              results_dir=os.path.join(ctx.work, "ours_runs"),
                              checkpoint_dir=os.path.join(ctx.work, "ours_checkpoints"),
                              data=ctx.data, log_path=os.path.join(ctx.work, f"ours_{log_name}.log"),
                              ready_timeout=60, extra_args=folders)
        rec["daemon"] = {"mode": "spawned", "binary": binary,
                         "startup_s": daemon.ready_at - daemon.spawned_at}
    try:
        yield daemon
    finally:
        if daemon.proc is not None:
            rec["daemon"]["exit_status"] = daemon.stop()
            shutil.rmtree(os.path.dirname(daemon.socket), ignore_errors=True)


def export_init(cfg, ctx):
    """Our initial weights for cfg in upstream's names (a 0-step train, whose model is the
    real run's first: the same seed; then `checkpoint export`): the path. Upstream's side
    starts from them, so both sides train the same model on the same batches."""
    name = cfg["name"]
    with our_daemon(cfg, ctx, {}, f"{name}-init") as daemon, daemon.client() as c:
        args = our_train_args(cfg, f"bench-{ctx.stamp}-{name}-init", steps=0, eval_every=0)
        c.train(**dict(args, eval_windows=2))
        return pick(c.checkpoint("export", path=f"ours_{name}-init-{ctx.stamp}.safetensors"), "path")


def run_ours(cfg, ctx, rec):
    """Train, sample, export and time nanochatd for one config; fills rec as it goes."""
    from ncclient import NanochatError  # msgpack only needed on this side
    a = ctx.args
    name = cfg["name"]
    with our_daemon(cfg, ctx, rec, name) as daemon:
        with daemon.client() as c:
            rec["status"] = c.status()
            ev = _EventLog(name, max(1, cfg["steps"] // 10))
            t_req = time.time()
            res = c.train(on_event=ev, **our_train_args(cfg, f"bench-{ctx.stamp}-{name}"))
            rec["train_result"] = res
            rec["step_log"] = ev.step_log()
            rec["evals"] = ev.eval_log()
            rec["final_val_loss"] = pick(res, "final_val_loss")
            rec["final_bpb"] = pick(res, "final_bpb")
            if not rec["evals"] and rec["final_val_loss"] is not None:
                rec["evals"] = [{"step": cfg["steps"], "val_loss": rec["final_val_loss"],
                                 "bpb": rec["final_bpb"]}]
            rec["tok_per_s_reported"] = pick(res, "tok_per_s")
            rec["tok_per_s_median"] = pick(res, "tok_per_s_median")
            rec["peak_host_rss_bytes"] = pick(res, "peak_host_rss_bytes")
            rec["peak_device_bytes"] = pick(res, "peak_device_bytes")
            rec["backend"], rec["device"] = pick(res, "backend"), pick(res, "device")
            rec["using_gpu"] = pick(res, "using_gpu")
            rec["time_to_first_step_reported_s"] = pick(res, "time_to_first_step_s")
            if ev.first_progress_at is not None:
                rec["time_to_first_step_from_request_s"] = ev.first_progress_at - t_req
                if daemon.spawned_at is not None:
                    rec["time_to_first_step_s"] = ev.first_progress_at - daemon.spawned_at
            sp = cfg["sample"]
            s = c.sample(prompt=sp["prompt"], max_new_tokens=sp["max_new_tokens"],
                         temperature=sp["temperature"], top_k=sp["top_k"], seed=sp["seed"])
            rec["sample"] = dict(sp, text=pick(s, "text"), result=s)
            if cfg["cross_check"]:
                rec["cross_check_eval"] = _our_fp32_eval(c, cfg)
                # a relative path lands in the daemon's checkpoint folder (its paths are
                # confined); the reply names the file written
                path = f"ours_{name}-{ctx.stamp}.safetensors"
                try:
                    exp = c.checkpoint("export", path=path)
                    rec["export"] = {"path": pick(exp, "path"), "result": exp}
                except NanochatError as e:
                    rec["export"] = {"error": f"{e.code}: {e.message}"}
            # warm: a second, short run on the same resident daemon
            ev2 = _EventLog(name + " (warm)", WARM_STEPS)
            t_req2 = time.time()
            res2 = c.train(on_event=ev2, **our_train_args(cfg, f"bench-{ctx.stamp}-{name}-warm",
                                                          steps=a.warm_steps, eval_every=0))
            rec["warm_result"] = res2
            if ev2.first_progress_at is not None:
                rec["time_to_first_step_warm_s"] = ev2.first_progress_at - t_req2
            rec["time_to_first_step_warm_reported_s"] = pick(res2, "time_to_first_step_s")
    return rec


def _our_fp32_eval(c, cfg):
    r = c.eval(windows=cfg["eval_windows"], **OUR_EVAL_FP32_ARGS)
    return {"val_loss": pick(r, "val_loss"), "bpb": pick(r, "bpb"),
            "compute_dtype": pick(r, "compute_dtype"), "result": r}


def run_side(side, cfg, ctx, r):
    """One side of cfg into r[side] (what it did before a failure too); False when it failed."""
    rec = r[side] = {"side": side, "config": cfg["name"]}
    t0 = time.time()
    try:
        if side == "ours":
            run_ours(cfg, ctx, rec)
        elif side == "upstream_fp8":
            rec.update(run_upstream(cfg, ctx, fp8=True))
        else:
            rec.update(run_upstream(cfg, ctx))
            r["flops_per_token"] = rec.get("flops_per_token")
    except Exception as e:
        rec["error"] = f"{type(e).__name__}: {e}"
        print(f"[{side}] {cfg['name']}: FAILED: {rec['error']}", file=sys.stderr, flush=True)
    rec["wall_s"] = time.time() - t0
    return "error" not in rec


def verdict_line(name, v):
    """The line gpu_check.sh reads a benchmark phase's note from."""
    return f"FR-009 {name}: {v['status']} ({v.get('reason')})"


def do_cross_check(cfg, ctx, ours):
    if not cfg["cross_check"]:
        return {"status": "skipped", "reason": "not enabled for this config (--cross-check all)"}
    if not ours or ours.get("error") and not ours.get("export"):
        return {"status": "skipped", "reason": "our side did not run"}
    exp = ours.get("export") or {}
    if exp.get("error") or not exp.get("path") or not os.path.isfile(exp.get("path", "")):
        return {"status": "skipped", "reason": "nanochatd could not export safetensors weights: "
                + (exp.get("error") or "no file written")}
    ev = ours.get("cross_check_eval") or {}
    if ev.get("val_loss") is None:
        return {"status": "skipped", "reason": "our fp32 evaluation returned no val_loss"}
    up = run_upstream_crosscheck(cfg, ctx, exp["path"])
    v = cross_check_verdict(ev["val_loss"], up["val_loss"])
    v.update({"upstream": up, "ours_eval": ev})
    if ev.get("compute_dtype") != "float32":
        v["note"] = f"our evaluation ran in {ev.get('compute_dtype')}, not fp32"
    return v


# ==========================================================================================
# CLI


def parse_args(argv=None):
    p = argparse.ArgumentParser(  # no abbreviations: a misspelt flag in a caller fails
        description="Benchmark nanochat-c against upstream nanochat, side by side.",
        allow_abbrev=False)
    p.add_argument("--baseline", required=True, choices=["nanochat"],
                   help="the baseline to compare against")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--nanochat-dir", help="existing upstream checkout (verified against the ref; "
                   "no network needed)")
    g.add_argument("--nanochat-repo", help=f"clone this URL and check out the ref (default when "
                   f"neither is given and upstream/nanochat is absent: {DEFAULT_REPO_URL})")
    p.add_argument("--clone-dir", default=None, help=f"where --nanochat-repo clones "
                   f"(default {os.path.relpath(DEFAULT_CLONE_DIR, REPO_ROOT)})")
    p.add_argument("--baseline-ref", default=PINNED_REF, help=f"upstream commit to benchmark (default {PINNED_REF})")
    p.add_argument("--allow-dirty-baseline", action="store_true",
                   help="accept local changes in the upstream checkout (recorded)")
    p.add_argument("--config", action="append", default=None, metavar="NAME",
                   help=f"config(s): {', '.join(CONFIGS)} (repeat or comma-separate); default "
                   f"{' '.join(GPU_DEFAULT_CONFIGS)} on GPU, {' '.join(CPU_DEFAULT_CONFIGS)} on CPU")
    p.add_argument("--depth", type=int, help="custom config: depth (override)")
    p.add_argument("--seq-len", type=int, help="custom config: sequence length T (override)")
    p.add_argument("--batch-size", type=int, help="custom config: batch size B (override)")
    p.add_argument("--head-dim", type=int, help="custom config: head dim (override)")
    p.add_argument("--steps", type=int, help="training steps for every config (override)")
    p.add_argument("--eval-every", type=int, help="eval every N steps (override)")
    p.add_argument("--eval-windows", type=int, help="number of validation windows W (override)")
    p.add_argument("--quick", action="store_true", help="short runs and fewer eval windows")
    p.add_argument("--seed", type=int, default=1337, help="seed for both sides (default 1337)")
    rg = p.add_mutually_exclusive_group()
    rg.add_argument("--require-gpu", dest="require_gpu", action="store_true", default=True,
                    help="fail unless a CUDA GPU is present")
    rg.add_argument("--no-require-gpu", dest="require_gpu", action="store_false",
                    help="run on the CPU when there is no GPU (results labelled CPU)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="force a device (auto: the GPU if present)")
    p.add_argument("--sides", default="both", choices=["both", "ours", "upstream"])
    p.add_argument("--upstream-figures", metavar="PATH", default=None,
                   help="with --sides ours: upstream's side of each config comes from the newest "
                   "report (a .json, or a folder of them, e.g. results/h200_upstream_only) that "
                   "ran it at the same shape, marked in the report as not run side by side")
    p.add_argument("--append-to", metavar="REPORT.json", default=None,
                   help="add this run's configs to that report (same files, rewritten); its "
                   "other configs are kept")
    p.add_argument("--nanochatd", default=DEFAULT_DAEMON, help="daemon binary to spawn")
    p.add_argument("--socket", default=None, help="use a running daemon at this socket instead "
                   "of spawning one (no cold time to first step)")
    p.add_argument("--warm-steps", type=int, default=WARM_STEPS,
                   help="steps of the second (warm) run on the resident daemon")
    p.add_argument("--cross-check", default="auto", choices=["auto", "all", "none"],
                   help="auto: the cpu and d6 configs")
    p.add_argument("--upstream-compile", default="auto", choices=["auto", "on", "off"],
                   help="torch.compile upstream (auto: on GPU only; eager on CPU)")
    p.add_argument("--allow-fa3-download", action="store_true",
                   help="let upstream try to download FA3 kernels (default: HF_HUB_OFFLINE=1)")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--tokenizer", metavar="DIR", default=None,
                   help="the -bpe configs' tokenizer folder (tokenizer.json, e.g. upstream's own "
                   "through scripts/tokenizer.py import-nanochat); default: one trained on --data "
                   "per config's vocabulary size")
    p.add_argument("--runner-timeout", type=float, default=1800.0,
                   help="seconds allowed per upstream process")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--out", default=os.path.join(REPO_ROOT, "results"))
    p.add_argument("--scratch", default=None,
                   help="folder for the runs' logs, checkpoints and specs (default "
                        "<out>/benchmark_karpathy_<stamp>)")
    return p.parse_args(argv)


def decide_device(args, gpu):
    """cuda/cpu from --device, --require-gpu and what nvidia-smi sees; raises if impossible."""
    if args.device == "cuda" or (args.device == "auto" and args.require_gpu):
        if not gpu:
            raise HarnessError("no CUDA GPU found (nvidia-smi lists none). This benchmark needs "
                               "a GPU by default; pass --no-require-gpu to run the CPU config and "
                               "get clearly labelled CPU results.")
        return "cuda"
    if args.device == "cpu":
        return "cpu"
    return "cuda" if gpu else "cpu"


def main(argv=None):
    args = parse_args(argv)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    try:
        gpu = nvidia_smi()
        device = decide_device(args, gpu)
        configs = resolve_configs(args.config, device, args.steps, args.quick,
                                  {"depth": args.depth, "seq_len": args.seq_len,
                                   "batch_size": args.batch_size, "head_dim": args.head_dim},
                                  args.eval_every, args.eval_windows, args.seed, args.cross_check)
        if not os.path.isfile(args.data):
            raise HarnessError(f"data file {args.data} not found")
        if args.upstream_figures and args.sides != "ours":
            raise HarnessError("--upstream-figures stands in for upstream's run: use it with "
                               "--sides ours")
        figures = load_reports(args.upstream_figures) if args.upstream_figures else None
        prior = load_prior(args.append_to, device) if args.append_to else None
        nanochat_dir, up_commit, up_source = resolve_upstream(args)
    except HarnessError as e:
        print(f"benchmark_karpathy: {e}", file=sys.stderr)
        return 2

    out_dir = os.path.abspath(args.out)
    work = os.path.abspath(args.scratch) if args.scratch else \
        os.path.join(out_dir, f"benchmark_karpathy_{stamp}")  # scratch (git-ignored)
    os.makedirs(work, exist_ok=True)
    ctx = Ctx(args, work, nanochat_dir, os.path.abspath(args.data))
    ctx.stamp = stamp
    try:
        vocab_size = prepare_tokenizers(configs, ctx.data, work, args.tokenizer)
    except HarnessError as e:
        print(f"benchmark_karpathy: {e}", file=sys.stderr)
        return 2
    print(f"benchmark_karpathy: device {device}; configs {' '.join(c['name'] for c in configs)}; "
          f"upstream {up_commit[:12]} ({up_source}); scratch {work}", flush=True)

    # torch/upstream environment: taken from the first upstream run (saves a ~10 s torch
    # import) or the report appended to; probed separately only when neither has it
    probe = torch_facts(prior) if prior else None
    if args.sides == "ours" and probe is None:
        probe_path = os.path.join(work, "probe.json")
        try:
            _run_runner(["probe", "--nanochat-dir", nanochat_dir, "--device", device,
                         "--compile", args.upstream_compile, "--out", probe_path],
                        os.path.join(work, "probe.log"), ctx.runner_env, 300)
            with open(probe_path) as f:
                probe = json.load(f)
        except Exception as e:
            print(f"benchmark_karpathy: upstream probe failed ({e}); MFU will be n/a",
                  file=sys.stderr)

    doc = {
        "schema": "nanochat-c/benchmark_karpathy/1",
        "timestamp_utc": stamp,
        "command": " ".join(shlex.quote(x) for x in [os.path.relpath(__file__, REPO_ROOT)]
                            + list(sys.argv[1:] if argv is None else argv)),
        "device": device,
        "sides": args.sides,
        "vocab_size": vocab_size,
        "upstream": {"commit": up_commit, "ref": args.baseline_ref, "dir": nanochat_dir,
                     "source": up_source},
        "environment": collect_environment(gpu, probe),
        "probe": probe,
        "configs": configs,
        "results": {},
        "scratch_dir": work,
        "gemm_ceiling": gemm_ceiling(args.nanochatd, doc_threads()) if device == "cpu" else None,
    }
    doc["environment"]["daemon"] = (f"attached {args.socket}" if args.socket
                                    else os.path.relpath(args.nanochatd, REPO_ROOT))
    if prior:
        append_to_prior(doc, prior, configs)
    cut = (doc.get("partial") or {}).get("pending", [])

    def save(pending):
        """The report so far: a run killed later keeps what finished."""
        try:
            write_partial(doc, cut + pending, out_dir, doc["timestamp_utc"], gpu, probe)
            print(f"benchmark_karpathy: partial report written; pending {', '.join(pending)}",
                  flush=True)
        except Exception as e:  # the report is a courtesy here; the run goes on
            print(f"benchmark_karpathy: partial report not written ({e})", file=sys.stderr)

    failed = False
    for i, cfg in enumerate(configs):
        name = cfg["name"]
        r = doc["results"][name] = {}
        if figures is not None:
            r["upstream"], r["upstream_figures"] = committed_upstream(cfg, figures, gpu, up_commit)
            r["flops_per_token"] = (r["upstream"] or {}).get("flops_per_token")
            print(f"benchmark_karpathy: {name}: {figures_note(r['upstream_figures'])}", flush=True)
        # the steps of this config, the report rewritten after each
        steps = [s for s in ("upstream", "ours") if args.sides in ("both", s)]
        if cfg["upstream_fp8"] and args.sides != "ours":
            steps.insert(1, "upstream_fp8")
        if args.sides == "both":
            steps = ["init"] + steps + ["cross-check"]
        else:
            r["cross_check"] = {"status": "skipped", "reason": f"--sides {args.sides}"}
        later = [c["name"] for c in configs[i + 1:]]
        for j, step in enumerate(steps):
            if step == "init":
                try:
                    cfg["init_weights"] = export_init(cfg, ctx)
                except Exception as e:  # upstream then starts from its own init: noted
                    r["init_error"] = f"{type(e).__name__}: {e}"
                    print(f"benchmark_karpathy: {name}: our initial weights not exported "
                          f"({r['init_error']}); upstream starts from its own", file=sys.stderr)
            elif step != "cross-check":
                failed |= not run_side(step, cfg, ctx, r) and step != "upstream_fp8"  # an extra figure
            else:
                try:
                    r["cross_check"] = do_cross_check(cfg, ctx, r.get("ours"))
                except Exception as e:
                    r["cross_check"] = {"status": "error", "reason": f"{type(e).__name__}: {e}"}
                failed |= r["cross_check"]["status"] == "fail"
                print(f"benchmark_karpathy: {name}: cross-check {r['cross_check']['status']}"
                      f" {r['cross_check'].get('reason', '')}", flush=True)
            pending = [f"{name}: {s}" for s in steps[j + 1:]] + later
            if pending:
                save(pending)

    doc["environment"] = environment_of(doc, gpu, probe)
    assemble(doc)
    paths = write_outputs(doc, out_dir, doc["timestamp_utc"], plot=not args.no_plot)
    for name, v in doc["verdict"]["per_config"].items():
        print(verdict_line(name, v))
    print(f"FR-009 overall: {doc['verdict']['overall']}"
          + ("" if device == "cuda" else " [CPU run]"))
    for k, pth in paths.items():
        print(f"wrote {os.path.relpath(pth)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
