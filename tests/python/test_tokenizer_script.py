"""scripts/tokenizer.py: train writes the documented tokenizer.json (ids = ranks, the 9
special tokens after them, token_bytes), which loads back into tiktoken and round-trips text;
import-nanochat of an upstream folder (tokenizer.pkl, token_bytes.pt as a list here) writes
the same file; a vocabulary too small for the special tokens is refused."""
import base64
import json
import pickle
import types

import pytest

tokenizer = pytest.importorskip("tokenizer")
pytest.importorskip("rustbpe")
pytest.importorskip("tiktoken")

TEXT = "ROMEO:\nWherefore art thou Romeo? 你好, 世界! 👍🏽 don't 12345\r\n" * 50


def train(tmp_path, vocab=300):
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT, encoding="utf-8", newline="")
    out = tmp_path / "tok"
    tokenizer.train(types.SimpleNamespace(data=[str(data)], vocab_size=vocab, out=str(out), doc_cap=None,
                                          max_chars=2_000_000_000))
    return out


def test_train_writes_the_documented_file(tmp_path):
    out = train(tmp_path)
    doc = json.loads((out / "tokenizer.json").read_text())
    assert doc["format"] == "nanochat-bpe" and doc["version"] == 1
    ranks = [base64.b64decode(r) for r in doc["ranks"]]
    assert ranks[:256] == [bytes([b]) for b in range(256)]
    assert len(ranks) + len(doc["special"]) == 300
    assert [s["name"] for s in doc["special"]] == tokenizer.SPECIAL_TOKENS
    assert [s["id"] for s in doc["special"]] == list(range(len(ranks), 300))
    assert doc["token_bytes"] == [len(r) for r in ranks] + [0] * 9
    enc = tokenizer.load(str(out))
    ids = enc.encode_ordinary(TEXT)
    assert enc.decode(ids) == TEXT and len(ids) < len(TEXT.encode())  # merges happened


def test_import_of_an_upstream_folder_gives_the_same_file(tmp_path):
    out = train(tmp_path)
    enc = tokenizer.load(str(out))
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    with open(upstream / "tokenizer.pkl", "wb") as f:
        pickle.dump(enc, f)
    tokenizer.import_nanochat(types.SimpleNamespace(path=str(upstream), out=str(tmp_path / "imported")))
    assert (tmp_path / "imported" / "tokenizer.json").read_bytes() == (out / "tokenizer.json").read_bytes()


def test_a_vocabulary_too_small_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        train(tmp_path, vocab=256)
