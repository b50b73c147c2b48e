#!/usr/bin/env python3
"""prepare_data.py: text files or upstream nanochat's parquet shards, in token
shards nanochatd trains on (`ncctl train --tokenizer DIR --data OUT`).

  scripts/prepare_data.py --tokenizer DIR --out OUT (--text FILE... | --parquet FILE...)
                          [--shard-tokens N]

Upstream's way: every document is <|bos|> and then its tokens (tiktoken's
encode_ordinary with DIR/tokenizer.json); the last input validates, as
upstream's dataset keeps its last parquet file for validation:
  --text     each FILE is one document (UTF-8, errors="replace", as nanochatd
             reads text). With a single FILE, its first 90% of tokens train and
             the rest validate: the split nanochatd makes of a text file, so
             `--data FILE` and `--data OUT` train on the same tokens.
  --parquet  each row's "text" is a document (upstream's FineWeb-edu shards);
             needs pyarrow.
OUT gets shard_00000.tokens, shard_00001.tokens, ...: training shards of at
most --shard-tokens tokens (default 100,000,000), then one validation shard,
last in name order. The format (README "Token shards"; engine/store/shards.h):
a 64-byte header (magic NCTOKENS, version 1, bytes a token, count, the SHA-256
of tokenizer.json) and the ids, uint16 little-endian (uint32 for vocabularies
over 65,536). Each file is written whole under a temporary name, then renamed.
Memory stays at one document (or one parquet row group) whatever the data."""
import argparse
import array
import glob
import hashlib
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizer as tk  # noqa: E402  (scripts/tokenizer.py)

MAGIC, VERSION, HEADER = b"NCTOKENS", 1, 64
MAX_SHARDS = 256  # what nanochatd takes from a folder (engine/nc.h NC_MAX_SHARDS)


class ShardWriter:
    """Writes OUT/shard_NNNNN.tokens files, one after another."""

    def __init__(self, out_dir, digest, width, shard_tokens):
        self.out_dir, self.digest, self.width, self.cap = out_dir, digest, width, shard_tokens
        self.index, self.f, self.count, self.written = 0, None, 0, []

    def _open(self):
        if self.index >= MAX_SHARDS:
            sys.exit(f"more than {MAX_SHARDS} shards, what nanochatd takes from a folder: raise --shard-tokens")
        self.path = os.path.join(self.out_dir, f"shard_{self.index:05d}.tokens")
        self.f = open(self.path + ".tmp", "wb")
        self.f.write(b"\0" * HEADER)
        self.count = 0

    def close_shard(self):
        if self.f is None:
            return
        self.f.seek(0)
        self.f.write(MAGIC + struct.pack("<IIQ", VERSION, self.width, self.count) + self.digest + b"\0" * 8)
        self.f.close()
        os.replace(self.path + ".tmp", self.path)
        self.written.append((self.path, self.count))
        self.f, self.index = None, self.index + 1

    def write(self, ids, split=True):
        """Appends ids; split: a full shard is closed and the rest goes to the next."""
        while ids:
            if self.f is None:
                self._open()
            room = self.cap - self.count if split else len(ids)
            if room <= 0:
                self.close_shard()
                continue
            part, ids = ids[:room], ids[room:]
            a = array.array("H" if self.width == 2 else "I", part)
            if sys.byteorder == "big":
                a.byteswap()  # little-endian, as the format says
            self.f.write(a.tobytes())
            self.count += len(part)


def text_documents(paths):
    for p in paths:
        yield p, tk.read_text(p)


def parquet_documents(path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        sys.exit("--parquet needs pyarrow (pip install pyarrow)")
    pf = pq.ParquetFile(path)
    for g in range(pf.num_row_groups):
        for text in pf.read_row_group(g, columns=["text"]).column("text").to_pylist():
            yield path, text


def prepare(a):
    tok_json = os.path.join(a.tokenizer, "tokenizer.json")
    with open(tok_json, "rb") as f:
        digest = hashlib.sha256(f.read()).digest()
    enc = tk.load(a.tokenizer)
    bos = enc.encode_single_token("<|bos|>")
    width = 2 if enc.n_vocab <= 65536 else 4
    os.makedirs(a.out, exist_ok=True)
    if glob.glob(os.path.join(a.out, "*.tokens")):
        sys.exit(f"{a.out} already holds token shards; name an empty folder")
    inputs = a.text or a.parquet
    if a.parquet and len(inputs) < 2:
        sys.exit("--parquet takes at least two files: the last validates")
    docs = text_documents if a.text else (lambda ps: (d for p in ps for d in parquet_documents(p)))
    w = ShardWriter(a.out, digest, width, a.shard_tokens)
    if len(inputs) == 1 and a.text:  # one text file: nanochatd's 90/10 split of its tokens
        ids = [bos] + enc.encode_ordinary(tk.read_text(inputs[0]))
        n_train = len(ids) * 9 // 10
        w.write(ids[:n_train])
        w.close_shard()
        w.write(ids[n_train:], split=False)
    else:
        for _, text in docs(inputs[:-1]):
            w.write([bos] + enc.encode_ordinary(text))
        w.close_shard()
        for _, text in docs(inputs[-1:]):
            w.write([bos] + enc.encode_ordinary(text), split=False)
        if w.f is None:
            sys.exit(f"the last input, {inputs[-1]}, which validates, holds no documents")
    w.close_shard()
    for path, count in w.written:
        print(f"{path}: {count} tokens")
    n_val = w.written[-1][1]
    print(f"{len(w.written) - 1} training shard(s), {sum(c for _, c in w.written) - n_val} tokens; "
          f"validation {n_val} tokens; tokenizer sha256 {digest.hex()[:16]}...")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokenizer", required=True, help="folder with tokenizer.json (scripts/tokenizer.py)")
    p.add_argument("--out", required=True, help="folder for the shards (created; must hold none yet)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--text", nargs="+", help="UTF-8 text files, one document each")
    g.add_argument("--parquet", nargs="+", help="parquet files with a text column (upstream's shards)")
    p.add_argument("--shard-tokens", type=int, default=100_000_000, help="tokens a training shard at most")
    a = p.parse_args()
    if a.shard_tokens < 1:
        sys.exit("--shard-tokens must be positive")
    prepare(a)


if __name__ == "__main__":
    main()
