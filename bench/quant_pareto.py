"""Perplexity against streamed bits per weight for every quantization method of
``compiler/lut_methods.py`` that a core runs, on the same data: SmolLM2-135M, WikiText-2 test
(first ``--windows`` windows of 512 tokens), calibration on WikiText-2 valid only.

Every point is the hardware arithmetic: each quantized layer is lowered onto its core and run on
the golden backend through the host driver (:class:`lutforge.compiler.session.Session`), exactly as
``lutforge run`` runs a compiled Program; block-format layers see the activations their core takes
(MXINT8 blocks unless the method says otherwise). Methods no core runs (float tables, the
artifact's float zero point) are not points.

Numerics points and searched configurations (``lutforge quantize``, passed with ``--config``)
cover all 210 decoder linears. LUT points quantize the 7 linears of one decoder block
(``--block``, others fp32 on the host) and report the streamed bits of those layers: fitting
codebooks for all 210 layers takes hours on a shared 2-core machine. Points are cached one JSON
each under ``out/bench/quant_pareto/`` (keyed on the configuration, the windows and the code and
library versions behind them), so the bench can be stopped and resumed and points run in separate
processes. Points fan out on an executor (``--executor local|ray --workers N --address ADDR``,
docs/scale-out.md): one task per point, each worker with its own session. Writes ``--json PATH``,
a markdown table and ``out/bench/quant_pareto.png``.

    .venv/bin/python bench/quant_pareto.py --windows 16 --json out/bench/quant_pareto.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from lutforge.compiler.lut_methods import LayerMethod, method_label
from lutforge.compiler.model import BLOCK_LINEARS
from lutforge.compiler.session import MethodConfig, load_method_config

OUT = Path(__file__).resolve().parents[1] / "out" / "bench"

ART = dict(v=2, c_a=64, c_w=16, group_rows=512, table_bits=8)
RICH = dict(v=2, c_a=256, c_w=16, group_rows=0, table_bits=8)
# (group, name, method) in the order they are run: the cheapest and most telling first.
POINTS = [
    ("reference", "mxint4", LayerMethod(kind="mxint4")),
    ("reference", "nvfp4", LayerMethod(kind="nvfp4")),
    ("reference", "mxint8", LayerMethod(kind="mxint8")),
    ("3 output-aware", "C_a 256, Hadamard, GPTQ-VQ", LayerMethod(**RICH, hadamard=64, fit="gptq")),
    ("1 table scales", "artifact codebooks, 1 scale/(position, block)",
     LayerMethod(**ART, scales="block", scale_positions=1)),
    ("2 richer codebooks", "C_a 256, residual, Hadamard, GPTQ-VQ",
     LayerMethod(**RICH, hadamard=64, fit="gptq", residual=True)),
    ("2 richer codebooks", "v 4, C_a 256, C_w 256, Hadamard, GPTQ-VQ",
     LayerMethod(v=4, c_a=256, c_w=256, table_bits=8, hadamard=64, fit="gptq")),
    ("2 richer codebooks", "v 2, C_a 64, 4-bit tables, Hadamard, GPTQ-VQ",
     LayerMethod(v=2, c_a=64, c_w=16, table_bits=4, hadamard=64, fit="gptq")),
    ("1 table scales", "artifact codebooks, 1 scale/row block", LayerMethod(**ART, scales="block")),
    ("2 richer codebooks", "C_a 256, G = N", LayerMethod(**RICH)),
    ("4 Hadamard", "C_a 256, G = N, Hadamard 64", LayerMethod(**RICH, hadamard=64)),
    ("3 output-aware", "C_a 256, Hadamard, act-moment k-means", LayerMethod(**RICH, hadamard=64, fit="act")),
    ("3 output-aware, numerics", "MXINT4, GPTQ rounding", LayerMethod(kind="mxint4", fit="gptq")),
    ("3 output-aware, numerics", "NVFP4, GPTQ rounding", LayerMethod(kind="nvfp4", fit="gptq")),
]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").lower()


def _cached(name: str, cfg, windows: int) -> Path:
    """A point's result file, keyed on everything that determines it: the configuration, the
    windows, and the code and library versions of its fits, calibration and scoring."""
    from lutforge.compiler.calibration import calibration_version
    from lutforge.compiler.lut_methods import fit_version
    from lutforge.compiler.session import SCORING_SOURCES
    from lutforge.support.cache import content_key, source_hash

    methods = [] if cfg is None else [cfg.default, *cfg.layers.values()]
    key = content_key(repr(cfg), str(windows), {"fits": sorted({fit_version(m) for m in methods})},
                      source_hash(*SCORING_SOURCES), calibration_version())
    return OUT / "quant_pareto" / f"{_slug(name)}-w{windows}-{key}.json"


def _point_row(task) -> dict:
    """One point's row (the hardware arithmetic on the golden backend), computed in a worker and
    written to its cache file there."""
    from lutforge.compiler.session import worker_session

    spec, group, name, cfg, windows = task
    session = worker_session(spec)
    r = session.perplexity(cfg, windows).to_json()
    if cfg is not None and cfg.default.kind == "fp32":
        r["bits_per_weight"] = session.bits(cfg, only=list(cfg.layers))
        r["layers"] = sorted(cfg.layers)
    r.update(group=group, name=name,
             method=None if cfg is None else (method_label(cfg.default) if not cfg.layers else "searched"))
    path = _cached(name, cfg, windows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(r, indent=2) + "\n")
    tmp.replace(path)  # atomic: an interrupted run leaves no half-written point
    return r


def run_points(spec, points, windows: int, executor=None) -> list[dict]:
    """Every point's row, computed unless cached (on ``executor``: one task per point, each worker
    with the session ``spec`` describes); with no ``spec``, only the cached rows."""
    rows = {}
    todo = []
    for group, name, cfg in points:
        path = _cached(name, cfg, windows)
        if path.is_file():
            rows[name] = json.loads(path.read_text())
        elif spec is not None:
            todo.append((spec, group, name, cfg, windows))
    if todo:
        from lutforge.support.executor import get_executor
        executor = executor or get_executor("local")
        for r in executor.map(_point_row, todo, labels=[t[2] for t in todo], desc="Pareto points"):
            print(f"{r['name']}: ppl {r['perplexity']:.4g} at {r['bits_per_weight']:.3f} bits/weight", flush=True)
            rows[r["name"]] = r
    return [rows[name] for _, name, _ in points if name in rows]


def table(rows: list[dict]) -> str:
    fp = next((r["perplexity"] for r in rows if r["name"] == "fp32"), None)
    lines = ["| group | method | streamed bits/weight | perplexity | ratio to fp32 |", "|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["group"], r["bits_per_weight"])):
        ratio = f"{r['perplexity'] / fp:.3g}" if fp else "-"
        lines.append(f"| {r['group']} | {r['name']} | {r['bits_per_weight']:.3f} | {r['perplexity']:.4g} | {ratio} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, windows: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    groups = sorted({r["group"] for r in rows})
    for i, gname in enumerate(groups):
        pts = [r for r in rows if r["group"] == gname]
        ax.scatter([r["bits_per_weight"] for r in pts], [r["perplexity"] for r in pts], label=gname,
                   s=40, marker="os^Dvp*hX"[i % 9])
        for r in pts:
            ax.annotate(r["name"], (r["bits_per_weight"], r["perplexity"]), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
    fp = next((r["perplexity"] for r in rows if r["name"] == "fp32"), None)
    if fp:
        ax.axhline(fp, color="k", lw=0.8, ls="--")
        ax.axhline(1.1 * fp, color="tab:green", lw=0.8, ls=":", label="goal: 1.10 x fp32")
    ax.axvline(4.0, color="tab:green", lw=0.8, ls=":")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("streamed bits per weight (decoder linears)")
    ax.set_ylabel(f"perplexity, WikiText-2 test ({windows} x 512 tokens)")
    ax.set_title("SmolLM2-135M: perplexity vs streamed bits per weight")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=16)
    ap.add_argument("--only", action="append", help="run only points whose name contains this")
    ap.add_argument("--config", action="append", default=[], help="searched method config(s) to add")
    ap.add_argument("--no-run", action="store_true", help="only tabulate and plot the cached points")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per point")
    ap.add_argument("--executor", default="local", choices=("local", "ray"))
    ap.add_argument("--workers", type=int, default=1, help="points at a time (local processes or Ray tasks)")
    ap.add_argument("--address", default=None, help="a running Ray cluster for --executor ray")
    ap.add_argument("--block", type=int, default=15,
                    help="decoder block whose 7 linears the LUT points quantize (others stay fp32)")
    args = ap.parse_args(argv)
    block = [f"layers.{args.block}.{n}" for n in BLOCK_LINEARS]
    points = [("reference", "fp32", None)]
    for g, n, m in POINTS:
        if args.only and not any(o in n for o in args.only):
            continue
        if m.kind == "lut":
            # LUT fits cost minutes per layer on a shared 2-core machine: one block's linears.
            points.append((f"{g} [block {args.block} only]", n,
                           MethodConfig(_slug(n), LayerMethod(kind="fp32"), {l: m for l in block})))
        else:
            points.append((g, n, MethodConfig(_slug(n), m)))
    for c in args.config:
        cfg = load_method_config(c)
        points.append(("5 budget configurations (whole model)", f"config: {cfg.name}", cfg))
    spec = None
    if not args.no_run:
        from lutforge.compiler.session import SessionSpec
        from lutforge.program.core import GemvCoreParams
        calibration = {"windows": 4, "window": 512, "rows": 2048}
        spec = SessionSpec(tuple(sorted(calibration.items())), GemvCoreParams(), args.threads)
    from lutforge.support.executor import get_executor
    executor = get_executor(args.executor, workers=args.workers, address=args.address)
    rows = run_points(spec, points, args.windows, executor)
    print(table(rows))
    plot(rows, OUT / "quant_pareto.png", args.windows)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"windows": args.windows, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
