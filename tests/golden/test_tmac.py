"""The integer form of the weight-only LUT core (golden.tmac, bottom half) against plain-Python
loops written from its stated formulas: tables, accumulators, tiles, memory images decoded bit by
bit, the descriptor, the rounding of activations and codebooks, and the host's output against the
float VQ layer within a bound derived from the two quantization steps."""

import dataclasses
import math
import struct

import numpy as np
import pytest

from lutforge.golden.tmac import (
    TmacLayer,
    check_codebook_bits,
    tmac_activations,
    tmac_bias,
    tmac_core,
    tmac_core_accumulators,
    tmac_core_images,
    tmac_core_tables,
    tmac_dense_accumulators,
    tmac_descriptor_fields,
    tmac_integer_layer,
    tmac_linear,
    tmac_output,
    tmac_table_bits,
    vq_quantize,
)

# (N, K, v, C_w, G, cb_bits, lanes): K and N not multiples of v or of the lanes, 1 to 3 row blocks,
# C_w not a power of two, the narrowest and widest codes.
SHAPES = [(21, 13, 2, 16, 8, 8, 4), (40, 30, 1, 16, 16, 4, 8), (9, 11, 4, 5, 9, 16, 3),
          (12, 17, 8, 3, 4, 2, 2), (16, 6, 2, 256, 16, 8, 16)]


def _c_max(bits):
    return 2 ** (bits - 1) - 1


def _bias(v, bits):
    return v * 127 * _c_max(bits)


def _int_layer(shape, seed, extreme=False):
    n, k, v, c_w, g, bits, _ = shape
    rng = np.random.default_rng(seed)
    p, blocks, c_max = -(-k // v), -(-n // g), _c_max(bits)
    codes = rng.integers(-c_max, c_max + 1, (p, blocks, c_w, v)).astype(np.int16)
    if extreme:
        codes = np.where(codes < 0, -c_max, c_max).astype(np.int16)
    layer = TmacLayer(k, n, v, c_w, g, bits, codes, rng.random(blocks).astype(np.float32) + np.float32(0.5),
                      rng.integers(0, c_w, (n, p)).astype(np.uint8))
    x = np.zeros(p * v, dtype=np.int8)
    x[:k] = rng.choice(np.array([-127, 127]), k) if extreme else rng.integers(-127, 128, k)
    return layer, x.reshape(p, v)


def _plain_tables(x_q, layer):
    """u[p][g][w] = sum_j x_q[p][j] * code[p][g][w][j] + v * 127 * c_max, in Python ints."""
    bias = _bias(layer.v, layer.cb_bits)
    p_count, blocks = len(x_q), -(-layer.out_features // layer.group_rows)
    return [[[sum(int(x_q[p][j]) * int(layer.codes[p][g][w][j]) for j in range(layer.v)) + bias
              for w in range(layer.c_w)] for g in range(blocks)] for p in range(p_count)]


def _plain_accumulators(x_q, layer):
    u = _plain_tables(x_q, layer)
    return [sum(u[p][n // layer.group_rows][int(layer.widx[n][p])] for p in range(len(x_q)))
            for n in range(layer.out_features)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "N{}-K{}-v{}-cw{}-G{}-b{}-L{}".format(*s))
@pytest.mark.parametrize("extreme", [False, True], ids=["random", "extreme"])
def test_tables_accumulators_and_tiles_equal_plain_loops(shape, extreme):
    layer, x_q = _int_layer(shape, sum(shape), extreme)
    lanes = shape[-1]
    u = _plain_tables(x_q, layer)
    table_bits = next(t for t in range(64) if 2 ** t > 2 * _bias(layer.v, layer.cb_bits))
    assert all(0 <= e < 2 ** table_bits for row in u for block in row for e in block)
    assert tmac_core_tables(x_q, layer).tolist() == u
    acc = _plain_accumulators(x_q, layer)
    assert tmac_core_accumulators(x_q, layer).tolist() == acc
    assert tmac_dense_accumulators(x_q, layer).tolist() == acc
    tiles = -(-layer.out_features // lanes)
    got = tmac_core(x_q, layer, lanes)
    assert got.shape == (tiles, lanes) and got.dtype == np.int64
    assert [int(a) for a in got.reshape(-1)] == acc + [0] * (tiles * lanes - layer.out_features)


def test_bias_and_table_bits_for_every_setting():
    for v in (1, 2, 4, 8):
        for bits in range(2, 17):
            bias = v * 127 * (2 ** (bits - 1) - 1)
            assert tmac_bias(v, bits) == bias
            # The narrowest unsigned field holding 2 * bias (the largest biased entry).
            assert tmac_table_bits(v, bits) == next(t for t in range(64) if 2 ** t > 2 * bias)
    assert tmac_table_bits(8, 16) == 26 and tmac_table_bits(1, 2) == 8


def _bits(words, start, count):
    value = sum(int(w) << (32 * i) for i, w in enumerate(words))
    return (value >> start) & ((1 << count) - 1)


def _signed(value, bits):
    return value - (1 << bits) if value >> (bits - 1) else value


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "N{}-K{}-v{}-cw{}-G{}-b{}-L{}".format(*s))
def test_memory_images_decode_to_the_codes_and_indices(shape):
    layer, x_q = _int_layer(shape, 11, extreme=shape[0] % 2 == 0)
    lanes = shape[-1]
    n, v, c_w, g_rows, bits = layer.out_features, layer.v, layer.c_w, layer.group_rows, layer.cb_bits
    p_count, blocks = len(x_q), -(-n // g_rows)
    tiles = -(-n // lanes)
    wb = max(1, math.ceil(math.log2(c_w)))
    im = tmac_core_images(x_q, layer, lanes)
    assert im.cb.dtype == np.uint32 and im.cb.shape == (blocks * p_count, -(-c_w * v * bits // 32))
    assert im.idx.dtype == np.uint32 and im.idx.shape == (tiles * p_count, -(-lanes * wb // 32))
    for g in range(blocks):
        for p in range(p_count):
            word = im.cb[g * p_count + p]
            for w in range(c_w):
                for j in range(v):
                    assert _signed(_bits(word, bits * (w * v + j), bits), bits) == layer.codes[p, g, w, j]
            # Nothing past the last code.
            assert _bits(word, bits * c_w * v, 32 * len(word) - bits * c_w * v) == 0
    for t in range(tiles):
        for p in range(p_count):
            word = im.idx[t * p_count + p]
            for i in range(lanes):
                row = t * lanes + i
                assert _bits(word, i * wb, wb) == (int(layer.widx[row, p]) if row < n else 0)
    assert im.x.dtype == np.uint64 and im.x.shape == (p_count,)
    for p in range(p_count):
        assert [_signed((int(im.x[p]) >> (8 * j)) & 0xFF, 8) for j in range(v)] == x_q[p].tolist()
        assert int(im.x[p]) >> (8 * v) == 0
    assert im.descriptor == {"positions": p_count, "out_features": n, "tiles_per_block": g_rows // lanes,
                             "blocks": blocks, "cb_base": 0, "idx_base": 0}
    # Fields LSB first: four 16-bit counts, then two addresses of addr_width bits.
    for addr_width in (32, 20):
        d = dict(im.descriptor, cb_base=(1 << addr_width) - 3, idx_base=5)
        word = type(im)(im.cb, im.idx, im.x, d).descriptor_word(addr_width)
        assert [(word >> s) & 0xFFFF for s in (0, 16, 32, 48)] == [p_count, n, g_rows // lanes, blocks]
        assert (word >> 64) & ((1 << addr_width) - 1) == (1 << addr_width) - 3
        assert word >> (64 + addr_width) == 5


def test_descriptor_fields():
    assert tmac_descriptor_fields(20) == (("positions", 16), ("out_features", 16), ("tiles_per_block", 16),
                                          ("blocks", 16), ("cb_base", 20), ("idx_base", 20))
    assert tmac_descriptor_fields() == tmac_descriptor_fields(32)


def _f32(value):
    """``value`` rounded to binary32, nearest-even (struct does the rounding)."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def test_integer_layer_rounds_codes_half_to_even_with_a_float32_scale_per_block():
    rng = np.random.default_rng(4)
    vq = vq_quantize(rng.standard_normal((24, 10)).astype(np.float32), v=2, c_w=8, group_rows=8, iterations=2)
    # Block 1 all zero (scale 1, codes 0); block 2 with entries exactly half-way between codes.
    books = vq.weight_codebooks.copy()
    books[:, 1] = 0
    books[:, 2] = rng.integers(-126, 126, books[:, 2].shape).astype(np.float32) + np.float32(0.5)
    books[0, 2, 0, 0] = 127
    vq = type(vq)(vq.in_features, vq.out_features, vq.v, vq.c_w, vq.group_rows, books, vq.widx)
    for bits in (2, 5, 8, 16):
        layer = tmac_integer_layer(vq, bits)
        c_max = 2 ** (bits - 1) - 1
        assert layer.cb_bits == bits and layer.codes.dtype == np.int16 and layer.scales.dtype == np.float32
        p_count, blocks, c_w, v = books.shape
        for g in range(blocks):
            peak = max(abs(float(b)) for b in books[:, g].reshape(-1))
            scale = _f32(peak / c_max) if peak > 0 else 1.0
            assert float(layer.scales[g]) == scale
            for p in range(p_count):
                for w in range(c_w):
                    for j in range(v):
                        # Python's round() on a float is half to even.
                        want = max(-c_max, min(c_max, round(float(books[p, g, w, j]) / scale)))
                        assert layer.codes[p, g, w, j] == want
        assert not np.any(layer.codes[:, 1]) and layer.scales[1] == 1
    # With 8-bit codes block 2's scale is exactly 1: its half-way entries land on even codes.
    layer = tmac_integer_layer(vq, 8)
    halves = layer.codes[:, 2].reshape(-1)[1:]
    assert layer.scales[2] == 1 and layer.codes[0, 2, 0, 0] == 127 and np.all(halves % 2 == 0)
    with pytest.raises(ValueError, match=r"^Weight codebook entries of 17 bits are not supported; use 2 to 16 bits\.$"):
        tmac_integer_layer(vq, 17)
    for bad in (1, True, 8.0):
        with pytest.raises(ValueError, match=r"^Weight codebook entries of .* bits are not supported"):
            check_codebook_bits(bad)


def test_activations_round_half_to_even_per_row_and_all_zero_rows_read_zero():
    # Row 0: peak 127, so the scale is 1 and the halves are exact ties. Row 1: all zero.
    # Row 2: a negative peak, a scale that is not a power of two. K = 7 is padded to 8 for v = 4.
    x = np.array([[0.5, 1.5, 2.5, -0.5, -2.5, 126.5, -127.0],
                  [0.0] * 7,
                  [-3.0, 1.0, 0.1, -0.0117, 2.999, 0.0, 1.5]])
    x_q, scale = tmac_activations(x, 4)
    assert x_q.dtype == np.int8 and x_q.shape == (3, 2, 4) and scale.dtype == np.float64
    for r, row in enumerate(x.tolist()):
        peak = max(abs(e) for e in row)
        s = peak / 127.0 if peak > 0 else 1.0
        assert scale[r] == s
        want = [max(-127, min(127, round(e / s))) for e in row] + [0]
        assert x_q[r].reshape(-1).tolist() == want
    assert x_q[0].reshape(-1).tolist()[:6] == [0, 2, 2, 0, -2, 126]
    assert not np.any(x_q[1]) and scale[1] == 1.0


def test_host_output_is_the_float_layer_within_the_quantization_steps():
    rng = np.random.default_rng(8)
    n, k, v, g = 20, 26, 2, 8
    vq = vq_quantize(rng.standard_normal((n, k)).astype(np.float32), v=v, c_w=16, group_rows=g, iterations=4)
    x = rng.standard_normal((5, k)).astype(np.float32)
    x[1] = 0
    y_float = tmac_linear(x, vq)
    for bits in (4, 8):
        layer = tmac_integer_layer(vq, bits)
        x_q, s_x = tmac_activations(x, v)
        y = tmac_output(tmac_core_accumulators(x_q, layer), s_x, layer)
        assert y.shape == (5, n) and y.dtype == np.float64
        c_max = 2 ** (bits - 1) - 1
        worst = 0.0
        for b in range(5):
            for row in range(n):
                gi = row // g
                s_w = float(layer.scales[gi])
                # Write x = s_x (x_q + e_x) and B = s_w (code + e_b): |e_x| <= 1/2 (round to
                # nearest; |x / s_x| <= 127, so never clipped) and |e_b| <= 1/2 + c_max 2^-23 (the
                # float32 scale may be a little below peak / c_max, so the peak's code may be
                # clipped by up to that much). Then, exactly,
                #   x B - s_x s_w x_q code = s_x e_x B + x s_w e_b - s_x s_w e_x e_b,
                # bounded per feature by s_x |B| / 2 + |x| s_w e_b + s_x s_w e_b / 2. The float
                # table (v float32 products and sums) adds at most (v + 1) 2^-24 sum |x B|, the
                # float64 sums and the host's products a relative 2^-40 of the result.
                e_b = 0.5 + c_max * 2.0**-23
                bound, mags = 0.0, 0.0
                for f in range(k):
                    p, j = divmod(f, v)
                    book = float(vq.weight_codebooks[p, gi, vq.widx[row, p], j])
                    xf = float(x[b, f])
                    bound += float(s_x[b]) * abs(book) / 2 + abs(xf) * s_w * e_b + float(s_x[b]) * s_w * e_b / 2
                    mags += abs(xf * book)
                bound += (v + 1) * 2.0**-24 * mags + 2.0**-40 * abs(float(y_float[b, row]))
                err = abs(float(y[b, row]) - float(y_float[b, row]))
                assert err <= bound, (b, row, err, bound)
                worst = max(worst, err / bound if bound else 0.0)
        # An all-zero row reads exactly 0; the bound is not vacuous (errors use part of it).
        assert not np.any(y[1]) and 0.01 < worst <= 1


def test_contract_errors_are_named():
    layer, x_q = _int_layer(SHAPES[0], 1)
    with pytest.raises(ValueError, match=r"^Row blocks of G=8 rows are not a whole number of 3-lane tiles; use G a "
                                         r"multiple of the lane count\.$"):
        tmac_core(x_q, layer, 3)
    with pytest.raises(ValueError, match=r"^The core's activations must be int8 of shape \(\.\.\., 7, 2\); got "
                                         r"int16 \(7, 2\)\.$"):
        tmac_core_tables(x_q.astype(np.int16), layer)


def test_images_and_activations_refuse_what_the_core_would_misread():
    rng = np.random.default_rng(12)
    codes = rng.integers(-127, 128, (3, 2, 4, 2)).astype(np.int16)
    layer = TmacLayer(6, 24, 2, 4, 12, 8, codes, np.ones(2, np.float32), rng.integers(0, 4, (24, 3)).astype(np.uint8))
    x_q = np.zeros((3, 2), np.int8)
    with pytest.raises(ValueError, match=r"^Row blocks of G=12 rows are not a whole number of 8-lane tiles; use G "
                                         r"a multiple of the lane count\.$"):
        tmac_core_images(x_q, layer, 8)
    wide = dataclasses.replace(layer, codes=np.where(codes == codes.max(), 200, codes).astype(np.int16))
    with pytest.raises(ValueError, match=r"^The layer's codes exceed \+-127, the range of 8-bit codes the core's "
                                         r"table bias assumes; build it with tmac_integer_layer\.$"):
        tmac_core_images(x_q, wide, 4)
    with pytest.raises(ValueError, match=r"^The core's activations must be int8 of shape \(3, 2\); got int16 \(3, 2\)\.$"):
        tmac_core_images(x_q.astype(np.int16), layer, 4)
    with pytest.raises(ValueError, match=r"^The activations hold Inf or NaN, which no int8 scale represents; find "
                                         r"where the model overflowed before quantizing them\.$"):
        tmac_activations(np.array([[1.0, np.nan]]), 2)
