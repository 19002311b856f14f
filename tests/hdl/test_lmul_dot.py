"""The L-Mul dot-product unit against lutforge.golden.lmul_dot, through its streams with stalls."""

import numpy as np
import pytest

from lutforge.blocks.lmul_dot import dot_beats
from lutforge.golden.formats import get
from lutforge.golden.lmul_dot import lmul_dot
from lutforge.hdl.lmul_dot import LMulDot
from lutforge.sim.batch import BatchSim


def _operands(fmt, rng, vectors, length):
    """Random encodings with zeros, subnormals, max-finite, NaN and Inf mixed in."""
    fmt = get(fmt)
    a = rng.integers(0, 1 << fmt.width, (vectors, length), dtype=np.uint64)
    b = rng.integers(0, 1 << fmt.width, (vectors, length), dtype=np.uint64)
    # Mostly moderate magnitudes (exponent field near the bias) so sums cancel and round often.
    for x in (a, b):
        moderate = rng.random(x.shape) < 0.7
        field = rng.integers(fmt.bias - 3, fmt.bias + 3, x.shape).astype(np.uint64)
        man = rng.integers(0, 1 << fmt.man_bits, x.shape).astype(np.uint64)
        sign = rng.integers(0, 2, x.shape).astype(np.uint64) << np.uint64(fmt.width - 1)
        x[moderate] = (sign | (field << np.uint64(fmt.man_bits)) | man)[moderate]
    specials = [0, fmt.sign_mask, 1, fmt.max_finite, fmt.max_finite | fmt.sign_mask]
    if fmt.has_nan:
        specials.append(fmt.nan)
    if fmt.has_inf:
        specials += [fmt.inf, fmt.inf | fmt.sign_mask]
    pick = rng.random(a.shape) < 0.02
    a[pick] = rng.choice(np.array(specials, np.uint64), pick.sum())
    return a, b


@pytest.mark.parametrize("fmt,lanes,acc,policy", [
    # Odd lanes: the tree's pass-through path; accumulation in the operand format.
    ("e4m3", 3, None, None),
    # A second Verilator build of a larger unit: slow suite only.
    pytest.param("bf16", 4, "fp32", "wrap", marks=pytest.mark.slow),
])
def test_dot_unit_equals_golden_under_stalls(fmt, lanes, acc, policy):
    rng = np.random.default_rng(7)
    dut = LMulDot(fmt, lanes, acc, policy)
    sim = BatchSim(dut)
    for vectors, beats, stall in ((300, 1, 0.0), (200, 5, 0.3)):
        a, b = _operands(fmt, rng, vectors, lanes * beats)
        want = lmul_dot(a, b, fmt, lanes=lanes, acc_format=acc, policy=policy).astype(np.uint64)
        result = sim.run_streams({"i": dot_beats(a, b, fmt, lanes)}, {"o": vectors}, seed=3,
                                 input_stall=stall, output_stall=stall)
        got = result.outputs["o"].astype(np.uint64)
        bad = np.flatnonzero(got != want)
        assert len(bad) == 0, (
            f"{len(bad)} of {vectors} sums differ; first: vector {bad[0]} a={[hex(v) for v in a[bad[0]]]} "
            f"b={[hex(v) for v in b[bad[0]]]} want {int(want[bad[0]]):#x} got {int(got[bad[0]]):#x}")
        if stall == 0.0:
            # One beat per cycle when nothing stalls: n beats plus the two pipeline stages.
            assert result.cycles <= vectors * beats + 4


@pytest.mark.parametrize("args,message", [
    (("e4m3", 0), r"^lanes=0 is not an integer 1 or more; a dot product takes 1 or more products per beat\.$"),
    (("bf16", 2, "fp16"), r"Accumulation format 'fp16' cannot hold every bf16 product exactly"),
    (("e4m3", 2, None, "fast"), r"L-Mul policy 'fast' is not known"),
])
def test_rejected_parameters_are_named(args, message):
    with pytest.raises(ValueError, match=message):
        LMulDot(*args)
