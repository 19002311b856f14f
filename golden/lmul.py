"""L-Mul: floating-point multiplication as one integer addition (arXiv 2410.00907).

The paper's code adds the magnitude bit patterns of the two operands and subtracts a constant:
``|r| = |a| + |b| - OFFSET`` with ``OFFSET = (bias << m) - 2**(m - l(m))``. When the mantissa sum
carries, the carry moves into the exponent field, which is what the hardware adder does; we model
that adder, not the carry-free equation (see docs/design/numerics.md).

The paper leaves zero, subnormal, NaN/Inf, overflow and underflow undefined; here each is an
explicit policy, and ``"wrap"`` everywhere reproduces the bare adder.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .formats import Format, get

__all__ = ["LMulPolicy", "l_of_m", "default_offset", "lmul"]


def l_of_m(man_bits: int) -> int:
    """The paper's l(m): m for m <= 3, 3 for m = 4, 4 for m > 4."""
    if man_bits <= 3:
        return man_bits
    if man_bits == 4:
        return 3
    return 4


def default_offset(fmt: "str | Format") -> int:
    """The paper's OFFSET for a format: (bias << m) - 2^(m - l(m))."""
    fmt = get(fmt)
    m = fmt.man_bits
    return (fmt.bias << m) - (1 << (m - l_of_m(m)))


@dataclass(frozen=True)
class LMulPolicy:
    """How L-Mul treats the cases the paper leaves open.

    zero:      "exact" — a zero operand gives a signed zero; "wrap" — fed to the adder.
    subnormal: "flush" — subnormal operands count as zero; "wrap" — fed to the adder.
    nan_inf:   "propagate" — NaN in gives NaN, Inf·0 gives NaN, Inf·x gives Inf (NaN in formats
               without Inf); "wrap" — fed to the adder.
    overflow:  "saturate" — ±max finite; "inf" — ±Inf, or in formats without Inf the NaN pattern
               with the product's sign (S.1111.111 in e4m3); "wrap".
    underflow: "flush" — results below the smallest normal become signed zero; "wrap".
    """

    zero: Literal["exact", "wrap"] = "exact"
    subnormal: Literal["flush", "wrap"] = "flush"
    nan_inf: Literal["propagate", "wrap"] = "propagate"
    overflow: Literal["saturate", "inf", "wrap"] = "saturate"
    underflow: Literal["flush", "wrap"] = "flush"

    _ALLOWED = {
        "zero": ("exact", "wrap"),
        "subnormal": ("flush", "wrap"),
        "nan_inf": ("propagate", "wrap"),
        "overflow": ("saturate", "inf", "wrap"),
        "underflow": ("flush", "wrap"),
    }

    def __post_init__(self):
        for key, allowed in self._ALLOWED.items():
            value = getattr(self, key)
            if value not in allowed:
                raise ValueError(
                    f"L-Mul policy {key}={value!r} is not supported; use one of "
                    f"{', '.join(map(repr, allowed))}."
                )

    @classmethod
    def wrap(cls) -> "LMulPolicy":
        """The bare adder of the paper's code: every case fed to the adder, results wrapped."""
        return cls("wrap", "wrap", "wrap", "wrap", "wrap")

    @classmethod
    def of(cls, policy: "LMulPolicy | str | None" = None, **overrides) -> "LMulPolicy":
        if policy is None:
            base = cls()
        elif policy == "wrap":
            base = cls.wrap()
        elif isinstance(policy, cls):
            base = policy
        else:
            raise ValueError(f"L-Mul policy {policy!r} is not known; pass an LMulPolicy, 'wrap' or None.")
        if not overrides:
            return base
        fields = {k: getattr(base, k) for k in cls._ALLOWED}
        unknown = set(overrides) - set(fields)
        if unknown:
            raise ValueError(
                f"L-Mul has no policy named {', '.join(sorted(unknown))}; "
                f"the policies are {', '.join(fields)}."
            )
        fields.update(overrides)
        return cls(**fields)


def _check_encodings(name: str, x: np.ndarray, fmt: Format) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "ui":
        raise TypeError(
            f"L-Mul operand {name} has dtype {x.dtype}; pass integer encodings of {fmt.name} "
            f"(encode floats first)."
        )
    x = x.astype(np.int64)
    bad = (x < 0) | (x >= (1 << fmt.width))
    if bad.any():
        value = int(x[bad].flat[0])
        raise ValueError(
            f"L-Mul operand {name} holds {value}, which is not a {fmt.width}-bit {fmt.name} "
            f"encoding (0..{(1 << fmt.width) - 1})."
        )
    return x


def lmul(a, b, fmt: "str | Format", policy: "LMulPolicy | str | None" = None, *, offset: "int | None" = None,
         **overrides) -> np.ndarray:
    """L-Mul of two arrays of encodings in ``fmt``; returns encodings (uint64) of the same format.

    ``offset`` overrides the paper's constant (e.g. one LSB lower for round-to-nearest operands).
    Policy fields may be given as keyword arguments (``overflow="inf"``) or as an
    :class:`LMulPolicy`; ``policy="wrap"`` is the paper's bare adder.
    """
    fmt = get(fmt)
    if not fmt.signed:
        raise ValueError(f"L-Mul needs a signed format; {fmt.name!r} has no sign bit.")
    pol = LMulPolicy.of(policy, **overrides)
    off = default_offset(fmt) if offset is None else int(offset)
    if not 0 <= off < (1 << (fmt.width - 1)):
        raise ValueError(
            f"L-Mul offset {off} does not fit the {fmt.width - 1}-bit magnitude of {fmt.name}; "
            f"use 0..{(1 << (fmt.width - 1)) - 1}."
        )
    a = _check_encodings("a", a, fmt)
    b = _check_encodings("b", b, fmt)
    a, b = np.broadcast_arrays(a, b)
    mag_mask = fmt.magnitude_mask
    sign = (a ^ b) & fmt.sign_mask
    ma, mb = a & mag_mask, b & mag_mask
    r = ma + mb - off
    width_mask = (1 << fmt.width) - 1

    if pol.overflow == "wrap":
        over = np.zeros(r.shape, bool)
    else:
        over = r > fmt.max_finite
    under = (r < (1 << fmt.man_bits)) if pol.underflow == "flush" else np.zeros(r.shape, bool)
    out = np.where(over | under, 0, r & width_mask) ^ sign
    if pol.overflow == "saturate":
        out = np.where(over, fmt.max_finite | sign, out)
    elif pol.overflow == "inf":
        out = np.where(over, (fmt.inf if fmt.has_inf else fmt.nan) | sign, out)
    out = np.where(under, sign, out)

    # Special operands override the adder result; later rules win, so NaN comes last.
    zero_a = np.zeros(ma.shape, bool)
    zero_b = np.zeros(mb.shape, bool)
    if pol.zero == "exact":
        zero_a, zero_b = ma == 0, mb == 0
    if pol.subnormal == "flush":
        zero_a = zero_a | fmt.is_subnormal(ma)
        zero_b = zero_b | fmt.is_subnormal(mb)
    out = np.where(zero_a | zero_b, sign, out)
    if pol.nan_inf == "propagate" and fmt.has_nan:
        inf_a, inf_b = fmt.is_inf(ma), fmt.is_inf(mb)
        nan_a, nan_b = fmt.is_nan(ma), fmt.is_nan(mb)
        out = np.where(inf_a | inf_b, fmt.inf | sign if fmt.has_inf else fmt.nan | sign, out)
        out = np.where(nan_a | nan_b | ((inf_a | inf_b) & (zero_a | zero_b)), fmt.nan, out)
    return out.astype(np.uint64)
