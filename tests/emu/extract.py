#!/usr/bin/env python3
"""extract.py KERNELS_DIR OUT_DIR: the project's backend/cuda/*.cu and *.cuh as
host C++ for the emulator (emu.h), mechanically. Only these rewrites; every
other character is the original's (line numbers kept, #line points back):

  extern __shared__ T name[];      ->  T *name = (T *)emu::dynamic_smem();
  __shared__ T name[d]...;         ->  auto &name = emu::shared<T[d]...>(SITE);
  kern<<<g, b[, smem[, s]]>>>(a);  ->  emu::launch("kern", g, b, smem, s, COLLECTIVE, [&] { kern(a); });
  asm volatile("<known PTX>" ...)  ->  the emulator's function for that PTX

COLLECTIVE says whether the kernel, or any function it calls, uses a block or
warp collective; kernels without one run thread by thread. Anything else
that only a GPU compiler knows (another asm, another __shared__ form, a
launch the parser cannot read) stops the build with an error."""
import itertools
import os
import re
import sys

SITES = itertools.count(1)  # one id per __shared__ declaration, unique across the files

# The PTX the kernels may use (whitespace-normalized) -> the emulator's function.
KNOWN_ASM = {
    "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];": "emu_ldmatrix_x4",
    "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];": "emu_ldmatrix_x4_trans",
    "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
    "{%0, %1, %2, %3};": "emu_mma_m16n8k16_bf16",
}
PRIMITIVES = re.compile(r"\b(__syncthreads|__syncwarp|__shfl_\w+|asm)\b")
FUNCTION = re.compile(r"(\w+)\s*\((?:[^;{}()]|\([^;{}()]*\))*\)\s*(?:const\s*)?\{")
COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def fail(path, text, pos, why):
    sys.exit(f"{path}:{text.count(chr(10), 0, pos) + 1}: extract.py: {why}")


def closing(text, i, open_ch, close_ch):
    """The index of the bracket that closes the one at i."""
    depth = 0
    for j in range(i, len(text)):
        depth += {open_ch: 1, close_ch: -1}.get(text[j], 0)
        if depth == 0:
            return j
    raise ValueError("unbalanced")


def split_top(s):
    """s split at commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return parts + [cur.strip()] if cur.strip() else parts


def function_bodies(texts):
    """name -> the bodies of every function of that name in all the files."""
    bodies = {}
    for text in map(lambda t: COMMENT.sub("", t), texts):
        for m in FUNCTION.finditer(text):
            if m.group(1) in ("if", "for", "while", "switch"):
                continue
            start = m.end() - 1
            bodies.setdefault(m.group(1), []).append(text[start:closing(text, start, "{", "}") + 1])
    return bodies


def collective_names(bodies):
    """The functions that reach a collective through any chain of calls."""
    names = {n for n, bs in bodies.items() if any(PRIMITIVES.search(b) for b in bs)}
    while names:
        more = {n for n, bs in bodies.items() if n not in names
                and any(re.search(r"\b(%s)\b" % "|".join(names), b) for b in bs)}
        if not more:
            break
        names |= more
    return names


def rewrite_shared(path, text):
    text = re.sub(r"extern\s+__shared__\s+(?:__align__\(\d+\)\s+)?(\w+)\s+(\w+)\s*\[\s*\]\s*;",
                  r"\1 *\2 = (\1 *)emu::dynamic_smem();", text)

    def static(m):
        return f"auto &{m.group(2)} = emu::shared<{m.group(1)}{m.group(3)}>({next(SITES)});"
    text = re.sub(r"__shared__\s+(\w+)\s+(\w+)\s*((?:\[[^\]]+\])+)\s*;", static, text)
    if "__shared__" in text:
        fail(path, text, text.index("__shared__"), "a __shared__ form the emulator does not know")
    return text


def rewrite_launches(path, text, collective):
    out, pos = [], 0
    for m in re.finditer(r"(\w+)\s*(<[^<>;()]*>)?\s*<<<", text):
        if m.start() < pos:
            continue
        cfg_end = text.find(">>>", m.end())
        cfg = split_top(text[m.end():cfg_end])
        args_open = cfg_end + 3
        if cfg_end < 0 or text[args_open] != "(" or len(cfg) < 2 or len(cfg) > 4:
            fail(path, text, m.start(), "a launch the script cannot read")
        args_close = closing(text, args_open, "(", ")")
        if text[args_close + 1] != ";":
            fail(path, text, m.start(), "a launch that is not a statement of its own")
        name = m.group(1)
        smem = cfg[2] if len(cfg) > 2 else "0"
        stream = cfg[3] if len(cfg) > 3 else "0"
        coll = "true" if name in collective or name not in FUNCTION_NAMES else "false"
        call = f"{name}{m.group(2) or ''}({text[args_open + 1:args_close]})"
        out += [text[pos:m.start()], f'emu::launch("{name}", {cfg[0]}, {cfg[1]}, {smem}, {stream}, {coll}, '
                                     f"[&] {{ {call}; }})"]
        pos = args_close + 1
    return "".join(out) + text[pos:]


def rewrite_asm(path, text):
    out, pos = [], 0
    for m in re.finditer(r"\basm\s+volatile\s*\(", text):
        close = closing(text, m.end() - 1, "(", ")")
        body = text[m.end():close]
        parts = body.split(":")
        template = " ".join("".join(re.findall(r'"((?:[^"\\]|\\.)*)"', parts[0])).replace("\\n", "").split())
        if template not in KNOWN_ASM or len(parts) != 3:
            fail(path, text, m.start(), f"PTX the emulator does not know: {template!r}")
        operands = [re.sub(r'^"[=+]?\w"\s*\((.*)\)$', r"\1", o, flags=re.S)
                    for p in parts[1:] for o in split_top(p)]
        newlines = "\n" * body.count("\n")
        out += [text[pos:m.start()], f"{KNOWN_ASM[template]}({', '.join(operands)}{newlines})"]
        pos = close + 1
    text = "".join(out) + text[pos:]
    if re.search(r"\basm\b", text):
        fail(path, text, re.search(r"\basm\b", text).start(), "an asm form the script does not know")
    return text


def main():
    src, dst = sys.argv[1], sys.argv[2]
    names = sorted(f for f in os.listdir(src) if f.endswith((".cu", ".cuh")))
    texts = {f: open(os.path.join(src, f)).read() for f in names}
    bodies = function_bodies(texts.values())
    global FUNCTION_NAMES
    FUNCTION_NAMES = set(bodies)
    collective = collective_names(bodies)
    os.makedirs(dst, exist_ok=True)
    for f in names:
        path = os.path.join(src, f)
        text = rewrite_launches(path, rewrite_shared(path, rewrite_asm(path, texts[f])), collective)
        if "<<<" in text:
            fail(path, text, text.index("<<<"), "a launch the script did not rewrite")
        out = f[:-3] + ".cpp" if f.endswith(".cu") else f
        with open(os.path.join(dst, out), "w") as fh:
            fh.write(f'#include "emu.h"\n#line 1 "{path}"\n{text}')


FUNCTION_NAMES = set()
main()
