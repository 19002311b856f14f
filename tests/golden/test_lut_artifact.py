"""Scheme "artifact" against a plain-Python reference written from the LUT-LLM authors' formulas.

Source read (github.com/LUT-FPGA/LUT-LLM at bc33fe281f906e31ab5e342c76fddc0049fe0486):

* ``ffn/ffn_tb.cpp`` ``compute_scale_zeropoint`` (lines 44-66): float32 min/max over the whole
  table, ``scale = (max - min) / 255.0f``, ``zeropoint = -min / scale``, all in float;
* ``ffn/ffn_tb.cpp`` ``quantize_value`` (lines 68-73): ``int q = std::round(value / scale +
  zeropoint)`` in float (``std::round``: half away from zero), then ``max(0, min(255, q))``;
* ``ffn/ffn_tb.cpp`` lines 756-758: the host sends ``zeropoint * scale * in_size`` as one float;
* ``ffn/ffn.h`` lines 232-233 and 249-250 (``imm/imm.h`` lines 1461-1462 the same): the kernel
  outputs ``(float) acc * scale - zeropoint_hw`` in float.

Our extension, not the authors': ``2^bits - 1`` in place of 255 for other table widths, and a
defined scale where theirs divides by zero (a constant table).

Plain Python floats are binary64; ``f32`` rounds them to binary32. One binary64 operation on
binary32 operands followed by ``f32`` equals the binary32 operation (p = 53 >= 2 * 24 + 2, so the
double rounding is innocuous for +, -, *, /).
"""

import math
import struct
from fractions import Fraction

import numpy as np
import pytest

from lutforge.golden.lut_gemv import dequantize
from lutforge.golden.lut_layer import co_quantize
from lutforge.golden.lut_tables import dequantize_tables, entry_error_bound, quantize_tables_artifact


def f32(x: float) -> float:
    """``x`` rounded to the nearest binary32 value (ties to even), as a Python float."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def round_half_away(x: float) -> int:
    """C's ``round``: nearest integer, halves away from zero (exact, through Fraction)."""
    q = abs(Fraction(x))
    n = math.floor(q)
    if q - n >= Fraction(1, 2):
        n += 1
    return n if x >= 0 else -n


def ref_scale_zeropoint(values: list[float], levels: int) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    scale = f32(f32(hi - lo) / float(levels))
    return scale, f32(-lo / scale)


def ref_code(value: float, scale: float, zeropoint: float, levels: int) -> int:
    return max(0, min(levels, round_half_away(f32(f32(value / scale) + zeropoint))))


def ref_dequantize(acc: int, scale: float, zeropoint: float, positions: int) -> float:
    zeropoint_hw = f32(f32(zeropoint * scale) * float(positions))  # host, once per layer
    return f32(f32(f32(float(acc)) * scale) - zeropoint_hw)  # kernel, per output


def ref_quantize(t: np.ndarray, bits: int):
    levels = 2**bits - 1
    values = [float(e) for e in t.ravel()]
    scale, zp = ref_scale_zeropoint(values, levels)
    codes = np.array([ref_code(e, scale, zp, levels) for e in values], np.int64).reshape(t.shape)
    return codes, scale, zp


def assert_matches_reference(t: np.ndarray, bits: int):
    qt = quantize_tables_artifact(t, bits)
    codes, scale, zp = ref_quantize(t, bits)
    assert qt.scales.dtype == np.float32 and qt.zero_points.dtype == np.float32
    assert qt.scales.shape == qt.zero_points.shape == (1, t.shape[1])
    assert np.all(qt.scales.view(np.uint32) == np.float32(scale).view(np.uint32))
    assert np.all(qt.zero_points.view(np.uint32) == np.float32(zp).view(np.uint32))
    assert np.array_equal(qt.codes.astype(np.int64), codes)
    return qt


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("seed", range(4))
def test_quantizer_matches_authors_formulas_on_random_tables(bits, seed):
    rng = np.random.default_rng(seed)
    shift = [0.0, 0.7, -2.0, 40.0][seed]  # cells of both signs, one sign, and far from zero
    t = (rng.standard_normal((6, 3, 8, 16)) * 1.7 + shift).astype(np.float32)
    assert_matches_reference(t, bits)


def test_float32_steps_change_codes_on_a_large_table():
    # Far from zero |T / scale| is large and its float32 rounding moves T / scale + zp across a
    # rounding boundary for some entries; the same formulas in float64 would give other codes.
    t = (np.random.default_rng(5).standard_normal((32, 4, 32, 64)) + 40).astype(np.float32)
    qt = assert_matches_reference(t, 8)
    scale, zp = float(qt.scales[0, 0]), float(qt.zero_points[0, 0])
    wide = [max(0, min(255, round_half_away(float(e) / scale + zp))) for e in t.ravel()]
    assert sum(a != b for a, b in zip(qt.codes.ravel().tolist(), wide)) > 0


def test_codes_on_half_steps_round_away_from_zero():
    # scale = 15.9375 / 255 = 1/16 and zeropoint = 16 exactly, so T / scale + zeropoint = k + 1/2
    # exactly: half away from zero gives k + 1 where half-to-even gives the even neighbour.
    lo, step = -1.0, 0.0625
    halves = [lo + (k + 0.5) * step for k in range(255)]
    t = np.array([lo, lo + 255 * step] + halves, np.float32).reshape(1, 1, 1, -1)
    qt = assert_matches_reference(t, 8)
    assert (float(qt.scales[0, 0]), float(qt.zero_points[0, 0])) == (step, 16.0)
    assert qt.codes[0, 0, 0, 2:].tolist() == list(range(1, 256))
    even = [k + (k % 2) for k in range(255)]  # what round-half-to-even would give
    assert sum(a != b for a, b in zip(qt.codes[0, 0, 0, 2:].tolist(), even)) == 128


def test_scale_is_rounded_twice_in_float32():
    # (max - min) is rounded to float32 before the division: find, from the formulas alone, a
    # range where that differs from dividing the exact difference once.
    rng = np.random.default_rng(3)
    for _ in range(10000):
        lo, hi = (float(e) for e in np.sort(rng.standard_normal(2).astype(np.float32) * [1, 1e-3]))
        if f32(f32(hi - lo) / 255.0) != f32((hi - lo) / 255.0):
            break
    else:
        pytest.fail("no float32 pair found whose range rounds differently")
    t = np.array([lo, hi, (lo + hi) / 2], np.float32).reshape(1, 1, 1, 3)
    qt = assert_matches_reference(t, 8)
    assert float(qt.scales[0, 0]) == f32(f32(hi - lo) / 255.0)


def test_constant_and_overflowing_tables():
    # The authors divide by a zero scale here; ours falls back to max|T| / L (1.0 for zeros).
    for value in (-3.0, 0.0, 2.5):
        qt = quantize_tables_artifact(np.full((1, 2, 2, 2), value, np.float32), 8)
        assert np.allclose(dequantize_tables(qt), value, rtol=0, atol=float(qt.scales[0, 0]) / 2)
    t = np.array([-3e38, 3e38], np.float32).reshape(1, 1, 1, 2)
    with pytest.raises(ValueError, match=r"range of the table \(-3e\+38 \.\. 3e\+38\) overflows float32"):
        quantize_tables_artifact(t, 8)


@pytest.mark.parametrize("shift", [0.0, 1000.0, -50.0])
def test_entry_error_bound_holds(shift):
    rng = np.random.default_rng(abs(int(shift)) + 7)
    t = (rng.standard_normal((5, 2, 6, 8)) + shift).astype(np.float32)
    qt = quantize_tables_artifact(t, 8)
    s, zp = Fraction(float(qt.scales[0, 0])), Fraction(float(qt.zero_points[0, 0]))
    worst = max(abs(s * (int(c) - zp) - Fraction(float(e))) for c, e in zip(qt.codes.ravel(), t.ravel()))
    assert worst <= Fraction(float(entry_error_bound(qt)[0, 0]))


@pytest.fixture(scope="module")
def layer():
    rng = np.random.default_rng(11)
    w = rng.standard_normal((6, 22)).astype(np.float32)
    calib = rng.standard_normal((64, 22)).astype(np.float32)
    return co_quantize(w, calib, v=2, c_a=8, c_w=4, group_rows=4, iterations=4,
                       granularity="layer", scheme="artifact")


def test_layer_records_the_authors_rounding(layer):
    assert layer.scheme == "artifact" and layer.rounding == "half-away"
    assert layer.quantized_tables().rounding == "half-away"
    codes, scale, zp = ref_quantize(layer.tables, 8)
    assert np.array_equal(layer.table_codes.astype(np.int64), codes)


def test_dequantization_is_float32_in_the_authors_order(layer):
    p_count, levels = layer.num_positions, 255
    scale, zp = float(layer.scales[0, 0]), float(layer.zero_points[0, 0])
    acc = np.arange(p_count * levels + 1, dtype=np.int64)  # every reachable accumulator
    got = dequantize(np.broadcast_to(acc[:, None, None], (acc.size, layer.out_features, 1)), layer)
    want = [ref_dequantize(int(a), scale, zp, p_count) for a in acc]
    assert got.dtype == np.float64
    assert all(np.array_equal(got[:, n], want) for n in range(layer.out_features))
    # The order and the format matter on this layer: float64, and float32 in another order, differ.
    wide = [int(a) * scale - zp * scale * p_count for a in acc]
    other = [f32(f32(f32(float(a)) - f32(zp * float(p_count))) * scale) for a in acc]
    assert sum(a != b for a, b in zip(want, wide)) > 100
    assert sum(a != b for a, b in zip(want, other)) > 100

