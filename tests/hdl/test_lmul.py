"""The L-Mul multiplier RTL equals golden.lmul: exhaustively for 8-bit formats, sampled for bf16/fp32.

Verilator builds dominate the run time, so one build holds every (format, policy) variant of the
default suite side by side: e4m3 and e5m2 combinational (outputs registered to line up), bf16
pipelined. fp32 gets its own build in the slow suite.
"""

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lutforge.golden.formats import get
from lutforge.golden.lmul import LMulPolicy, default_offset, lmul
from lutforge.hdl.lmul import LMulMultiplier
from lutforge.hdl.pipeline import delay
from lutforge.sim.batch import BatchSim

SWEEP_LATENCY = 2


class Sweep(wiring.Component):
    """Multipliers of different formats on shared raw inputs ``a``/``b`` (each reads its low bits);
    output ``NAME`` is variant NAME's result, delayed so every output has the same latency."""

    def __init__(self, units: dict, latency: int):
        self.units, self.latency = units, latency
        width = max(u.format.width for u in units.values())
        super().__init__({"a": In(width), "b": In(width),
                          **{name: Out(u.format.width) for name, u in units.items()}})

    def elaborate(self, platform):
        m = Module()
        for name, unit in self.units.items():
            m.submodules[name] = unit
            w = unit.format.width
            m.d.comb += [unit.a.eq(self.a[:w]), unit.b.eq(self.b[:w])]
            (out,) = delay(m, [unit.r.as_value()], self.latency - unit.latency, name=name)
            m.d.comb += getattr(self, name).eq(out)
        return m


def variants(fmt):
    """name -> (policy, offset) swept for every format."""
    return {
        "default": (LMulPolicy(), None),
        "inf": (LMulPolicy(overflow="inf"), None),
        "wrap": (LMulPolicy.wrap(), None),
        "raw": (LMulPolicy(zero="wrap", subnormal="wrap", nan_inf="wrap", underflow="wrap"), None),
        "offset": (LMulPolicy(), default_offset(fmt) - 1),
    }


def edge_values(fmt):
    """Zeros, subnormals, the smallest/largest normals, 1.0, Inf/NaN, both signs."""
    m = fmt.man_bits
    mags = {0, 1, fmt.man_mask, 1 << m, (1 << m) | fmt.man_mask, fmt.bias << m, (fmt.bias << m) | fmt.man_mask,
            fmt.max_finite, fmt.max_finite - 1, fmt.magnitude_mask, (fmt.bias + 1) << m}
    if fmt.has_inf:
        mags |= {fmt.inf, fmt.inf + 1}
    mags = np.array(sorted(mags), np.uint64)
    return np.concatenate([mags, mags | np.uint64(fmt.sign_mask)])


def operands(fmt, count, rng):
    if 2 * fmt.width <= 20:
        a, b = np.meshgrid(np.arange(1 << fmt.width, dtype=np.uint64), np.arange(1 << fmt.width, dtype=np.uint64))
        return a.ravel(), b.ravel()
    edges = edge_values(fmt)
    ea, eb = np.meshgrid(edges, edges)
    a = rng.integers(0, 1 << fmt.width, count, dtype=np.uint64)
    b = rng.integers(0, 1 << fmt.width, count, dtype=np.uint64)
    # Half the pairs near the bias, where products stay in range and mantissas carry or not.
    near = rng.random(count) < 0.5
    for x in (a, b):
        field = rng.integers(fmt.bias - 20, fmt.bias + 20, count).astype(np.uint64) << np.uint64(fmt.man_bits)
        x[near] = (x & np.uint64(fmt.sign_mask | fmt.man_mask))[near] | field[near]
    return np.concatenate([ea.ravel(), a]), np.concatenate([eb.ravel(), b])


def check(name, got, a, b, fmt, pol, off, latency):
    want = lmul(a, b, fmt, pol, offset=off)
    bad = np.flatnonzero(got != want)
    assert len(bad) == 0, (
        f"{fmt.name} policy {name}: {len(bad)} of {len(a)} differ; first a={int(a[bad[0]]):#x} "
        f"b={int(b[bad[0]]):#x} want {int(want[bad[0]]):#x} ({int(want[bad[0]])}) got {int(got[bad[0]]):#x} "
        f"({int(got[bad[0]])}) at cycle {bad[0] + latency}")


@pytest.fixture(scope="module")
def sweep():
    units, cases = {}, {}
    for fmt_name, latency in (("e4m3", 0), ("e5m2", 0), ("bf16", SWEEP_LATENCY)):
        fmt = get(fmt_name)
        for pname, (pol, off) in variants(fmt).items():
            units[f"{fmt_name}_{pname}"] = LMulMultiplier(fmt, pol, offset=off, latency=latency)
            cases[f"{fmt_name}_{pname}"] = (fmt, pol, off)
    return BatchSim(Sweep(units, SWEEP_LATENCY)), cases


@pytest.mark.parametrize("name", ["e4m3", "e5m2"])
def test_rtl_equals_golden_exhaustively(sweep, name):
    sim, cases = sweep
    fmt = get(name)
    a, b = operands(fmt, None, None)
    assert len(a) == 65_536
    got = sim.run_vectors({"a": a, "b": b}, latency=SWEEP_LATENCY).outputs
    for key, (f, pol, off) in cases.items():
        if f == fmt:
            check(key, got[key], a, b, fmt, pol, off, SWEEP_LATENCY)


def test_pipelined_bf16_equals_golden_on_a_million_vectors(sweep):
    sim, cases = sweep
    fmt = get("bf16")
    a, b = operands(fmt, 1_000_000, np.random.default_rng(0))
    got = sim.run_vectors({"a": a, "b": b}, latency=SWEEP_LATENCY).outputs
    for key, (f, pol, off) in cases.items():
        if f == fmt:
            check(key, got[key], a, b, fmt, pol, off, SWEEP_LATENCY)


@pytest.mark.slow
def test_pipelined_fp32_equals_golden_on_a_million_vectors():
    fmt = get("fp32")
    units = {f"fp32_{n}": LMulMultiplier(fmt, pol, offset=off, latency=1) for n, (pol, off) in variants(fmt).items()}
    sim = BatchSim(Sweep(units, 1))
    a, b = operands(fmt, 1_000_000, np.random.default_rng(0))
    got = sim.run_vectors({"a": a, "b": b}, latency=1).outputs
    for n, (pol, off) in variants(fmt).items():
        check(n, got[f"fp32_{n}"], a, b, fmt, pol, off, 1)


def test_rejected_parameters_are_named():
    with pytest.raises(ValueError, match=r"L-Mul latency -1 is negative; use 0 \(combinational\) or more stages\."):
        LMulMultiplier("e4m3", latency=-1)
    with pytest.raises(ValueError, match=r"L-Mul offset 40000 does not fit the 15-bit magnitude of bf16; use 0\.\.32767\."):
        LMulMultiplier("bf16", offset=40_000)
