#!/usr/bin/env python3
"""bench_tokenizer.py [--vocab-size N] [--text FILE] [--bench BIN]: our BPE
encoder (tokenizer/bpe.c, through nc-bench-tokenizer) beside tiktoken's
encode_ordinary, one core each, on the same text with the same tokenizer
(trained by scripts/tokenizer.py on the text itself unless --tokenizer DIR).
Prints a table: ids (which must be equal) and MB/s, the best of 5 runs each.
Needs rustbpe and tiktoken, and a build (build-cpu/bin/nc-bench-tokenizer)."""
import argparse
import os
import subprocess
import sys
import tempfile
import time
import types

import tokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def tiktoken_speed(tok_dir, text, repeats=5):
    enc = tokenizer.load(tok_dir)
    data = text.encode()
    best, ids = 1e30, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ids = enc.encode_ordinary(text)
        best = min(best, time.perf_counter() - t0)
    return len(ids), len(data) / best / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", default=os.path.join(ROOT, "data", "tinyshakespeare.txt"))
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--tokenizer", help="a tokenizer folder (default: trained on --text)")
    ap.add_argument("--bench", default=os.path.join(ROOT, "build-cpu", "bin", "nc-bench-tokenizer"))
    a = ap.parse_args()
    os.environ.setdefault("RAYON_NUM_THREADS", "1")  # tiktoken's encode_ordinary is single-threaded anyway
    with tempfile.TemporaryDirectory() as tmp:
        tok_dir = a.tokenizer
        if not tok_dir:
            tok_dir = tmp
            tokenizer.train(types.SimpleNamespace(data=[a.text], vocab_size=a.vocab_size, out=tmp, doc_cap=None,
                                                  max_chars=2_000_000_000))
        out = subprocess.run([a.bench, os.path.join(tok_dir, "tokenizer.json"), a.text], capture_output=True,
                             text=True)
        if out.returncode:
            sys.exit(out.stderr.strip())
        ours_ids, ours_mbs = int(out.stdout.split()[0]), float(out.stdout.split(",")[1].split()[0])
        text = tokenizer.read_text(a.text)
        theirs_ids, theirs_mbs = tiktoken_speed(tok_dir, text)
    print(f"| encoder | ids | MB/s |\n|---|---|---|\n| nanochat-c (tokenizer/bpe.c) | {ours_ids:,} | {ours_mbs:.1f} |\n"
          f"| tiktoken {__import__('tiktoken').__version__} | {theirs_ids:,} | {theirs_mbs:.1f} |")
    if ours_ids != theirs_ids:
        sys.exit("the id counts differ")


if __name__ == "__main__":
    main()
