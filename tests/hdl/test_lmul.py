"""The L-Mul multiplier RTL equals golden.lmul: exhaustively for 8-bit formats, sampled for bf16/fp32.

One Verilator build per format holds every policy variant side by side (sim.variants), so the
sweep costs one build, not one per policy.
"""

import numpy as np
import pytest

from lutforge.golden.formats import get
from lutforge.golden.lmul import LMulPolicy, default_offset, lmul
from lutforge.hdl.lmul import LMulMultiplier
from lutforge.sim.batch import BatchSim
from lutforge.sim.variants import Variants


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


@pytest.mark.parametrize("name,latency,count", [
    ("e4m3", 0, None),
    ("e5m2", 0, None),
    ("bf16", 2, 1_000_000),
    # A fourth Verilator build; bf16 represents the wide formats in the default suite.
    pytest.param("fp32", 1, 1_000_000, marks=pytest.mark.slow),
])
def test_rtl_equals_golden(name, latency, count):
    fmt = get(name)
    sweep = variants(fmt)
    dut = Variants({n: LMulMultiplier(fmt, pol, offset=off, latency=latency) for n, (pol, off) in sweep.items()})
    sim = BatchSim(dut)
    a, b = operands(fmt, count, np.random.default_rng(0))
    got = sim.run_vectors({"a": a, "b": b}, latency=latency)
    for n, (pol, off) in sweep.items():
        want = lmul(a, b, fmt, pol, offset=off)
        bad = np.flatnonzero(got[f"{n}_r"] != want)
        assert len(bad) == 0, (
            f"{name} policy {n}: {len(bad)} of {len(a)} differ; first a={int(a[bad[0]]):#x} b={int(b[bad[0]]):#x} "
            f"want {int(want[bad[0]]):#x} ({int(want[bad[0]])}) got {int(got[f'{n}_r'][bad[0]]):#x} "
            f"({int(got[f'{n}_r'][bad[0]])}) at cycle {bad[0] + latency}")
    if count is None:
        assert len(a) == 65_536


def test_rejected_parameters_are_named():
    with pytest.raises(ValueError, match=r"L-Mul latency -1 is negative; use 0 \(combinational\) or more stages\."):
        LMulMultiplier("e4m3", latency=-1)
    with pytest.raises(ValueError, match=r"L-Mul offset 40000 does not fit the 15-bit magnitude of bf16; use 0\.\.32767\."):
        LMulMultiplier("bf16", offset=40_000)
