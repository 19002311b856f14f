"""Attention's products in a hardware format (compiler/attention_numerics.py): rounding, decoding
and L-Mul equal to the golden models bit for bit (exhaustively for 8-bit formats), the rounding
also against PyTorch's own casts, and the configuration errors."""

import numpy as np
import pytest
import torch

from lutforge.compiler import attention_numerics as an
from lutforge.golden import convert, lmul as golden_lmul
from lutforge.golden.formats import Format, get, shortened_fp32

E8M3, E8M4 = shortened_fp32(3), shortened_fp32(4)
FORMATS = [get("e4m3"), get("e5m2"), get("e2m3"), get("bf16"), get("fp16"), E8M3, E8M4]


def grid_and_ties(fmt: Format) -> np.ndarray:
    """Every finite value of ``fmt`` (up to 2^16 encodings, else a sample), the midpoints between
    neighbours (ties) and the fp32 values just beside them, both signs, and values beyond the
    largest finite one."""
    encs = np.arange(1 << min(fmt.width - 1, 16), dtype=np.uint64)
    if fmt.width - 1 > 16:
        encs = np.unique(np.random.default_rng(0).integers(0, 1 << (fmt.width - 1), 1 << 16, dtype=np.uint64))
    values = np.unique(convert.decode(encs, fmt))
    values = values[np.isfinite(values)]
    mids = (values[1:] + values[:-1]) / 2
    top = values[-1]
    x = np.concatenate([values, mids, np.nextafter(mids.astype(np.float32), np.float32(0)),
                        np.nextafter(mids.astype(np.float32), np.float32(np.inf)), [top * 1.5, top * 4, 3e38]])
    x = x[np.abs(x) <= np.finfo(np.float32).max].astype(np.float32)
    return np.concatenate([x, -x])


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_rounding_equals_the_golden_encoder_on_every_value_tie_and_overflow(fmt):
    x = grid_and_ties(fmt)
    rng = np.random.default_rng(1)
    x = np.concatenate([x, (rng.standard_normal(20000) * np.exp2(rng.integers(-140, 126, 20000))).astype(np.float32)])
    x = x[np.isfinite(x)]
    want = convert.encode(x, fmt, overflow="saturate").astype(np.int64)
    got = an.round_to(torch.from_numpy(x), fmt).numpy().astype(np.int64)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (fmt.name, x[bad[:5]], got[bad[:5]], want[bad[:5]])


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_decoding_equals_the_golden_decoder_on_every_encoding(fmt):
    encs = np.arange(1 << fmt.width, dtype=np.int64) if fmt.width <= 16 else \
        np.random.default_rng(2).integers(0, 1 << fmt.width, 1 << 16)
    want = convert.decode(encs.astype(np.uint64), fmt).astype(np.float32)
    got = an.decode(torch.from_numpy(encs).to(torch.int32), fmt).numpy()
    assert np.array_equal(np.isnan(got), np.isnan(want))
    keep = ~np.isnan(want)
    assert np.array_equal(got[keep].view(np.uint32), want[keep].view(np.uint32)), fmt.name


@pytest.mark.parametrize("fmt", [get("e4m3"), get("e5m2"), get("e2m3")], ids=lambda f: f.name)
@pytest.mark.parametrize("offset", [None, "low"])
def test_lmul_equals_the_golden_lmul_on_every_pair_of_small_encodings(fmt, offset):
    off = None if offset is None else golden_lmul.default_offset(fmt) - 1
    a, b = np.meshgrid(np.arange(1 << fmt.width), np.arange(1 << fmt.width), indexing="ij")
    want = golden_lmul.lmul(a, b, fmt, offset=off).astype(np.int64)
    got = an.lmul(torch.from_numpy(a).to(torch.int32), torch.from_numpy(b).to(torch.int32), fmt, off)
    assert np.array_equal(got.numpy().astype(np.int64), want), fmt.name


@pytest.mark.parametrize("fmt", [get("bf16"), E8M3, E8M4], ids=lambda f: f.name)
def test_lmul_equals_the_golden_lmul_on_wide_formats(fmt):
    rng = np.random.default_rng(3)
    a = rng.integers(0, 1 << fmt.width, 200000)
    b = rng.integers(0, 1 << fmt.width, 200000)
    special = np.array([0, fmt.sign_mask, 1, fmt.inf, fmt.inf | fmt.sign_mask, fmt.nan, fmt.max_finite,
                        1 << fmt.man_bits, fmt.bias << fmt.man_bits])
    a, b = np.concatenate([a, np.repeat(special, special.size)]), np.concatenate([b, np.tile(special, special.size)])
    want = golden_lmul.lmul(a, b, fmt).astype(np.int64)
    got = an.lmul(torch.from_numpy(a).to(torch.int32), torch.from_numpy(b).to(torch.int32), fmt)
    assert np.array_equal(got.numpy().astype(np.int64), want), fmt.name


def test_rounding_agrees_with_pytorchs_bf16_and_e4m3_casts():
    # An oracle we did not write: PyTorch's casts round to nearest even (e4m3fn: saturated first,
    # since PyTorch turns out-of-range values into NaN).
    rng = np.random.default_rng(4)
    x = torch.from_numpy((rng.standard_normal(50000) * np.exp2(rng.integers(-20, 12, 50000))).astype(np.float32))
    bf16 = an.decode(an.round_to(x, "bf16"), "bf16")
    assert torch.equal(bf16, x.to(torch.bfloat16).float())
    e4m3 = an.decode(an.round_to(x, "e4m3"), "e4m3")
    assert torch.equal(e4m3, x.clamp(-448, 448).to(torch.float8_e4m3fn).float())


def test_lmul_products_sum_to_the_golden_products_within_the_fp32_sum_bound():
    fmt = E8M4
    numerics = an.AttentionNumerics(fmt, "lmul")
    rng = np.random.default_rng(5)
    a = an.round_to(torch.from_numpy(rng.standard_normal((3, 40, 64)).astype(np.float32)), fmt)
    b = an.round_to(torch.from_numpy(rng.standard_normal((3, 50, 64)).astype(np.float32)), fmt)
    got = an.products(a, b, numerics, rows=7).numpy().astype(np.float64)
    p = golden_lmul.lmul(a.numpy()[:, :, None, :].astype(np.int64), b.numpy()[:, None, :, :].astype(np.int64), fmt)
    terms = convert.decode(p, fmt)
    want = terms.sum(-1)
    # Any order of 64 fp32 additions: |error| <= 63 u sum|p| (u = 2^-24), to first order.
    bound = 64 * 2.0 ** -24 * np.abs(terms).sum(-1)
    assert got.shape == (3, 40, 50) and np.all(np.abs(got - want) <= bound)
    assert not np.allclose(got, np.asarray(an.products(a, b, an.AttentionNumerics(fmt, "exact"))), atol=1e-3)


@pytest.mark.parametrize("fmt", [E8M3, E8M4, get("bf16")], ids=lambda f: f.name)
def test_split_lmul_sums_equal_the_elementwise_sums_within_the_fp32_bound(fmt):
    rng = np.random.default_rng(7)
    # Attention-like operands: q·k at unit scale, and softmax weights (down to e^-30) against values.
    a = an.round_to(torch.from_numpy((rng.standard_normal((2, 24, 64)) * np.exp(rng.uniform(-30, 2, (2, 24, 64))))
                                     .astype(np.float32)), fmt)
    b = an.round_to(torch.from_numpy(rng.standard_normal((2, 40, 64)).astype(np.float32) * 3), fmt)
    off = golden_lmul.default_offset(fmt)
    base, top = fmt.bias << fmt.man_bits, (1 << fmt.man_bits) - 1
    for offset in [off, base, base - top, base + 1, base + top]:
        numerics = an.AttentionNumerics(fmt, "lmul", offset)
        want = an.products(a, b, numerics, rows=5).double()
        terms = an.decode(an.lmul(a[..., :, None, :], b[..., None, :, :], fmt, offset), fmt).double().abs().sum(-1)
        got = an.split_lmul_products(a, b, numerics).double()
        # Both sum exact fp32 terms (the split one up to four per product): |error| <= 4 d u sum|p|
        # each, plus d 2^-126 for products the split form keeps below the smallest normal.
        bound = 2 * 4 * 64 * 2.0 ** -24 * terms + 64 * 2.0 ** -126
        assert torch.all((got - want).abs() <= bound), (fmt.name, offset)
    with pytest.raises(ValueError, match=r"The split form of L-Mul needs 8 exponent bits"):
        an.split_lmul_products(a, b, an.AttentionNumerics(fmt, "lmul", base + top + 1))


def test_exact_bf16_attention_is_pytorchs_bf16_rounded_attention():
    rng = np.random.default_rng(6)
    q, k, v = (torch.from_numpy(rng.standard_normal((2, 9, 64)).astype(np.float32)) for _ in range(3))
    mask = torch.full((9, 9), float("-inf")).triu(1)
    got = an.attention(q, k, v, mask, an.AttentionNumerics("bf16"))
    bf = lambda t: t.to(torch.bfloat16).float()  # noqa: E731
    weights = torch.softmax(bf(q * 0.125) @ bf(k).transpose(-1, -2) + mask, -1)
    assert torch.equal(got, bf(weights) @ bf(v))
    fp32 = an.attention(q, k, v, mask, an.AttentionNumerics("fp32"))
    assert torch.equal(fp32, torch.softmax((q @ k.transpose(-1, -2)) * 0.125 + mask, -1) @ v)


@pytest.mark.parametrize("kwargs, message", [
    (dict(format="bf16", mul="log"), r"Attention multiplier 'log' is not known; use one of exact, lmul\."),
    (dict(format="bf16", offset=3), r"An L-Mul offset \(3\) was given for exact products; give offsets only with "
                                    r"mul='lmul'\."),
    (dict(format="e4m3", mul="lmul", offset=200), r"L-Mul offset 200 does not fit the 7-bit magnitude of e4m3; "
                                                  r"use 0\.\.127\."),
    (dict(format="e8m0"), r"Attention operands in e8m0 cannot be emulated"),
    (dict(format=Format("e5m13", 5, 13, 15, "ieee")), r"Products of two e5m13 operands \(14-bit significands\) "
                                                      r"are not exact in fp32"),
])
def test_bad_numerics_are_refused_naming_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        an.AttentionNumerics(**kwargs)


def test_non_finite_operands_are_refused():
    with pytest.raises(ValueError, match=r"Attention operands must be finite to be rounded into bf16"):
        an.round_to(torch.tensor([1.0, float("nan")]), "bf16")
