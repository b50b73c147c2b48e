#!/usr/bin/env python3
"""bench_sample.py: sampling speed, nanochatd against upstream nanochat's Engine, side by side.

    python3 scripts/bench_sample.py --nanochat-dir PATH [--nanochatd build/bin/nanochatd]
        [--threads 2] [--rounds 3] [--tokens 200] [--samples 1,8] [--out results]

One run: a private nanochatd trains the d6 GPT (depth 6, head_dim 128, T 256) for a few steps on
the bundled corpus and exports its weights; upstream's GPT (the checkout at the pinned commit,
fp32, on the CPU) loads the same weights, and upstream's own Engine.generate samples from them
(batch-1 prefill, the KV cache replicated for num_samples rows, then one forward per token for
all rows). Both sides get the same threads, prompt "ROMEO:", temperature 0.8 and top-k 50; the
rounds interleave the two sides and the sample counts. Our figure is the client's wall time
for the whole request over the socket (new tokens of all samples per second); upstream's is
the wall time of draining Engine.generate. The first sample after a training run is measured
apart: --trials times, a short training run then three batch-1 samples, the first against the
two after it.

Upstream's Engine needs a tokenizer only for its tool-use special tokens; a character
vocabulary has none, so the stand-in answers ids no sample can produce. Writes
<out>/sample_bench_<stamp>.md and .json.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import upstream_runner as ur  # noqa: E402  (the harness's upstream helpers; no torch at import)
from benchmark_karpathy import check_checkout, cpu_model  # noqa: E402  (the pinned commit, verified)
from ncclient import Daemon  # noqa: E402

PROMPT = "ROMEO:"
D6 = {"depth": 6, "head_dim": 128, "seq_len": 256}


class NoSpecials:
    """The tokenizer upstream's Engine asks for its special tokens: none in a character vocabulary."""

    def encode_special(self, name):
        return -1

    def get_bos_token_id(self):
        return -1


def train_ours(c):
    t0 = time.time()
    c.train(device="cpu", steps=2, batch_size=8, eval_windows=2, **D6)
    return time.time() - t0


def first_after_training(c, tokens, trials):
    """Per trial: a training run, then three samples; (first, median of the two after) tok/s."""
    firsts, afters = [], []
    for _ in range(trials):
        train_ours(c)
        runs = [ours_round(c, 1, tokens)[0] for _ in range(3)]
        firsts.append(runs[0])
        afters.append(statistics.median(runs[1:]))
    return firsts, afters


def ours_round(c, n, tokens):
    t0 = time.time()
    res = c.sample(prompt=PROMPT, max_new_tokens=tokens, temperature=0.8, top_k=50, seed=42, num_samples=n)
    dt = time.time() - t0
    return n * tokens / dt, res["texts"][0]


def load_upstream(nanochat_dir, weights, data, threads):
    os.environ["NANOCHAT_DTYPE"] = "float32"
    ur._prepare_env(nanochat_dir, "off", "cpu")
    torch, _common, _fa, gpt = ur._import_upstream()
    from nanochat.engine import Engine  # upstream's, from the checkout
    torch.set_num_threads(threads)
    corpus = ur.load_corpus(data)
    model = ur.build_model(torch, gpt, dict(D6, aspect_ratio=64), corpus["vocab_size"], "cpu")
    sd = model.state_dict()
    w, _meta = ur.load_safetensors(weights)
    model.load_state_dict({k: ur._pad_rows(w[k], ref.shape[0]) if w[k].shape[0] < ref.shape[0] else w[k]
                           for k, ref in sd.items()}, strict=True)
    model.eval()
    return torch, Engine(model, NoSpecials()), corpus["encode"](PROMPT), corpus["decode"]


def upstream_round(engine, prompt_ids, n, tokens):
    t0 = time.time()
    for _column, _masks in engine.generate(prompt_ids, num_samples=n, max_tokens=tokens, temperature=0.8, top_k=50,
                                           seed=42):
        pass
    return n * tokens / (time.time() - t0)


def table(results, counts):
    lines = ["| samples | ours tok/s (median) | upstream Engine tok/s (median) | ours / upstream | ours rounds | "
             "upstream rounds |", "|---|---|---|---|---|---|"]
    for n in counts:
        o, u = results["ours"][str(n)], results["upstream"][str(n)]
        mo, mu = statistics.median(o), statistics.median(u)
        lines.append(f"| {n} | {mo:,.0f} | {mu:,.0f} | {mo / mu:.2f}x | {', '.join(f'{x:,.0f}' for x in o)} | "
                     f"{', '.join(f'{x:,.0f}' for x in u)} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nanochat-dir", required=True, help="upstream nanochat checkout at the pinned commit")
    p.add_argument("--nanochatd", default=os.path.join(ROOT, "build", "bin", "nanochatd"))
    p.add_argument("--data", default=os.path.join(ROOT, "data", "tinyshakespeare.txt"))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tokens", type=int, default=200)
    p.add_argument("--samples", default="1,8", help="sample counts, comma-separated")
    p.add_argument("--trials", type=int, default=3, help="training runs for the first-sample measurement")
    p.add_argument("--out", default=os.path.join(ROOT, "results"))
    a = p.parse_args(argv)
    counts = [int(x) for x in a.samples.split(",")]
    check_checkout(a.nanochat_dir)
    work = tempfile.mkdtemp(prefix="bench_sample_")
    sock = os.path.join(work, "d.sock")
    results = {"ours": {str(n): [] for n in counts}, "upstream": {str(n): [] for n in counts}}
    with Daemon.spawn(a.nanochatd, socket=sock, results_dir=work, checkpoint_dir=work, data=a.data,
                      extra_args=["--threads", str(a.threads), "--preload-device", "cpu"]) as d, d.client() as c:
        firsts, afters = first_after_training(c, a.tokens, a.trials)
        weights = os.path.join(work, "d6.safetensors")
        c.request("checkpoint", {"action": "export", "path": weights})
        torch, engine, prompt_ids, _decode = load_upstream(a.nanochat_dir, weights, a.data, a.threads)
        upstream_round(engine, prompt_ids, 1, 8)  # upstream's first call (allocation, warm-up) is not timed
        for _r in range(a.rounds):
            for n in counts:
                results["ours"][str(n)].append(ours_round(c, n, a.tokens)[0])
                results["upstream"][str(n)].append(upstream_round(engine, prompt_ids, n, a.tokens))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    report = {"stamp": stamp, "threads": a.threads, "tokens": a.tokens, "rounds": a.rounds, "config": D6,
              "first_after_training_tok_s": firsts, "next_two_median_tok_s": afters,
              "torch": torch.__version__, "cpu": cpu_model(), "results": results}
    os.makedirs(a.out, exist_ok=True)
    base = os.path.join(a.out, f"sample_bench_{stamp}")
    with open(base + ".json", "w") as f:
        json.dump(report, f, indent=1)
    md = [f"# Sampling: nanochatd vs upstream nanochat's Engine ({stamp})", "",
          f"- CPU: {report['cpu']}, {a.threads} threads on both sides; torch {torch.__version__}, fp32, eager",
          f"- d6 GPT (depth 6, n_embd 384, head_dim 128, T 256, vocab of the bundled corpus), the same weights "
          f"on both sides; prompt {PROMPT!r}, {a.tokens} new tokens per sample, temperature 0.8, top-k 50",
          f"- {a.rounds} interleaved rounds; tok/s = new tokens of all samples per second of wall time",
          "", table(results, counts), "",
          "First sample after a training run (batch 1), per trial, against the median of the two after it: " +
          ", ".join(f"{f:,.0f} vs {s:,.0f}" for f, s in zip(firsts, afters)) + " tok/s.", "",
          f"Command: `python3 scripts/bench_sample.py --nanochat-dir <upstream> --threads {a.threads} "
          f"--rounds {a.rounds} --tokens {a.tokens} --samples {a.samples} --trials {a.trials}`", ""]
    with open(base + ".md", "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))
    print(f"wrote {base}.md and .json")


if __name__ == "__main__":
    main()
