"""FP multiplier and adder RTL (optimised and reference forms) against the golden model: every
operand pair of the 8-bit-and-smaller formats, for every policy the format supports.

One Verilator build per format holds every (unit, policy) variant side by side.
"""

import functools

import numpy as np
import pytest

from lutforge.golden import formats, fp
from lutforge.hdl.fp_add import FPAdder
from lutforge.hdl.fp_mul import FPMultiplier
from lutforge.formal.reference_fp import ReferenceAdder, ReferenceMultiplier
from lutforge.hdl.round_pack import policy_grid
from lutforge.sim.batch import BatchSim
from lutforge.sim.compare import assert_outputs_equal
from lutforge.sim.variants import Variants

FORMATS = ("e4m3", "e5m2", "e3m2", "e2m1")
UNITS = {"mul": FPMultiplier, "add": FPAdder, "refmul": ReferenceMultiplier, "refadd": ReferenceAdder}


def _key(unit, policy):
    return f"{unit}_{policy['rounding']}_{policy['overflow']}_{policy['subnormals']}"


@functools.cache
def _run(name):
    fmt = formats.get(name)
    codes = np.arange(1 << fmt.width, dtype=np.uint64)
    a, b = (x.ravel() for x in np.meshgrid(codes, codes))
    variants = {_key(u, p): cls(fmt, **p) for u, cls in UNITS.items() for p in policy_grid(fmt)}
    return {"a": a, "b": b}, BatchSim(Variants(variants)).run_vectors({"a": a, "b": b}).outputs


CASES = [(name, unit, policy) for name in FORMATS for unit in UNITS for policy in policy_grid(name)]


@pytest.mark.parametrize("name,unit,policy", CASES,
                         ids=[f"{n}-{_key(u, p)}" for n, u, p in CASES])
def test_exhaustive_equals_golden(name, unit, policy):
    inputs, outputs = _run(name)
    fmt = formats.get(name)
    op = getattr(fp, unit.removeprefix("ref"))
    expected = op(inputs["a"].astype(fmt.dtype), inputs["b"].astype(fmt.dtype), fmt, **policy)
    assert len(expected) == 1 << (2 * fmt.width)
    assert_outputs_equal(f"{name} {_key(unit, policy)}", inputs, expected, outputs[f"{_key(unit, policy)}_r"])


def test_policies_cover_the_grid():
    # e4m3/e5m2: 2 roundings x 2 overflows x 2 subnormal modes; fp6/fp4 have only "saturate".
    assert len(policy_grid("e4m3")) == 8 and len(policy_grid("e2m1")) == 4
    assert sum(1 for n, u, p in CASES if u == "mul") == 8 + 8 + 4 + 4


def test_refused_policies_name_the_fix():
    with pytest.raises(ValueError, match="stochastic.*golden conversion only.*'rne' or 'truncate'"):
        FPMultiplier("e4m3", rounding="stochastic")
    with pytest.raises(ValueError, match="no Inf or NaN encoding.*overflow='saturate'"):
        FPAdder("e2m1", overflow="inf")
    with pytest.raises(ValueError, match="latency -1 is not allowed"):
        FPAdder("bf16", latency=-1)
    with pytest.raises(ValueError, match="unsigned or has no mantissa"):
        FPMultiplier("e8m0")
