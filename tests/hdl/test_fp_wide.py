"""FP multiplier, adder and FMA RTL against the golden model for bf16, fp16 and fp32: random
operands (half of them within a few binades of 1) plus every pair of directed corners,
near-cancelling pairs and pairs at the adder's alignment boundaries.

The default suite runs 200,000 random vectors for bf16 and fp32 (fp16 in the slow suite, to keep
the default suite's Verilator builds few); the slow suite runs 1,000,000 per format.
One Verilator build per format holds every (unit, policy) variant side by side.
"""

import functools

import numpy as np
import pytest

from lutforge.golden import formats, fp
from lutforge.hdl.fp_add import FPAdder
from lutforge.hdl.fp_fma import FPFusedMultiplyAdd
from lutforge.hdl.fp_mul import FPMultiplier
from lutforge.formal.reference_fp import ReferenceAdder, ReferenceMultiplier
from lutforge.hdl.round_pack import policy_grid
from lutforge.sim.batch import BatchSim
from lutforge.sim.compare import assert_outputs_equal
from lutforge.blocks.fp_vectors import corner_encodings, corner_pairs, random_operands
from lutforge.sim.variants import Variants

FORMATS = ("bf16", "fp16", "fp32")
# The reference forms are for proofs; two opposite policies suffice to pin them here.
REFERENCE_POLICIES = ({"rounding": "rne", "overflow": "inf", "subnormals": "keep"},
                      {"rounding": "truncate", "overflow": "saturate", "subnormals": "flush"})


def _key(unit, policy):
    return f"{unit}_{policy['rounding']}_{policy['overflow']}_{policy['subnormals']}"


def _variants(name):
    units = [(u, cls, p) for u, cls in (("mul", FPMultiplier), ("add", FPAdder)) for p in policy_grid(name)]
    units += [(u, cls, p) for u, cls in (("refmul", ReferenceMultiplier), ("refadd", ReferenceAdder))
              for p in REFERENCE_POLICIES]
    return units


@functools.cache
def _sim(name, arity):
    if arity == 2:
        return BatchSim(Variants({_key(u, p): cls(name, **p) for u, cls, p in _variants(name)}))
    return BatchSim(Variants({_key("fma", p): FPFusedMultiplyAdd(name, **p) for p in policy_grid(name)}))


def _pairs(name, count, seed):
    rng = np.random.default_rng(seed)
    a, b = random_operands(name, rng, count)
    ca, cb = corner_pairs(name, rng)
    return {"a": np.concatenate([ca, a]), "b": np.concatenate([cb, b])}


def _check_binary(name, count, seed):
    fmt = formats.get(name)
    inputs = _pairs(name, count, seed)
    outputs = _sim(name, 2).run_vectors(inputs).outputs
    a, b = (inputs[k].astype(fmt.dtype) for k in "ab")
    for unit, _, policy in _variants(name):
        expected = getattr(fp, unit.removeprefix("ref"))(a, b, fmt, **policy)
        assert_outputs_equal(f"{name} {_key(unit, policy)}", inputs, expected,
                             outputs[f"{_key(unit, policy)}_r"])
    assert len(inputs["a"]) >= count


@pytest.mark.parametrize("name", ["bf16", pytest.param("fp16", marks=pytest.mark.slow), "fp32"])
def test_mul_add_random_and_corners(name):
    _check_binary(name, 200_000, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("name", FORMATS)
def test_mul_add_million(name):
    _check_binary(name, 1_000_000, seed=2)


def _triples(name, count, seed):
    rng = np.random.default_rng(seed)
    a, b, c = random_operands(name, rng, count, arity=3)
    # Products that cancel c: c = -round(a*b) ± a few ulps exercises the wide subtraction.
    prod = fp.mul(a[: count // 4].astype(formats.get(name).dtype), b[: count // 4].astype(formats.get(name).dtype), name)
    c[: count // 4] = prod.astype(np.uint64) ^ np.uint64(formats.get(name).sign_mask)
    corners = corner_encodings(name)
    ca, cb, cc = (x.ravel() for x in np.meshgrid(corners, corners, corners[::3]))
    return {"a": np.concatenate([ca, a]), "b": np.concatenate([cb, b]), "c": np.concatenate([cc, c])}


def _check_fma(name, count, seed):
    fmt = formats.get(name)
    inputs = _triples(name, count, seed)
    outputs = _sim(name, 3).run_vectors(inputs).outputs
    a, b, c = (inputs[k].astype(fmt.dtype) for k in "abc")
    for policy in policy_grid(name):
        expected = fp.fma(a, b, c, fmt, **policy)
        assert_outputs_equal(f"{name} {_key('fma', policy)}", inputs, expected,
                             outputs[f"{_key('fma', policy)}_r"])


@pytest.mark.parametrize("name", ("e4m3", "fp32"))
def test_fma_random_and_corners(name):
    _check_fma(name, 200_000, seed=3)


@pytest.mark.slow
@pytest.mark.parametrize("name", ("e5m2", "bf16", "fp16", "fp32"))
def test_fma_million(name):
    _check_fma(name, 1_000_000, seed=4)


@pytest.mark.slow
def test_fma_e4m3_exhaustive():
    """All 2^24 operand triples of e4m3 under the default policy."""
    codes = np.arange(256, dtype=np.uint64)
    a, b, c = (x.ravel() for x in np.meshgrid(codes, codes, codes, indexing="ij"))
    policy = {"rounding": "rne", "overflow": "inf", "subnormals": "keep"}
    outputs = _sim("e4m3", 3).run_vectors({"a": a, "b": b, "c": c}).outputs
    expected = fp.fma(a.astype(np.uint8), b.astype(np.uint8), c.astype(np.uint8), "e4m3", **policy)
    assert_outputs_equal("e4m3 fma exhaustive", {"a": a, "b": b, "c": c}, expected,
                         outputs[f"{_key('fma', policy)}_r"])
