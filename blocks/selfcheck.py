"""A registered block's self-check: its RTL on a simulator against its golden function."""

import time
from dataclasses import asdict, dataclass

import numpy as np

from . import Block
from ..sim.scoreboard import describe_mismatch

__all__ = ["SelfCheck", "self_check", "HARNESSES", "DEFAULT_VECTORS"]

HARNESSES = ("amaranth", "batch", "cocotb-verilator", "cocotb-icarus")
# Random vectors per harness when the input space is too large to cover: about ten seconds each.
# Valid/ready stall probability on every stream of a stream block's self-check.
STALL = 0.3
DEFAULT_VECTORS = {"amaranth": 20_000, "batch": 1_000_000, "cocotb-verilator": 50_000, "cocotb-icarus": 5_000}


@dataclass
class SelfCheck:
    block: str
    params: dict
    harness: str
    vectors: int
    exhaustive: bool
    mismatches: int
    first_mismatch: "str | None"
    build_seconds: float
    build_cached: bool
    run_seconds: float
    waves_path: "str | None" = None

    @property
    def passed(self) -> bool:
        return self.mismatches == 0

    @property
    def vectors_per_second(self) -> float:
        return self.vectors / self.run_seconds if self.run_seconds else float("inf")

    def to_json(self) -> dict:
        return {**asdict(self), "passed": self.passed, "vectors_per_second": self.vectors_per_second}


def _inputs(block: Block, params: dict, count: "int | None", seed: int, exhaustive_ok: bool):
    if exhaustive_ok and count is None:
        every = block.exhaustive(params)
        if every is not None:
            return every, True
    n = count if count is not None else DEFAULT_VECTORS["batch"]
    return block.vectors(params, np.random.default_rng(seed), n), False


def self_check(block: Block, params: dict, harness: str = "batch", *, count: "int | None" = None,
               seed: int = 0, waves: "str | None" = None) -> SelfCheck:
    """Run ``block``'s RTL on ``harness`` and compare every output with the golden model."""
    if harness not in HARNESSES:
        raise ValueError(f"Harness {harness!r} is unknown; use one of {', '.join(HARNESSES)}.")
    component = block.build(params)
    latency = block.latency(params)
    if count is None and harness != "batch":
        every = block.exhaustive(params)
        count = None if every is not None and len(next(iter(every.values()))) <= DEFAULT_VECTORS[harness] * 4 \
            else DEFAULT_VECTORS[harness]
    inputs, exhaustive = _inputs(block, params, count, seed, exhaustive_ok=True)
    n = len(next(iter(inputs.values())))

    # Stream blocks are compared per transaction, so the golden outputs set how many to wait for.
    expected = block.golden(params, inputs)
    expect = {name: len(values) for name, values in expected.items()}
    build_seconds, cached, waves_path = 0.0, False, None
    if harness == "batch":
        from ..sim.batch import BatchSim
        sim = BatchSim(component)
        build_seconds, cached = sim.build_seconds, sim.cached
        started = time.monotonic()
        if block.streams:
            actual = sim.run_streams(inputs, expect, seed=seed, input_stall=STALL, output_stall=STALL).outputs
        else:
            actual = sim.run_vectors(inputs, latency)
    elif harness == "amaranth":
        from ..sim.amaranth_sim import run_streams_amaranth, run_vectors_amaranth
        started = time.monotonic()
        if block.streams:
            actual = run_streams_amaranth(component, inputs, expect, seed=seed, stall=STALL)
        else:
            actual = run_vectors_amaranth(component, inputs, latency)
    else:
        from ..sim.cocotb_run import CocotbSim
        sim = CocotbSim(component, simulator=harness.split("-")[1], waves=waves)
        build_seconds, waves_path = sim.build_seconds, sim.waves_path and str(sim.waves_path)
        started = time.monotonic()
        if block.streams:
            actual = sim.run_streams(inputs, expect, seed=seed, stall=STALL)
        else:
            actual = sim.run_vectors(inputs, latency)
    run_seconds = time.monotonic() - started

    mismatches, first = 0, None
    for name, want in expected.items():
        got, want = np.asarray(actual[name]), np.asarray(want)
        bad = np.flatnonzero(got != want)
        mismatches += len(bad)
        if len(bad) and first is None:
            i = int(bad[0])
            shown = None if block.streams else {k: int(v[i]) for k, v in inputs.items()}
            first = f"output {name}: " + describe_mismatch(
                i, shown, int(want[i]), int(got[i]), cycle=None if block.streams else i + latency)
    return SelfCheck(block.name, params, harness, n, exhaustive, mismatches, first,
                     build_seconds, cached, run_seconds, waves_path)
