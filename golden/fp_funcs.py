"""Reciprocal, reciprocal square root and exponential on encodings, as a hardware unit computes them.

Each function is a *method*, not a correctly rounded function: it is defined by a seed table or a
range reduction and a fixed number of fused multiply-adds of :mod:`lutforge.golden.fp` in one
format, so the RTL can equal it bit for bit. Each has a companion ``*_bound`` that derives, from the
method alone, the largest relative error of a normal result against the exact function; the tests
check that bound exhaustively for 16-bit formats and against float64 and PyTorch.

Only formats with IEEE specials (fp32, bf16, fp16, the e8mX family) are accepted: the methods need
Inf for 1/0 and NaN for invalid inputs.

**reciprocal(a)** ``a = ±M·2^E`` with ``M`` in [1, 2) (subnormals normalised first). A table of
``2^seed_bits`` entries, indexed by the leading fraction bits of ``M``, holds ``RN(1/M_mid)`` (the
midpoint of the entry's interval). Each Newton step is two FMAs on ``M`` alone, where nothing can
overflow: ``e = RN(1 - M·y)``, ``y = RN(y + y·e)``. The result is ``±y·2^-E``, rounded once more only
where it is subnormal or overflows. Specials: 1/±0 = ±Inf, 1/±Inf = ±0, NaN gives NaN.

**rsqrt(a)** ``a = M·2^E`` with ``E`` made even (``X = M`` or ``2M`` in [1, 4)). A table of
``2·2^seed_bits`` entries, indexed by the parity of ``E`` and the leading fraction bits, holds
``RN(1/sqrt(X_mid))``. Newton step, three roundings: ``t = RN(y·y)``, ``r = RN(1/2 - (X/2)·t)``,
``y = RN(y + y·r)``. The result is ``y·2^(-E/2)``. Specials: rsqrt(±0) = ±Inf, rsqrt(+Inf) = +0,
negative inputs and NaN give NaN.

**exp(a)** ``exp(a) = 2^t`` with ``t = RN(a · RN(log2 e))``; ``n = round(t)`` (ties to even) and
``f = t - n`` (exact: Sterbenz) in [-1/2, 1/2]; ``2^f`` by Horner's rule with FMAs on the Taylor
coefficients ``RN(ln2^k / k!)`` up to the smallest degree whose remainder is below a quarter unit
in the last place; the result is ``p·2^n``, rounded once more only where it is subnormal or
overflows. The rounding of ``t`` costs a relative error of about ``ln2·|t|·2u``: exp of large
arguments keeps fewer bits, as in any unit that reduces the range in the working format (use a
wider ``fmt`` for the unit, e.g. fp32 for bf16 data). Specials: exp(-Inf) = +0, exp(+Inf) = +Inf,
NaN gives NaN.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .convert import _bitlen, decode, encode, round_pack, unpack
from .formats import Format, get
from .fp import MAX_MAN_BITS, fma, mul, add

__all__ = ["reciprocal", "rsqrt", "exp", "reciprocal_bound", "rsqrt_bound", "exp_bound", "newton_steps",
           "reciprocal_seeds", "rsqrt_seeds", "reciprocal_steps", "rsqrt_steps", "exp_degree", "exp_constants",
           "check_function_format", "check_seed_bits", "negate"]

_U64 = np.uint64


def check_function_format(fmt) -> Format:
    fmt = get(fmt)
    if fmt.specials != "ieee" or not fmt.signed or fmt.man_bits < 1 or fmt.man_bits > MAX_MAN_BITS:
        raise ValueError(
            f"Format {fmt.name!r} cannot carry the function units: they need IEEE specials (Inf for 1/0, "
            f"NaN for invalid inputs), a sign and 1 to {MAX_MAN_BITS} mantissa bits; use fp32, bf16, fp16 "
            f"or an e8mX format.")
    return fmt


def check_seed_bits(seed_bits: int) -> int:
    if isinstance(seed_bits, bool) or not isinstance(seed_bits, int) or not 1 <= seed_bits <= 12:
        raise ValueError(f"seed_bits={seed_bits!r} is outside 1 to 12 (a table of 2^seed_bits entries); "
                         f"choose a table size in that range.")
    return seed_bits


def _u(fmt: Format) -> float:
    """Unit roundoff of ``fmt`` (round to nearest)."""
    return 2.0 ** -(fmt.man_bits + 1)


def negate(a, fmt: Format) -> np.ndarray:
    """``-a``: the sign bit flipped (exact, NaN stays NaN)."""
    return (np.asarray(a).astype(fmt.dtype) ^ fmt.dtype.type(fmt.sign_mask)).astype(fmt.dtype)


def _const(x: float, fmt: Format):
    return encode(np.array(x, np.float64), fmt)[()]


def _normalise(a, fmt: Format):
    """``(sign, frac, E, nan, inf, zero)`` with ``|a| = (1 + frac/2^m)·2^E`` for finite non-zero ``a``
    (subnormals shifted up to a hidden bit)."""
    sign, sig, exp, nan, inf = unpack(a, fmt)
    m = fmt.man_bits
    zero = (sig == 0) & ~nan & ~inf
    n = _bitlen(sig)
    shift = np.where(zero | nan | inf, 0, m + 1 - n)
    sig = sig << shift.astype(_U64)
    big_e = exp - shift + m
    frac = sig & _U64(fmt.man_mask)
    return sign, frac, big_e, nan, inf, zero


def _mantissa_enc(frac, e_field: int, fmt: Format) -> np.ndarray:
    """The encoding of ``(1 + frac/2^m)·2^e_field_unbiased`` for a fixed exponent."""
    return ((_U64(e_field + fmt.bias) << _U64(fmt.man_bits)) | frac).astype(fmt.dtype)


def _scale(y, shift, fmt: Format, sign) -> np.ndarray:
    """``±y·2^shift`` rounded into ``fmt`` (exact unless subnormal or out of range)."""
    _, sig, exp, _, _ = unpack(y, fmt)
    return round_pack(sign, sig, exp + np.clip(shift, -4096, 4096), fmt)


def newton_steps(seed_error: float, fmt: Format, step_bound) -> int:
    """The fewest Newton steps after which the bound stops improving (a fixed point of the rounding)."""
    err, steps = seed_error, 0
    while True:
        nxt = step_bound(err, _u(fmt))
        if nxt >= err * 0.99 or steps > 8:
            return steps
        err, steps = nxt, steps + 1


# -- reciprocal ------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def reciprocal_seeds(fmt: Format, seed_bits: int) -> tuple[np.ndarray, float]:
    """Seed encodings and their worst relative error ``|1 - M·y0|`` over each entry's interval."""
    i = np.arange(1 << seed_bits, dtype=np.float64)
    lo, hi = 1 + i / 2 ** seed_bits, 1 + (i + 1) / 2 ** seed_bits
    seeds = encode(1 / ((lo + hi) / 2), fmt)
    y0 = decode(seeds, fmt)
    err = float(np.max(np.maximum(np.abs(1 - lo * y0), np.abs(1 - hi * y0))))
    return seeds, err


def _recip_step_bound(eps: float, u: float) -> float:
    # e = (1 - M y)(1 + d1), y' = (y + y e)(1 + d2) with eps = 1 - M y:
    # 1 - M y' = eps^2 - eps d1 + eps^2 d1 - d2 (1 - eps^2 + eps d1 - eps^2 d1).
    return eps * eps + eps * u + eps * eps * u + u * (1 + eps * eps + eps * u + eps * eps * u)


def reciprocal_steps(fmt: Format, seed_bits: int) -> int:
    """The default step count of :func:`reciprocal`: the fewest after which its bound stops improving."""
    return newton_steps(reciprocal_seeds(fmt, seed_bits)[1], fmt, _recip_step_bound)


def reciprocal_bound(fmt, *, seed_bits: int = 7, iterations: int | None = None) -> float:
    """The largest relative error ``|y - 1/a| / |1/a|`` of a normal result of :func:`reciprocal`."""
    fmt = check_function_format(fmt)
    check_seed_bits(seed_bits)
    iterations = reciprocal_steps(fmt, seed_bits) if iterations is None else iterations
    err = reciprocal_seeds(fmt, seed_bits)[1]
    for _ in range(iterations):
        err = _recip_step_bound(err, _u(fmt))
    return err


def reciprocal(a, fmt, *, seed_bits: int = 7, iterations: int | None = None) -> np.ndarray:
    """``1/a`` on encodings of ``fmt`` (module docstring); ``iterations`` defaults to the fewest
    Newton steps that reach the format's precision from the seed."""
    fmt = check_function_format(fmt)
    check_seed_bits(seed_bits)
    iterations = reciprocal_steps(fmt, seed_bits) if iterations is None else iterations
    sign, frac, big_e, nan, inf, zero = _normalise(a, fmt)
    m = fmt.man_bits
    seeds, _ = reciprocal_seeds(fmt, seed_bits)
    idx = (frac << _U64(seed_bits)) >> _U64(m) if seed_bits > m else frac >> _U64(m - seed_bits)
    big_m = _mantissa_enc(frac, 0, fmt)
    neg_m = negate(big_m, fmt)
    one = _const(1.0, fmt)
    y = seeds[idx.astype(np.int64)]
    for _ in range(iterations):
        e = fma(neg_m, y, one, fmt)
        y = fma(y, e, y, fmt)
    out = _scale(y, -big_e, fmt, sign)
    out = np.where(zero, (np.where(sign, fmt.sign_mask, 0) | fmt.inf), out)
    out = np.where(inf, np.where(sign, fmt.sign_mask, 0), out)
    return np.where(nan, fmt.nan, out).astype(fmt.dtype)


# -- reciprocal square root --------------------------------------------------------------------

@lru_cache(maxsize=None)
def rsqrt_seeds(fmt: Format, seed_bits: int) -> tuple[np.ndarray, float]:
    """Seeds for X in [1, 2) (even E) then X in [2, 4) (odd E), and the worst ``|1 - y0·sqrt(X)|``."""
    i = np.arange(1 << seed_bits, dtype=np.float64)
    lo = np.concatenate([1 + i / 2 ** seed_bits, 2 * (1 + i / 2 ** seed_bits)])
    hi = np.concatenate([1 + (i + 1) / 2 ** seed_bits, 2 * (1 + (i + 1) / 2 ** seed_bits)])
    seeds = encode(1 / np.sqrt((lo + hi) / 2), fmt)
    y0 = decode(seeds, fmt)
    err = float(np.max(np.maximum(np.abs(1 - y0 * np.sqrt(lo)), np.abs(1 - y0 * np.sqrt(hi)))))
    return seeds, err


def _rsqrt_step_bound(rho: float, u: float) -> float:
    # With y sqrt(X) = 1 - rho and eps = 1 - X y^2 = 2 rho - rho^2: t = y^2 (1 + d1),
    # r = (1/2 - X/2 t)(1 + d2) = (eps - (1 - eps) d1)(1 + d2) / 2, y' = (y + y r)(1 + d3), so
    # y' sqrt(X) = (1 - rho)(1 + r)(1 + d3) = 1 - 3/2 rho^2 + rho^3/2 + perturbations.
    eps = 2 * rho + rho * rho
    exact = 1.5 * rho * rho + 0.5 * rho ** 3
    pert = (1 + rho) * 0.5 * (eps * u + (1 + eps) * u * (1 + u))
    return exact + pert + u * (1 + exact + pert)


def rsqrt_steps(fmt: Format, seed_bits: int) -> int:
    """The default step count of :func:`rsqrt`: the fewest after which its bound stops improving."""
    return newton_steps(rsqrt_seeds(fmt, seed_bits)[1], fmt, _rsqrt_step_bound)


def rsqrt_bound(fmt, *, seed_bits: int = 7, iterations: int | None = None) -> float:
    """The largest relative error ``|y - a^-1/2| / a^-1/2`` of :func:`rsqrt` on a positive normal result."""
    fmt = check_function_format(fmt)
    check_seed_bits(seed_bits)
    iterations = rsqrt_steps(fmt, seed_bits) if iterations is None else iterations
    err = rsqrt_seeds(fmt, seed_bits)[1]
    for _ in range(iterations):
        err = _rsqrt_step_bound(err, _u(fmt))
    return err


def rsqrt(a, fmt, *, seed_bits: int = 7, iterations: int | None = None) -> np.ndarray:
    """``1/sqrt(a)`` on encodings of ``fmt`` (module docstring)."""
    fmt = check_function_format(fmt)
    check_seed_bits(seed_bits)
    iterations = rsqrt_steps(fmt, seed_bits) if iterations is None else iterations
    sign, frac, big_e, nan, inf, zero = _normalise(a, fmt)
    m = fmt.man_bits
    odd = (big_e & 1).astype(bool)
    seeds, _ = rsqrt_seeds(fmt, seed_bits)
    idx = (frac << _U64(seed_bits)) >> _U64(m) if seed_bits > m else frac >> _U64(m - seed_bits)
    idx = idx.astype(np.int64) + np.where(odd, 1 << seed_bits, 0)
    big_x = np.where(odd, _mantissa_enc(frac, 1, fmt), _mantissa_enc(frac, 0, fmt))
    neg_half_x = np.where(odd, _mantissa_enc(frac, 0, fmt), _mantissa_enc(frac, -1, fmt))
    neg_half_x = negate(neg_half_x.astype(fmt.dtype), fmt)
    half = _const(0.5, fmt)
    y = seeds[idx]
    for _ in range(iterations):
        t = mul(y, y, fmt)
        r = fma(neg_half_x, t, half, fmt)
        y = fma(y, r, y, fmt)
    even_e = big_e - odd
    out = _scale(y, -(even_e // 2), fmt, np.zeros_like(sign))
    out = np.where(zero, (np.where(sign, fmt.sign_mask, 0) | fmt.inf), out)
    out = np.where(inf & ~sign, 0, out)
    return np.where(nan | (sign & ~zero), fmt.nan, out).astype(fmt.dtype)


# -- exponential ------------------------------------------------------------------------------

def exp_degree(fmt) -> int:
    """Horner degree of :func:`exp`'s ``2^f``: Taylor remainder on |f| <= 1/2 below u/2."""
    fmt = check_function_format(fmt)
    x = 0.5 * math.log(2)
    d = 1
    while x ** (d + 1) / math.factorial(d + 1) * math.exp(x) > _u(fmt) / 2:
        d += 1
    return d


@lru_cache(maxsize=None)
def exp_constants(fmt: Format):
    """``RN(log2 e)`` and the Horner coefficients ``RN(ln2^k / k!)``, k = 0 .. degree, as encodings."""
    d = exp_degree(fmt)
    coeffs = [_const(math.log(2) ** k / math.factorial(k), fmt) for k in range(d + 1)]
    return _const(1 / math.log(2), fmt), coeffs


def exp_bound(fmt, t_max) -> np.ndarray:
    """The largest relative error of a normal result of :func:`exp` for ``|a·log2 e| <= t_max``
    (elementwise over an array of ``t_max``).

    Terms: the rounding of ``log2 e`` and of ``t`` (``|t|·(2u + u²)`` absolute in the exponent, so a
    factor ``2^(|t| (2u + u²))``); the Taylor remainder; and Horner's running error: step k's
    rounding (at most ``u·|p_k|``) and coefficient ``k``'s (``u·c_k``) reach the result times
    ``|f|^k``, majorised at ``|f| = 1/2`` with every term positive, against a result of at least
    ``2^(-1/2)``; and no rounding of ``p·2^n`` for normal results."""
    fmt = check_function_format(fmt)
    u = _u(fmt)
    d = exp_degree(fmt)
    h = 0.5
    coeffs = [math.log(2) ** k / math.factorial(k) for k in range(d + 1)]
    floor = 2 ** -0.5
    remainder = (h * math.log(2)) ** (d + 1) / math.factorial(d + 1) * math.exp(h * math.log(2)) / floor
    partial, running = coeffs[d], 0.0
    for k in range(d, -1, -1):
        partial = coeffs[k] if k == d else partial * h + coeffs[k]
        running += (partial + coeffs[k]) * h ** k
    horner = u * running / floor * (1 + 4 * (d + 1) * u)
    # Capped where the bound is meaningless anyway (results there are 0 or Inf).
    reduction = np.exp2(np.minimum(np.asarray(t_max, np.float64) * (2 * u + u * u), 1000.0)) - 1
    return (1 + reduction) * (1 + remainder) * (1 + horner) - 1


def exp(a, fmt) -> np.ndarray:
    """``e^a`` on encodings of ``fmt`` (module docstring)."""
    fmt = check_function_format(fmt)
    a = np.asarray(a).astype(fmt.dtype)
    log2e, coeffs = exp_constants(fmt)
    t = mul(a, log2e, fmt)
    tv = decode(t, fmt)
    # Beyond |t| = 2 (emax + m + 2) every result is 0 or Inf: those take n = 0 and are replaced below.
    limit = 2 * (fmt.emax + fmt.man_bits + 2)
    out_of_range = ~(np.abs(tv) <= limit)
    # n = round(t), ties to even: t - n is then exact in fmt (Sterbenz for |t| >= 1, n = 0 below).
    n = np.rint(np.where(out_of_range, 0.0, tv))
    f = add(t, negate(encode(n, fmt), fmt), fmt)
    p = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        p = fma(p, f, c, fmt)
    out = _scale(np.broadcast_to(p, a.shape).astype(fmt.dtype), n.astype(np.int64), fmt, np.zeros(a.shape, bool))
    nan = fmt.is_nan(a)
    out = np.where(out_of_range & (tv > 0), fmt.inf, np.where(out_of_range & (tv < 0), 0, out))
    return np.where(nan, fmt.nan, out).astype(fmt.dtype)
