"""2D tables, table quantization and index packing against plain-Python references."""

import math

import numpy as np
import pytest

from lutforge.golden.lut_tables import (
    build_tables,
    dequantize_tables,
    entry_error_bound,
    pack_indices,
    quantize_tables,
    unpack_indices,
)

PY_ROUND = {"rne": round, "floor": math.floor, "trunc": math.trunc}  # Python's round is half-even


def ref_dot32(a, b):
    t = np.float32(0)
    for x, y in zip(a, b):
        t = np.float32(t + np.float32(np.float32(x) * np.float32(y)))
    return t


@pytest.mark.parametrize("v", [1, 2, 4, 8])
def test_tables_match_reference(v):
    rng = np.random.default_rng(v)
    a = rng.standard_normal((3, 5, v)).astype(np.float32)
    b = rng.standard_normal((3, 2, 4, v)).astype(np.float32)
    t = build_tables(a, b)
    assert t.shape == (3, 2, 5, 4) and t.dtype == np.float32
    for p in range(3):
        for g in range(2):
            for i in range(5):
                for j in range(4):
                    assert t[p, g, i, j].tobytes() == ref_dot32(a[p, i], b[p, g, j]).tobytes()


def ref_quantize(t, bits, rounding, cells):
    """cells: list of (position slice, block slice); returns codes, and per-cell (scale, zp)."""
    levels = 2**bits - 1
    codes = np.zeros(t.shape, np.int64)
    params = []
    for ps, gs in cells:
        vals = [float(e) for e in t[ps, gs].ravel()]
        lo, hi = min(vals), max(vals)
        scale = float(np.float32((hi - lo) / levels))
        zp = -PY_ROUND[rounding](lo / scale)
        block = t[ps, gs]
        out = np.zeros(block.shape, np.int64)
        for idx in np.ndindex(block.shape):
            out[idx] = min(levels, max(0, PY_ROUND[rounding](float(block[idx]) / scale) + zp))
        codes[ps, gs] = out
        params.append((scale, zp))
    return codes, params


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("rounding", ["rne", "floor", "trunc"])
@pytest.mark.parametrize(
    "granularity,kw,cells",
    [
        ("layer", {}, [(slice(0, 5), slice(0, 3))]),
        ("head", {"blocks_per_head": 2}, [(slice(0, 5), slice(0, 2)), (slice(0, 5), slice(2, 3))]),
        ("block", {}, [(slice(p, p + 1), slice(g, g + 1)) for p in range(5) for g in range(3)]),
        (
            "block",
            {"positions_per_group": 2},
            [(slice(p, min(5, p + 2)), slice(g, g + 1)) for p in (0, 2, 4) for g in range(3)],
        ),
    ],
)
def test_quantization_matches_reference(bits, rounding, granularity, kw, cells):
    rng = np.random.default_rng(bits)
    t = (rng.standard_normal((5, 3, 6, 4)) * 3 + 0.5).astype(np.float32)
    t[0, 0, 0, 0] = 2.5  # exact multiples of steps are likely somewhere; halves checked by Python round
    qt = quantize_tables(t, bits, granularity, rounding, **kw)
    codes, params = ref_quantize(t, bits, rounding, cells)
    assert np.array_equal(qt.codes.astype(np.int64), codes)
    assert qt.codes.dtype == np.uint8
    for (ps, gs), (scale, zp) in zip(cells, params):
        q = ps.start // qt.positions_per_group
        assert np.all(qt.scales[q, gs] == np.float32(scale))
        assert np.all(qt.zero_points[q, gs] == zp)
    err = np.abs(dequantize_tables(qt) - t)
    bound = entry_error_bound(qt)
    for ps, gs in cells:
        q = ps.start // qt.positions_per_group
        assert err[ps, gs].max() <= bound[q, gs].min()
        if rounding == "rne":
            assert err[ps, gs].max() <= 0.5 * float(qt.scales[q, gs][0]) * (1 + 1e-5)


def test_one_signed_cell_gets_zero_point_outside_code_range():
    t = np.full((1, 1, 2, 2), 10.0, np.float32)
    t[0, 0, 0, 0] = 11.0
    qt = quantize_tables(t, 8, "layer")
    assert qt.zero_points[0, 0] < -255
    assert qt.codes.min() == 0 and qt.codes.max() == 255
    constant = quantize_tables(np.full((1, 1, 2, 2), -3.0, np.float32), 4, "layer")
    assert np.allclose(dequantize_tables(constant), -3.0)
    zero = quantize_tables(np.zeros((1, 1, 2, 2), np.float32), 4, "layer")
    assert zero.scales[0, 0] == 1.0 and np.all(dequantize_tables(zero) == 0.0)


def ref_pack(row, bits):
    stream = 0
    for j, value in enumerate(row):
        stream |= int(value) << (j * bits)
    return list(stream.to_bytes(-(-len(row) * bits // 8), "little"))


@pytest.mark.parametrize("bits", range(1, 17))
def test_pack_round_trip(bits):
    rng = np.random.default_rng(bits)
    for m in (1, 7, 16, 33):
        idx = rng.integers(0, 2**bits, (3, m))
        packed = pack_indices(idx, bits)
        assert packed.dtype == np.uint8
        assert [list(r) for r in packed] == [ref_pack(r, bits) for r in idx]
        assert np.array_equal(unpack_indices(packed, bits, m), idx)


def test_four_bit_nibble_order():
    assert pack_indices(np.array([1, 2, 3]), 4).tolist() == [0x21, 0x03]
    assert unpack_indices(np.array([0x21, 0x03], np.uint8), 4, 3).tolist() == [1, 2, 3]


def test_table_and_pack_errors():
    t = np.zeros((1, 1, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"A table entry of 17 bits is not supported; use between 1 and 16 bits\."):
        quantize_tables(t, 17)
    with pytest.raises(ValueError, match=r"Table granularity 'row' is not supported; use 'layer', 'head' or 'block'\."):
        quantize_tables(t, 8, "row")
    with pytest.raises(ValueError, match=r"Rounding mode 'up' is not supported; use 'rne', 'floor' or 'trunc'\."):
        quantize_tables(t, 8, "block", "up")
    with pytest.raises(ValueError, match=r"^blocks_per_head=None is not an integer 1 or more; granularity 'head' "
                                         r"needs 1 or more row blocks per head\.$"):
        quantize_tables(t, 8, "head")
    with pytest.raises(ValueError, match=r"blocks_per_head=2 only applies to granularity 'head', not 'layer'"):
        quantize_tables(t, 8, "layer", blocks_per_head=2)
    with pytest.raises(ValueError, match=r"positions_per_group=2 only applies to granularity 'block'; 'head' already"):
        quantize_tables(t, 8, "head", blocks_per_head=1, positions_per_group=2)
    with pytest.raises(ValueError, match=r"Tables must be a float32 array \(P, NG, C_a, C_w\); got float64"):
        quantize_tables(t.astype(np.float64), 8)
    with pytest.raises(ValueError, match=r"do not fit together; expected \(P, C_a, v\) and \(P, NG, C_w, v\)\."):
        build_tables(np.zeros((2, 3, 2), np.float32), np.zeros((2, 1, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"The 2D table overflows float32"):
        build_tables(np.full((1, 1, 1), 1e30, np.float32), np.full((1, 1, 1, 1), 1e30, np.float32))
    with pytest.raises(ValueError, match=r"Index 16 does not fit in 4 bits \(0 \.\. 15\); pack with more bits\."):
        pack_indices(np.array([3, 16]), 4)
    with pytest.raises(ValueError, match=r"Index -1 does not fit in 4 bits"):
        pack_indices(np.array([-1]), 4)
    with pytest.raises(ValueError, match=r"3 indices of 4 bits need 2 bytes per row; got 3\."):
        unpack_indices(np.zeros(3, np.uint8), 4, 3)


@pytest.mark.parametrize(
    "rounding,want", [("rne", [0, 255, 8, 14, 12]), ("floor", [0, 255, 7, 13, 12]), ("trunc", [0, 255, 8, 13, 12])]
)
def test_rounding_modes_on_exact_halves(rounding, want):
    # lo = -10, hi = 245: scale is exactly 1.0 and the zero point 10, so T / scale keeps its halves.
    t = np.array([-10.0, 245.0, -2.5, 3.5, 2.0], np.float32).reshape(1, 1, 1, 5)
    qt = quantize_tables(t, 8, "layer", rounding)
    assert qt.scales[0, 0] == 1.0 and qt.zero_points[0, 0] == 10
    assert qt.codes.ravel().tolist() == want
