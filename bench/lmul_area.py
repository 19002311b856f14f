"""L-Mul against the exact multiplier of the same format: FPGA resources, Fmax and energy.

Area: ``LMulMultiplier(fmt)`` and ``FPMultiplier(fmt)`` (RNE, the exact multiplier ``golden.fp.mul``
models), both combinational between input and output registers, synthesised for iCE40 and ECP5 with
``lutforge.boards.synth`` (yosys + nextpnr): LUTs, DSP blocks, Fmax — for bf16 and e4m3.

Energy: a relative estimate from the 45 nm per-operation energies of Horowitz (ISSCC 2014,
"Computing's energy problem"), as the L-Mul paper quotes them in its Table 1: an L-Mul costs one
integer addition of the format's width, an exact multiply one FP multiplication; a dot-product
element adds one FP addition to both.

    python bench/lmul_area.py [--json PATH] [--plot PATH]
"""

import argparse
import importlib.util
import json
from pathlib import Path

# pJ at 45 nm, 0.9 V (Horowitz, ISSCC 2014; Table 1 of arXiv 2410.00907).
HOROWITZ_PJ = {
    "int8 add": 0.03, "int32 add": 0.1, "fp16 add": 0.4, "fp32 add": 0.9,
    "int8 mul": 0.2, "int32 mul": 3.1, "fp16 mul": 1.1, "fp32 mul": 3.7,
}

# Per format: (L-Mul's integer adder, the exact FP multiply, the accumulating FP add, how exact the
# stand-in is). Horowitz lists no bf16/fp8 figures: the nearest listed operation stands in, and the
# note says which way that biases the ratio.
ENERGY_CASES = {
    "fp32": ("int32 add", "fp32 mul", "fp32 add", "figures as published"),
    "bf16": ("int16 add", "fp16 mul", "fp32 add",
             "int16 add interpolated linearly between int8 and int32 adds; fp16 mul stands in for "
             "bf16 mul (an 8x8 significand product is smaller than fp16's 11x11, so the saving is overstated)"),
    "e4m3": ("int8 add", "int8 mul", "fp16 add",
             "int8 mul stands in for an e4m3 mul (4x4 significand product plus exponent add: smaller, "
             "so the saving is overstated); fp16 add for the accumulation"),
}

AREA_FORMATS = ("bf16", "e4m3")
FAMILIES = ("ice40", "ecp5")


def energy_pj(op: str) -> float:
    if op == "int16 add":
        return HOROWITZ_PJ["int8 add"] + (HOROWITZ_PJ["int32 add"] - HOROWITZ_PJ["int8 add"]) * (16 - 8) / (32 - 8)
    return HOROWITZ_PJ[op]


def energy_table() -> list[dict]:
    rows = []
    for fmt, (add, mul, acc, note) in ENERGY_CASES.items():
        lmul, exact, accumulate = energy_pj(add), energy_pj(mul), energy_pj(acc)
        rows.append({
            "format": fmt, "lmul_op": add, "exact_op": mul, "acc_op": acc,
            "lmul_pj": lmul, "exact_pj": exact,
            "elementwise_saving": 1 - lmul / exact,
            "dot_saving": 1 - (lmul + accumulate) / (exact + accumulate),
            "note": note,
        })
    return rows


def area_table() -> "list[dict] | str":
    """Synthesis results, or a sentence saying why there are none."""
    if importlib.util.find_spec("lutforge.boards.synth") is None:
        return ("lutforge.boards.synth (the shared yosys/nextpnr helper) is not in this checkout yet, so the "
                "LUT/DSP/Fmax comparison was not run; rerun this bench once it exists.")
    return _synthesise()


def _synthesise() -> list[dict]:
    from lutforge.hdl.fp_mul import FPMultiplier
    from lutforge.hdl.lmul import LMulMultiplier
    from lutforge.boards import synth

    rows = []
    for fmt in AREA_FORMATS:
        for family in FAMILIES:
            for unit, build in (("L-Mul", LMulMultiplier), ("exact", FPMultiplier)):
                result = synth.synthesize(build(fmt), family)
                rows.append({"format": fmt, "family": family, "unit": unit, "luts": result.luts,
                             "carries": result.carries, "dsps": result.dsps, "ffs": result.ffs,
                             "fmax_mhz": result.fmax_mhz, "pnr_error": result.pnr_error})
    return rows


def report(energy: list[dict], area) -> None:
    print("Energy per operation, 45 nm (Horowitz ISSCC 2014 as quoted in arXiv 2410.00907, Table 1)\n")
    print(f"{'format':>6} | {'L-Mul op':>10} {'pJ':>5} | {'exact op':>9} {'pJ':>5} | {'elementwise':>11} | "
          f"{'dot (+ acc add)':>15}")
    for r in energy:
        print(f"{r['format']:>6} | {r['lmul_op']:>10} {r['lmul_pj']:5.3f} | {r['exact_op']:>9} {r['exact_pj']:5.2f} | "
              f"{r['elementwise_saving']:10.1%}  | {r['dot_saving']:9.1%} ({r['acc_op']})")
    for r in energy:
        print(f"  {r['format']}: {r['note']}")
    print("\nFPGA resources, L-Mul vs exact multiplier of the same format")
    if isinstance(area, str):
        print(f"  MISSING: {area}")
        return
    print("(iCE40 UP5K and ECP5-85F; inputs and outputs registered by sim.synth's wrapper, so Fmax is "
          "register to register through the combinational unit)")
    print(f"{'format':>6} {'family':>6} | {'unit':>6} {'LUTs':>6} {'carry':>6} {'DSPs':>5} {'FFs':>5} {'Fmax MHz':>9}")
    for r in area:
        fmax = f"{r['fmax_mhz']:9.1f}" if r["fmax_mhz"] is not None else f"{'n/a':>9} ({r['pnr_error']})"
        print(f"{r['format']:>6} {r['family']:>6} | {r['unit']:>6} {r['luts']:6d} {r['carries']:6d} {r['dsps']:5d} "
              f"{r['ffs']:5d} {fmax}")
    for fmt in AREA_FORMATS:
        for family in FAMILIES:
            pair = {r["unit"]: r for r in area if r["format"] == fmt and r["family"] == family}
            lm, ex = pair["L-Mul"], pair["exact"]
            line = (f"  {fmt} on {family}: exact/L-Mul LUTs {ex['luts'] / max(lm['luts'], 1):.1f}x, "
                    f"DSPs {ex['dsps']} vs {lm['dsps']}")
            if lm["fmax_mhz"] and ex["fmax_mhz"]:
                line += f", Fmax L-Mul/exact {lm['fmax_mhz'] / ex['fmax_mhz']:.2f}x"
            print(line)


def plot(energy: list[dict], area, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 1 if isinstance(area, str) else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False)
    ax = axes[0][0]
    names = [r["format"] for r in energy]
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [r["elementwise_saving"] * 100 for r in energy], 0.4, label="element-wise")
    ax.bar([i + 0.2 for i in x], [r["dot_saving"] * 100 for r in energy], 0.4, label="dot product")
    ax.set_xticks(list(x), names)
    ax.set_ylabel("energy saving vs exact multiply (%)")
    ax.set_title("Horowitz 45 nm estimate")
    ax.set_ylim(0, 115)
    ax.legend(loc="upper center", ncol=2)
    if panels == 2:
        ax = axes[0][1]
        labels = [f"{r['format']}\n{r['family']}\n{r['unit']}" for r in area]
        ax.bar(range(len(area)), [r["luts"] for r in area], color=["C0" if r["unit"] == "L-Mul" else "C1" for r in area])
        ax.set_xticks(range(len(area)), labels, fontsize=7)
        ax.set_ylabel("LUTs")
        ax.set_title("FPGA LUTs")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    print(f"\nPlot: {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--plot", metavar="PATH", default="out/bench/lmul_area.png")
    args = parser.parse_args(argv)
    energy = energy_table()
    area = area_table()
    report(energy, area)
    plot(energy, area, Path(args.plot))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "energy_source": "Horowitz, ISSCC 2014, 45 nm; as quoted in arXiv 2410.00907 Table 1",
            "energy_pj": HOROWITZ_PJ, "energy": energy,
            "area": area if not isinstance(area, str) else None,
            "area_missing": area if isinstance(area, str) else None,
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
