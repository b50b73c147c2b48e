"""bench_sample.py's own logic, without torch or a daemon: the report table and the
tokenizer stand-in upstream's Engine gets."""
import sys

import bench_sample as bs


def test_no_torch_imported():
    assert "torch" not in sys.modules


def test_the_table_has_medians_and_ratios():
    results = {"ours": {"1": [300.0, 330.0, 310.0], "8": [1000.0, 1100.0, 1050.0]},
               "upstream": {"1": [100.0, 110.0, 105.0], "8": [500.0, 600.0, 550.0]}}
    rows = bs.table(results, [1, 8]).splitlines()
    assert rows[2].startswith("| 1 | 310 | 105 | 2.95x |")
    assert rows[3].startswith("| 8 | 1,050 | 550 | 1.91x |")


def test_the_engine_sees_no_special_tokens():
    t = bs.NoSpecials()
    assert t.encode_special("<|assistant_end|>") == -1 and t.get_bos_token_id() == -1
