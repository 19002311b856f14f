"""golden.lmul against plain-Python evaluations of the paper's equation and of each policy."""

from fractions import Fraction

import numpy as np
import pytest

from lutforge.golden.formats import Format, get
from lutforge.golden.lmul import LMulPolicy, default_offset, l_of_m, lmul

# The paper's constants as numerics.md lists them (an independent source, not computed here).
PAPER_OFFSETS = {"fp32": 0x3F780000, "bf16": 0x3F78, "fp16": 0x3BC0, "e4m3": 0x37, "e5m2": 0x3B}


def value(enc: int, fmt: Format) -> Fraction:
    """Exact value of a finite encoding, by the textbook formula."""
    sign = -1 if enc >> (fmt.width - 1) & 1 else 1
    field = (enc >> fmt.man_bits) & fmt.exp_field_max
    man = enc & fmt.man_mask
    if field == 0:
        return sign * Fraction(man, 1 << fmt.man_bits) * Fraction(2) ** (1 - fmt.bias)
    return sign * (1 + Fraction(man, 1 << fmt.man_bits)) * Fraction(2) ** (field - fmt.bias)


def paper_equation(x: int, y: int, fmt: Format, l: int):
    """(1 + x_m + y_m + 2^-l) · 2^(x_e + y_e), sign XOR; None where x_m + y_m + 2^-l >= 1 (a carry)."""
    m = fmt.man_bits
    xm, ym = Fraction(x & fmt.man_mask, 1 << m), Fraction(y & fmt.man_mask, 1 << m)
    xe = ((x >> m) & fmt.exp_field_max) - fmt.bias
    ye = ((y >> m) & fmt.exp_field_max) - fmt.bias
    frac = xm + ym + Fraction(1, 1 << l)
    if frac >= 1:
        return None
    sign = -1 if ((x ^ y) >> (fmt.width - 1)) & 1 else 1
    return sign * (1 + frac) * Fraction(2) ** (xe + ye)


def normal_in_range(x, y, fmt):
    """Both operands normal and finite and the product's exponent inside the normal range."""
    m = fmt.man_bits
    fx, fy = (x >> m) & fmt.exp_field_max, (y >> m) & fmt.exp_field_max
    if not (0 < fx and 0 < fy and (x & fmt.magnitude_mask) <= fmt.max_finite
            and (y & fmt.magnitude_mask) <= fmt.max_finite):
        return False
    e = fx + fy - 2 * fmt.bias
    return fmt.emin <= e and e + 1 <= fmt.emax


@pytest.mark.parametrize("name", sorted(PAPER_OFFSETS))
def test_offsets_are_the_papers(name):
    assert default_offset(name) == PAPER_OFFSETS[name]


def test_l_of_m_is_the_papers_table():
    assert [l_of_m(m) for m in range(1, 9)] == [1, 2, 3, 3, 4, 4, 4, 4]


@pytest.mark.parametrize("name", ["e4m3", "e5m2"])
def test_equation_holds_exhaustively_where_nothing_carries(name):
    fmt = get(name)
    a, b = np.meshgrid(np.arange(256, dtype=np.uint64), np.arange(256, dtype=np.uint64))
    a, b = a.ravel(), b.ravel()
    got = lmul(a, b, fmt)
    checked = carried = 0
    for x, y, r in zip(a.tolist(), b.tolist(), got.tolist()):
        if not normal_in_range(x, y, fmt):
            continue
        want = paper_equation(x, y, fmt, l_of_m(fmt.man_bits))
        if want is None:
            carried += 1
            continue
        if abs(want) > value(fmt.max_finite, fmt):
            continue  # saturates: covered by the overflow test
        assert value(r, fmt) == want, f"{name} {x:#x} x {y:#x}: got {r:#x}, equation gives {want}"
        checked += 1
    assert checked > 10_000 and carried > 1_000


@pytest.mark.parametrize("name", ["bf16", "fp32"])
def test_equation_holds_on_random_carry_free_pairs(name):
    fmt = get(name)
    rng = np.random.default_rng(1)
    m = fmt.man_bits
    n = 20_000
    # Exponents near the bias so products stay in range; mantissas drawn freely.
    field = rng.integers(fmt.bias - 40, fmt.bias + 40, (2, n))
    man = rng.integers(0, 1 << m, (2, n))
    sign = rng.integers(0, 2, (2, n))
    enc = (sign << (fmt.width - 1)) | (field << m) | man
    got = lmul(enc[0].astype(np.uint64), enc[1].astype(np.uint64), fmt)
    checked = 0
    for x, y, r in zip(enc[0].tolist(), enc[1].tolist(), got.tolist()):
        want = paper_equation(x, y, fmt, l_of_m(m))
        if want is not None:
            assert value(r, fmt) == want, f"{name} {x:#x} x {y:#x}: got {r:#x}, equation gives {want}"
            checked += 1
    assert checked > n // 3


def test_a_carry_moves_into_the_exponent_as_the_adder_does():
    # 1.5 x 1.5: the adder gives 2.125, the carry-free equation 2.0625, the exact product 2.25.
    bf16 = get("bf16")
    one_and_half = 0x3FC0
    assert value(int(lmul(np.array([one_and_half]), np.array([one_and_half]), bf16)[0]), bf16) == Fraction(17, 8)


def bare_adder(x, y, fmt, offset):
    mag = fmt.magnitude_mask
    return (((x & mag) + (y & mag) - offset) & ((1 << fmt.width) - 1)) ^ ((x ^ y) & fmt.sign_mask)


@pytest.mark.parametrize("name", ["e4m3", "e5m2", "bf16"])
def test_wrap_is_the_bare_adder(name):
    fmt = get(name)
    rng = np.random.default_rng(2)
    a = rng.integers(0, 1 << fmt.width, 5000, dtype=np.uint64)
    b = rng.integers(0, 1 << fmt.width, 5000, dtype=np.uint64)
    for offset in (None, default_offset(fmt) - 1):
        got = lmul(a, b, fmt, "wrap", offset=offset)
        off = default_offset(fmt) if offset is None else offset
        assert got.tolist() == [bare_adder(x, y, fmt, off) for x, y in zip(a.tolist(), b.tolist())]


def test_wrap_reproduces_the_papers_failures():
    fp32 = get("fp32")
    zero, five = np.array([0]), np.array([0x40A00000])
    assert value(int(lmul(zero, five, fp32, "wrap")[0]), fp32) > 0  # 0 x 5 is not 0
    tiny = np.array([0x0DA24260])  # about 1e-30
    assert int(lmul(tiny, tiny, fp32, "wrap")[0]) >> 31 == 1  # a positive square comes out negative


def classify(enc, fmt):
    mag = enc & fmt.magnitude_mask
    if fmt.has_nan and fmt.is_nan(np.array([enc]))[0]:
        return "nan"
    if fmt.has_inf and mag == fmt.inf:
        return "inf"
    if mag == 0:
        return "zero"
    if mag >> fmt.man_bits == 0:
        return "subnormal"
    return "normal"


@pytest.mark.parametrize("name", ["e4m3", "e5m2"])
@pytest.mark.parametrize("overflow", ["saturate", "inf"])
def test_default_policies_exhaustively(name, overflow):
    fmt = get(name)
    a, b = np.meshgrid(np.arange(256, dtype=np.uint64), np.arange(256, dtype=np.uint64))
    a, b = a.ravel().tolist(), b.ravel().tolist()
    got = lmul(np.array(a, np.uint64), np.array(b, np.uint64), fmt, overflow=overflow).tolist()
    off = default_offset(fmt)
    top = fmt.max_finite if overflow == "saturate" else (fmt.inf if fmt.has_inf else fmt.nan)
    for x, y, r in zip(a, b, got):
        cx, cy = classify(x, fmt), classify(y, fmt)
        sign = (x ^ y) & fmt.sign_mask
        flat = {c if c not in ("zero", "subnormal") else "zero" for c in (cx, cy)}
        if "nan" in flat or flat == {"inf", "zero"}:
            want = fmt.nan
        elif "inf" in flat:
            want = fmt.inf | sign
        elif "zero" in flat:
            want = sign
        else:
            s = (x & fmt.magnitude_mask) + (y & fmt.magnitude_mask) - off
            if s > fmt.max_finite:
                want = top | sign  # e4m3 has no Inf: overflow gives S.1111.111, a NaN with the sign
            elif s < (1 << fmt.man_bits):
                want = sign  # flushed underflow
            else:
                want = s | sign
        assert r == want, f"{name} {x:#x} x {y:#x} ({cx}, {cy}): got {r:#x}, want {want:#x}"


def test_policies_pass_operands_to_the_adder_when_told():
    e5m2 = get("e5m2")
    sub, one = np.array([0x01]), np.array([0x3C])
    # A subnormal fed to the adder instead of flushed: 0x01 + 0x3C - 0x3B = 0x02.
    assert lmul(sub, one, e5m2, subnormal="wrap", underflow="wrap")[0] == 0x02
    assert lmul(sub, one, e5m2)[0] == 0x00
    # A zero fed to the adder is a small non-zero number (underflow not flushed).
    assert lmul(np.array([0]), one, e5m2, zero="wrap", underflow="wrap")[0] == 0x01


def test_offset_override_moves_the_constant():
    e4m3 = get("e4m3")
    x = np.array([0x38])  # 1.0
    assert value(int(lmul(x, x, e4m3)[0]), e4m3) == Fraction(9, 8)  # 1 + 2^-l(3), l = 3
    assert value(int(lmul(x, x, e4m3, offset=0x38)[0]), e4m3) == 1


@pytest.mark.parametrize("kwargs,message", [
    ({"overflow": "clip"}, r"L-Mul policy overflow='clip' is not supported; use one of 'saturate', 'inf', 'wrap'\."),
    ({"rounding": "rne"}, r"L-Mul has no policy named rounding; the policies are zero, subnormal, nan_inf, overflow, underflow\."),
    ({"offset": 0x80}, r"L-Mul offset 128 does not fit the 7-bit magnitude of e4m3; use 0\.\.127\."),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lmul(np.array([1]), np.array([1]), "e4m3", **kwargs)


def test_bad_operands_are_named():
    with pytest.raises(TypeError, match=r"L-Mul operand a has dtype float64; pass integer encodings of e4m3"):
        lmul(np.array([1.0]), np.array([1]), "e4m3")
    with pytest.raises(ValueError, match=r"L-Mul operand b holds 256, which is not a 8-bit e4m3 encoding \(0\.\.255\)\."):
        lmul(np.array([1]), np.array([256]), "e4m3")
    with pytest.raises(ValueError, match=r"L-Mul needs a signed format; 'e8m0' has no sign bit\."):
        lmul(np.array([1]), np.array([1]), "e8m0")
    with pytest.raises(ValueError, match=r"L-Mul policy 'fast' is not known"):
        LMulPolicy.of("fast")


def test_shortened_fp32_keeps_fp32s_range_and_names_the_presets():
    from lutforge.golden.convert import decode as decode_values
    from lutforge.golden.formats import get, shortened_fp32

    assert shortened_fp32(7) is get("bf16") and shortened_fp32(23) is get("fp32")
    e8m4 = shortened_fp32(4)
    assert (e8m4.name, e8m4.width) == ("e8m4", 13)
    # fp32's largest and smallest normal magnitudes with a 4-bit mantissa.
    assert float(decode_values(e8m4.max_finite, e8m4)) == (2 - 2.0 ** -4) * 2.0 ** 127
    assert float(decode_values(1 << 4, e8m4)) == 2.0 ** -126
