"""L-Mul precision against FP8 (the paper's precision comparison, arXiv 2410.00907 §3).

For x, y ~ N(0, 1) (float32 draws; the reference is their exact product in float64), this measures
the mean and 99th-percentile relative error |approx − xy| / |xy| of:

* L-Mul with m = 2..7 mantissa bits (8 exponent bits, bias 127: fp32 with a shortened mantissa, as
  the paper emulates it), operands rounded into that format to nearest (RNE) or truncated, with the
  paper's offset and with the best offset (the integer offset of lowest mean error, searched on a
  subsample over every value of the low m bits);
* the exact product rounded once to e4m3 / e5m2 (RNE);
* an e4m3 / e5m2 multiplier: operands rounded to the format, product rounded to it
  (``golden.fp.mul``).

All conversions are ``golden.convert`` (integer rounding, no float casts); L-Mul is
``golden.lmul.lmul`` with its default policy. SmolLM2 q/k activations are not measured yet (only
Gaussian operands).

    python bench/lmul_precision.py [--samples N] [--seed S] [--json PATH] [--plot PATH]
"""

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lutforge.golden import fp
from lutforge.golden.convert import decode, encode
from lutforge.golden.formats import shortened_fp32
from lutforge.golden.lmul import default_offset, lmul

MANTISSAS = range(2, 8)
ROUNDINGS = {"nearest": "rne", "truncated": "truncate"}
# "≈" (comparable precision): the L-Mul mean error is at most this factor above the reference's.
CLOSE = 1.2


def rel_error(approx: np.ndarray, exact: np.ndarray) -> np.ndarray:
    return np.abs(approx - exact) / np.abs(exact)


def stats(err: np.ndarray) -> dict:
    return {"mean": float(err.mean()), "p99": float(np.percentile(err, 99))}


def lmul_error(a, b, exact, fmt, offset):
    return rel_error(decode(lmul(a, b, fmt, offset=offset), fmt), exact)


def best_offset(a, b, exact, fmt) -> int:
    base = fmt.bias << fmt.man_bits
    candidates = [base - c for c in range(1 << fmt.man_bits)]
    means = [lmul_error(a, b, exact, fmt, off).mean() for off in candidates]
    return candidates[int(np.argmin(means))]


def measure(samples: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(samples).astype(np.float32)
    y = rng.standard_normal(samples).astype(np.float32)
    keep = (x != 0) & (y != 0)
    x, y = x[keep], y[keep]
    exact = x.astype(np.float64) * y.astype(np.float64)
    sub = slice(0, min(len(x), 200_000))

    rows = []
    jobs = [(m, name) for m in MANTISSAS for name in ROUNDINGS]
    for m, name in tqdm(jobs, desc="L-Mul m x rounding", unit="case"):
        fmt, rounding = shortened_fp32(m), ROUNDINGS[name]
        a, b = encode(x, fmt, rounding=rounding), encode(y, fmt, rounding=rounding)
        paper = default_offset(fmt)
        best = best_offset(a[sub], b[sub], exact[sub], fmt)
        rows.append({
            "m": m, "rounding": name,
            "paper_offset": paper, "paper": stats(lmul_error(a, b, exact, fmt, paper)),
            "best_offset": best, "best_offset_lsbs_below_paper": paper - best,
            "best": stats(lmul_error(a, b, exact, fmt, best)),
        })
    fp32 = stats(lmul_error(x.view(np.uint32), y.view(np.uint32), exact, shortened_fp32(23), None))

    references = {}
    for name in ("e4m3", "e5m2"):
        rounded = decode(encode(exact, name), name)
        a, b = encode(x, name), encode(y, name)
        multiplied = decode(fp.mul(a, b, name), name)
        references[f"{name} rounding"] = stats(rel_error(rounded, exact))
        references[f"{name} multiplier"] = stats(rel_error(multiplied, exact))
    return {"samples": int(len(x)), "seed": seed, "lmul": rows, "lmul_fp32": fp32, "references": references}


def claims(result: dict) -> list[dict]:
    """Where the paper's two precision claims hold, case by case."""
    refs = result["references"]
    out = []
    for row in result["lmul"]:
        for offset in ("paper", "best"):
            mean = row[offset]["mean"]
            if row["m"] == 4:
                for ref in ("e4m3 rounding", "e4m3 multiplier"):
                    r = refs[ref]["mean"]
                    out.append({"claim": "4-bit L-Mul ≈ e4m3", "operands": row["rounding"], "offset": offset,
                                "against": ref, "lmul_mean": mean, "ref_mean": r,
                                "holds": mean <= CLOSE * r})
            if row["m"] == 3:
                for ref in ("e5m2 rounding", "e5m2 multiplier"):
                    r = refs[ref]["mean"]
                    out.append({"claim": "3-bit L-Mul beats e5m2", "operands": row["rounding"], "offset": offset,
                                "against": ref, "lmul_mean": mean, "ref_mean": r, "holds": mean < r})
    return out


def report(result: dict, verdicts: list[dict]) -> None:
    print(f"Relative error of x·y, x, y ~ N(0,1), {result['samples']:,} pairs (seed {result['seed']})\n")
    print(f"{'L-Mul':>8} {'operands':>10} | {'paper offset':>14} {'mean':>7} {'p99':>7} | "
          f"{'best offset':>14} {'mean':>7} {'p99':>7}")
    for r in result["lmul"]:
        print(f"{'m=' + str(r['m']):>8} {r['rounding']:>10} | {r['paper_offset']:>#14x} {r['paper']['mean']:7.2%} "
              f"{r['paper']['p99']:7.2%} | {r['best_offset']:>#9x} ({-r['best_offset_lsbs_below_paper']:+d}) "
              f"{r['best']['mean']:7.2%} {r['best']['p99']:7.2%}")
    f = result["lmul_fp32"]
    print(f"{'fp32':>8} {'nearest':>10} | {'paper':>14} {f['mean']:7.2%} {f['p99']:7.2%} |")
    print(f"\n{'reference':>20} {'mean':>7} {'p99':>7}")
    for name, s in result["references"].items():
        print(f"{name:>20} {s['mean']:7.2%} {s['p99']:7.2%}")
    print(f"\nClaims ('≈': L-Mul mean error at most {CLOSE}x the reference's; 'beats': strictly lower):")
    for v in verdicts:
        print(f"  {v['claim']:24s} operands {v['operands']:9s} {v['offset']:5s} offset vs {v['against']:16s}: "
              f"{v['lmul_mean']:6.2%} vs {v['ref_mean']:6.2%} -> {'holds' if v['holds'] else 'does not hold'}")


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for ax, stat in zip(axes, ("mean", "p99")):
        for rounding, style in (("nearest", "-"), ("truncated", "--")):
            rows = [r for r in result["lmul"] if r["rounding"] == rounding]
            ms = [r["m"] for r in rows]
            ax.plot(ms, [r["paper"][stat] * 100 for r in rows], "o" + style, label=f"L-Mul, {rounding}, paper offset")
            ax.plot(ms, [r["best"][stat] * 100 for r in rows], "s" + style, label=f"L-Mul, {rounding}, best offset")
        for (name, s), color in zip(result["references"].items(), ("tab:purple", "black", "tab:pink", "tab:olive")):
            ax.axhline(s[stat] * 100, color=color, linestyle=":", label=name)
        ax.set_xlabel("L-Mul mantissa bits m")
        ax.set_ylabel(f"{stat} relative error (%)")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"L-Mul vs FP8 on N(0,1) products ({result['samples']:,} pairs)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    print(f"\nPlot: {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--plot", metavar="PATH", default="out/bench/lmul_precision.png")
    args = parser.parse_args(argv)
    if args.samples < 1000:
        parser.error(f"--samples {args.samples} is too few for a 99th percentile; use 1000 or more.")
    result = measure(args.samples, args.seed)
    verdicts = claims(result)
    report(result, verdicts)
    plot(result, Path(args.plot))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({**result, "claims": verdicts}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
