"""golden.fp against Berkeley SoftFloat (softfloatpy) for fp16/fp32, and against exact float64
arithmetic rounded by ml_dtypes for the 8-bit-and-smaller formats (exhaustive operand pairs)."""

import zlib

import ml_dtypes
import numpy as np
import pytest
import softfloatpy as sf

from lutforge.golden import fp
from lutforge.golden.convert import decode, encode
from lutforge.golden.formats import get

SF_MODE = {"rne": sf.RoundingMode.NEAR_EVEN, "truncate": sf.RoundingMode.MIN_MAG}
OPS = {"add": 2, "mul": 2, "fma": 3}


def softfloat(op, fmt, rounding, *arrays):
    """Run one SoftFloat operation element by element on encodings (the per-call loop is ~0.6 µs)."""
    w = get(fmt).width // 8
    cls = sf.Float32 if w == 4 else sf.Float16
    fn = getattr(sf, ("f32_" if w == 4 else "f16_") + {"fma": "mul_add"}.get(op, op))
    fb = cls.from_bytes
    bufs = [np.asarray(a).astype(f">u{w}").tobytes() for a in arrays]
    out = bytearray()
    sf.set_rounding_mode(SF_MODE[rounding])
    try:
        if len(bufs) == 2:
            x, y = bufs
            for i in range(0, len(x), w):
                out += fn(fb(x[i:i + w]), fb(y[i:i + w])).to_bytes()
        else:
            x, y, z = bufs
            for i in range(0, len(x), w):
                out += fn(fb(x[i:i + w]), fb(y[i:i + w]), fb(z[i:i + w])).to_bytes()
    finally:
        sf.set_rounding_mode(sf.RoundingMode.NEAR_EVEN)
    return np.frombuffer(bytes(out), dtype=f">u{w}").astype(get(fmt).dtype)


def vectors(fmt, op, n, rng):
    """Operands mixing uniform bit patterns, a narrow exponent band, subnormals, specials,
    few-bit significands (ties), cancellation and constructed half-ulp ties."""
    F = get(fmt)
    dt, m, W = F.dtype, F.man_bits, F.width
    k = OPS[op]

    def bits(size):
        return rng.integers(0, 1 << W, size, dtype=np.uint64)

    def with_field(size, lo, hi):
        f = rng.integers(lo, hi, size, dtype=np.uint64)
        return (bits(size) & np.uint64(F.sign_mask | F.man_mask)) | (f << np.uint64(m))

    def few_bits(x, keep):
        return x & ~np.uint64((1 << max(m - keep, 0)) - 1)

    near = (F.bias - 8, F.bias + 8)
    kind = rng.integers(0, 7, n)
    ops = []
    for _ in range(k):
        ops.append(np.select(
            [kind == 0, kind == 1, kind == 2, kind == 3, kind == 4],
            [bits(n), with_field(n, *near), with_field(n, 0, 3),
             few_bits(with_field(n, *near), int(rng.integers(1, 4))),
             few_bits(with_field(n, max(1, F.bias // 2 - 3), F.bias // 2 + 4), 3)],
            with_field(n, *near)))
    specials = np.array([0, F.sign_mask, F.inf, F.inf | F.sign_mask, F.nan, F.max_finite, 1,
                         1 << m, F.sign_mask | 1, F.sign_mask | F.max_finite], dtype=np.uint64)
    for x in ops:
        sel = rng.random(n) < 0.05
        x[sel] = rng.choice(specials, sel.sum())
    a = ops[0]
    cancel = kind == 5
    tie = kind == 6
    if op == "add":
        # b = -a and a few ulps away; b = half an ulp of a (exact ties, both parities).
        ops[1] = np.where(cancel, (a ^ np.uint64(F.sign_mask)) + rng.integers(0, 3, n).astype(np.uint64), ops[1])
        fa = (a >> np.uint64(m)) & np.uint64(F.exp_field_max)
        half = np.where(fa > m + 1, (fa - np.uint64(m + 1)) << np.uint64(m), np.uint64(1))
        ops[1] = np.where(tie, half | (rng.integers(0, 2, n).astype(np.uint64) << np.uint64(W - 1)), ops[1])
    if op == "fma":
        ops[0] = np.where(tie, few_bits(a, 4), a)
        ops[1] = np.where(tie, few_bits(ops[1], 4), ops[1])
        p = fp.mul(ops[0].astype(dt), ops[1].astype(dt), F).astype(np.uint64)
        fpr = (p >> np.uint64(m)) & np.uint64(F.exp_field_max)
        half = np.where(fpr > m + 1, (fpr - np.uint64(m + 1)) << np.uint64(m), np.uint64(1))
        ops[2] = np.where(cancel, (p ^ np.uint64(F.sign_mask)) + rng.integers(0, 2, n).astype(np.uint64), ops[2])
        ops[2] = np.where(tie, half | (rng.integers(0, 2, n).astype(np.uint64) << np.uint64(W - 1)), ops[2])
        # Half an ulp of c plus or minus a tail 2m bits further down, where float64 double-rounds:
        # a = ±(1 + ulp)·2^ea, b = ±(1 ± ulp)·2^eb and a·b lands on c's rounding bit.
        sticky = rng.random(n) < 0.15
        sgn = lambda: rng.integers(0, 2, n).astype(np.uint64) << np.uint64(W - 1)
        ea = rng.integers(F.bias - 6, F.bias + 6, n).astype(np.uint64)
        eb = rng.integers(F.bias - 6, F.bias + 6, n).astype(np.uint64)
        mb = np.where(rng.random(n) < 0.5, np.uint64(1), np.uint64(F.man_mask - 1))
        ec = ea + eb - np.uint64(F.bias) + np.uint64(m + 1)
        eb = np.where(mb == 1, eb, eb - np.uint64(1))
        ops[0] = np.where(sticky, sgn() | (ea << np.uint64(m)) | np.uint64(1), ops[0])
        ops[1] = np.where(sticky, sgn() | (eb << np.uint64(m)) | mb, ops[1])
        ops[2] = np.where(sticky, sgn() | (ec << np.uint64(m)) | (bits(n) & np.uint64(F.man_mask)), ops[2])
    mask = np.uint64((1 << W) - 1)
    return [(x & mask).astype(dt) for x in ops]


def assert_same(F, got, want, inputs):
    """NaNs compare by class; everything else bit for bit. The report names the first inputs."""
    gn, wn = F.is_nan(got), F.is_nan(want)
    bad = (gn != wn) | (~gn & (got != want))
    if bad.any():
        idx = np.flatnonzero(bad)[:8]
        rows = [" ".join(f"{int(x[i]):#x}" for x in inputs) + f" -> got {int(got[i]):#x} want {int(want[i]):#x}"
                for i in idx]
        pytest.fail(f"{bad.sum()} of {bad.size} mismatches on {F.name}:\n" + "\n".join(rows))


def run_softfloat(fmt, op, rounding, n, seed):
    F = get(fmt)
    rng = np.random.default_rng(seed)
    args = vectors(fmt, op, n, rng)
    got = getattr(fp, op)(*args, F, rounding=rounding)
    assert got.dtype == F.dtype
    assert_same(F, got, softfloat(op, fmt, rounding, *args), args)


# 2 formats x 3 ops x 2 roundings x 100_000 = 1.2 M vectors in the default suite (~5 s).
@pytest.mark.parametrize("rounding", ["rne", "truncate"])
@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("fmt", ["fp16", "fp32"])
def test_against_softfloat(fmt, op, rounding):
    run_softfloat(fmt, op, rounding, 100_000, seed=zlib.crc32(f"{fmt}{op}{rounding}".encode()))


@pytest.mark.slow
@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("fmt", ["fp16", "fp32"])
def test_against_softfloat_long(fmt, op):
    for rounding in ("rne", "truncate"):
        run_softfloat(fmt, op, rounding, 1_000_000, seed=7 + len(op) + (fmt == "fp32"))


def test_fp32_fma_tie_that_float64_gets_wrong():
    # a·b = -(2^-24 - 2^-70), c = 1 + 2^-23: the sum 1 + 2^-24 + 2^-70 lies just above the tie.
    # float64 drops the 2^-70 and then rounds the tie to even (1.0); the correct answer rounds up.
    a, b, c = np.uint32(0xB3800001), np.uint32(0x3F7FFFFE), np.uint32(0x3F800001)
    naive = (np.float64(a.view(np.float32)) * np.float64(b.view(np.float32)) + np.float64(c.view(np.float32)))
    assert np.float32(naive).view(np.uint32) == 0x3F800000
    assert int(softfloat("fma", "fp32", "rne", [a], [b], [c])[0]) == 0x3F800001
    assert int(fp.fma(a, b, c, "fp32")) == 0x3F800001


def test_signed_zero_rules():
    F = get("fp32")
    one, mone, z, mz = (int(encode(np.float32(v), F)) for v in (1.0, -1.0, 0.0, -0.0))
    assert fp.add(np.uint32(one), np.uint32(mone), F) == z
    assert fp.add(np.uint32(mz), np.uint32(mz), F) == mz
    assert fp.add(np.uint32(z), np.uint32(mz), F) == z
    assert fp.fma(np.uint32(mz), np.uint32(one), np.uint32(mz), F) == mz
    assert fp.mul(np.uint32(mz), np.uint32(one), F) == mz


def flush_reference(F, x):
    sub = F.is_subnormal(x)
    return np.where(sub, x & np.array(F.sign_mask, dtype=x.dtype), x).astype(x.dtype)


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("fmt", ["fp16", "fp32"])
def test_flush_and_saturate_against_derived_softfloat(fmt, op):
    """Flush: SoftFloat on flushed inputs, result flushed. Saturate: SoftFloat's Inf from finite
    inputs becomes ±max_finite."""
    F = get(fmt)
    rng = np.random.default_rng(11)
    args = vectors(fmt, op, 40_000, rng)
    want = flush_reference(F, softfloat(op, fmt, "rne", *(flush_reference(F, a) for a in args)))
    assert_same(F, getattr(fp, op)(*args, F, subnormals="flush"), want, args)
    want = softfloat(op, fmt, "rne", *args)
    finite_in = np.logical_and.reduce([~F.is_inf(a) & ~F.is_nan(a) for a in args])
    sat = finite_in & F.is_inf(want)
    want = np.where(sat, (want & F.sign_mask) | F.max_finite, want).astype(F.dtype)
    assert sat.sum() > 20
    assert_same(F, getattr(fp, op)(*args, F, overflow="saturate"), want, args)


SMALL = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2, "e3m2": ml_dtypes.float6_e3m2fn,
         "e2m3": ml_dtypes.float6_e2m3fn, "e2m1": ml_dtypes.float4_e2m1fn}


def ml_round(fmt, x):
    """ml_dtypes rounds float64 via float32 (a double rounding that breaks ties), so the float64 value
    goes in rounded to float32 *to odd*, which keeps one correct rounding into formats of ≤ 22
    mantissa bits."""
    F = get(fmt)
    x = np.asarray(x, np.float64)
    x32 = x.astype(np.float32)
    with np.errstate(invalid="ignore"):
        x32 = np.where(np.abs(x32) > np.abs(x), np.nextafter(x32, np.float32(0)), x32)
        inexact = x32.astype(np.float64) != x
    x32 = np.where(inexact & np.isfinite(x), (x32.view(np.uint32) | np.uint32(1)).view(np.float32), x32)
    bits = x32.astype(SMALL[fmt]).view(np.uint8)
    return (bits & np.uint8((1 << F.width) - 1)).astype(F.dtype)


@pytest.mark.parametrize("fmt", list(SMALL))
def test_small_formats_exhaustive_against_float64_and_ml_dtypes(fmt):
    """Every operand pair: the exact float64 sum/product rounded once by ml_dtypes. fma on all pairs
    with random addends, checked where float64 holds a·b + c exactly (TwoSum error zero)."""
    F = get(fmt)
    codes = np.arange(1 << F.width, dtype=F.dtype)
    a, b = (x.ravel() for x in np.meshgrid(codes, codes))
    va, vb = decode(a, F), decode(b, F)
    with np.errstate(invalid="ignore", over="ignore"):
        fin = ~np.isnan(va) & ~np.isnan(vb)  # ml_dtypes' NaN into fp6/fp4 is not a NaN
        if F.specials == "none":
            a, b, va, vb = a[fin], b[fin], va[fin], vb[fin]
        assert_same(F, fp.add(a, b, F), ml_round(fmt, va + vb), [a, b])
        assert_same(F, fp.mul(a, b, F), ml_round(fmt, va * vb), [a, b])
        c = np.random.default_rng(3).choice(codes[~np.isnan(decode(codes, F))], a.size)
        vc = decode(c, F)
        p = va * vb
        s = p + vc
        bp = s - p
        exact = (((p - (s - bp)) + (vc - bp)) == 0) | ~np.isfinite(s)
        assert exact.mean() > 0.9
        a, b, c, s = a[exact], b[exact], c[exact], s[exact]
        assert_same(F, fp.fma(a, b, c, F), ml_round(fmt, s), [a, b, c])


def test_error_messages():
    with pytest.raises(ValueError, match=r"Format 'e8m0' .* is not supported by lutforge.golden.fp; "
                                         r"use a signed format with 1 to 23 mantissa bits\."):
        fp.add(np.uint8(1), np.uint8(2), "e8m0")
    with pytest.raises(ValueError, match=r"rounding='stochastic' is not supported here; use one of 'rne', 'truncate'\."):
        fp.mul(np.uint16(1), np.uint16(2), "fp16", rounding="stochastic")
    with pytest.raises(ValueError, match=r"Format 'e2m1' has no Inf or NaN encoding, so overflow='inf' "
                                         r"cannot be honoured; saturate is the only option"):
        fp.add(np.uint8(1), np.uint8(2), "e2m1", overflow="inf")
    with pytest.raises(ValueError, match=r"Encodings for e4m3 must fit in 8 bits; got a value up to 0x100\."):
        fp.add(np.uint16(0x100), np.uint16(2), "e4m3")
    with pytest.raises(TypeError, match=r"Encodings must be an integer array, got dtype float32"):
        fp.add(np.float32(1), np.uint16(2), "fp16")


def grid_truncate(F, v):
    """Plain reference for truncate + saturate: the largest-magnitude value of the format's grid
    (every encoding decoded by ml_dtypes) not above |v|, with v's sign."""
    codes = np.arange(1 << F.width, dtype=np.uint8)
    vals = codes.view(SMALL[F.name]).astype(np.float64)
    keep = np.isfinite(vals) & ~np.signbit(vals)
    order = np.argsort(vals[keep])
    g, gc = vals[keep][order], codes[keep][order].astype(np.uint64)
    with np.errstate(invalid="ignore"):
        i = np.clip(np.searchsorted(g, np.abs(v), side="right") - 1, 0, len(g) - 1)
    sign = np.where(np.signbit(v), np.uint64(F.sign_mask), np.uint64(0))
    out = gc[i] | sign
    if F.has_inf:
        out = np.where(np.isinf(v), np.uint64(F.inf) | sign, out)
    if F.has_nan:
        out = np.where(np.isnan(v), np.uint64(F.nan), out)
    return out.astype(F.dtype)


@pytest.mark.parametrize("fmt", list(SMALL))
def test_small_formats_truncate_saturate_flush_exhaustive(fmt):
    """All operand pairs with rounding='truncate', overflow='saturate', subnormals='flush' against
    the exact float64 result of the flushed inputs, truncated on the format's grid and flushed."""
    F = get(fmt)
    codes = np.arange(1 << F.width, dtype=F.dtype)
    a, b = (x.ravel() for x in np.meshgrid(codes, codes))
    va, vb = decode(flush_reference(F, a), F), decode(flush_reference(F, b), F)
    with np.errstate(invalid="ignore"):
        exact = {"add": va + vb, "mul": va * vb}
    for op, v in exact.items():
        want = flush_reference(F, grid_truncate(F, v))
        got = getattr(fp, op)(a, b, F, rounding="truncate", overflow="saturate", subnormals="flush")
        assert_same(F, got, want, [a, b])
