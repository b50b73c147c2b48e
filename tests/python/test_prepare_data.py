"""scripts/prepare_data.py: token shards as README "Token shards" documents them (the header:
magic, version, width, count, the tokenizer.json's SHA-256; uint16 ids), each document
<|bos|> then tiktoken's ids, the last input validating (a single text file cut 90/10 as
nanochatd cuts it), training shards capped at --shard-tokens; parquet rows are documents;
a folder that already holds shards is refused. The committed fixture tests/fixtures/shards
(which test_shards.c trains on) is what the script writes today."""
import hashlib
import os
import struct
import types

import pytest

prepare_data = pytest.importorskip("prepare_data")
tokenizer = pytest.importorskip("tokenizer")
pytest.importorskip("tiktoken")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOK = os.path.join(ROOT, "tests", "fixtures", "bpe")
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "shards")
CORPUS = "the cat sat on the mat; the dog ate the log.\n" * 60  # trainutil.h's corpus


def run(out, text=None, parquet=None, shard_tokens=100_000_000):
    prepare_data.prepare(types.SimpleNamespace(tokenizer=TOK, out=str(out), text=text, parquet=parquet,
                                               shard_tokens=shard_tokens))
    return sorted(p for p in os.listdir(out) if p.endswith(".tokens"))


def read_shard(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, version, width, count = data[:8], *struct.unpack("<IIQ", data[8:24])
    assert (magic, version, width) == (b"NCTOKENS", 1, 2)
    assert data[56:64] == b"\0" * 8 and len(data) == 64 + 2 * count
    return data[24:56], list(struct.unpack(f"<{count}H", data[64:]))


def all_ids(out, names):
    return [read_shard(os.path.join(out, n))[1] for n in names]


def test_the_committed_fixture_is_what_the_script_writes(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text(CORPUS)
    names = run(tmp_path / "out", text=[str(text)], shard_tokens=300)
    assert names == sorted(os.listdir(FIXTURE))
    for n in names:
        with open(tmp_path / "out" / n, "rb") as a, open(os.path.join(FIXTURE, n), "rb") as b:
            assert a.read() == b.read(), n


def test_a_text_file_is_one_document_split_as_nanochatd_splits_it(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text(CORPUS)
    out = tmp_path / "out"
    names = run(out, text=[str(text)], shard_tokens=400)
    enc = tokenizer.load(TOK)
    ids = [enc.encode_single_token("<|bos|>")] + enc.encode_ordinary(CORPUS)
    n_train = len(ids) * 9 // 10
    shards = all_ids(out, names)
    assert [len(s) for s in shards[:-1]] == [400, 400, n_train - 800]
    assert sum(shards[:-1], []) == ids[:n_train] and shards[-1] == ids[n_train:]
    with open(os.path.join(TOK, "tokenizer.json"), "rb") as f:
        digest = hashlib.sha256(f.read()).digest()
    assert all(read_shard(os.path.join(out, n))[0] == digest for n in names)


def test_the_last_file_validates_and_every_document_begins_with_bos(tmp_path):
    docs = ["ROMEO: wherefore art thou?\n", "你好, 世界! 👍🏽\r\n", "JULIET: the val document.\n"]
    paths = []
    for i, d in enumerate(docs):
        p = tmp_path / f"d{i}.txt"
        p.write_text(d, newline="")
        paths.append(str(p))
    out = tmp_path / "out"
    names = run(out, text=paths, shard_tokens=5)
    enc = tokenizer.load(TOK)
    bos = enc.encode_single_token("<|bos|>")
    shards = all_ids(out, names)
    want = [[bos] + enc.encode_ordinary(d) for d in docs]
    assert sum(shards[:-1], []) == want[0] + want[1] and shards[-1] == want[2]
    assert all(len(s) <= 5 for s in shards[:-1]) and len(shards) > 3


def test_parquet_rows_are_documents(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    files = []
    for i, rows in enumerate([["first doc", "second doc"], ["third"], ["val one", "val two"]]):
        p = tmp_path / f"shard_{i:05d}.parquet"
        pq.write_table(pa.table({"text": rows}), p)
        files.append(str(p))
    out = tmp_path / "out"
    names = run(out, parquet=files)
    enc = tokenizer.load(TOK)
    bos = enc.encode_single_token("<|bos|>")
    doc = lambda t: [bos] + enc.encode_ordinary(t)  # noqa: E731
    shards = all_ids(out, names)
    assert len(shards) == 2
    assert shards[0] == doc("first doc") + doc("second doc") + doc("third")
    assert shards[1] == doc("val one") + doc("val two")


def test_parquet_needs_a_validation_file_with_documents(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    train, empty = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"text": ["one doc"]}), train)
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), empty)
    with pytest.raises(SystemExit, match="at least two files"):
        run(tmp_path / "one", parquet=[str(train)])
    with pytest.raises(SystemExit, match="which validates, holds no documents"):
        run(tmp_path / "two", parquet=[str(train), str(empty)])


def test_more_shards_than_nanochatd_takes_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare_data, "MAX_SHARDS", 3)
    text = tmp_path / "corpus.txt"
    text.write_text(CORPUS)
    with pytest.raises(SystemExit, match="more than 3 shards"):
        run(tmp_path / "out", text=[str(text)], shard_tokens=100)


def test_a_folder_with_shards_is_refused(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text(CORPUS)
    run(tmp_path / "out", text=[str(text)])
    with pytest.raises(SystemExit, match="already holds token shards"):
        run(tmp_path / "out", text=[str(text)])
