"""Vectors per second on one block through four paths, measured in one run.

(a) Amaranth's Python simulator, (b) cocotb 2.x driving Verilator one vector per cycle, (c) the
batch harness (arrays in, arrays out, no Python per cycle), (d) a hand-written C++ loop around the
same Verilated model — the practical limit. The block is the combinational bf16 L-Mul multiplier.

    python bench/sim_throughput.py [--json PATH]

Targets from the foundation issue: (c) >= 20x (b), and (c) within 3x of (d).
"""

import argparse
import subprocess
import time
from pathlib import Path

import numpy as np

from lutforge.cli.common import write_json
from lutforge.golden.lmul import lmul
from lutforge.hdl.lmul import LMulMultiplier
from lutforge.sim.harness import get_harness
from lutforge.sim.rtl import elaborate
from lutforge.sim.verilator_build import build_executable

COUNTS = {"amaranth": 20_000, "cocotb": 20_000, "batch": 4_000_000, "raw": 4_000_000}


def _vectors(n, seed=0):
    rng = np.random.default_rng(seed)
    return {"a": rng.integers(0, 1 << 16, n, dtype=np.uint64), "b": rng.integers(0, 1 << 16, n, dtype=np.uint64)}


def _timed(harness, inputs):
    started = time.perf_counter()
    out = harness.run_vectors(inputs).outputs
    seconds = time.perf_counter() - started
    expected = lmul(inputs["a"], inputs["b"], "bf16")
    if not np.array_equal(out["r"], expected):
        raise SystemExit("The simulated block disagrees with the golden model; fix that before timing it.")
    return len(inputs["a"]) / seconds


def measure() -> dict[str, float]:
    component = LMulMultiplier("bf16")
    rates = {key: _timed(get_harness(harness, component), _vectors(COUNTS[key]))
             for key, harness in (("amaranth", "amaranth"), ("cocotb", "cocotb-verilator"), ("batch", "batch"))}
    design = elaborate(component)
    raw_source = (Path(__file__).parent / "raw_loop.cpp").read_text()
    raw, _, _ = build_executable("bench-raw", design.top, design.verilog, {"raw.cpp": raw_source})
    started = time.perf_counter()
    subprocess.run([str(raw), str(COUNTS["raw"])], check=True, capture_output=True)
    rates["raw"] = COUNTS["raw"] / (time.perf_counter() - started)
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", metavar="PATH", help="write the four rates (vectors/s) as JSON")
    args = parser.parse_args()
    rates = measure()
    print("path                         vectors/s")
    labels = {"amaranth": "(a) Amaranth simulator", "cocotb": "(b) cocotb + Verilator",
              "batch": "(c) batch harness", "raw": "(d) raw C++ loop"}
    for key, label in labels.items():
        print(f"{label:26s} {rates[key]:>12,.0f}")
    print(f"batch / cocotb   = {rates['batch'] / rates['cocotb']:8.1f}x  (target >= 20x)")
    print(f"raw / batch      = {rates['raw'] / rates['batch']:8.2f}x  (target <= 3x)")
    print(f"batch / amaranth = {rates['batch'] / rates['amaranth']:8.1f}x")
    write_json(args.json, rates)


if __name__ == "__main__":
    main()
