#!/usr/bin/env python3
"""tokenizer.py: byte-level BPE tokenizers as upstream nanochat makes them, in
the one file nanochatd reads (DIR/tokenizer.json).

  scripts/tokenizer.py train --data FILE... --vocab-size N --out DIR [--doc-cap C] [--max-chars M]
      trains with rustbpe exactly as upstream's scripts/tok_train.py does
      (RustBPETokenizer.train_from_iterator at the pinned commit): the same split
      pattern, vocab_size - 9 merges' worth of mergeable ranks (ids 0..), then the
      9 special tokens after them in upstream's order. Each FILE is one document;
      --doc-cap keeps the first C characters of each (upstream caps its parquet
      documents at 10,000: pass --doc-cap 10000 for that; default: whole files),
      and training stops after the document that passes --max-chars, as
      tok_train's iterator.
  scripts/tokenizer.py import-nanochat PATH --out DIR
      PATH: an upstream tokenizer folder (tokenizer.pkl, and token_bytes.pt
      when present, as tok_train writes them under NANOCHAT_BASE_DIR/tokenizer).
  scripts/tokenizer.py encode DIR (--text STR | --file FILE)
      tiktoken's encode_ordinary of the text with DIR's tokenizer, one id a line.

DIR/tokenizer.json (format "nanochat-bpe", version 1):
  pattern      the split regex (tiktoken's pat_str)
  ranks        the mergeable tokens' bytes, base64, in rank order: token id i is
               ranks[i] (upstream's ids are the ranks)
  special      [{"name", "id"}, ...]: the special tokens, ids after the ranks
  token_bytes  (vocab) bytes each id decodes to, 0 for special tokens: the
               denominator of bits per byte, as upstream's token_bytes.pt
Text files are read as UTF-8 with errors="replace" (an invalid sequence becomes
U+FFFD, as nanochatd does). Needs rustbpe and tiktoken (pip)."""
import argparse
import base64
import json
import os
import pickle
import sys

# upstream nanochat/tokenizer.py at the pinned commit (data: the split pattern and the special tokens)
SPLIT_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|"""
                 r"""\s*[\r\n]|\s+(?!\S)|\s+""")
SPECIAL_TOKENS = ["<|bos|>", "<|user_start|>", "<|user_end|>", "<|assistant_start|>", "<|assistant_end|>",
                  "<|python_start|>", "<|python_end|>", "<|output_start|>", "<|output_end|>"]
FORMAT, VERSION = "nanochat-bpe", 1


def read_text(path):
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        return f.read()


def documents(paths, doc_cap, max_chars):
    """upstream tok_train's text_iterator over files: each capped, stop after max_chars."""
    seen = 0
    for p in paths:
        doc = read_text(p)[:doc_cap]
        seen += len(doc)
        yield doc
        if seen > max_chars:
            return


def encoding(pattern, ranks, special):
    import tiktoken
    return tiktoken.Encoding(name="nanochat-bpe", pat_str=pattern, mergeable_ranks=ranks, special_tokens=special)


def save(out_dir, pattern, ranks, special, token_bytes=None):
    """ranks: {bytes: id}, special: {name: id}; token_bytes computed when not given."""
    order = sorted(ranks.items(), key=lambda kv: kv[1])
    if [r for _, r in order] != list(range(len(order))):
        sys.exit("the mergeable ranks are not the ids 0..n-1")
    vocab = len(order) + len(special)
    if sorted(special.values()) != list(range(len(order), vocab)):
        sys.exit("the special tokens do not follow the mergeable ranks")
    if token_bytes is None:
        token_bytes = [len(b) for b, _ in order] + [0] * len(special)
    if len(token_bytes) != vocab:
        sys.exit(f"token_bytes has {len(token_bytes)} entries for a vocabulary of {vocab}")
    doc = dict(format=FORMAT, version=VERSION, pattern=pattern,
               ranks=[base64.b64encode(b).decode() for b, _ in order],
               special=[dict(name=n, id=i) for n, i in sorted(special.items(), key=lambda kv: kv[1])],
               token_bytes=[int(n) for n in token_bytes])
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "tokenizer.json")
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"{path}: vocabulary {vocab} ({len(order)} mergeable, {len(special)} special)")


def load(tok_dir):
    with open(os.path.join(tok_dir, "tokenizer.json")) as f:
        doc = json.load(f)
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        sys.exit(f"{tok_dir}: not a {FORMAT} version {VERSION} tokenizer")
    ranks = {base64.b64decode(s): i for i, s in enumerate(doc["ranks"])}
    return encoding(doc["pattern"], ranks, {s["name"]: s["id"] for s in doc["special"]})


def train(a):
    import rustbpe
    merges = a.vocab_size - len(SPECIAL_TOKENS)
    if merges < 256:
        sys.exit(f"--vocab-size must be at least {256 + len(SPECIAL_TOKENS)}")
    tok = rustbpe.Tokenizer()
    tok.train_from_iterator(documents(a.data, a.doc_cap, a.max_chars), merges, pattern=SPLIT_PATTERN)
    ranks = {bytes(k): v for k, v in tok.get_mergeable_ranks()}
    special = {name: len(ranks) + i for i, name in enumerate(SPECIAL_TOKENS)}
    save(a.out, tok.get_pattern(), ranks, special)


def import_nanochat(a):
    with open(os.path.join(a.path, "tokenizer.pkl"), "rb") as f:
        enc = pickle.load(f)
    token_bytes = None
    tb = os.path.join(a.path, "token_bytes.pt")
    if os.path.exists(tb):
        import torch
        token_bytes = torch.load(tb, map_location="cpu").tolist()
    save(a.out, enc._pat_str, enc._mergeable_ranks, enc._special_tokens, token_bytes)


def encode(a):
    text = a.text if a.text is not None else read_text(a.file)
    print("\n".join(map(str, load(a.dir).encode_ordinary(text))))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train with rustbpe as upstream's tok_train")
    t.add_argument("--data", nargs="+", required=True, help="UTF-8 text files, one document each")
    t.add_argument("--vocab-size", type=int, required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--doc-cap", type=int, default=None, help="characters kept of each document (default: all)")
    t.add_argument("--max-chars", type=int, default=2_000_000_000, help="stop after this many (upstream's)")
    i = sub.add_parser("import-nanochat", help="convert an upstream tokenizer folder")
    i.add_argument("path")
    i.add_argument("--out", required=True)
    e = sub.add_parser("encode", help="tiktoken's encode_ordinary with DIR's tokenizer")
    e.add_argument("dir")
    g = e.add_mutually_exclusive_group(required=True)
    g.add_argument("--text")
    g.add_argument("--file")
    a = p.parse_args()
    {"train": train, "import-nanochat": import_nanochat, "encode": encode}[a.command](a)


if __name__ == "__main__":
    main()
