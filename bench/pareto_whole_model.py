"""The whole-model Pareto front from measured runs: perplexity against streamed bits per weight.

Each point is one whole-model measurement in the hardware arithmetic: a ``lutforge run --json``
result (keys ``perplexity``, ``bits_per_weight``, ``windows``) or a point JSON of
``bench/quant_pareto.py`` (same keys). Points are given as ``LABEL=PATH``, with ``--trained
LABEL=PATH`` for configurations trained by ``lutforge finetune`` (drawn filled, the untrained
point of the same label hollow). All points must be measured on the same number of windows; the
fp32 point (``--fp32 PATH``) gives the ratio column and the dashed line.

    python bench/pareto_whole_model.py --fp32 F --point "NVFP4=P" --trained "NVFP4=Q" --json out/bench/pareto.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _load(spec: str, parser) -> tuple[str, dict]:
    label, sep, path = spec.partition("=")
    if not sep or not label or not path:
        parser.error(f"point {spec!r} is not LABEL=PATH")
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        parser.error(f"point {label!r}: {path} cannot be read as JSON ({error})")
    missing = [k for k in ("perplexity", "bits_per_weight", "windows") if k not in data]
    if missing:
        parser.error(f"point {label!r}: {path} has no {missing[0]!r}; give a `lutforge run --json` result")
    return label, data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp32", required=True, help="the fp32 point's JSON")
    parser.add_argument("--point", action="append", default=[], help="LABEL=PATH, untrained")
    parser.add_argument("--trained", action="append", default=[], help="LABEL=PATH, after lutforge finetune")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path, default=Path("out/bench/pareto_whole_model.png"))
    args = parser.parse_args(argv)
    _, fp32 = _load(f"fp32={args.fp32}", parser)
    rows = [{"label": label, "trained": trained, **{k: d[k] for k in ("perplexity", "bits_per_weight", "windows")}}
            for specs, trained in ((args.point, False), (args.trained, True))
            for label, d in (_load(s, parser) for s in specs)]
    for r in rows:
        if r["windows"] != fp32["windows"]:
            parser.error(f"point {r['label']!r} was measured on {r['windows']} windows, fp32 on {fp32['windows']}; "
                         f"measure both on the same windows")
        r["ratio"] = r["perplexity"] / fp32["perplexity"]
    rows.sort(key=lambda r: (-r["bits_per_weight"], r["perplexity"]))
    lines = [f"| streamed bits/weight | configuration | trained | perplexity ({fp32['windows']} windows) | × fp32 |",
             "|---|---|---|---|---|", f"| 32 | fp32 | — | {fp32['perplexity']:.2f} | 1.00 |"]
    lines += [f"| {r['bits_per_weight']:.3f} | {r['label']} | {'yes' if r['trained'] else 'no'} | "
              f"{r['perplexity']:.2f} | {r['ratio']:.2f} |" for r in rows]
    print("\n".join(lines))
    _plot(rows, fp32, args.plot)
    print(f"plot: {args.plot}", file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"fp32": fp32["perplexity"], "windows": fp32["windows"], "rows": rows},
                                        indent=1))


def _plot(rows, fp32, path: Path):
    """Left: every point (log axes). Right: the front near fp32 (perplexity under 2.5 x fp32, the
    4-bit budgets), on linear axes with the trained points labelled, where the left panel's labels
    would overprint."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = fp32["perplexity"]
    near = [r for r in rows if r["perplexity"] < 2.5 * ref and r["bits_per_weight"] < 6]
    fig, (ax, zoom) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [1, 1.3]})
    for axis in (ax, zoom):
        axis.axhline(ref, color="k", ls="--", lw=0.8, label=f"fp32 {ref:.1f}")
        for r in rows if axis is ax else near:
            axis.scatter(r["bits_per_weight"], r["perplexity"], s=40, edgecolors="tab:blue",
                         facecolors="tab:blue" if r["trained"] else "none", zorder=3)
    for r in rows:
        if r not in near:
            ax.annotate(r["label"] + (" (trained)" if r["trained"] else ""),
                        (r["bits_per_weight"], r["perplexity"]), fontsize=7, xytext=(-4, 6),
                        textcoords="offset points", ha="right")
    # Labels of the zoomed points in a column beside the axes, one line each, with a leader line.
    ordered = sorted(near, key=lambda r: r["perplexity"])
    for i, r in enumerate(ordered):
        y = 0.04 + 0.92 * i / max(1, len(ordered) - 1)
        zoom.annotate(f"{r['label']}{' (trained)' if r['trained'] else ''}: {r['perplexity']:.2f}",
                      (r["bits_per_weight"], r["perplexity"]), xytext=(1.03, y), textcoords="axes fraction",
                      fontsize=7, va="center", arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.6"})
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("streamed bits per weight")
    ax.set_ylabel(f"perplexity, WikiText-2 test, {fp32['windows']} windows (hardware arithmetic)")
    ax.set_title("every point (filled = after lutforge finetune)", fontsize=10)
    ax.legend(loc="upper left")
    zoom.set_xlabel("streamed bits per weight")
    zoom.set_title(f"near fp32 (under {2.5 * ref:.0f})", fontsize=10)
    fig.suptitle("SmolLM2-135M, whole model")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
