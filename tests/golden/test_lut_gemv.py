"""LUT GEMV, dequantization and the error bound against plain-Python references."""

import dataclasses
import functools
import struct

import numpy as np
import pytest

from lutforge.golden.lut_gemv import (
    accumulator_width,
    dequantize,
    error_bound,
    error_report,
    lut_gemv,
    lut_linear,
)
from lutforge.golden.lut_layer import co_quantize
from lutforge.golden.lut_tables import unpack_indices
from lutforge.golden.tmac import tmac_linear, tmac_tables, vq_quantize

# (v, C_a, C_w, N, K, G): K not a multiple of v and N not a multiple of G in most rows.
SHAPES = [
    (1, 16, 16, 13, 7, 4),
    (2, 48, 16, 37, 21, 8),
    (4, 64, 256, 20, 30, 6),
    (8, 256, 16, 9, 19, 4),
    (2, 256, 256, 10, 5, 16),
    (8, 64, 256, 24, 16, 8),
]

QUANT = {
    "block-rne-8": dict(),
    "block3-trunc-8": dict(positions_per_group=3, rounding="trunc"),
    "layer-rne-4": dict(granularity="layer", table_bits=4),
    "head-floor-8": dict(granularity="head", head_rows="2G", rounding="floor"),
    "artifact-8": dict(granularity="layer", scheme="artifact"),
}


def data(shape):
    v, c_a, c_w, n, k, g = shape
    rng = np.random.default_rng(n * 100 + k)
    w = rng.standard_normal((n, k)).astype(np.float32)
    calib = rng.standard_normal((200, k)).astype(np.float32)
    x = rng.standard_normal((4, k)).astype(np.float32)
    return w, calib, x


@functools.cache
def layer_for(shape, quant):
    v, c_a, c_w, n, k, g = shape
    kw = dict(QUANT[quant])
    if kw.get("head_rows") == "2G":
        kw["head_rows"] = 2 * g
    w, calib, _ = data(shape)
    return co_quantize(w, calib, v=v, c_a=c_a, c_w=c_w, group_rows=g, iterations=8, metric="l2" if v == 4 else "linf", **kw)


def ref_search(sub, codebook, metric):
    best, best_d = 0, None
    for i, c in enumerate(codebook):
        diffs = [abs(np.float32(a) - np.float32(b)) for a, b in zip(sub, c)]
        if metric == "linf":
            d = max(diffs)
        else:
            d = np.float32(0)
            for e in diffs:
                d = np.float32(d + np.float32(e * e))
        if best_d is None or d < best_d:
            best, best_d = i, d
    return best


def ref_positions(x, layer):
    v, p_count = layer.v, layer.num_positions
    padded = list(x) + [np.float32(0)] * layer.k_pad
    return [ref_search(padded[p * v:(p + 1) * v], layer.act_codebooks[p], layer.metric) for p in range(p_count)]


def f32(x):
    """``x`` rounded to binary32; one binary64 operation on binary32 operands and then this is
    the binary32 operation (53 >= 2 * 24 + 2)."""
    return struct.unpack("<f", struct.pack("<f", float(x)))[0]


def ref_accumulate(a, layer):
    """acc[n][q] with plain Python ints, looping over rows and positions."""
    ppg, p_count = layer.positions_per_group, layer.num_positions
    groups = -(-p_count // ppg)
    acc = [[0] * groups for _ in range(layer.out_features)]
    for n in range(layer.out_features):
        for p in range(p_count):
            acc[n][p // ppg] += int(layer.table_codes[p, n // layer.group_rows, a[p], layer.widx[n, p]])
    return acc


def ref_dequantize(acc, layer):
    out = []
    p_count, ppg = layer.num_positions, layer.positions_per_group
    for n, row in enumerate(acc):
        g = n // layer.group_rows
        if layer.scheme == "artifact":
            # The LUT-LLM kernel (ffn/ffn.h): float32 (float)acc * scale - zeropoint_hw, with
            # zeropoint_hw = zeropoint * scale * P computed in float32 by their host (ffn/ffn_tb.cpp).
            s, zp = float(layer.scales[0, g]), float(layer.zero_points[0, g])
            zp_hw = f32(f32(zp * s) * p_count)
            out.append(f32(f32(f32(row[0]) * s) - zp_hw))
            continue
        y = 0.0
        for q, value in enumerate(row):
            size = min(p_count, (q + 1) * ppg) - q * ppg
            y = y + float(layer.scales[q, g]) * float(value - int(layer.zero_points[q, g]) * size)
        out.append(y)
    return out


@pytest.mark.parametrize("quant", list(QUANT))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "v{}-ca{}-cw{}-{}x{}-G{}".format(*s))
def test_lut_linear_matches_reference_and_error_is_bounded(shape, quant):
    layer = layer_for(shape, quant)
    w, _, x = data(shape)
    for row in x:
        a = ref_positions(row, layer)
        acc = ref_accumulate(a, layer)
        assert lut_gemv(np.array(a), layer).tolist() == acc
        want = ref_dequantize(acc, layer)
        assert lut_linear(row, layer).tolist() == want
    # Batched call equals the row-by-row reference.
    assert np.array_equal(lut_linear(x, layer), np.stack([lut_linear(r, layer) for r in x]))
    assert np.all(np.abs(lut_linear(x, layer) - x.astype(np.float64) @ w.T.astype(np.float64)) <= error_bound(x, w, layer))
    report = error_report(x, w, layer)
    assert report.within_bound and report.max_abs <= report.bound_max_abs


@pytest.mark.parametrize("quant", ["block3-trunc-8", "layer-rne-4"])
@pytest.mark.parametrize("shape", SHAPES[:3], ids=lambda s: "v{}-ca{}-cw{}-{}x{}-G{}".format(*s))
def test_many_vectors_gather_whole_tables_and_equal_the_reference(shape, quant):
    # lut_gemv gathers per vector for fewer than C_a vectors and per (position, table) for more;
    # both give the plain-Python sums, in any leading shape.
    layer = layer_for(shape, quant)
    rng = np.random.default_rng(shape[3])
    a = rng.integers(0, layer.c_a, (2, layer.c_a, layer.num_positions))
    got = lut_gemv(a, layer)
    assert got.shape == (2, layer.c_a, layer.out_features, layer.num_position_groups)
    assert got.tolist() == [[ref_accumulate(row, layer) for row in block] for block in a]


def test_error_report_metrics():
    shape = SHAPES[1]
    layer = layer_for(shape, "block-rne-8")
    w, calib, _ = data(shape)
    x = calib[:8].reshape(2, 4, -1)
    report = error_report(x, w, layer)
    ref = np.einsum("bik,nk->bin", x.astype(np.float64), w.astype(np.float64))
    got = lut_linear(x, layer)
    assert got.shape == (2, 4, 37)
    err = (got - ref).ravel()
    assert report.max_abs == pytest.approx(max(abs(e) for e in err))
    assert report.rel_rms == pytest.approx(np.sqrt(np.sum(err**2) / np.sum(ref**2)))
    assert report.cosine == pytest.approx(float(ref.ravel() @ got.ravel()) / np.linalg.norm(ref) / np.linalg.norm(got))
    assert report.within_bound and 0.9 < report.cosine <= 1.0
    assert "within" in str(report)


def test_padding_info():
    layer = layer_for(SHAPES[1], "block-rne-8")  # K = 21, v = 2; N = 37, G = 8
    assert (layer.num_positions, layer.k_pad, layer.num_blocks, layer.last_block_rows) == (11, 1, 5, 5)
    assert layer.widx.shape == (37, 11) and layer.table_codes.shape == (11, 5, 48, 16)
    assert (layer.act_index_bits, layer.weight_index_bits) == (6, 4)
    assert np.all(layer.act_codebooks[-1, :, 1] == 0) and np.all(layer.weight_codebooks[-1, :, :, 1] == 0)


def test_accumulator_width():
    for p in (1, 2, 3, 11, 64, 1000, 4096):
        for bits in (1, 4, 8, 16, 26, 32):  # 26: the widest biased tables of golden.tmac
            worst = p * (2**bits - 1)
            width = accumulator_width(p, bits)
            assert 2 ** (width - 1) <= worst < 2**width
    layer = layer_for(SHAPES[0], "layer-rne-4")  # one scale group over P = 7 positions
    full = dataclasses.replace(layer, table_codes=np.full_like(layer.table_codes, 15))
    acc = lut_gemv(np.zeros(layer.num_positions, np.int64), full)
    assert acc.shape == (13, 1) and acc.max() == 7 * 15
    assert accumulator_width(7, 4) == 7 and 2**6 <= acc.max() < 2**7
    with pytest.raises(ValueError, match=r"^Table entries of 33 bits are not supported; use 1 to 32 bits\.$"):
        accumulator_width(7, 33)


def test_tmac_fp32_matches_reference_and_quantized_error_is_bounded():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((19, 13)).astype(np.float32)
    x = rng.standard_normal((3, 13)).astype(np.float32)
    layer = vq_quantize(w, v=4, c_w=16, group_rows=8, iterations=8)
    t = tmac_tables(x, layer)
    y = tmac_linear(x, layer)
    for b in range(3):
        padded = list(x[b]) + [np.float32(0)] * 3
        for n in range(19):
            total = 0.0
            for p in range(4):
                c = layer.weight_codebooks[p, n // 8, layer.widx[n, p]]
                d = np.float32(0)
                for j in range(4):
                    d = np.float32(d + np.float32(padded[4 * p + j] * c[j]))
                total = total + float(d)
            assert y[b, n] == total
    for bits in (4, 8):
        yq = tmac_linear(x, layer, table_bits=bits)
        for b in range(3):
            for n in range(19):
                cell = t[b, :, n // 8].astype(np.float64)
                step = (cell.max() - cell.min()) / (2**bits - 1)
                assert abs(yq[b, n] - y[b, n]) <= 4 * step * (0.5 + 2**-12)


def test_layer_errors():
    w = np.zeros((8, 4), np.float32)
    calib = np.ones((16, 4), np.float32)
    with pytest.raises(ValueError, match=r"Sub-vector length v=3 is not supported; use one of 1, 2, 4 or 8\."):
        co_quantize(w, calib, v=3)
    with pytest.raises(ValueError, match=r"^C_a=257 is not an integer from 1 to 256; more centroids do not fit an 8-bit index\.$"):
        co_quantize(w, calib, c_a=257)
    with pytest.raises(ValueError, match=r"Table entries of 6 bits are not supported; use 4 or 8 bits\."):
        co_quantize(w, calib, table_bits=6)
    with pytest.raises(ValueError, match=r"Granularity 'head' needs head_rows as a positive multiple of G=4 output rows; got head_rows=6\."):
        co_quantize(w, calib, group_rows=4, granularity="head", head_rows=6)
    with pytest.raises(ValueError, match=r"needs head_rows as a positive multiple of G=4 output rows; got head_rows=None\."):
        co_quantize(w, calib, group_rows=4, granularity="head")
    with pytest.raises(ValueError, match=r"Table granularity 'row' is not supported"):
        co_quantize(w, calib, granularity="row")
    with pytest.raises(ValueError, match=r"head_rows=8 only applies to granularity 'head', not 'block'"):
        co_quantize(w, calib, group_rows=4, head_rows=8)
    with pytest.raises(ValueError, match=r"positions_per_group=2 only applies to granularity 'block'"):
        co_quantize(w, calib, granularity="layer", positions_per_group=2)
    with pytest.raises(ValueError, match=r"The artifact table scheme has one scale per layer and rounds as the "
                                         r"LUT-LLM authors do \(half away from zero, in float32\); got "
                                         r"granularity='block', rounding='rne', so pass granularity='layer'"):
        co_quantize(w, calib, scheme="artifact")
    with pytest.raises(ValueError, match=r"got granularity='layer', rounding='floor', so pass granularity='layer' "
                                         r"and leave rounding at its default 'rne'\."):
        co_quantize(w, calib, scheme="artifact", granularity="layer", rounding="floor")
    with pytest.raises(ValueError, match=r"Table scheme 'symmetric' is not supported"):
        co_quantize(w, calib, scheme="symmetric")
    with pytest.raises(ValueError, match=r"Distance metric 'cos' is not supported; use 'linf' or 'l2'\."):
        co_quantize(w, calib, metric="cos")
    with pytest.raises(ValueError, match=r"Weight \(8, 4\) and calibration activations \(16, 5\) do not match"):
        co_quantize(w, np.ones((16, 5), np.float32))
    layer = co_quantize(w, calib, v=2, c_a=4, c_w=2, group_rows=4, iterations=2)
    with pytest.raises(ValueError, match=r"Activation index 4 is outside the codebook of C_a=4 centroids \(0 \.\. 3\)\."):
        lut_gemv(np.array([0, 4]), layer)
    with pytest.raises(ValueError, match=r"Activation indices must be integers of shape \(\.\.\., 2\); got int64 of shape \(3,\)\."):
        lut_gemv(np.array([0, 1, 2]), layer)
    with pytest.raises(ValueError, match=r"An accumulator sums at least one position; got num_positions=0\."):
        accumulator_width(0, 8)
    assert dequantize(lut_gemv(np.array([0, 1]), layer), layer).shape == (8,)


def test_packed_weight_indices_round_trip():
    layer = layer_for(SHAPES[1], "block-rne-8")  # C_w = 16: two indices per byte
    packed = layer.packed_weight_indices()
    assert packed.shape == (37, 6)
    assert int(packed[0, 0]) == int(layer.widx[0, 0]) | int(layer.widx[0, 1]) << 4
    assert np.array_equal(unpack_indices(packed, 4, 11), layer.widx)
