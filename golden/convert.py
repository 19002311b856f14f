"""Encode, decode and convert between :class:`~lutforge.golden.formats.Format` encodings.

Everything works on integer bit patterns: a value is unpacked into a sign, an integer significand and
the exponent of its least significant bit, rounded once with integer shifts, and packed again. No
float cast is involved, so the result is exact for every pair of formats up to 64 bits.

Semantics shared by :func:`encode`, :func:`convert` and the arithmetic in :mod:`lutforge.golden.fp`:

* ``rounding``: ``"rne"`` (to nearest, ties to even; ties of E8M0 go to the even exponent field),
  ``"truncate"`` (toward zero) or ``"stochastic"`` (conversions only: rounds up with probability
  equal to the discarded fraction of one unit in the last place, drawn from ``rng``).
* ``overflow``: a finite result whose rounded magnitude exceeds ``fmt.max_finite`` becomes
  ``±max_finite`` under ``"saturate"``; under ``"inf"`` it becomes ±Inf in IEEE formats and NaN in
  ``"fn"`` formats. ``"inf"`` is refused for ``"none"`` formats, which have neither. As in IEEE 754
  round-toward-zero, ``"truncate"`` never turns a finite value into Inf/NaN: it clamps to
  ``±max_finite`` whatever ``overflow`` says. ``overflow=None`` picks ``"inf"`` for formats with
  specials and ``"saturate"`` for ``"none"`` formats.
* ``subnormals``: ``"keep"`` or ``"flush"``; ``"flush"`` replaces subnormal inputs by a zero of the
  same sign, and replaces a result that is subnormal *after rounding* by a zero of the same sign.
* Special inputs: NaN becomes the canonical ``fmt.nan`` (positive sign); NaN into a ``"none"``
  format raises. ±Inf stays ±Inf in IEEE formats; in other formats it becomes ``±max_finite`` under
  ``"saturate"`` and NaN under ``"inf"``.
* Mantissa-less formats (E8M0) have no zero: field 0 is 2^-bias. Zero, negative values and NaN
  become NaN; positive values below 2^-bias round up to field 0.
* Unsigned formats: negative non-zero values become NaN (``"fn"``) or raise (``"none"``); -0 is +0.
"""

import numpy as np

from .formats import Format, get

__all__ = ["decode", "encode", "convert", "unpack", "round_pack", "check_policy", "ROUNDINGS"]

ROUNDINGS = ("rne", "truncate", "stochastic")
_U64 = np.uint64


def check_policy(fmt: Format, rounding, overflow, subnormals, roundings=ROUNDINGS, rng=None) -> str:
    """Validate a policy triple for ``fmt``; return the overflow policy with ``None`` resolved."""
    if rounding not in roundings:
        raise ValueError(
            f"rounding={rounding!r} is not supported here; use one of {', '.join(map(repr, roundings))}."
        )
    if subnormals not in ("keep", "flush"):
        raise ValueError(f"subnormals={subnormals!r} is not supported; use 'keep' or 'flush'.")
    if overflow is None:
        overflow = "saturate" if fmt.specials == "none" else "inf"
    if overflow not in ("inf", "saturate"):
        raise ValueError(f"overflow={overflow!r} is not supported; use 'inf' or 'saturate'.")
    if overflow == "inf" and fmt.specials == "none":
        raise ValueError(
            f"Format {fmt.name!r} has no Inf or NaN encoding, so overflow='inf' cannot be honoured; "
            f"saturate is the only option: pass overflow='saturate'."
        )
    if rounding == "stochastic" and rng is None:
        raise ValueError(
            "rounding='stochastic' needs a random source; pass rng=np.random.default_rng(seed) or an int seed."
        )
    return overflow


def _bitlen(x: np.ndarray) -> np.ndarray:
    """Number of significant bits of each uint64 (0 for 0)."""
    _, n = np.frexp(x.astype(np.float64))
    n = n.astype(np.int64)
    # float64 rounds values above 2^53 and can carry into the next power of two.
    too_big = (n > 0) & ((x >> np.clip(n - 1, 0, 63).astype(_U64)) == 0)
    return n - too_big


def unpack(enc, fmt: Format, subnormals: str = "keep"):
    """Split encodings into ``(sign, sig, exp, nan, inf)``.

    The value of a finite encoding is ``(-1)**sign * sig * 2**exp`` with ``sig`` a uint64 holding the
    significand including its hidden bit and ``exp`` the int64 exponent of its last bit. ``nan`` and
    ``inf`` are boolean masks; for those entries ``sig`` and ``exp`` are meaningless.
    With ``subnormals="flush"`` subnormal inputs come back as zeros (``sig == 0``) of their sign.
    """
    enc = np.asarray(enc)
    if enc.dtype.kind not in "ui":
        raise TypeError(
            f"Encodings must be an integer array, got dtype {enc.dtype}; "
            f"use lutforge.golden.convert.encode to turn floats into {fmt.name} encodings."
        )
    e = enc.astype(_U64)
    if fmt.width < 64 and np.any(e >> _U64(fmt.width)):
        raise ValueError(
            f"Encodings for {fmt.name} must fit in {fmt.width} bits; got a value up to {int(e.max()):#x}. "
            f"Mask or convert them first."
        )
    m = fmt.man_bits
    mag = e & _U64(fmt.magnitude_mask)
    sign = (e & _U64(fmt.sign_mask)) != 0 if fmt.signed else np.zeros(e.shape, bool)
    field = (mag >> _U64(m)).astype(np.int64)
    man = mag & _U64(fmt.man_mask)
    if fmt.has_zero:
        normal = field > 0
        sig = np.where(normal, man | _U64(1 << m), man)
        exp = np.where(normal, field, 1) - (fmt.bias + m)
        if subnormals == "flush":
            sig = np.where(normal, sig, _U64(0))
    else:
        sig = np.ones(e.shape, _U64)
        exp = field - fmt.bias
    nan = fmt.is_nan(e)
    inf = fmt.is_inf(e)
    return sign, sig, exp.astype(np.int64), nan, inf


def round_pack(sign, sig, exp, fmt: Format, *, rounding="rne", overflow=None, subnormals="keep",
               sticky=None, rng=None, nan=None, inf=None) -> np.ndarray:
    """Round ``(-1)**sign * (sig + δ) * 2**exp`` once into ``fmt`` and return the encodings.

    ``sig`` is a uint64 array below 2^63; ``sticky`` (bool) marks values with non-zero bits
    ``0 < δ < 1`` below ``sig``'s last bit (callers keep at least ``man_bits + 3`` significant
    bits in ``sig`` when they set it, so the rounding point is always above the sticky bit).
    ``nan``/``inf`` masks produce the special results described in the module docstring.
    """
    overflow = check_policy(fmt, rounding, overflow, subnormals, rng=rng)
    sign = np.asarray(sign, bool)
    sig = np.asarray(sig).astype(_U64)
    exp = np.asarray(exp, np.int64)
    shape = np.broadcast_shapes(sign.shape, sig.shape, exp.shape)
    sign, sig, exp = (np.broadcast_to(a, shape) for a in (sign, sig, exp))
    sticky = np.zeros(shape, bool) if sticky is None else np.broadcast_to(np.asarray(sticky, bool), shape)
    nan = np.zeros(shape, bool) if nan is None else np.broadcast_to(nan, shape)
    inf = np.zeros(shape, bool) if inf is None else np.broadcast_to(inf, shape)

    m, bias = fmt.man_bits, fmt.bias
    n = _bitlen(sig)
    lead = exp + n - 1
    q = np.maximum(lead, fmt.emin) - m
    shift = q - exp
    # Left shifts are exact; counts stay below 64 because sig then has at most m + 1 bits.
    kept_left = sig << np.clip(-shift, 0, 63).astype(_U64)
    # A shift of 64 or more leaves less than half a unit: keep one non-zero bit at shift 63.
    far = shift > 63
    sig_r = np.where(far, (sig != 0).astype(_U64), sig)
    sticky_r = sticky | (far & (sig > 1))
    s = np.clip(shift, 1, 63).astype(_U64)
    kept = sig_r >> s
    rem = sig_r & ((_U64(1) << s) - _U64(1))
    if rounding == "rne":
        half = _U64(1) << (s - _U64(1))
        # Ties go to the even encoding; without a mantissa that is the parity of the exponent field.
        odd = kept & _U64(1) if m else ((kept.astype(np.int64) + q + bias - 1) & 1).astype(_U64)
        up = (rem > half) | ((rem == half) & (sticky_r | (odd == 1)))
        kept = kept + up.astype(_U64)
    elif rounding == "stochastic":
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        r = gen.integers(0, 2**64, size=shape, dtype=_U64, endpoint=False) >> (_U64(64) - s)
        kept = kept + ((rem + r) >> s)
    kept = np.where(shift <= 0, kept_left, kept).astype(np.int64)

    # Exponents far beyond the format overflow whatever the significand; clamp q so the shift below
    # cannot wrap, the comparison with max_finite still flags them.
    q_cap = fmt.exp_field_max - bias - m + 2
    huge = q > q_cap
    q = np.minimum(q, q_cap)
    # kept + biased exponent above the hidden bit: a carry out of the significand bumps the exponent
    # field, and subnormals (q at its minimum) get field 0.
    mag = kept + ((q + m + bias - 1) << m)
    mag = np.where(kept == 0, 0, mag) if fmt.has_zero else np.maximum(mag, 0)
    ovf = huge | (mag > fmt.max_finite)
    if subnormals == "flush":
        mag = np.where((mag < (1 << m)) & fmt.has_zero, 0, mag)
    if overflow == "saturate" or rounding == "truncate":
        ovf_mag = fmt.max_finite
    else:
        ovf_mag = fmt.inf if fmt.has_inf else fmt.nan
    mag = np.where(ovf, ovf_mag, mag)

    if fmt.specials == "ieee":
        mag = np.where(inf, fmt.inf, mag)
    elif np.any(inf):
        mag = np.where(inf, fmt.max_finite if overflow == "saturate" else fmt.nan, mag)
    is_zero = (sig == 0) & ~sticky & ~nan & ~inf
    bad_nan = nan.copy()
    if not fmt.signed:
        bad_nan |= sign & ~is_zero
    if not fmt.has_zero:
        bad_nan |= is_zero
    if np.any(bad_nan) and not fmt.has_nan:
        raise ValueError(
            f"Format {fmt.name!r} has no NaN encoding, and {int(np.count_nonzero(bad_nan))} input(s) "
            f"are NaN or otherwise unrepresentable (negative into an unsigned format); "
            f"remove them before converting."
        )
    out = mag.astype(_U64)
    if fmt.signed:
        out |= np.where(sign, _U64(fmt.sign_mask), _U64(0))
        # Canonical NaN is positive.
    if fmt.has_nan:
        out = np.where(bad_nan | (fmt.is_nan(out)), _U64(fmt.nan), out)
    return out.astype(fmt.dtype)


_F64 = Format("fp64", 11, 52, 1023, "ieee")


def encode(x, fmt, *, rounding="rne", overflow=None, subnormals="keep", rng=None) -> np.ndarray:
    """Round floats (any NumPy float dtype up to float64) into encodings of ``fmt``.

    Returns an array of ``fmt.dtype`` (uint8/16/32/64) with the shape of ``x``. The input's exact
    value is rounded once; see the module docstring for the policies.
    """
    fmt = get(fmt)
    x = np.asarray(x)
    if x.dtype.kind != "f" or x.dtype.itemsize not in (2, 4, 8):
        raise TypeError(
            f"encode takes a float16/float32/float64 array, got dtype {x.dtype}; "
            f"use convert() for integer encodings."
        )
    # Reinterpreting the bits (instead of casting to float64) keeps signalling NaNs quiet.
    src, view = {2: ("fp16", np.uint16), 4: ("fp32", np.uint32), 8: (_F64, _U64)}[x.dtype.itemsize]
    return convert(x.view(view), src, fmt, rounding=rounding, overflow=overflow, subnormals=subnormals, rng=rng)


def decode(enc, fmt) -> np.ndarray:
    """Exact float64 values of encodings of ``fmt`` (any format with ≤ 11 exponent and ≤ 52 mantissa bits).

    NaN encodings decode to NaN (sign kept), Inf to ±Inf, -0 to -0.0.
    """
    fmt = get(fmt)
    sign, sig, exp, nan, inf = unpack(enc, fmt)
    mag = np.ldexp(sig.astype(np.float64), exp)
    mag = np.where(inf, np.inf, np.where(nan, np.nan, mag))
    return np.where(sign, -mag, mag)


def convert(enc, src, dst, *, rounding="rne", overflow=None, subnormals="keep", rng=None) -> np.ndarray:
    """Convert encodings of ``src`` into encodings of ``dst`` with one rounding.

    ``subnormals="flush"`` flushes subnormal inputs of ``src`` and subnormal results in ``dst``.
    Example: ``convert(fp32_bits, "fp32", "bf16")`` is RNE on the upper 16 bits.
    """
    src, dst = get(src), get(dst)
    check_policy(dst, rounding, overflow, subnormals, rng=rng)
    sign, sig, exp, nan, inf = unpack(enc, src, subnormals)
    return round_pack(sign, np.where(nan | inf, _U64(0), sig), exp, dst, rounding=rounding,
                      overflow=overflow, subnormals=subnormals, rng=rng, nan=nan, inf=inf)
