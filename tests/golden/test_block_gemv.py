"""golden.block_gemv against a plain-Python oracle (exact Fractions, a hand-written fp32 RNE rounder,
ml_dtypes for E4M3 codes) and against golden.mx.dequantize within the fp32 rounding bound."""

import struct
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from lutforge.golden import block_gemv as block_gemv_module
from lutforge.golden import mx
from lutforge.golden.block_gemv import (ACT_FORMATS, NAN, WEIGHT_FORMATS, BlockGemvFormat, block_gemv,
                                        core_images, element_integers, host_output, tile_outputs, x_payloads)

PAIRS = [(w, a) for w in WEIGHT_FORMATS for a in ACT_FORMATS]
E2M1 = [0, Fraction(1, 2), 1, Fraction(3, 2), 2, 3, 4, 6]
INF = 0x7F800000


# ---- the oracle ----------------------------------------------------------------------------------

def e4m3(code):
    v = float(np.array([code], np.uint8).view(ml_dtypes.float8_e4m3fn)[0])
    return None if v != v else Fraction(v)


def element(code, name):
    """Exact value of an element code, or None for NaN."""
    if name == "int8":
        return Fraction(code - 256 if code >= 128 else code, 64)
    if name == "int4":
        return Fraction(code - 16 if code >= 8 else code, 4)
    if name == "e2m1":
        return (-1 if code & 8 else 1) * Fraction(E2M1[code & 7])
    return e4m3(code)


def scale(code, kind):
    if kind == "e8m0":
        return None if code == 0xFF else Fraction(2) ** (code - 127)
    return e4m3(code)


def round_fp32(v: Fraction) -> int:
    """fp32 bits of v rounded to nearest, ties to even, subnormals kept, overflow to Inf."""
    sign = 0x80000000 if v < 0 else 0
    v = abs(v)
    if v == 0:
        return sign
    e = v.numerator.bit_length() - v.denominator.bit_length()
    while Fraction(2) ** e > v:
        e -= 1
    while Fraction(2) ** (e + 1) <= v:
        e += 1
    quantum = Fraction(2) ** (max(e, -126) - 23)
    q = v / quantum
    n = q.numerator // q.denominator
    rest = q - n
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and n % 2):
        n += 1
    r = n * quantum
    if r >= Fraction(2) ** 128:
        return sign | INF
    return sign | struct.unpack("<I", struct.pack("<f", float(r)))[0]


def fp32_value(bits):
    if bits & 0x7FFFFFFF > INF:
        return "nan"
    if bits & 0x7FFFFFFF == INF:
        return "-inf" if bits >> 31 else "+inf"
    return Fraction(struct.unpack("<f", struct.pack("<I", bits))[0])


def add_fp32(a, b):
    va, vb = fp32_value(a), fp32_value(b)
    if "nan" in (va, vb) or {va, vb} == {"+inf", "-inf"}:
        return NAN
    for v, bits in ((va, a), (vb, b)):
        if isinstance(v, str):
            return bits
    total = va + vb
    if total == 0:
        return 0x80000000 if a == b == 0x80000000 else 0
    return round_fp32(total)


def oracle(x, xs, w, ws, fmt):
    wf, af = mx.BLOCK_FORMATS[fmt.weight], mx.BLOCK_FORMATS[fmt.act]
    t_count, k = x.shape
    out = np.zeros((t_count, w.shape[0]), np.uint32)
    for t in range(t_count):
        for n in range(w.shape[0]):
            acc = 0
            for c0 in range(0, k, fmt.chunk):
                sa, sw = scale(int(xs[t, c0 // af.block]), "e8m0"), scale(int(ws[n, c0 // wf.block]), wf.scale)
                pairs = [(element(int(x[t, j]), af.element), element(int(w[n, j]), wf.element))
                         for j in range(c0, c0 + fmt.chunk)]
                if sa is None or sw is None or any(a is None for a, _ in pairs):
                    p = NAN
                else:
                    p = round_fp32(sum(a * b for a, b in pairs) * sa * sw)
                    p = 0 if p == 0x80000000 else p
                acc = add_fp32(acc, p)
            out[t, n] = acc
    return out


# ---- operands ------------------------------------------------------------------------------------

def random_operands(rng, fmt, t, n, k, scale_range=(110, 145)):
    wf, af = mx.BLOCK_FORMATS[fmt.weight], mx.BLOCK_FORMATS[fmt.act]
    x = rng.integers(0, 256, (t, k)).astype(np.uint8)
    if fmt.act == "mxfp8_e4m3":
        # NaN codes only in a few places, so most accumulators stay finite.
        x = np.where((x & 0x7F) == 0x7F, x ^ 1, x).astype(np.uint8)
    w = rng.integers(0, 1 << fmt.weight_bits, (n, k)).astype(np.uint8)
    xs = rng.integers(*scale_range, (t, k // af.block)).astype(np.uint8)
    if wf.scale == "e8m0":
        ws = rng.integers(*scale_range, (n, k // wf.block)).astype(np.uint8)
    else:
        ws = rng.integers(0, 0x7F, (n, k // wf.block)).astype(np.uint8)
        ws |= (rng.random(ws.shape) < 0.2).astype(np.uint8) << 7  # negative scales too
    return x, xs, w, ws


@pytest.mark.parametrize("pair", PAIRS, ids="-".join)
def test_random_operands_equal_the_oracle(pair):
    fmt = BlockGemvFormat(*pair)
    rng = np.random.default_rng(sum(map(ord, "".join(pair))))
    ops = random_operands(rng, fmt, 2, 5, 2 * fmt.k_multiple)
    assert np.array_equal(block_gemv(*ops, fmt), oracle(*ops, fmt))


@pytest.mark.parametrize("pair", PAIRS, ids="-".join)
def test_corner_cases_equal_the_oracle(pair):
    fmt = BlockGemvFormat(*pair)
    rng = np.random.default_rng(3)
    k = 2 * fmt.k_multiple
    x, xs, w, ws = random_operands(rng, fmt, 6, 8, k)
    wf = mx.BLOCK_FORMATS[fmt.weight]
    big_a = 0x7E if fmt.act == "mxfp8_e4m3" else 0x80  # 448 / -2.0: the largest magnitudes
    big_w = {"mxint8": 0x80, "mxint4": 0x8, "mxfp4": 0x7, "nvfp4": 0xF}[fmt.weight]
    x[0], w[0] = 0, 0  # zeros everywhere
    x[1], w[1] = big_a, big_w  # largest products, every chunk
    x[2, ::3] = 0
    # Extreme scales: 2^-127 * 2^-127 (deep underflow), 2^127 * 2^127 (overflow to Inf), mixes that
    # land in fp32's subnormal range and at its top, and NaN scales.
    xs[1] = 254
    xs[2] = 0
    xs[3, 0] = 0xFF
    # Row 4 meets weight row 4 (MX) or the 2^-9 weight scale of row 2 (NV) near 2^-140: subnormal.
    xs[4] = 0 if wf.scale == "e4m3" else 60
    xs[5] = 250
    if wf.scale == "e8m0":
        ws[1], ws[2], ws[3] = 254, 0, 130
        ws[4] = 60 + fmt.act_frac + fmt.weight_frac - 20
        ws[5, -1] = 0xFF
        ws[6] = 127
        ws[7, 0] = 200
    else:
        ws[1], ws[2] = 0x7E, 0x01  # 448 and the smallest subnormal 2^-9
        ws[3] = 0x80  # -0
        ws[4] = 0xFE  # -448
        ws[5, -1] = 0x7F  # NaN
        ws[6, 0] = 0xFF  # NaN
        ws[7] = 0x00
    if fmt.act == "mxfp8_e4m3":
        x[4] &= 0x87  # subnormal elements keep row 4 small
        x[5, 3] = 0xFF  # a NaN element
    got = block_gemv(x, xs, w, ws, fmt)
    want = oracle(x, xs, w, ws, fmt)
    assert np.array_equal(got, want)
    flat = got.ravel()
    # The corners were reached: NaN, an Inf and a subnormal or zero from underflow.
    assert np.any(flat == NAN)
    assert np.any((flat & 0x7FFFFFFF) == INF)
    assert np.any(((flat & 0x7F800000) == 0) & ((flat & 0x7FFFFF) != 0))


def test_chunks_are_added_one_by_one_in_fp32():
    fmt = BlockGemvFormat("mxint8", "mxint8")
    # Chunks 2^24, 1, 1: each add ties and rounds to even (2^24), where one rounding of the exact
    # total would give 2^24 + 2.
    x = np.zeros((1, 96), np.uint8)
    x[0, [0, 32, 64]] = 64  # 1.0
    xs = np.full((1, 3), 127, np.uint8)
    ws = np.array([[127 + 24, 127, 127]], np.uint8)
    got = block_gemv(x, xs, x, ws, fmt)
    assert got.view(np.float32)[0, 0] == np.float32(2.0**24)
    assert np.array_equal(got, oracle(x, xs, x, ws, fmt))


@pytest.mark.parametrize("pair", PAIRS, ids="-".join)
def test_quantized_floats_against_dequantize_within_the_rounding_bound(pair):
    fmt = BlockGemvFormat(*pair)
    rng = np.random.default_rng(11)
    k = 8 * fmt.k_multiple
    x = (rng.standard_normal((4, k)) * 2.0 ** rng.integers(-8, 8, (4, 1))).astype(np.float32)
    w = rng.standard_normal((7, k)).astype(np.float32)
    qx = mx.quantize(x, fmt.act)
    qw = mx.quantize(w, fmt.weight, tensor_scale="auto") if fmt.weight == "nvfp4" else mx.quantize(w, fmt.weight)
    acc = block_gemv(qx.elements, qx.scales, qw.elements, qw.scales, fmt)
    y = host_output(acc, qw.tensor_scale).astype(np.float64)
    dx, dw = mx.dequantize(qx, fmt.act), mx.dequantize(qw, fmt.weight)
    exact = dx @ dw.T
    # |chunk products| summed exactly; each p_c has relative error <= u and each of the `chunks`
    # adds <= u of its running sum, plus one u for the host's tensor-scale multiply.
    u = 2.0**-24
    chunks = k // fmt.chunk
    per_chunk = np.abs(np.einsum("tcj,ncj->tnc", dx.reshape(4, chunks, -1), dw.reshape(7, chunks, -1))).sum(-1)
    bound = (chunks + 2) * u * per_chunk + 2.0**-140
    assert np.all(np.abs(y - exact) <= bound)


def test_element_integers_equal_the_element_values_for_every_code():
    for name, f in (("int8", 6), ("int4", 2), ("e2m1", 1), ("e4m3", 9)):
        codes = np.arange(256 if name in ("int8", "e4m3") else 16)
        ints, nan = element_integers(codes, name)
        for code, i, bad in zip(codes.tolist(), ints.tolist(), nan.tolist()):
            v = element(code, name)
            assert bad == (v is None)
            if v is not None:
                assert Fraction(i, 2**f) == v


def test_memory_images_and_stream_payloads_follow_the_documented_layout():
    for pair, lanes in ((("mxint4", "mxint8"), 3), (("nvfp4", "mxfp8_e4m3"), 2), (("mxint8", "mxint8"), 2)):
        fmt = BlockGemvFormat(*pair)
        rng = np.random.default_rng(1)
        k, n = 2 * fmt.k_multiple, 5
        x, xs, w, ws = random_operands(rng, fmt, 1, n, k)
        im = core_images(w, ws, fmt, lanes)
        chunks, c_size, eb = k // fmt.chunk, fmt.chunk, fmt.weight_bits
        tiles = -(-n // lanes)
        assert im.descriptor == {"chunks": chunks, "out_features": n, "w_base": 0, "s_base": 0}
        assert im.descriptor_word() == chunks | n << 16
        assert im.w.shape[0] == im.s.shape[0] == tiles * chunks

        def field(words, bit, width):
            value = sum(int(v) << (32 * i) for i, v in enumerate(words))
            return (value >> bit) & ((1 << width) - 1)

        for t in range(tiles):
            for c in range(chunks):
                for i in range(lanes):
                    row = t * lanes + i
                    s = field(im.s[t * chunks + c], 8 * i, 8)
                    assert s == (ws[row, c * c_size // mx.BLOCK_FORMATS[fmt.weight].block] if row < n else 0)
                    for j in range(c_size):
                        code = field(im.w[t * chunks + c], (i * c_size + j) * eb, eb)
                        assert code == (w[row, c * c_size + j] if row < n else 0)
        payloads = x_payloads(x[0], xs[0], fmt)
        assert len(payloads) == chunks
        for c, p in enumerate(payloads):
            assert [(p >> (8 * j)) & 0xFF for j in range(c_size)] == x[0, c * c_size:(c + 1) * c_size].tolist()
            assert p >> (8 * c_size) == xs[0, c * c_size // 32]


def test_tiles_pad_with_zero_lanes_and_host_output_is_one_fp32_multiply():
    assert tile_outputs(np.array([1, 2, 3], np.uint32), 2).tolist() == [[1, 2], [3, 0]]
    acc = np.array([0x3F800001, 0x7F000000], np.uint32)  # 1 + 2^-23, 2^127
    y = host_output(acc, np.float32(3.0))
    assert y.dtype == np.float32
    assert y[0].view(np.uint32) == round_fp32(Fraction(3) * (1 + Fraction(1, 2**23)))
    assert np.isinf(y[1])
    assert host_output(acc, None)[0] == acc.view(np.float32)[0]


def test_bad_arguments_are_refused_with_full_sentences():
    with pytest.raises(ValueError, match=r"Weight format 'mxfp8_e4m3' is not supported by the block GEMV "
                                         r"core; use one of mxint8, mxint4, mxfp4, nvfp4\."):
        BlockGemvFormat("mxfp8_e4m3", "mxint8")
    with pytest.raises(ValueError, match=r"Activation format 'nvfp4' is not supported by the block GEMV "
                                         r"core; use one of mxint8, mxfp8_e4m3\."):
        BlockGemvFormat("mxint4", "nvfp4")
    fmt = BlockGemvFormat("nvfp4", "mxint8")
    assert (fmt.chunk, fmt.k_multiple, fmt.weight_scale, fmt.weight_bits, fmt.act_frac) == (16, 32, "e4m3", 4, 6)
    x = np.zeros((1, 48), np.uint8)
    with pytest.raises(ValueError, match=r"K=48 is not a positive multiple of 32, the larger block of nvfp4 x "
                                         r"mxint8; pad K with zero elements to a multiple of 32\."):
        block_gemv(x, np.zeros((1, 1), np.uint8), x, np.zeros((1, 3), np.uint8), fmt)
    x = np.zeros((1, 32), np.uint8)
    with pytest.raises(ValueError, match=r"The weight elements hold the code 16, which is not a 4-bit code"):
        block_gemv(x, np.zeros((1, 1), np.uint8), x + 16, np.zeros((1, 2), np.uint8), fmt)
    with pytest.raises(ValueError, match=r"The weight scales have shape \(1, 1\); K=32 in blocks of 16 needs "
                                         r"\(1, 2\)\."):
        block_gemv(x, np.zeros((1, 1), np.uint8), x, np.zeros((1, 1), np.uint8), fmt)
    with pytest.raises(ValueError, match=r"lanes=0 is not a lane count; use 1 or more\."):
        core_images(x, np.zeros((1, 2), np.uint8), fmt, 0)


@pytest.mark.parametrize("weight", WEIGHT_FORMATS)
def test_the_float32_product_path_equals_the_oracle_where_it_is_taken(weight, monkeypatch):
    # block_gemv computes chunk products in float32 when _fp32_exact proves that exact (MXINT8
    # activations), else in float64. The corner cases above mostly take float64; here the float32
    # path is forced to be the one taken, with its own corners: 2^-133 activation scales
    # (subnormal factors), products that overflow to Inf or underflow to 0, NaN scales, padding rows.
    fmt = BlockGemvFormat(weight, "mxint8")
    taken = []
    real = block_gemv_module._fp32_exact
    monkeypatch.setattr(block_gemv_module, "_fp32_exact", lambda *a: taken.append(real(*a)) or taken[-1])
    rng = np.random.default_rng(5)
    x, xs, w, ws = random_operands(rng, fmt, 6, 9, 4 * fmt.k_multiple)
    x[1] = 0x80
    xs[1], xs[2], xs[3, 1] = 254, 0, 0xFF
    if mx.BLOCK_FORMATS[weight].scale == "e8m0":
        ws[1], ws[2], ws[4, 0] = 200, 20, 0xFF
    else:
        ws[1], ws[2], ws[4, 0] = 0x7E, 0x09, 0x7F
    w[8], ws[8] = 0, 0  # a padding row: zero codes, scale code 0
    got = block_gemv(x, xs, w, ws, fmt)
    assert taken == [True]
    assert np.array_equal(got, oracle(x, xs, w, ws, fmt))
    flat = got.ravel()
    assert np.any(flat == NAN) and np.any((flat & 0x7FFFFFFF) == INF) and np.any(flat == 0)


def test_operands_beyond_float32_bounds_take_the_float64_path(monkeypatch):
    fmt = BlockGemvFormat("mxint8", "mxfp8_e4m3")
    taken = []
    real = block_gemv_module._fp32_exact
    monkeypatch.setattr(block_gemv_module, "_fp32_exact", lambda *a: taken.append(real(*a)) or taken[-1])
    x, xs, w, ws = random_operands(np.random.default_rng(6), fmt, 3, 4, 64)
    x[0, 0], w[0, 0] = 0x7E, 0x80  # 448 x -2: chunk sums can pass 2^24
    got = block_gemv(x, xs, w, ws, fmt)
    assert taken == [False]
    assert np.array_equal(got, oracle(x, xs, w, ws, fmt))
