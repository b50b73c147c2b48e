#!/usr/bin/env python3
"""Upstream side of the nanochat benchmark: one config, one process.

Imports upstream nanochat's own `GPT` and `MuonAdamW` from a checkout (never copied into
this repository) and trains them on tiny Shakespeare, in characters or in the tokens of a BPE
tokenizer folder (scripts/tokenizer.py: upstream's tokenizer, run by tiktoken), with the shared
recipe (docs/benchmark.md, "Shared definitions").  `scripts/benchmark_karpathy.py` starts one such
process per config, because torch.compile caches interfere across models in one process.

    python3 upstream_runner.py probe      --nanochat-dir DIR --out probe.json [--device D]
    python3 upstream_runner.py train      --spec spec.json --out result.json [--save-weights W]
    python3 upstream_runner.py crosscheck --spec spec.json --weights W.safetensors --out r.json

The pure helpers at the top (vocabulary, windows, schedules, tok/s statistics) import no
torch, so the harness and its tests can use them; torch is imported inside the commands.
Only nanochat.gpt, nanochat.optim, nanochat.common and nanochat.flash_attention are
imported from upstream (not its tokenizer, data loader, engine or base_train).
"""

import argparse
import json
import math
import os
import struct
import sys
import time

_T_START = time.time()  # wall clock at process start (before torch is imported)

SAMPLE_PROMPT = "ROMEO:"

# ----------------------------------------------------------------------------------------
# Shared definitions (must match nanochatd exactly; see docs/benchmark.md)


def _split(ids, vocab_size, token_bytes, encode, decode):
    n = len(ids)
    n_train = n * 9 // 10
    return {"vocab_size": vocab_size, "ids": ids, "n": n, "n_train": n_train, "train": ids[:n_train],
            "val": ids[n_train:], "token_bytes": token_bytes, "encode": encode, "decode": decode}


def load_corpus(path, tokenizer=None):
    """Read the corpus into token ids and the train/val split: the first n*9//10 tokens train,
    the rest validate.

    Characters (tokenizer None): the vocabulary is the sorted set of the file's code points;
    token id = rank. A BPE (tokenizer: a folder with tokenizer.json): the file is one document,
    <|bos|> then tiktoken's encode_ordinary of its text (read with errors="replace"), as
    nanochatd reads it; token_bytes from tokenizer.json (0 for special tokens).
    """
    if tokenizer:
        import tokenizer as tk  # scripts/tokenizer.py (needs tiktoken)
        enc = tk.load(tokenizer)
        with open(os.path.join(tokenizer, "tokenizer.json")) as f:
            token_bytes = json.load(f)["token_bytes"]
        ids = [enc.encode_single_token("<|bos|>")] + enc.encode_ordinary(tk.read_text(path))
        return _split(ids, enc.n_vocab, token_bytes, enc.encode_ordinary,
                      lambda ids: enc.decode(ids, errors="replace"))
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    return _split([stoi[c] for c in text], len(chars), [len(c.encode("utf-8")) for c in chars],
                  lambda s: [stoi[c] for c in s], lambda ids: "".join(chars[i] for i in ids if i < len(chars)))


def eval_window_starts(n_val, seq_len, windows):
    """Seed-independent validation windows: s_i = floor(i*(n_val-T-1)/(W-1)), i=0..W-1."""
    if windows < 2:
        raise ValueError("eval windows must be >= 2")
    span = n_val - seq_len - 1
    if span < 0:
        raise ValueError(f"validation split ({n_val} chars) shorter than a window of {seq_len + 1}")
    return [(i * span) // (windows - 1) for i in range(windows)]


def train_start_high(n_train, seq_len):
    """Training windows start uniformly in [0, n_train - T - 1]; returns the exclusive bound."""
    return n_train - seq_len


class DataStream:
    """nanochatd's training batch stream (core/rng.c): xoshiro256** seeded through splitmix64
    from seed ^ NC_STREAM_DATA; each window's start is below(n_train - T), drawn by rejection.
    Both sides draw the same windows from it."""

    STREAM = 0xDA7A5A3B1E5
    M = (1 << 64) - 1

    def __init__(self, seed):
        x = (seed ^ self.STREAM) & self.M
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & self.M
            z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & self.M
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.M
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & DataStream.M

    def next(self):
        s, M = self.s, self.M
        result = (self._rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def below(self, n):
        if n <= 1:
            return 0
        limit = self.M - self.M % n
        while True:
            x = self.next()
            if x < limit:
                return x % n


def lr_multiplier(step, steps, warmup, warmdown_ratio, final_lr_frac):
    """Linear warmup over `warmup` steps, flat, then linear warmdown to final_lr_frac."""
    warmdown = round(warmdown_ratio * steps)
    if step < warmup:
        return (step + 1) / warmup
    if warmdown <= 0 or step <= steps - warmdown:
        return 1.0
    progress = (steps - step) / warmdown
    return progress + (1.0 - progress) * final_lr_frac


def muon_momentum(step, steps, warmdown_ratio):
    """0.85 -> 0.97 over the first 400 steps, 0.97 -> 0.90 across the warmdown."""
    warmdown = round(warmdown_ratio * steps)
    warmdown_start = steps - warmdown
    if step < 400:
        frac = step / 400
        return (1.0 - frac) * 0.85 + frac * 0.97
    if warmdown > 0 and step >= warmdown_start:
        progress = (step - warmdown_start) / warmdown
        return 0.97 * (1.0 - progress) + 0.90 * progress
    return 0.97


def weight_decay_at(step, steps, weight_decay):
    """Cosine decay of the Muon weight decay to zero over the run."""
    return weight_decay * 0.5 * (1.0 + math.cos(math.pi * step / steps))


def model_dims(depth, aspect_ratio, head_dim):
    """n_embd = depth*aspect_ratio rounded up to a multiple of head_dim; heads = n_embd/head_dim."""
    base = depth * aspect_ratio
    n_embd = ((base + head_dim - 1) // head_dim) * head_dim
    return n_embd, n_embd // head_dim


def throughput(step_times, tokens_per_step, skip=10):
    """tok/s over steps skip+1..N (1-based): mean = tokens / summed time; median per step."""
    timed = [t for t in step_times[skip:] if t and t > 0]
    if not timed:
        return {"tok_per_s_mean": None, "tok_per_s_median": None, "timed_steps": 0}
    per_step = sorted(tokens_per_step / t for t in timed)
    k = len(per_step)
    median = per_step[k // 2] if k % 2 else 0.5 * (per_step[k // 2 - 1] + per_step[k // 2])
    return {
        "tok_per_s_mean": tokens_per_step * k / sum(timed),
        "tok_per_s_median": median,
        "timed_steps": k,
        "timed_seconds": sum(timed),
    }


# ----------------------------------------------------------------------------------------
# safetensors (the format is tiny: u64 LE header length, JSON header, raw little-endian data)

_ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
              "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
              "BOOL": "bool"}


def read_safetensors_header(path):
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen))
    return header, 8 + hlen


def load_safetensors(path, device="cpu"):
    """Return ({name: torch.Tensor}, metadata) without needing the safetensors package."""
    import torch
    header, base = read_safetensors_header(path)
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    with open(path, "rb") as f:
        blob = f.read()
    for name, info in header.items():
        dt = getattr(torch, _ST_DTYPES[info["dtype"]])
        a, b = info["data_offsets"]
        buf = bytearray(blob[base + a: base + b])
        t = torch.frombuffer(buf, dtype=dt) if b > a else torch.empty(0, dtype=dt)
        out[name] = t.reshape(info["shape"]).to(device)
    return out, meta


def save_safetensors(tensors, path, metadata=None):
    """Write {name: torch.Tensor} (contiguous, little-endian host) as safetensors."""
    import torch
    rev = {v: k for k, v in _ST_DTYPES.items()}
    header, chunks, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": rev[str(t.dtype).replace("torch.", "")],
                        "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------
# torch side


def log(msg):
    print(f"[upstream] {msg}", file=sys.stderr, flush=True)


def _peak_host_rss_bytes():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _prepare_env(nanochat_dir, compile_mode, device):
    """Set env before torch/nanochat import; returns (compile_model, compile_optim)."""
    os.environ.setdefault("PYTORCH_ALLOC_CONF", "expandable_segments:True")
    if compile_mode == "auto":
        compile_on = device == "cuda"
    else:
        compile_on = compile_mode == "on"
    if not compile_on:
        # upstream's optimizer kernels are @torch.compile'd at import: run them eagerly
        os.environ["TORCHDYNAMO_DISABLE"] = "1"
        os.environ["TORCH_COMPILE_DISABLE"] = "1"
    sys.path.insert(0, os.path.abspath(nanochat_dir))
    return compile_on


def _import_upstream():
    import torch
    import nanochat.common as common
    import nanochat.flash_attention as fa
    import nanochat.gpt as gpt
    import nanochat.optim as optim  # noqa: F401  (MuonAdamW, used via GPT.setup_optimizer)
    return torch, common, fa, gpt


def _resolve_device(torch, want):
    if want in ("auto", "", None):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda" and not torch.cuda.is_available():
        raise SystemExit("upstream runner: device cuda requested but torch sees no CUDA GPU")
    return want


def _is_compiled(fn):
    """True when upstream's @torch.compile decorator wrapped fn (not a no-op decorator)."""
    return hasattr(fn, "_torchdynamo_orig_callable") or hasattr(fn, "get_compiler_config") \
        or type(fn).__name__ != "function"


def _env_info(torch, common, fa, device):
    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "compute_dtype": str(common.COMPUTE_DTYPE).replace("torch.", ""),
        "compute_dtype_reason": common.COMPUTE_DTYPE_REASON,
        "has_fa3": bool(fa.HAS_FA3),
        "use_fa3": bool(fa.USE_FA3),
        "attention": "FA3" if fa.USE_FA3 else "SDPA",
        "dynamo_disabled": bool(torch._dynamo.config.disable),
        "optimizer_compiled": _is_compiled(sys.modules["nanochat.optim"].muon_step_fused),
    }
    if device == "cuda":
        name = torch.cuda.get_device_name(0)
        info["gpu_name"] = name
        info["gpu_capability"] = list(torch.cuda.get_device_capability(0))
        info["gpu_memory_bytes"] = torch.cuda.get_device_properties(0).total_memory
        info["peak_flops"] = common.get_peak_flops(name)
    else:
        info["peak_flops"] = None
    return info


def build_model(torch, gpt, spec, vocab_size, device):
    n_embd, n_head = model_dims(spec["depth"], spec.get("aspect_ratio", 64), spec["head_dim"])
    config = gpt.GPTConfig(sequence_len=spec["seq_len"], vocab_size=vocab_size,
                           n_layer=spec["depth"], n_head=n_head, n_kv_head=n_head,
                           n_embd=n_embd, window_pattern=spec.get("window_pattern", "L"))
    with torch.device("meta"):
        model = gpt.GPT(config)
    model.to_empty(device=device)
    torch.manual_seed(spec.get("seed", 1337))
    if device == "cuda":
        torch.cuda.manual_seed(spec.get("seed", 1337))
    model.init_weights()
    return model


def make_eval_windows(torch, corpus, seq_len, windows, device):
    starts = eval_window_starts(len(corpus["val"]), seq_len, windows)
    val = torch.tensor(corpus["val"], dtype=torch.long)
    offs = torch.arange(seq_len + 1)
    w = val[torch.tensor(starts)[:, None] + offs[None, :]]
    return w.to(device), starts


def evaluate(torch, model, windows, batch, token_bytes, fallback_model=None):
    """Mean per-token nats and bits per byte over all W*T targets of the given windows."""
    was_training = model.training
    model.eval()
    nats = 0.0
    nbytes = 0
    ntok = 0
    with torch.no_grad():
        for chunk in windows.split(batch):
            m = model if (chunk.size(0) == batch or fallback_model is None) else fallback_model
            x, y = chunk[:, :-1].contiguous(), chunk[:, 1:].contiguous()
            loss2d = m(x, y, loss_reduction="none").view(-1).double()
            yb = token_bytes[y.reshape(-1)]
            nats += loss2d.sum().item()
            nbytes += int(yb.sum().item())
            ntok += y.numel()
    if was_training:
        model.train()
    return {"val_loss": nats / ntok, "bpb": nats / (math.log(2) * nbytes), "tokens": ntok,
            "sum_nats": nats, "sum_bytes": nbytes}


def sample_fixed_shape(torch, model, prompt_ids, max_new, temperature=0.8, top_k=None, seed=42):
    """Sample with upstream's GPT forward on one fixed-shape buffer (prompt + max_new tokens).

    The model is causal, so the logits at position p-1 depend only on tokens < p and the
    not-yet-sampled tail of the buffer never matters.  Same sampling rule as upstream's
    GPT.generate (temperature, top_k, torch.multinomial with a seeded generator), but one
    input shape for every token: no per-length kernel selection and no host sync per token.
    """
    import torch.nn.functional as F
    device = model.get_device()
    n0 = len(prompt_ids)
    buf = torch.zeros((1, n0 + max_new), dtype=torch.long, device=device)
    buf[0, :n0] = torch.tensor(prompt_ids, dtype=torch.long, device=device)
    rng = torch.Generator(device=device)
    rng.manual_seed(seed)
    with torch.inference_mode():
        for pos in range(n0, n0 + max_new):
            logits = model(buf)[:, pos - 1, :]
            if top_k:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("inf")
            if temperature > 0:
                probs = F.softmax(logits / temperature, dim=-1)
                nxt = torch.multinomial(probs, num_samples=1, generator=rng)
            else:
                nxt = torch.argmax(logits, dim=-1, keepdim=True)
            buf[0, pos] = nxt[0, 0]
    return buf[0, n0:].tolist()


def convert_fp8(torch, model, device):
    """base_train's --fp8 with its default recipe (tensorwise): upstream's own nanochat.fp8
    converts the Linear layers whose sides are multiples of 16 and at least 128 (what its
    hardware kernels take), before torch.compile; a card below compute capability 8.9 has no
    fp8 and fails the run. Evaluation runs through the same layers (base_train swaps them
    back to bf16 for its evals)."""
    if device != "cuda" or torch.cuda.get_device_capability() < (8, 9):
        raise SystemExit("--fp8 needs a GPU of compute capability 8.9 or more (H100, H200)")
    import torch.nn as nn
    from nanochat.fp8 import Float8LinearConfig, convert_to_float8_training

    def eligible(mod, _fqn):
        return (isinstance(mod, nn.Linear) and mod.in_features % 16 == 0 and mod.out_features % 16 == 0
                and min(mod.in_features, mod.out_features) >= 128)

    convert_to_float8_training(model, config=Float8LinearConfig.from_recipe_name("tensorwise"),
                               module_filter_fn=eligible)
    return {"recipe": "tensorwise", "layers": sum(1 for m in model.modules() if "Float8" in type(m).__name__)}


def cmd_probe(a):
    compile_on = _prepare_env(a.nanochat_dir, a.compile, a.device if a.device != "auto" else "cuda")
    torch, common, fa, gpt = _import_upstream()
    device = _resolve_device(torch, a.device) if a.device != "auto" else (
        "cuda" if torch.cuda.is_available() else "cpu")
    info = _env_info(torch, common, fa, device)
    info["compile"] = compile_on
    _write_json(a.out, info)


def cmd_train(a):
    with open(a.spec) as f:
        spec = json.load(f)
    t_launch = spec.get("t_launch", _T_START)
    compile_on = _prepare_env(spec["nanochat_dir"], spec.get("compile", "auto"), spec["device"])
    torch, common, fa, gpt = _import_upstream()
    t_imported = time.time()
    device = _resolve_device(torch, spec["device"])
    if device == "cuda":
        torch.set_float32_matmul_precision("high")  # as upstream's compute_init
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    env = _env_info(torch, common, fa, device)
    env["compile"] = compile_on
    log(f"{spec['name']}: device={device} dtype={env['compute_dtype']} attention={env['attention']} "
        f"compile={compile_on} torch={torch.__version__}")

    corpus = load_corpus(spec["data"], spec.get("tokenizer"))
    vocab = corpus["vocab_size"]
    token_bytes = torch.tensor(corpus["token_bytes"], dtype=torch.long, device=device)
    T, B, steps = spec["seq_len"], spec["batch_size"], spec["steps"]
    train = torch.tensor(corpus["train"], dtype=torch.long, device=device)
    offs = torch.arange(T + 1, device=device)
    stream = DataStream(spec.get("seed", 1337))
    high = train_start_high(corpus["n_train"], T)
    # every step's starts drawn and uploaded before the timed loop (a host tensor per step
    # would synchronize the GPU inside each timed step)
    all_starts = torch.tensor([[stream.below(high) for _ in range(B)] for _ in range(steps + 1)], device=device)
    drawn = iter(all_starts)

    def next_batch():
        starts = next(drawn)
        w = train[starts[:, None] + offs[None, :]]
        return w[:, :-1].contiguous(), w[:, 1:].contiguous()

    eval_w, _ = make_eval_windows(torch, corpus, T, spec["eval_windows"], device)

    model = build_model(torch, gpt, spec, vocab, device)
    init_notes = load_weights(model, spec["init_weights"], device) if spec.get("init_weights") else None
    fp8 = convert_fp8(torch, model, device) if spec.get("fp8") else None
    counts = model.num_scaling_params()
    flops_per_token = model.estimate_flops()
    lrs = spec["lrs"]
    optimizer = model.setup_optimizer(unembedding_lr=lrs["unembedding_lr"],
                                      embedding_lr=lrs["embedding_lr"],
                                      matrix_lr=lrs["matrix_lr"],
                                      weight_decay=lrs["weight_decay"],
                                      scalar_lr=lrs["scalar_lr"])
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    orig_model = model
    if compile_on:
        model = torch.compile(model, dynamic=False)
    t_built = time.time()

    warmup, wdr, flf = spec["warmup_steps"], spec["warmdown_ratio"], spec["final_lr_frac"]
    eval_every = spec.get("eval_every", 0)
    log_every = max(1, spec.get("log_every", 1))
    evals, step_log = [], []
    t_first_step_end = None
    x, y = next_batch()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    import gc
    for step in range(steps + 1):
        last = step == steps
        at_start = step == 0 and not spec.get("eval_at_start", False)
        if eval_every > 0 and (last or step % eval_every == 0) and not at_start:
            t0 = time.time()
            # eager by default: a compiled eval graph (loss_reduction='none') would cost
            # another 8-22 s of torch.compile per config for no change in the result
            em = model if spec.get("eval_compiled", False) else orig_model
            r = evaluate(torch, em, eval_w, B, token_bytes, fallback_model=orig_model)
            r["step"] = step
            r["eval_s"] = time.time() - t0
            evals.append(r)
            log(f"{spec['name']}: step {step:5d} | val loss {r['val_loss']:.4f} | bpb {r['bpb']:.4f}")
        if last:
            break
        sync()
        t0 = time.time()
        loss = model(x, y)
        loss.backward()
        x, y = next_batch()
        lrm = lr_multiplier(step, steps, warmup, wdr, flf)
        mom = muon_momentum(step, steps, wdr)
        wd = weight_decay_at(step, steps, lrs["weight_decay"])
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * lrm
            if group["kind"] == "muon":
                group["momentum"] = mom
                group["weight_decay"] = wd
        optimizer.step()
        model.zero_grad(set_to_none=True)
        loss_f = loss.item()
        sync()
        t1 = time.time()
        dt = t1 - t0
        if t_first_step_end is None:
            t_first_step_end = t1
            gc.collect()
            gc.freeze()
            gc.disable()  # as upstream's base_train does after the first step
        step_log.append({"step": step + 1, "loss": loss_f, "dt": dt, "lrm": lrm})
        if (step + 1) % log_every == 0 or step == 0 or step + 1 == steps:
            log(f"{spec['name']}: step {step + 1:5d}/{steps} | loss {loss_f:.4f} | lrm {lrm:.3f} "
                f"| dt {dt * 1000:.1f} ms | tok/s {B * T / dt:,.0f}")
    gc.enable()

    tp = throughput([s["dt"] for s in step_log], B * T)
    peak_flops = env.get("peak_flops")
    mfu = None
    if peak_flops and tp["tok_per_s_mean"] and math.isfinite(peak_flops):
        mfu = flops_per_token * tp["tok_per_s_mean"] / peak_flops

    # sample from the uncompiled model (see sample_fixed_shape; "generate" uses upstream's
    # naive GPT.generate, whose growing input shape costs ~60 ms/token on a fresh GPU process)
    sp = spec.get("sample", {})
    prompt = sp.get("prompt", SAMPLE_PROMPT)
    toks = corpus["encode"](prompt)
    max_new = min(sp.get("max_new_tokens", 200), T - len(toks))
    t0 = time.time()
    top_k = sp.get("top_k") or None
    method = sp.get("method", "fixed")
    if method == "generate":
        out = list(orig_model.generate(toks, max_new, temperature=sp.get("temperature", 0.8),
                                       top_k=top_k, seed=sp.get("seed", 42)))
        method = "nanochat.gpt.GPT.generate (naive, no KV cache)"
    else:
        out = sample_fixed_shape(torch, orig_model, toks, max_new, sp.get("temperature", 0.8),
                                 top_k, sp.get("seed", 42))
        method = "upstream GPT forward on a fixed-shape buffer (no KV cache)"
    sample_s = time.time() - t0
    text = prompt + corpus["decode"](out)

    if a.save_weights:
        save_safetensors({k: v.float() for k, v in orig_model.state_dict().items()},
                         a.save_weights, {"source": "upstream_runner", "config": spec["name"]})

    res = {
        "side": "upstream",
        "config": spec["name"],
        "env": env,
        "params": counts,
        "flops_per_token": flops_per_token,
        "n_embd": model_dims(spec["depth"], spec.get("aspect_ratio", 64), spec["head_dim"])[0],
        "vocab_size": vocab,
        "tokens_per_step": B * T,
        "steps": steps,
        "step_log": step_log,
        "evals": evals,
        "final_val_loss": evals[-1]["val_loss"] if evals else None,
        "final_bpb": evals[-1]["bpb"] if evals else None,
        "final_train_loss": step_log[-1]["loss"] if step_log else None,
        **tp,
        "mfu": mfu,
        "time_to_first_step_s": (t_first_step_end - t_launch) if t_first_step_end else None,
        "first_step_s": step_log[0]["dt"] if step_log else None,
        "import_s": t_imported - t_launch,
        "build_s": t_built - t_imported,
        "train_wall_s": sum(s["dt"] for s in step_log),
        "peak_host_rss_bytes": _peak_host_rss_bytes(),
        "peak_device_bytes": torch.cuda.max_memory_allocated() if device == "cuda" else None,
        "peak_device_reserved_bytes": torch.cuda.max_memory_reserved() if device == "cuda" else None,
        "sample": {"prompt": prompt, "text": text, "max_new_tokens": max_new,
                   "temperature": sp.get("temperature", 0.8), "top_k": top_k,
                   "seed": sp.get("seed", 42), "seconds": sample_s,
                   "tok_per_s": max_new / sample_s if sample_s > 0 else None,
                   "method": method},
        "eval_compiled": bool(compile_on and spec.get("eval_compiled", False)),
        "init": {"weights": spec["init_weights"], "notes": init_notes} if spec.get("init_weights")
        else "upstream's init_weights",
        "batches": "nanochatd's data stream (DataStream)",
        "fp8": fp8,
    }
    _write_json(a.out, res)
    log(f"{spec['name']}: done | tok/s mean {tp['tok_per_s_mean'] or 0:,.0f} "
        f"median {tp['tok_per_s_median'] or 0:,.0f} | final val {res['final_val_loss']}")


def load_weights(model, path, device):
    """Weights in upstream's names (nanochatd's `checkpoint export`) into model, tables padded
    to upstream's padded vocabulary where they are shorter; returns the notes of what was
    padded."""
    sd = model.state_dict()
    weights, _meta = load_safetensors(path)
    notes = []
    missing = sorted(set(sd) - set(weights))
    unexpected = sorted(set(weights) - set(sd))
    if missing or unexpected:
        raise SystemExit(f"weight names differ from upstream's: missing={missing[:8]} "
                         f"unexpected={unexpected[:8]}")
    new_sd = {}
    for k, ref in sd.items():
        w = weights[k]
        if w.dim() == ref.dim() and w.dim() >= 1 and w.shape[0] < ref.shape[0] \
                and tuple(w.shape[1:]) == tuple(ref.shape[1:]):
            notes.append(f"{k}: padded rows {w.shape[0]} -> {ref.shape[0]}")
            w = _pad_rows(w, ref.shape[0])
        if tuple(w.shape) != tuple(ref.shape):
            raise SystemExit(f"shape of {k} is {tuple(w.shape)}, upstream wants {tuple(ref.shape)}")
        new_sd[k] = w.to(device=device, dtype=ref.dtype)
    model.load_state_dict(new_sd, strict=True)
    return notes


def _pad_rows(t, rows):
    import torch
    if t.shape[0] >= rows:
        return t
    pad = torch.zeros((rows - t.shape[0],) + tuple(t.shape[1:]), dtype=t.dtype)
    return torch.cat([t, pad], 0)


def cmd_crosscheck(a):
    """Load weights (upstream names) into upstream's GPT and evaluate the windows in fp32."""
    with open(a.spec) as f:
        spec = json.load(f)
    os.environ["NANOCHAT_DTYPE"] = "float32"
    _prepare_env(spec["nanochat_dir"], "off", spec["device"])
    torch, common, fa, gpt = _import_upstream()
    device = _resolve_device(torch, spec["device"])
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
    corpus = load_corpus(spec["data"], spec.get("tokenizer"))
    model = build_model(torch, gpt, spec, corpus["vocab_size"], device)
    notes = load_weights(model, a.weights, device)
    meta = load_safetensors(a.weights)[1]
    token_bytes = torch.tensor(corpus["token_bytes"], dtype=torch.long, device=device)
    eval_w, _ = make_eval_windows(torch, corpus, spec["seq_len"], spec["eval_windows"], device)
    r = evaluate(torch, model, eval_w, spec["batch_size"], token_bytes)
    r.update({"side": "upstream-crosscheck", "config": spec["name"], "device": device,
              "compute_dtype": str(common.COMPUTE_DTYPE).replace("torch.", ""),
              "attention": "FA3" if fa.USE_FA3 else "SDPA", "notes": notes,
              "weights": a.weights, "weights_metadata": meta})
    _write_json(a.out, r)
    log(f"{spec['name']}: crosscheck val loss {r['val_loss']:.6f} bpb {r['bpb']:.6f} (fp32, {device})")


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("probe", help="report torch/GPU/dtype/attention as upstream sees them")
    pp.add_argument("--nanochat-dir", required=True)
    pp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    pp.add_argument("--compile", default="auto", choices=["auto", "on", "off"])
    pp.add_argument("--out", required=True)
    pt = sub.add_parser("train", help="train one config with upstream's GPT + MuonAdamW")
    pt.add_argument("--spec", required=True)
    pt.add_argument("--out", required=True)
    pt.add_argument("--save-weights", default=None, help="also write final weights (safetensors)")
    pc = sub.add_parser("crosscheck", help="evaluate given weights with upstream's GPT in fp32")
    pc.add_argument("--spec", required=True)
    pc.add_argument("--weights", required=True)
    pc.add_argument("--out", required=True)
    a = p.parse_args(argv)
    {"probe": cmd_probe, "train": cmd_train, "crosscheck": cmd_crosscheck}[a.cmd](a)


if __name__ == "__main__":
    main()
