#!/usr/bin/env python3
"""gen_bpe_fixtures.py [--out tests/fixtures/bpe]: the BPE tokenizer fixtures
the C encoder is tested against (tests/test_bpe.c).

Trains a 1,024-token tokenizer with scripts/tokenizer.py's train (rustbpe, as
upstream's tok_train) on the bundled corpus plus the stress texts below, so that
multi-byte merges exist for them too, and writes:

  tokenizer.json   the tokenizer (scripts/tokenizer.py's format)
  cases.json       [{"name", "bytes": base64 of the raw input, "ids": tiktoken's
                   encode_ordinary of it read as UTF-8 with errors="replace"}]

Not run in CI: the fixtures are committed. Needs rustbpe and tiktoken."""
import argparse
import base64
import json
import os
import types

import tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))

CASES = {
    "cjk": "你好世界，こんにちは世界。안녕하세요 세계! 漢字かなカナ混じり文",
    "emoji_zwj": "👨‍👩‍👧‍👦 family 🏳️‍🌈 flag 👍🏽👍🏿 thumbs 🇫🇷🇯🇵 ❤️‍🔥",
    "combining_marks": "e\u0301 cafe\u0301 n\u0303o Z\u0351\u0352\u0353a\u0354lgo \u0915\u094d\u0937 a\u20dd",
    "crlf": "line one\r\nline two\r\n\r\n  indented\r\n\rlone cr\n",
    "whitespace_runs": "a" + " " * 300 + "b\t\t\t\n\n\n   x \u00a0\u2003\u3000y\u0085z\u2028w \u200bv \u180eu  \n",
    "unicode_spaces": "go\u2003\u2003\u2003now\u3000\u3000then\u00a0\u00a0again\u2009\u2009x \u205f\u205fend \u1680a\u2029b\x0bc\x0cd\x1ce\u0085\u0085f",
    "digits": "1234567890 3.14159 2026-12-03 0000000 \u0661\u0662\u0663 \u2167\u00bd x\u00b2",
    "contractions": "I'm you're it's we'll they've DON'T 'S 'ſ 'K '\u212a 'Ve O'Neil's ''quoted''",
    "punctuation": "@#$%^&*()!!!??? ... --- ===> <|bos|> {\"a\": [1, 2]}\n\n;;;\r\n",
    "shakespeare": "ROMEO:\nWherefore art thou, Romeo? Deny thy father and refuse thy name;\n\nJULIET:\nO!",
    "empty": "",
}
# encoded, not trained on (training on it would make tokens of thousands of bytes)
UNTRAINED = {"long_piece": "thequickbrownfoxjumpsoverthelazydog" * 100}  # one piece of 3,500 letters: many merges
# raw bytes that are not UTF-8: read with errors="replace", each maximal invalid part becomes U+FFFD
INVALID = {
    "invalid_utf8": b"ok \xff\xfe bad \xe0\x80 seq \xed\xa0\x80 surrogate \xf4\x90\x80\x80 big "
                    b"\xc0\xaf overlong \xf0\x9f\x98 cut \xe2\x82\xacend\xc3",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "fixtures", "bpe"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    docs = [os.path.join(HERE, "..", "data", "tinyshakespeare.txt")]
    for name, text in CASES.items():  # the stress texts as documents too, repeated so they merge
        path = os.path.join(a.out, f".train_{name}.txt")
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write((text + "\n") * 400)
        docs.append(path)
    tokenizer.train(types.SimpleNamespace(data=docs, vocab_size=1024, out=a.out, doc_cap=None,
                                          max_chars=2_000_000_000))
    for p in docs[1:]:
        os.remove(p)
    enc = tokenizer.load(a.out)
    raw = {n: t.encode("utf-8") for n, t in (CASES | UNTRAINED).items()} | INVALID
    cases = [dict(name=n, bytes=base64.b64encode(b).decode(),
                  ids=enc.encode_ordinary(b.decode("utf-8", errors="replace"))) for n, b in raw.items()]
    with open(os.path.join(a.out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")
    print(f"{len(cases)} cases in {a.out}/cases.json")


if __name__ == "__main__":
    main()
