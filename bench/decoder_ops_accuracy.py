"""Accuracy of the decoder block's non-linear units (golden models) against float64: the bound each
method derives and the worst error observed, both in units of the format's unit roundoff u, and
for the unary functions the share of results equal to the correctly rounded one.

Inputs: every bf16 and fp16 encoding (unary functions), 200k seeded random fp32 encodings; exp
restricted to softmax's range |x| <= 20; RMSNorm on rows of 576 (fp32) or 64 (16-bit, Qwen3's
QK-norm head size is 128, SmolLM2's 64); softmax on rows of 512 (fp32) or 64 scores; RoPE on 64-wide
heads at positions 0..8191; attention (T = 16, S = 16, D = 64, exact products, 8 lanes) with bf16
data in an fp32 unit. Relative errors for all but RoPE and attention (absolute, over the bound's
own scale).

    python bench/decoder_ops_accuracy.py [--json PATH] [--plot PATH]
"""

import argparse
import json
from pathlib import Path

import numpy as np

from lutforge.golden import fp_funcs
from lutforge.golden.attention import attention, attention_bound
from lutforge.golden.convert import decode, encode
from lutforge.golden.formats import get
from lutforge.golden.rmsnorm import rmsnorm, rmsnorm_bound
from lutforge.golden.rope import rope, rope_angles, rope_bound, rope_tables
from lutforge.golden.silu import silu, silu_bound
from lutforge.golden.softmax import softmax, softmax_bound

FORMATS = ("bf16", "fp16", "fp32")


def unary_inputs(fmt, rng):
    if fmt.width == 16:
        a = np.arange(1 << 16, dtype=np.uint64).astype(fmt.dtype)
    else:
        a = rng.integers(0, 2 ** 32, 200_000, dtype=np.uint64).astype(np.uint32)
    return a, decode(a, fmt)


def row(op, fmt, got, exact, bound, relative=True, correctly_rounded=None) -> dict:
    u = 2.0 ** -(fmt.man_bits + 1)
    with np.errstate(all="ignore"):
        err = np.abs(got - exact) / (np.abs(exact) if relative else 1.0)
        ok = np.isfinite(err) & np.isfinite(bound) & (np.abs(exact) >= 2.0 ** fmt.emin)
        ratio = err[ok] / bound[ok]
    out = {"op": op, "format": fmt.name, "error": "relative" if relative else "absolute",
           "bound_u": float(np.max(bound[ok]) / u) if relative else None,
           "worst_u": float(np.max(err[ok]) / u) if relative else None,
           "worst_over_bound": float(np.max(ratio)), "values": int(ok.sum())}
    if correctly_rounded is not None:
        out["correctly_rounded_share"] = float(np.mean(correctly_rounded[ok]))
    return out


def unary(fmt, rng) -> list[dict]:
    a, x = unary_inputs(fmt, rng)
    rows = []
    with np.errstate(all="ignore"):
        cases = [("reciprocal", fp_funcs.reciprocal(a, fmt), 1 / x, fp_funcs.reciprocal_bound(fmt), np.isfinite(x)),
                 ("rsqrt", fp_funcs.rsqrt(a, fmt), 1 / np.sqrt(x), fp_funcs.rsqrt_bound(fmt), x > 0),
                 ("exp (x in [-20, 20])", fp_funcs.exp(a, fmt), np.exp(x),
                  fp_funcs.exp_bound(fmt, np.abs(x) / np.log(2)), np.abs(x) <= 20),
                 ("silu", silu(a, fmt), x / (1 + np.exp(-x)), silu_bound(x, fmt), np.abs(x) <= 20)]
    for op, enc, exact, bound, keep in cases:
        with np.errstate(all="ignore"):
            cr = enc == encode(exact, fmt)
        bound = np.broadcast_to(bound, x.shape)
        rows.append(row(op, fmt, decode(enc, fmt)[keep], exact[keep], bound[keep], correctly_rounded=cr[keep]))
    return rows


def vector_ops(fmt, rng) -> list[dict]:
    k = 576 if fmt.name == "fp32" else 64
    spread = 2.3 if fmt.name == "fp16" else 7
    x = encode(rng.normal(size=(64, k)) * np.exp(rng.uniform(-spread, spread, (64, 1))), fmt)
    w = encode(rng.normal(1, 0.3, k), fmt)
    xd, wd = decode(x, fmt), decode(w, fmt)
    exact = xd * wd / np.sqrt(np.mean(xd * xd, -1, keepdims=True) + 1e-5)
    rows = [row(f"rmsnorm (K = {k})", fmt, decode(rmsnorm(x, w, fmt, eps=1e-5), fmt), exact,
                np.full(exact.shape, rmsnorm_bound(fmt, k)))]
    n = 512 if fmt.name == "fp32" else 64
    s = encode(rng.normal(size=(32, n)) * 3, fmt)
    sd = decode(s, fmt)
    p = np.exp(sd - sd.max(-1, keepdims=True))
    rows.append(row(f"softmax (n = {n})", fmt, decode(softmax(s, fmt), fmt), p / p.sum(-1, keepdims=True),
                    softmax_bound(sd, fmt)))
    positions = np.arange(0, 8192, 97)
    xr = encode(rng.normal(size=(2, len(positions), 64)) * 4, fmt)
    xrd = decode(xr, fmt)
    theta = rope_angles(positions, 64, 10000.0)
    c, sn = rope_tables(positions, 64, 10000.0, fmt)
    h = 32
    exact = np.concatenate([xrd[..., :h] * np.cos(theta) - xrd[..., h:] * np.sin(theta),
                            xrd[..., h:] * np.cos(theta) + xrd[..., :h] * np.sin(theta)], -1)
    rows.append(row("rope (D = 64)", fmt, decode(rope(xr, c, sn, fmt), fmt), exact, rope_bound(xrd, theta, fmt),
                    relative=False))
    return rows


def attention_row(rng) -> dict:
    fmt = get("bf16")
    q, k, v = (encode(rng.normal(size=(16, 64)) * 2, fmt) for _ in range(3))
    qd, kd, vd = (decode(a, fmt) for a in (q, k, v))
    scores = qd @ kd.T / 8
    exact = []
    for t in range(16):
        r = scores[t, :t + 1]
        e = np.exp(r - r.max())
        exact.append(e / e.sum() @ vd[:t + 1])
    got = decode(attention(q, k, v, fmt, acc="fp32", lanes=8), fmt)
    out = row("attention, bf16 data in fp32 (T = S = 16, D = 64)", fmt, got, np.array(exact),
              attention_bound(qd, kd, vd, fmt, acc="fp32", lanes=8), relative=False)
    return out


def measure(seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for name in FORMATS:
        fmt = get(name)
        rows += unary(fmt, rng) + vector_ops(fmt, rng)
    return rows + [attention_row(rng)]


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rel = [r for r in rows if r["error"] == "relative"]
    labels = [f"{r['op'].split(' (')[0]}\n{r['format']}" for r in rel]
    x = np.arange(len(rel))
    fig, ax = plt.subplots(figsize=(max(8, len(rel) * 0.6), 4))
    ax.bar(x - 0.2, [r["bound_u"] for r in rel], 0.4, label="derived bound")
    ax.bar(x + 0.2, [r["worst_u"] for r in rel], 0.4, label="worst observed")
    ax.set_yscale("log")
    ax.set_ylabel("relative error / u")
    ax.set_xticks(x, labels, rotation=90, fontsize=7)
    ax.legend()
    ax.set_title("Decoder-block units against float64 (u: the format's unit roundoff)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args()
    rows = measure(args.seed)
    print("| unit | format | derived bound (u) | worst observed (u) | worst / bound | correctly rounded |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        fmt_u = lambda v: "–" if v is None else f"{v:.3g}"
        cr = r.get("correctly_rounded_share")
        print(f"| {r['op']} | {r['format']} | {fmt_u(r['bound_u'])} | {fmt_u(r['worst_u'])} | "
              f"{r['worst_over_bound']:.3f} | {'–' if cr is None else f'{cr:.1%}'} |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "seed": args.seed}, indent=1))
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
