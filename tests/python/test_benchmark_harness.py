"""The benchmark harness's own logic, without torch: configs, recipe, upstream ref checks,
verdicts and report writing from canned inputs."""
import copy
import json
import math
import os
import subprocess
import sys

import pytest

import benchmark_karpathy as bk
import upstream_runner as ur


def test_no_torch_imported():
    assert "torch" not in sys.modules


# ---- configs and recipe ------------------------------------------------------------------

def test_named_configs_match_the_issue():
    got = {c["name"]: c for c in bk.resolve_configs(["d6", "d12", "d20", "cpu"], "cuda")}
    assert (got["d6"]["depth"], got["d6"]["seq_len"], got["d6"]["batch_size"]) == (6, 256, 64)
    assert (got["d12"]["depth"], got["d12"]["seq_len"], got["d12"]["batch_size"]) == (12, 1024, 32)
    assert (got["d20"]["depth"], got["d20"]["seq_len"], got["d20"]["batch_size"]) == (20, 2048, 16)
    for n in ("d6", "d12", "d20"):
        assert got[n]["head_dim"] == 128 and got[n]["window_pattern"] == "L"
    assert got["cpu"]["head_dim"] == 64
    assert (got["d6"]["n_embd"], got["d6"]["n_head"]) == (384, 3)
    assert (got["d20"]["n_embd"], got["d20"]["n_head"]) == (1280, 10)
    assert got["d6"]["steps"] == 400 and got["d6"]["eval_every"] == 50
    assert got["d6"]["eval_windows"] == 20 * 64


def test_default_configs_follow_device():
    assert [c["name"] for c in bk.resolve_configs(None, "cuda")] == ["d6", "d12", "d20"]
    assert [c["name"] for c in bk.resolve_configs(None, "cpu")] == ["cpu"]
    assert [c["name"] for c in bk.resolve_configs(["d6,d12"], "cuda")] == ["d6", "d12"]


def test_lrs_scaled_by_sqrt_batch_tokens():
    c = bk.resolve_configs(["d6"], "cuda")[0]
    s = math.sqrt(64 * 256 / 2 ** 19)
    assert c["lr_scale"] == pytest.approx(s)
    assert c["lrs"] == pytest.approx({"embedding_lr": 0.3 * s, "unembedding_lr": 0.008 * s,
                                      "matrix_lr": 0.02 * s, "scalar_lr": 0.5 * s,
                                      "weight_decay": 0.28 * s})
    assert (c["warmup_steps"], c["warmdown_ratio"], c["final_lr_frac"]) == (40, 0.65, 0.05)


def test_overrides_quick_steps_and_custom():
    c = bk.resolve_configs(["d12"], "cuda", steps=7)[0]
    assert c["steps"] == 7 and c["eval_every"] == 7  # eval_every > steps: final eval only
    q = bk.resolve_configs(["d6"], "cuda", quick=True)[0]
    assert q["steps"] == bk.CONFIGS["d6"]["quick_steps"]
    cu = bk.resolve_configs(None, "cuda", overrides={"depth": 8, "seq_len": 512, "batch_size": 8})
    assert len(cu) == 1 and cu[0]["name"] == "custom-d8-T512-B8" and cu[0]["n_embd"] == 512
    ov = bk.resolve_configs(["d6"], "cuda", overrides={"seq_len": 128})[0]
    assert ov["name"] == "d6-custom" and ov["seq_len"] == 128 and ov["lr_scale"] == pytest.approx(
        math.sqrt(64 * 128 / 2 ** 19))


def test_bad_configs_are_refused():
    with pytest.raises(bk.HarnessError, match="unknown config"):
        bk.resolve_configs(["d7"], "cuda")
    with pytest.raises(bk.HarnessError, match="positive"):
        bk.resolve_configs(["d6"], "cuda", steps=0)
    with pytest.raises(bk.HarnessError, match="at least 2"):
        bk.resolve_configs(["d6"], "cuda", eval_windows=1)
    with pytest.raises(bk.HarnessError, match="twice"):
        bk.resolve_configs(["d6", "d6"], "cuda")


def test_cross_check_selection():
    auto = {c["name"]: c["cross_check"] for c in bk.resolve_configs(["cpu", "d6", "d20"], "cuda")}
    assert auto == {"cpu": True, "d6": True, "d20": False}
    assert all(c["cross_check"] for c in bk.resolve_configs(["d20"], "cuda", cross_check="all"))
    assert not any(c["cross_check"] for c in bk.resolve_configs(["d6"], "cuda", cross_check="none"))


def test_flops_per_token_matches_upstream_estimate_flops():
    # values printed by upstream GPT.estimate_flops() at 92d63d4 for these shapes (vocab 65)
    want = {"cpu": 22217424, "d6": 71074584, "d12": 623446704, "d20": 2989431984}
    for c in bk.resolve_configs(list(want), "cuda"):
        got = bk.estimate_flops_per_token(c["depth"], c["n_embd"], c["n_head"], c["seq_len"], 65)
        assert got == want[c["name"]]


def test_our_train_args_carry_the_recipe():
    c = bk.resolve_configs(["d6"], "cuda")[0]
    a = bk.our_train_args(c, "run-1")
    assert a["batch_scaling"] == "none" and a["matrix_lr"] == pytest.approx(c["lrs"]["matrix_lr"])
    assert (a["mode"], a["model_kind"], a["window_pattern"]) == ("tensor", "gpt", "L")
    assert a["eval_windows"] == c["eval_windows"] and a["run_id"] == "run-1"
    assert bk.our_train_args(c, "w", steps=12, eval_every=0)["steps"] == 12


def test_device_decision(monkeypatch):
    args = bk.parse_args(["--baseline", "nanochat"])
    with pytest.raises(bk.HarnessError, match="no-require-gpu"):
        bk.decide_device(args, None)
    assert bk.decide_device(args, {"name": "NVIDIA H100"}) == "cuda"
    args = bk.parse_args(["--baseline", "nanochat", "--no-require-gpu"])
    assert bk.decide_device(args, None) == "cpu"
    assert bk.decide_device(args, {"name": "NVIDIA H100"}) == "cuda"


# ---- shared definitions ----------------------------------------------------------------

def test_schedules():
    assert ur.lr_multiplier(0, 400, 40, 0.65, 0.05) == pytest.approx(1 / 40)
    assert ur.lr_multiplier(100, 400, 40, 0.65, 0.05) == 1.0
    assert ur.lr_multiplier(400, 400, 40, 0.65, 0.05) == pytest.approx(0.05)
    assert ur.muon_momentum(0, 400, 0.65) == pytest.approx(0.85)
    assert ur.muon_momentum(200, 1000, 0.65) == pytest.approx(0.91)
    assert ur.muon_momentum(500, 2000, 0.65) == pytest.approx(0.97)
    assert ur.muon_momentum(500, 1000, 0.65) == pytest.approx(0.97 - 0.07 * 150 / 650)
    assert ur.muon_momentum(1000, 1000, 0.65) == pytest.approx(0.90)
    assert ur.weight_decay_at(0, 100, 0.2) == pytest.approx(0.2)
    assert ur.weight_decay_at(50, 100, 0.2) == pytest.approx(0.1)


def test_eval_windows_and_corpus(tmp_path):
    starts = ur.eval_window_starts(1000, 10, 5)
    assert starts == [0, 247, 494, 741, 989] and starts[-1] + 11 == 1000
    with pytest.raises(ValueError):
        ur.eval_window_starts(1000, 10, 1)
    p = tmp_path / "t.txt"
    p.write_text("héllo wörld\n" * 10, encoding="utf-8")
    c = ur.load_corpus(str(p))
    chars = sorted(set("héllo wörld\n"))
    assert c["vocab_size"] == len(chars) and c["encode"]("hé") == [chars.index("h"), chars.index("é")]
    assert c["decode"](c["encode"]("wörld")) == "wörld"
    assert c["n_train"] == c["n"] * 9 // 10 and len(c["val"]) == c["n"] - c["n_train"]
    assert c["token_bytes"][chars.index("é")] == 2 and c["token_bytes"][chars.index("h")] == 1


def test_load_corpus_with_a_bpe_is_one_document_as_nanochatd_reads_it(tmp_path):
    pytest.importorskip("tiktoken")
    tok = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "bpe")
    p = tmp_path / "t.txt"
    p.write_text("the cat sat on the mat.\n" * 40, encoding="utf-8")
    c = ur.load_corpus(str(p), tok)
    assert c["vocab_size"] == 1024 and c["ids"][0] == c["vocab_size"] - 9  # <|bos|>, the first special
    assert c["decode"](c["ids"][1:]) == "the cat sat on the mat.\n" * 40
    assert c["token_bytes"][c["ids"][0]] == 0 and c["n_train"] == c["n"] * 9 // 10


def test_upstreams_batches_are_nanochatds():
    # tests/test_repro.c holds nanochatd's core/rng.c to the same numbers
    s = ur.DataStream(1337)
    assert [s.below(1000003) for _ in range(5)] == [609995, 246683, 772966, 897073, 444103]


def test_throughput_skips_first_ten_steps():
    dts = [5.0] * 10 + [0.5, 1.0, 1.0, 2.0]
    t = ur.throughput(dts, 1000)
    assert t["timed_steps"] == 4
    assert t["tok_per_s_mean"] == pytest.approx(4000 / 4.5)
    assert t["tok_per_s_median"] == pytest.approx(1000.0)


# ---- upstream checkout -------------------------------------------------------------------

def _git(*a, cwd=None):
    return subprocess.run(["git", *a], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def fake_upstream(tmp_path):
    """A two-commit git repo shaped like a nanochat checkout; returns (dir, sha1, sha2)."""
    d = tmp_path / "nanochat-up"
    (d / "nanochat").mkdir(parents=True)
    env = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    _git("init", "-q", str(d))
    (d / "nanochat" / "gpt.py").write_text("# v1\n")
    _git("add", "-A", cwd=d)
    _git(*env, "commit", "-qm", "one", cwd=d)
    sha1 = _git("rev-parse", "HEAD", cwd=d)
    (d / "nanochat" / "gpt.py").write_text("# v2\n")
    _git(*env, "commit", "-qam", "two", cwd=d)
    sha2 = _git("rev-parse", "HEAD", cwd=d)
    return str(d), sha1, sha2


def test_checkout_at_ref_is_accepted_and_other_commit_refused(fake_upstream):
    d, sha1, sha2 = fake_upstream
    assert bk.check_checkout(d, sha2) == sha2
    assert bk.check_checkout(d, sha2[:10]) == sha2  # short SHAs resolve
    with pytest.raises(bk.HarnessError) as ei:
        bk.check_checkout(d, sha1)
    assert sha1 in str(ei.value) and sha2 in str(ei.value)  # names both commits
    with pytest.raises(bk.HarnessError) as ei:
        bk.check_checkout(d, bk.PINNED_REF)
    assert bk.PINNED_REF in str(ei.value) and sha2 in str(ei.value)


def test_dirty_or_non_git_checkout_refused(fake_upstream, tmp_path):
    d, _, sha2 = fake_upstream
    with open(os.path.join(d, "nanochat", "gpt.py"), "a") as f:
        f.write("# local edit\n")
    with pytest.raises(bk.HarnessError, match="local changes"):
        bk.check_checkout(d, sha2)
    assert bk.check_checkout(d, sha2, allow_dirty=True) == sha2
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(bk.HarnessError, match="not a git checkout"):
        bk.check_checkout(str(plain), sha2)


def test_clone_checks_out_exactly_the_ref(fake_upstream, tmp_path):
    src, sha1, sha2 = fake_upstream
    dest = str(tmp_path / "clone")
    bk.clone_checkout(src, dest, sha1)
    assert bk.check_checkout(dest, sha1) == sha1
    bk.clone_checkout(src, dest, sha2)  # reuse the clone, move to another ref
    assert bk.check_checkout(dest, sha2) == sha2
    with pytest.raises(bk.HarnessError):
        bk.clone_checkout(src, str(tmp_path / "c2"), "0" * 40)


# ---- verdicts and the report -------------------------------------------------------------

def _side(final, tps_dt, evals_every=50, steps=400, start=4.0):
    step_log = [{"step": i, "loss": start - i * 0.005, "dt": tps_dt} for i in range(1, steps + 1)]
    evals = [{"step": s, "val_loss": final + (steps - s) * 0.002, "bpb": (final + (steps - s) * 0.002)
              / math.log(2)} for s in range(evals_every, steps + 1, evals_every)]
    return {"step_log": step_log, "evals": evals, "time_to_first_step_s": 2.0,
            "peak_host_rss_bytes": 1 << 30, "sample": {"prompt": "ROMEO:", "text": "ROMEO: hi"}}


def _doc(ours, upstream, device="cuda"):
    cfgs = bk.resolve_configs(["d6"], device)
    doc = {"timestamp_utc": "20260101T000000Z", "command": "x", "device": device,
           "vocab_size": 65,
           "upstream": {"commit": bk.PINNED_REF, "source": "checkout /up"},
           "environment": {"gpu": {"name": "NVIDIA H200", "driver": "580"}, "peak_flops": 989e12,
                           "torch": "2.11.0", "upstream_attention": "SDPA",
                           "upstream_compute_dtype": "bfloat16", "upstream_compile": True},
           "configs": cfgs,
           "results": {"d6": {"ours": ours, "upstream": upstream,
                              "cross_check": bk.cross_check_verdict(1.60001, 1.6)}}}
    return bk.assemble(doc)


def test_fr009_pass_within_tolerance_and_fail_outside():
    doc = _doc(_side(1.62, 0.010), _side(1.60, 0.014))
    v = doc["verdict"]["per_config"]["d6"]
    assert v["status"] == "pass" and v["within_tolerance"]
    assert v["speed_ratio"] == pytest.approx(1.4)
    assert doc["verdict"]["overall"] == "pass"
    doc = _doc(_side(1.80, 0.014), _side(1.60, 0.010))
    assert doc["verdict"]["per_config"]["d6"]["status"] == "fail"
    assert doc["verdict"]["overall"] == "fail"


def test_fr009_faster_at_matched_loss_passes():
    ours = _side(1.50, 0.001)
    ours["evals"][-1]["val_loss"] = 1.70  # ends worse (overfit) but crossed 1.60 early
    ours["evals"][2]["val_loss"] = 1.55
    v = _doc(ours, _side(1.60, 0.010))["verdict"]["per_config"]["d6"]
    assert not v["within_tolerance"] and v["faster_at_matched_loss"] and v["status"] == "pass"


def test_fr009_incomplete_without_our_side():
    doc = _doc({"error": "nanochatd not found"}, _side(1.6, 0.01))
    assert doc["verdict"]["per_config"]["d6"]["status"] == "incomplete"
    assert doc["verdict"]["overall"] == "incomplete"


def test_summary_mfu_and_throughput():
    doc = _doc(_side(1.6, 0.010), _side(1.6, 0.020))
    s = doc["results"]["d6"]["summary"]
    assert s["ours"]["tok_per_s_mean"] == pytest.approx(64 * 256 / 0.010)
    assert s["ours"]["mfu"] == pytest.approx(71074584 * 64 * 256 / 0.010 / 989e12)
    assert s["upstream"]["final_val_loss"] == pytest.approx(1.6)


def test_cross_check_tolerance():
    assert bk.cross_check_verdict(1.60001, 1.6)["status"] == "pass"
    assert bk.cross_check_verdict(1.601, 1.6)["status"] == "fail"


def test_report_files_from_canned_inputs(tmp_path):
    pytest.importorskip("matplotlib")
    doc = _doc(_side(1.59, 0.010), _side(1.60, 0.014))
    paths = bk.write_outputs(doc, str(tmp_path), "20260101T000000Z", plot=True)
    assert set(paths) == {"json", "md", "png"}
    assert os.path.basename(paths["json"]) == "benchmark_karpathy_20260101T000000Z.json"
    loaded = json.load(open(paths["json"]))
    assert loaded["verdict"]["overall"] == "pass"
    md = open(paths["md"]).read()
    assert "| tok/s (mean, steps 11..N) (higher is better) | 1.638 M | 1.170 M | 1.400 |" in md
    assert "**d6: PASS**" in md and "Cross-check (PASS)" in md
    assert "anchors" in md and "ROMEO: hi" in md and "CPU RESULTS" not in md
    assert open(paths["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_partial_report_after_each_config(tmp_path):
    doc = _doc(_side(1.59, 0.010), _side(1.60, 0.014))
    doc["configs"] = bk.resolve_configs(["d6", "d12"], "cuda")
    doc["environment"]["daemon"] = "build/bin/nanochatd"
    gpu = doc["environment"]["gpu"]
    bk.write_partial(doc, ["d12"], str(tmp_path), "20260101T000000Z", gpu, None)
    base = tmp_path / "benchmark_karpathy_20260101T000000Z"
    loaded = json.load(open(f"{base}.json"))
    assert loaded["partial"] == {"pending": ["d12"]}
    assert list(loaded["results"]) == ["d6"] and loaded["verdict"]["per_config"]["d6"]["status"] == "pass"
    md = open(f"{base}.md").read()
    assert "PARTIAL REPORT" in md and "d12" in md.split("PARTIAL REPORT")[1].split("\n")[0]
    assert not os.path.exists(f"{base}.png")
    assert "partial" not in doc and len(doc["configs"]) == 2  # the run's document keeps every config


def test_report_rewritten_after_each_side_and_kept_when_appended_to(tmp_path, monkeypatch):
    """A run killed in our side keeps upstream's, marked partial; a run appended to that
    report keeps it marked so."""
    def killed(cfg, ctx, rec):
        raise KeyboardInterrupt  # what the run's kill stands for: nothing after it runs

    monkeypatch.setattr(bk, "nvidia_smi", lambda: {"name": "NVIDIA H200", "driver": "580"})
    monkeypatch.setattr(bk, "resolve_upstream", lambda a: ("/up", bk.PINNED_REF, "checkout"))
    monkeypatch.setattr(bk, "run_upstream", lambda cfg, ctx: _side(1.60, 0.014))
    monkeypatch.setattr(bk, "run_ours", killed)
    monkeypatch.setattr(bk, "export_init", lambda cfg, ctx: None)
    argv = ["--baseline", "nanochat", "--out", str(tmp_path), "--no-plot", "--config"]
    with pytest.raises(KeyboardInterrupt):
        bk.main(argv + ["d6"])
    [report] = [str(p) for p in tmp_path.glob("benchmark_karpathy_*.json")]
    doc = json.load(open(report))
    assert doc["partial"] == {"pending": ["d6: ours", "d6: cross-check"]}
    assert doc["results"]["d6"]["summary"]["upstream"]["final_val_loss"] == pytest.approx(1.6)
    assert "ours" not in doc["results"]["d6"]
    assert "not run (yet, or the run was cut short): d6: ours, d6: cross-check" in \
        open(report[:-5] + ".md").read()
    monkeypatch.setattr(bk, "run_ours",
                        lambda cfg, ctx, rec: rec.update(_side(2.0, 0.05, 40, 80)))
    monkeypatch.setattr(bk, "_run_runner", lambda *a: None)  # the probe: no torch facts
    assert bk.main(argv + ["d12", "--sides", "ours", "--append-to", report]) == 0
    doc = json.load(open(report))
    assert [c["name"] for c in doc["configs"]] == ["d6", "d12"]
    assert doc["partial"] == {"pending": ["d6: ours", "d6: cross-check"]}
    assert doc["results"]["d12"]["summary"]["ours"]["final_val_loss"] == pytest.approx(2.0)


def test_parser_refuses_unknown_and_abbreviated_flags(capsys):
    for flag in ("--upstream-figure", "--no-such-flag"):
        with pytest.raises(SystemExit):
            bk.parse_args(["--baseline", "nanochat", flag, "x"])
        assert "unrecognized arguments" in capsys.readouterr().err


def test_cpu_report_is_labelled(tmp_path):
    d = _doc(_side(1.59, 0.010), _side(1.60, 0.014), device="cpu")
    md = bk.render_markdown(copy.deepcopy(d))
    assert "CPU RESULTS" in md and "(CPU run)" in md


def test_our_field_names_live_in_one_table():
    assert bk.pick({"tok_per_s": 5.0}, "tok_per_s") == 5.0
    assert bk.pick({"step_ms": 2.5}, "step_ms") == 2.5
    assert bk.pick({"val_loss": None}, "val_loss", 3) == 3
    assert bk.pick({}, "val_loss", 3) == 3


# ---- upstream's committed figures and reports added to --------------------------------------

FIGURES = os.path.join(bk.REPO_ROOT, "results", "h200_upstream_only")
H200_RUN1 = "results/h200_upstream_only/benchmark_karpathy_20261126T051949Z.json"


def test_card_kind():
    assert bk.card_kind("NVIDIA H200") == "H200"
    assert bk.card_kind("NVIDIA H100 80GB HBM3") == "H100"
    assert bk.card_kind("NVIDIA GH200 480GB") == "GH200"
    assert bk.card_kind("CPU") == "CPU" and bk.card_kind(None) is None


def test_committed_figures_found_by_config_and_shape():
    reports = bk.load_reports(FIGURES)
    h200 = {"name": "NVIDIA H200"}
    d12 = bk.resolve_configs(["d12"], "cuda")[0]
    rec, meta = bk.committed_upstream(d12, reports, h200, bk.PINNED_REF)
    assert rec["tok_per_s_mean"] == pytest.approx(621789.4, rel=1e-6)
    assert meta["file"] == H200_RUN1 and meta["card_match"] and meta["differs"] == {}
    d6 = bk.resolve_configs(["d6"], "cuda")[0]  # two reports ran d6: the newer one
    assert bk.committed_upstream(d6, reports, h200)[1]["file"].endswith("052845Z.json")
    quick = bk.resolve_configs(["d20"], "cuda", quick=True)[0]
    _, meta = bk.committed_upstream(quick, reports, h200)
    assert meta["differs"]["steps"] == [60, quick["steps"]] and "eval_windows" in meta["differs"]
    other = bk.resolve_configs(["d12"], "cuda", overrides={"batch_size": 8})[0]
    rec, meta = bk.committed_upstream(other, reports, h200)  # another shape: not comparable
    assert rec is None and meta["file"] is None and "d12-custom" in meta["reason"]


def _ours_with_figures(gpu_name, cfg_name="d12"):
    cfg = bk.resolve_configs([cfg_name], "cuda")[0]
    rec, meta = bk.committed_upstream(cfg, bk.load_reports(FIGURES), {"name": gpu_name})
    ours = _side(1.90, 0.050, evals_every=40, steps=cfg["steps"])
    doc = _doc(ours, rec)
    doc["environment"]["gpu"]["name"] = gpu_name
    doc["configs"] = [cfg]
    doc["results"] = {cfg_name: {"ours": ours, "upstream": rec, "upstream_figures": meta,
                                 "cross_check": {"status": "skipped", "reason": "--sides ours"}}}
    return bk.assemble(doc)


def test_report_marks_committed_figures():
    doc = _ours_with_figures("NVIDIA H200")
    v = doc["verdict"]["per_config"]["d12"]
    marker = f"upstream figures from {H200_RUN1}, not run side by side"
    assert v["status"] == "pass" and marker in v["reason"] and "CARD MISMATCH" not in v["reason"]
    s = doc["results"]["d12"]["summary"]["upstream"]
    assert s["tok_per_s_mean"] == pytest.approx(621789.4, rel=1e-6)
    assert s["mfu"] == pytest.approx(0.39196, rel=1e-3)  # the committed card's peak
    md = bk.render_markdown(doc)
    assert f"> {marker}." in md and "| upstream (committed figures) |" in md
    assert bk.torch_facts(doc) is None  # the committed run's torch is another machine's


def test_committed_figures_from_another_card_say_so():
    doc = _ours_with_figures("NVIDIA H100 80GB HBM3")
    md = bk.render_markdown(doc)
    assert "CARD MISMATCH: this run's card is NVIDIA H100 80GB HBM3 (H100), the figures' " \
           "NVIDIA H200 (H200)" in md


def test_committed_figures_with_another_recipe_give_no_loss_verdict():
    cfg = bk.resolve_configs(["d12"], "cuda", quick=True)[0]
    rec, meta = bk.committed_upstream(cfg, bk.load_reports(FIGURES), {"name": "NVIDIA H200"})
    v = bk.mark_committed({"status": "pass", "reason": "x"}, meta)
    assert v["status"] == "incomplete" and "steps (80 there, 30 here)" in v["reason"]


def test_upstream_figures_need_sides_ours(capsys):
    rc = bk.main(["--baseline", "nanochat", "--no-require-gpu", "--upstream-figures", FIGURES])
    assert rc == 2 and "--sides ours" in capsys.readouterr().err


def test_append_to_keeps_the_prior_configs(tmp_path):
    prior = _doc(_side(1.59, 0.010), _side(1.60, 0.014))
    prior["environment"]["daemon"] = "d"
    prior["sides"] = "both"
    bk.write_outputs(prior, str(tmp_path), prior["timestamp_utc"], plot=False)
    loaded = bk.load_prior(str(tmp_path / "benchmark_karpathy_20260101T000000Z.json"), "cuda")
    with pytest.raises(bk.HarnessError, match="ran on cuda"):
        bk.load_prior(str(tmp_path / "benchmark_karpathy_20260101T000000Z.json"), "cpu")
    d12 = bk.resolve_configs(["d12"], "cuda")[0]
    doc = dict(_doc(None, None), timestamp_utc="20260101T000500Z", command="y", sides="ours",
               configs=[d12], results={})
    kept = bk.append_to_prior(doc, loaded, [d12])
    assert [c["name"] for c in kept] == ["d6"]
    assert [c["name"] for c in doc["configs"]] == ["d6", "d12"]
    assert doc["timestamp_utc"] == "20260101T000000Z" and doc["sides"] == "mixed"
    assert doc["appended"] == [{"timestamp_utc": "20260101T000500Z", "command": "y"}]
    doc["results"]["d12"] = {"ours": _side(1.9, 0.05, 40, 80), "upstream": None}
    md = bk.render_markdown(bk.assemble(doc))
    assert "## d6:" in md and "## d12:" in md and "- Appended 20260101T000500Z: `y`" in md
    assert doc["verdict"]["per_config"]["d6"]["status"] == "pass"


def test_bpe_configs_get_their_tokenizer_once_per_vocabulary(tmp_path):
    pytest.importorskip("rustbpe")
    data = tmp_path / "corpus.txt"
    data.write_text("ROMEO: wherefore art thou Romeo? JULIET: the val document.\n" * 50)
    cfgs = bk.resolve_configs(["cpu", "cpu-bpe"], "cpu")
    cpu, bpe = cfgs
    assert (bpe["depth"], bpe["head_dim"], bpe["seq_len"], bpe["bpe_vocab"]) == (4, 64, 512, 4096)
    assert bpe["window_pattern"] == "L" and cpu["bpe_vocab"] is None
    bk.prepare_tokenizers(cfgs, str(data), str(tmp_path))
    assert cpu["tokenizer"] is None and cpu["vocab_size"] == len(set(data.read_text()))
    assert bpe["tokenizer"] == str(tmp_path / "tok4096")
    # rustbpe stops when no pair is left to merge: far fewer than 4,096 tokens here
    assert 256 + 9 < bpe["vocab_size"] < 4096 and len(bpe["tokenizer_sha256"]) == 64
    assert bk.our_train_args(bpe, "r")["tokenizer"] == bpe["tokenizer"]
    assert "tokenizer" not in bk.our_train_args(cpu, "r")
    assert bk.upstream_spec(bpe, "/up", str(data), "on")["tokenizer"] == bpe["tokenizer"]
    with pytest.raises(bk.HarnessError, match="no tokenizer"):
        bk.prepare_tokenizers(bk.resolve_configs(["cpu-bpe"], "cpu"), str(data), str(tmp_path),
                              tokenizer=str(tmp_path / "missing"))


def test_committed_figures_need_the_same_tokens(tmp_path):
    cfg = bk.resolve_configs(["d12-bpe"], "cuda")[0]
    cfg.update(tokenizer_sha256="ab" * 32, vocab_size=21970)
    theirs = dict(cfg, tokenizer_sha256="cd" * 32)
    doc = {"configs": [theirs], "results": {"d12-bpe": {"upstream": _side(1.6, 0.01)}},
           "device": "cuda", "environment": {"gpu": {"name": "NVIDIA H200"}}}
    rec, meta = bk.committed_upstream(cfg, [("other-tokens.json", doc)], {"name": "NVIDIA H200"})
    assert rec is None and "no report" in meta["reason"]
    doc["configs"] = [dict(cfg)]
    rec, meta = bk.committed_upstream(cfg, [("same-tokens.json", doc)], {"name": "NVIDIA H200"})
    assert rec is not None and meta["file"] == "same-tokens.json"


def test_gpu_bpe_configs_are_upstreams_speedrun_shapes():
    got = {c["name"]: c for c in bk.resolve_configs(["d12-bpe", "d20-bpe"], "cuda")}
    for n, depth in (("d12-bpe", 12), ("d20-bpe", 20)):
        assert (got[n]["depth"], got[n]["seq_len"], got[n]["bpe_vocab"]) == (depth, 2048, 32768)


def test_flop_rate_is_held_against_the_gemm_ceiling():
    doc = _doc(_side(1.6, 0.010), _side(1.6, 0.020), device="cpu")
    doc["gemm_ceiling"] = {"gflops": 200.0, "threads": 2}
    bk.assemble(doc)
    s = doc["results"]["d6"]["summary"]
    fpt = doc["results"]["d6"]["flops_per_token"]
    assert s["ours"]["gflops"] == pytest.approx(fpt * 64 * 256 / 0.010 / 1e9)
    assert s["ours"]["gemm_frac"] == pytest.approx(s["ours"]["gflops"] / 200.0)
    assert s["upstream"]["gemm_frac"] == pytest.approx(s["ours"]["gemm_frac"] / 2)
    md = bk.render_markdown(doc)
    assert "| of the fp32 GEMM ceiling (higher is better) |" in md and "200.0 GFLOP/s on 2 threads" in md


def test_the_gemm_ceiling_comes_from_nc_bench_sgemm(tmp_path):
    binary = tmp_path / "nc-bench-sgemm"
    binary.write_text('#!/bin/sh\necho \'{"n": 2048, "threads": \'$2\', "seconds": 0.1, "gflops": 171.8}\'\n')
    binary.chmod(0o755)
    got = bk.gemm_ceiling(str(tmp_path / "nanochatd"), 2)
    assert got == {"n": 2048, "threads": 2, "seconds": 0.1, "gflops": 171.8}
    assert bk.gemm_ceiling(str(tmp_path / "elsewhere" / "nanochatd"), 2) is None


def test_gpu_bpe_configs_run_upstream_with_fp8_beside_bf16(tmp_path, monkeypatch):
    """On a GPU, d12-bpe and d20-bpe run upstream twice (bf16, then --fp8), after our initial
    weights are exported and before our side; the fp8 run's failure fails nothing; the report
    states ours against upstream's fastest."""
    order = []

    def upstream(cfg, ctx, fp8=False):
        order.append(("upstream", fp8, cfg.get("init_weights")))
        if fp8 and cfg["name"] == "d20-bpe":
            raise RuntimeError("no fp8 here")
        return _side(1.60, 0.010 if fp8 else 0.014)

    def tokenizers(configs, data, work, tokenizer=None):
        for c in configs:
            c["vocab_size"], c["tokenizer"], c["tokenizer_sha256"] = 21970, "/tok", "ab" * 32

    monkeypatch.setattr(bk, "nvidia_smi", lambda: {"name": "NVIDIA H200", "driver": "580"})
    monkeypatch.setattr(bk, "resolve_upstream", lambda a: ("/up", bk.PINNED_REF, "checkout"))
    monkeypatch.setattr(bk, "prepare_tokenizers", tokenizers)
    monkeypatch.setattr(bk, "export_init", lambda cfg, ctx: order.append(("init",)) or "/init.safetensors")
    monkeypatch.setattr(bk, "run_upstream", upstream)
    monkeypatch.setattr(bk, "run_ours", lambda cfg, ctx, rec: order.append(("ours",)) or rec.update(_side(1.59, 0.012)))
    assert bk.main(["--baseline", "nanochat", "--out", str(tmp_path), "--no-plot", "--cross-check", "none",
                    "--config", "d12-bpe,d20-bpe"]) == 0
    assert order == [("init",), ("upstream", False, "/init.safetensors"), ("upstream", True, "/init.safetensors"),
                     ("ours",)] * 2
    [md] = [str(p) for p in tmp_path.glob("benchmark_karpathy_*.md")]
    text = open(md).read()
    assert "Upstream with `--fp8` (tensorwise, its fastest setting)" in text and "ours / upstream fp8: 0.833" in text
    assert "Upstream with `--fp8`: not run (RuntimeError: no fp8 here)." in text
    assert "BPE of 21,970 tokens" in text and "asked for 32,768" in text
    assert not bk.resolve_configs(["d20-bpe"], "cpu")[0]["upstream_fp8"]
