#!/usr/bin/env python3
"""Dump upstream nanochat's GPT and MuonAdamW at tiny configs as test fixtures.

Usage: scripts/gen_reference_fixtures.py /path/to/nanochat-checkout [--out tests/fixtures]
                                         [--dtype float32|bfloat16]

The checkout must be at the pinned commit. For each config this builds upstream's
own GPT (on the CPU, no torch.compile, in the compute dtype given: float32, or
bfloat16 as upstream computes on a GPU, NANOCHAT_DTYPE), initializes it with
upstream's init_weights,
then perturbs the parameters that upstream initializes to zero or to a neutral value
(both c_proj, smear_lambda) so that every gradient is non-zero, and writes
<name>.safetensors with:

  param.<upstream name>   the parameters the C model loads (upstream's state_dict names;
                          in bfloat16 upstream keeps wte and the value embeddings in bf16:
                          every tensor is stored as F32, holding those values exactly)
  x, y                    (B, T) token ids, stored as F32 (exact)
  logits                  (B, T, V) model(x): cropped and soft-capped
  loss                    (1) model(x, y)
  grad.<name>             every parameter's gradient of that loss
  step1.<name>, step3.<name>  parameters after 1 and 3 optimizer steps (same batch
                          every step), upstream's setup_optimizer with the lrs as
                          given and base_train's schedules (taken from
                          scripts/base_train.py itself)
  __metadata__            train_args (JSON for the C model's config), losses (the
                          loss before each of the 3 steps), flops_per_token,
                          num_params, schedule (base_train's multipliers at sample
                          steps of a longer run) and scaling (base_train's batch
                          lr scale and weight decay for a few configs).

--dtype bfloat16 dumps BF16_CONFIG only.
Not run in CI: the fixtures are committed. Needs torch and filelock.
"""
import argparse
import ast
import json
import math
import os
import subprocess
import sys
import types

PINNED = "92d63d4e8bb4df75c3b71618f31ddde2378b2bcd"

CONFIGS = [
    # a short window that bites (T > 128), both window kinds, value embeddings on layers 0 and 2,
    # padded vocabulary. Depth >= 3 keeps the backout layer (n_layer // 2) below the last: at
    # depth 1 or 2 it is the last layer, rmsnorm cancels backout_lambda and its gradient is noise.
    dict(name="gpt_d3_sl", depth=3, aspect_ratio=10, head_dim=16, seq_len=160, batch_size=2,
         window_pattern="SL", vocab=65, seed=1),
    # even depth (value embeddings on layers 1 and 3), 3 heads, n_embd 24, vocabulary a multiple of 64
    dict(name="gpt_d4_l", depth=4, aspect_ratio=6, head_dim=8, seq_len=16, batch_size=3,
         window_pattern="L", vocab=64, seed=2),
]
# upstream computing in bfloat16, for the emulated cuda backend (tests/emu/test_emu_gpt.c): head_dim 64, so
# that attention takes the tensor-core kernels; a short window that bites; one sequence, to keep the emulator fast
# and a small model (n_embd 64, vocabulary 64), to keep the fixture under 2 MB
BF16_CONFIG = dict(name="gpt_d2_sl_bf16", depth=2, aspect_ratio=32, head_dim=64, seq_len=144, batch_size=1,
                   window_pattern="SL", vocab=64, seed=3)
OPTIM = dict(embedding_lr=0.3, unembedding_lr=0.008, matrix_lr=0.02, scalar_lr=0.5, weight_decay=0.28)
# 4 iterations, warmup 2, warmdown 3: the 3 steps taken see warmup, its end and warmdown
SCHEDULE = dict(steps=4, warmup_steps=2, warmdown_ratio=0.75, final_lr_frac=0.05)


def check_commit(path):
    git = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True)
    head = git.stdout.strip() if git.returncode == 0 else "no git commit"
    if head != PINNED:
        sys.exit(f"refusing: {path} is at {head}, fixtures must come from the pinned commit {PINNED}")


def base_train_functions(path, names, namespace):
    """Executes the named top-level functions of upstream's scripts/base_train.py."""
    with open(os.path.join(path, "scripts", "base_train.py")) as f:
        tree = ast.parse(f.read())
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
    missing = set(names) - {n.name for n in body}
    if missing:
        sys.exit(f"base_train.py has no {sorted(missing)}")
    exec(compile(ast.Module(body=body, type_ignores=[]), "base_train.py", "exec"), namespace)
    return namespace


def schedule_namespace(path, steps, warmup_steps, warmdown_ratio, final_lr_frac, weight_decay):
    args = types.SimpleNamespace(warmup_steps=warmup_steps, warmdown_ratio=warmdown_ratio,
                                 final_lr_frac=final_lr_frac)
    ns = dict(args=args, num_iterations=steps, weight_decay_scaled=weight_decay, math=math)
    return base_train_functions(path, ["get_lr_multiplier", "get_muon_momentum", "get_weight_decay"], ns)


def build_model(gpt, cfg, torch):
    n_embd = -(-cfg["depth"] * cfg["aspect_ratio"] // cfg["head_dim"]) * cfg["head_dim"]
    n_head = n_embd // cfg["head_dim"]
    config = gpt.GPTConfig(sequence_len=cfg["seq_len"], vocab_size=cfg["vocab"], n_layer=cfg["depth"],
                           n_head=n_head, n_kv_head=n_head, n_embd=n_embd,
                           window_pattern=cfg["window_pattern"])
    with torch.device("meta"):
        model = gpt.GPT(config)
    model.to_empty(device="cpu")
    model.init_weights()
    with torch.no_grad():  # exercise every gradient path
        for block in model.transformer.h:
            block.attn.c_proj.weight.uniform_(-0.05, 0.05)
            block.mlp.c_proj.weight.uniform_(-0.02, 0.02)
        model.smear_lambda.fill_(0.3)
    return model


def tensors_of(prefix, named, torch):
    return {f"{prefix}.{k}": v.detach().to(torch.float32).contiguous().clone() for k, v in named}


def train_steps(model, optimizer, x, y, sched, n, torch):
    """n optimizer steps on (x, y) as base_train takes them; returns the losses and snapshots."""
    losses, snaps = [], {}
    for step in range(n):
        loss = model(x, y)
        losses.append(loss.item())
        loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * sched["get_lr_multiplier"](step)
            if group["kind"] == "muon":
                group["momentum"] = sched["get_muon_momentum"](step)
                group["weight_decay"] = sched["get_weight_decay"](step)
        optimizer.step()
        model.zero_grad(set_to_none=True)
        snaps[step + 1] = tensors_of(f"step{step + 1}", model.state_dict().items(), torch)
    return losses, snaps


def schedule_samples(path):
    """base_train's multipliers at telling steps of a 1000-step run with its defaults."""
    sched = schedule_namespace(path, 1000, 40, 0.65, 0.05, 0.28)
    steps = [0, 1, 39, 40, 41, 100, 349, 350, 351, 399, 400, 401, 500, 998, 999]
    return dict(steps=1000, warmup_steps=40, warmdown_ratio=0.65, final_lr_frac=0.05, weight_decay=0.28,
                samples=[[s, sched["get_lr_multiplier"](s), sched["get_muon_momentum"](s),
                          sched["get_weight_decay"](s)] for s in steps])


def scaling_samples(path, gpt, torch):
    """base_train's batch lr scale and weight decay for a few (model, batch) configs."""
    out = []
    for depth, aspect, head_dim, vocab, B, T in [(3, 10, 16, 65, 2, 160), (4, 64, 64, 65, 8, 256),
                                                 (6, 64, 128, 65, 64, 256), (12, 64, 128, 65, 32, 1024)]:
        args = types.SimpleNamespace(aspect_ratio=aspect, head_dim=head_dim, max_seq_len=T, window_pattern="L")
        ns = base_train_functions(path, ["build_model_meta", "get_scaling_params"],
                                  dict(args=args, vocab_size=vocab, GPTConfig=gpt.GPTConfig, GPT=gpt.GPT,
                                       torch=torch))
        target_tokens = int(12 * ns["get_scaling_params"](ns["build_model_meta"](depth)))
        d_ref = 12 * ns["get_scaling_params"](ns["build_model_meta"](12))
        ratio = B * T / 2**19
        out.append(dict(depth=depth, aspect_ratio=aspect, head_dim=head_dim, vocab=vocab, batch_size=B,
                        seq_len=T, weight_decay=0.28, batch_lr_scale=ratio ** 0.5,
                        weight_decay_scaled=0.28 * math.sqrt(ratio) * (d_ref / target_tokens)))
    return out


def dump(path, cfg, out_dir, torch, gpt, save_file, dtype):
    torch.manual_seed(cfg["seed"])
    model = build_model(gpt, cfg, torch)
    B, T, V = cfg["batch_size"], cfg["seq_len"], cfg["vocab"]
    seq = torch.randint(0, V, (B, T + 1))
    x, y = seq[:, :-1].contiguous(), seq[:, 1:].contiguous()
    tensors = tensors_of("param", model.state_dict().items(), torch)
    tensors["x"], tensors["y"] = x.to(torch.float32), y.to(torch.float32)
    with torch.no_grad():
        tensors["logits"] = model(x).contiguous()
    loss = model(x, y)
    loss.backward()
    tensors["loss"] = loss.detach().reshape(1)
    tensors.update(tensors_of("grad", ((k, p.grad) for k, p in model.named_parameters()), torch))
    model.zero_grad(set_to_none=True)
    optimizer = model.setup_optimizer(**OPTIM)
    sched = schedule_namespace(path, SCHEDULE["steps"], SCHEDULE["warmup_steps"], SCHEDULE["warmdown_ratio"],
                               SCHEDULE["final_lr_frac"], OPTIM["weight_decay"])
    losses, snaps = train_steps(model, optimizer, x, y, sched, 3, torch)
    tensors.update(snaps[1])
    tensors.update(snaps[3])
    train_args = dict(mode="tensor", model_kind="gpt", device="cpu", depth=cfg["depth"],
                      aspect_ratio=cfg["aspect_ratio"], head_dim=cfg["head_dim"], seq_len=T, batch_size=B,
                      window_pattern=cfg["window_pattern"], batch_scaling="none", seed=cfg["seed"],
                      **OPTIM, **SCHEDULE)
    meta = dict(upstream_commit=PINNED, torch=torch.__version__, vocab_size=str(V), compute_dtype=dtype,
                train_args=json.dumps(train_args), losses=json.dumps(losses),
                flops_per_token=str(model.estimate_flops()),
                num_params=str(sum(p.numel() for p in model.parameters())),
                schedule=json.dumps(schedule_samples(path)), scaling=json.dumps(scaling_samples(path, gpt, torch)))
    dest = os.path.join(out_dir, cfg["name"] + ".safetensors")
    save_file(tensors, dest, metadata=meta)
    print(f"{dest}: {os.path.getsize(dest)} bytes, loss {tensors['loss'].item():.6f}, losses {losses}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("upstream", help="path to a nanochat checkout at the pinned commit")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"))
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                    help="upstream's compute dtype (NANOCHAT_DTYPE)")
    a = ap.parse_args()
    check_commit(a.upstream)
    os.environ["NANOCHAT_DTYPE"] = a.dtype
    sys.path.insert(0, os.path.abspath(a.upstream))
    import torch
    from safetensors.torch import save_file
    # upstream decorates its optimizer kernels with torch.compile(fullgraph=True);
    # run them eagerly instead (same code, no compiler on this machine's CPU)
    torch.compile = lambda fn=None, **kw: fn if fn is not None else (lambda f: f)
    from nanochat import gpt
    os.makedirs(a.out, exist_ok=True)
    for cfg in [BF16_CONFIG] if a.dtype == "bfloat16" else CONFIGS:
        dump(a.upstream, cfg, a.out, torch, gpt, save_file, a.dtype)


if __name__ == "__main__":
    main()
