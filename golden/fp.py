"""Correctly rounded floating-point add, multiply and fused multiply-add on encodings.

``add(a, b, fmt)``, ``mul(a, b, fmt)`` and ``fma(a, b, c, fmt)`` take NumPy integer arrays of
encodings of ``fmt`` (broadcast against each other) and return encodings of ``fmt`` (dtype
``fmt.dtype``). The exact result is formed as a sign, an integer significand and an exponent (with a
sticky bit when the smaller addend reaches below a 62-bit window, which cannot change the rounding),
then rounded once by :func:`lutforge.golden.convert.round_pack`. ``fma`` is therefore a true fused
operation: ``fma(a, b, c) = round(a·b + c)``, correctly rounded also on ties, for every format with
at most 23 mantissa bits (fp32 and smaller).

Keyword policies, shared with the RTL blocks (same names, same meaning):

* ``rounding``: ``"rne"`` (default) or ``"truncate"`` (toward zero, IEEE roundTowardZero: finite
  results never overflow to Inf/NaN).
* ``subnormals``: ``"keep"`` (default) or ``"flush"``: subnormal inputs are read as zero of their
  sign, and a result that is subnormal after rounding becomes zero of its sign.
* ``overflow``: ``"inf"`` (default for formats with specials: ±Inf in IEEE formats, NaN in ``"fn"``
  formats) or ``"saturate"`` (±max_finite; Inf *inputs* still give Inf in IEEE formats). ``"none"``
  formats accept only ``"saturate"`` (the default for them).

IEEE 754 rules for specials: any NaN input, Inf − Inf, 0 · Inf (also inside ``fma``) give the
canonical NaN ``fmt.nan``; Inf propagates with its sign. An exact zero sum is +0 unless both addends
are zeros of negative sign (so ``x + (−x) = +0`` and ``(−0) + (−0) = −0``); a non-zero result that
rounds to zero keeps the sign of the exact result.
"""

import numpy as np

from .convert import _bitlen, check_policy, round_pack, unpack
from .formats import get

__all__ = ["add", "mul", "fma", "MAX_MAN_BITS"]

MAX_MAN_BITS = 23
_U64 = np.uint64
_WINDOW = 62
_NO_EXP = -(1 << 40)


def _setup(fmt, rounding, overflow, subnormals, *encs):
    fmt = get(fmt)
    if fmt.man_bits > MAX_MAN_BITS or not fmt.has_zero or not fmt.signed:
        raise ValueError(
            f"Format {fmt.name!r} ({fmt.exp_bits} exponent, {fmt.man_bits} mantissa bits, "
            f"signed={fmt.signed}) is not supported by lutforge.golden.fp; use a signed format with "
            f"1 to {MAX_MAN_BITS} mantissa bits."
        )
    check_policy(fmt, rounding, overflow, subnormals, roundings=("rne", "truncate"))
    encs = np.broadcast_arrays(*(np.asarray(e) for e in encs))
    return fmt, [unpack(e, fmt, subnormals) for e in encs]


def _exact_sum(s1, m1, e1, w1, s2, m2, e2, w2):
    """Exact ``±m1·2^e1 ± m2·2^e2`` as ``(sign, sig, exp, sticky, exact_zero)``.

    ``w1``/``w2`` bound the operands' significand widths (≤ 48). Each non-zero operand is normalised
    to exactly its width, both are placed in a 62-bit window under the larger leading bit, and only
    the smaller one can fall off the bottom; it then leaves ≥ 59 significant result bits plus a
    sticky bit, enough for one correct rounding.
    """
    def place(m, e, w):
        nz = m != 0
        n = _bitlen(m)
        m = m << np.where(nz, w - n, 0).astype(_U64)
        e = e - np.where(nz, w - n, 0)
        lead = np.where(nz, e + w - 1, _NO_EXP)
        return m, e, lead

    m1, e1, l1 = place(m1, e1, w1)
    m2, e2, l2 = place(m2, e2, w2)
    base = np.maximum(l1, l2) + 1 - (_WINDOW - 1)

    def window(m, e):
        r = base - e
        left = m << np.clip(-r, 0, 63).astype(_U64)
        rc = np.clip(r, 0, 63).astype(_U64)
        right = np.where(r > 63, _U64(0), m >> rc)
        lost = np.where(r > 63, m != 0, (m & ((_U64(1) << rc) - _U64(1))) != 0)
        return np.where(r <= 0, left, right).astype(np.int64), (r > 0) & lost

    x1, st1 = window(m1, e1)
    x2, st2 = window(m2, e2)
    sticky = st1 | st2
    same = s1 == s2
    diff = x1 - x2
    mag = np.where(same, x1 + x2, np.abs(diff) - (sticky & ~same))
    sign = np.where(same | (diff > 0), s1, s2)
    exact_zero = (mag == 0) & ~sticky
    # Exact cancellation is +0 in rne and truncate; equal-signed zeros keep their sign.
    sign = np.where(exact_zero, s1 & s2, sign)
    return sign, mag.astype(_U64), base, sticky


def add(a, b, fmt, *, rounding="rne", subnormals="keep", overflow=None) -> np.ndarray:
    """``round(a + b)`` on encodings of ``fmt``; see the module docstring for the policies."""
    fmt, ((sa, ma, ea, na, ia), (sb, mb, eb, nb, ib)) = _setup(fmt, rounding, overflow, subnormals, a, b)
    w = fmt.man_bits + 1
    sign, sig, exp, sticky = _exact_sum(sa, ma, ea, w, sb, mb, eb, w)
    nan = na | nb | (ia & ib & (sa != sb))
    inf = (ia | ib) & ~nan
    sign = np.where(inf, np.where(ia, sa, sb), sign)
    return round_pack(sign, np.where(nan | inf, _U64(0), sig), exp, fmt, rounding=rounding,
                      overflow=overflow, subnormals=subnormals, sticky=sticky & ~nan & ~inf,
                      nan=nan, inf=inf)


def _product(s1, m1, e1, n1, i1, s2, m2, e2, n2, i2):
    zero1 = (m1 == 0) & ~n1 & ~i1
    zero2 = (m2 == 0) & ~n2 & ~i2
    nan = n1 | n2 | (i1 & zero2) | (i2 & zero1)
    inf = (i1 | i2) & ~nan
    sig = np.where(i1 | i2 | n1 | n2, _U64(0), m1 * m2)
    return s1 != s2, sig, e1 + e2, nan, inf


def mul(a, b, fmt, *, rounding="rne", subnormals="keep", overflow=None) -> np.ndarray:
    """``round(a · b)`` on encodings of ``fmt``; see the module docstring for the policies."""
    fmt, (ua, ub) = _setup(fmt, rounding, overflow, subnormals, a, b)
    sign, sig, exp, nan, inf = _product(*ua, *ub)
    return round_pack(sign, sig, exp, fmt, rounding=rounding, overflow=overflow,
                      subnormals=subnormals, nan=nan, inf=inf)


def fma(a, b, c, fmt, *, rounding="rne", subnormals="keep", overflow=None) -> np.ndarray:
    """``round(a · b + c)`` with a single rounding on encodings of ``fmt``.

    Specials: NaN if any input is NaN, if ``a · b`` is ``0 · Inf``, or if an infinite product meets
    an Inf ``c`` of the other sign; otherwise Inf if the product or ``c`` is infinite. A zero
    product keeps the sign ``sign(a) xor sign(b)`` for the signed-zero rule of the sum.
    """
    fmt, (ua, ub, (sc, mc, ec, nc, ic)) = _setup(fmt, rounding, overflow, subnormals, a, b, c)
    sp, mp, ep, np_, ip = _product(*ua, *ub)
    w = fmt.man_bits + 1
    sign, sig, exp, sticky = _exact_sum(sp, mp, ep, 2 * w, sc, mc, ec, w)
    nan = np_ | nc | (ip & ic & (sp != sc))
    inf = (ip | ic) & ~nan
    sign = np.where(inf, np.where(ip, sp, sc), sign)
    return round_pack(sign, np.where(nan | inf, _U64(0), sig), exp, fmt, rounding=rounding,
                      overflow=overflow, subnormals=subnormals, sticky=sticky & ~nan & ~inf,
                      nan=nan, inf=inf)
