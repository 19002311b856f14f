"""A registered block's self-check: its RTL on a simulator against its golden function."""

import time
from dataclasses import asdict, dataclass

import numpy as np

from . import Block
from ..sim.harness import HARNESSES, check_harness, get_harness
from ..support.errors import UsageError
from ..sim.scoreboard import describe_mismatch
from ..support.checks import check_int

__all__ = ["SelfCheck", "self_check"]

# Valid/ready stall probability on every stream of a stream block's self-check.
STALL = 0.3


@dataclass(frozen=True)
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
        # A check of no vectors checks nothing.
        return self.vectors > 0 and self.mismatches == 0

    @property
    def vectors_per_second(self) -> float:
        return self.vectors / self.run_seconds if self.run_seconds else float("inf")

    def to_json(self) -> dict:
        return {**asdict(self), "passed": self.passed, "vectors_per_second": self.vectors_per_second}


def _inputs(block: Block, params: dict, count: "int | None", seed: int, default: int):
    """Every input when ``count`` is not given and they are at most four times the harness's
    ``default`` (about 40 seconds of simulation), else ``count`` or ``default`` random ones."""
    if count is None:
        every = block.exhaustive(params)
        if every is not None and len(next(iter(every.values()))) <= 4 * default:
            return every, True
    return block.vectors(params, np.random.default_rng(seed), default if count is None else count), False


def self_check(block: Block, params: dict, harness: str = "batch", *, count: "int | None" = None,
               seed: "int | None" = None, waves: "str | None" = None) -> SelfCheck:
    """Run ``block``'s RTL on ``harness`` (a name of :data:`lutforge.sim.harness.HARNESSES`) and
    compare every output with the golden model. ``seed`` (default 0) draws the random vectors and
    stalls; it is refused where the check runs every input and has nothing to draw."""
    if count is not None:
        check_int("count", count, 1, fix="a self-check of no vectors checks nothing")
    if seed is not None:
        check_int("seed", seed, 0, fix="seeds are 0 or more")
    check_harness(harness, waves=waves)
    drawn_with = 0 if seed is None else seed
    inputs, exhaustive = _inputs(block, params, count, drawn_with, HARNESSES[harness].default_vectors)
    memories = {name: inputs.pop(name) for name in block.memories}
    n = len(next(iter(inputs.values())))
    if seed is not None and exhaustive and not block.streams:
        raise UsageError(f"seed={seed} has no effect: the self-check of {block.name} runs all {n} inputs; leave the "
                         f"seed out, or give a count of random vectors (--vectors N) to draw with it.")
    sim = get_harness(harness, block.build(params), waves=waves)
    latency = block.latency(params)

    # Stream blocks are compared per transaction, so the golden outputs set how many to wait for.
    expected = block.golden(params, {**inputs, **memories})
    started = time.monotonic()
    if block.streams:
        run = sim.run_streams(inputs, {name: len(values) for name, values in expected.items()},
                              seed=drawn_with, input_stall=STALL, output_stall=STALL, memories=memories)
    else:
        run = sim.run_vectors(inputs, latency)
    run_seconds = time.monotonic() - started

    mismatches, first = 0, None
    for name, want in expected.items():
        got, want = np.asarray(run.outputs[name]), np.asarray(want)
        bad = np.flatnonzero(got != want)
        mismatches += len(bad)
        if len(bad) and first is None:
            i = int(bad[0])
            shown = None if block.streams else {k: int(v[i]) for k, v in inputs.items()}
            first = f"output {name}: " + describe_mismatch(
                i, shown, int(want[i]), int(got[i]), cycle=None if block.streams else i + latency)
    return SelfCheck(block.name, params, harness, n, exhaustive, mismatches, first,
                     run.build_seconds, run.cached, run_seconds, run.waves_path and str(run.waves_path))
