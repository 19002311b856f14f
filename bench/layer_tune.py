"""What a fit's own codebook tuning (``tune_steps``, :mod:`lutforge.compiler.layer_tune`) buys the
budget search: each LUT candidate of ``lutforge quantize``'s menu, on a sample of SmolLM2-135M's
layers, scored as the search scores it (relative output MSE of the lowered layer on the golden
backend, on the held-out valid rows no fit has seen) untuned and after ``--steps`` tuning steps,
with the time each tuned fit took.

    .venv/bin/python bench/layer_tune.py --steps 50 --json out/bench/layer_tune.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from lutforge.compiler.lut_methods import method_label
from lutforge.compiler.search import SEARCH_CALIBRATION, candidates
from lutforge.compiler.session import Session

LAYERS = ("layers.5.attn.q", "layers.5.mlp.up", "layers.5.mlp.down", "layers.15.attn.k", "layers.25.mlp.gate")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--layers", default=",".join(LAYERS), help="comma-separated layer names")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    s = Session(SEARCH_CALIBRATION, threads=args.threads)
    menu = [m for m in candidates().values() if m.kind in ("lut", "tmac")]
    rows = []
    print(f"{'layer':22} {'candidate':38} {'untuned':>9} {'tuned':>9} {'change':>8} {'tuning s':>9}")
    for name in args.layers.split(","):
        for m in menu:
            untuned = s.layer_error(name, m)
            start = time.perf_counter()
            tuned = s.layer_error(name, dataclasses.replace(m, tune_steps=args.steps))
            seconds = time.perf_counter() - start
            rows.append({"layer": name, "candidate": method_label(m), "untuned": untuned, "tuned": tuned,
                         "seconds": round(seconds, 1)})
            print(f"{name:22} {method_label(m):38} {untuned:9.4f} {tuned:9.4f} {tuned / untuned - 1:+8.1%} "
                  f"{seconds:9.1f}", flush=True)
    changes = [r["tuned"] / r["untuned"] - 1 for r in rows]
    summary = {"steps": args.steps, "torch_threads": torch.get_num_threads(), "rows": rows,
               "mean_change": sum(changes) / len(changes), "best_change": min(changes),
               "worst_change": max(changes)}
    print(f"relative output MSE change after {args.steps} steps: mean {summary['mean_change']:+.1%}, "
          f"best {summary['best_change']:+.1%}, worst {summary['worst_change']:+.1%}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
