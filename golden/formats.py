"""Floating-point element formats as parameters.

A format is exponent bits, mantissa bits, bias and a special-value convention. Every golden model
and every RTL block in lutforge takes one of these, so the two can never disagree on what a bit
pattern means.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["Format", "PRESETS", "get", "shortened_fp32"]

Specials = Literal["ieee", "fn", "none"]


@dataclass(frozen=True)
class Format:
    """A binary floating-point format.

    ``specials`` names the special-value convention:

    * ``"ieee"``: the all-ones exponent encodes Inf (zero mantissa) and NaN (non-zero mantissa);
    * ``"fn"``: finite-and-NaN (OCP e4m3, e8m0): only the all-ones magnitude is NaN, no Inf;
    * ``"none"``: every encoding is a finite number (OCP fp6/fp4).

    ``signed=False`` drops the sign bit (e8m0 scales).
    """

    name: str
    exp_bits: int
    man_bits: int
    bias: int
    specials: Specials = "ieee"
    signed: bool = True

    def __post_init__(self):
        if not 1 <= self.exp_bits <= 11:
            raise ValueError(
                f"Format {self.name!r} has {self.exp_bits} exponent bits; "
                f"use between 1 and 11."
            )
        if not 0 <= self.man_bits <= 52:
            raise ValueError(
                f"Format {self.name!r} has {self.man_bits} mantissa bits; use between 0 and 52."
            )
        if self.specials not in ("ieee", "fn", "none"):
            raise ValueError(
                f"Format {self.name!r} has specials={self.specials!r}; "
                f"use 'ieee', 'fn' or 'none'."
            )
        if self.specials == "ieee" and self.exp_bits < 2:
            raise ValueError(
                f"Format {self.name!r} uses IEEE specials with {self.exp_bits} exponent bit; "
                f"IEEE Inf/NaN need at least 2 exponent bits."
            )

    @property
    def width(self) -> int:
        return int(self.signed) + self.exp_bits + self.man_bits

    @property
    def sign_mask(self) -> int:
        return (1 << (self.width - 1)) if self.signed else 0

    @property
    def magnitude_mask(self) -> int:
        return (1 << (self.exp_bits + self.man_bits)) - 1

    @property
    def exp_field_max(self) -> int:
        return (1 << self.exp_bits) - 1

    @property
    def man_mask(self) -> int:
        return (1 << self.man_bits) - 1

    @property
    def max_finite(self) -> int:
        """Magnitude encoding of the largest finite value."""
        if self.specials == "ieee":
            return ((self.exp_field_max - 1) << self.man_bits) | self.man_mask
        if self.specials == "fn":
            return self.magnitude_mask - 1
        return self.magnitude_mask

    @property
    def has_zero(self) -> bool:
        """False for mantissa-less formats (E8M0): there every exponent field, 0 included, is 2^(e-bias)."""
        return self.man_bits > 0

    @property
    def emin(self) -> int:
        """Unbiased exponent of the smallest normal number (exponent field 1, or 0 without a mantissa)."""
        return (1 - self.bias) if self.has_zero else -self.bias

    @property
    def emax(self) -> int:
        """Unbiased exponent of the largest finite number."""
        return (self.max_finite >> self.man_bits) - self.bias

    @property
    def dtype(self) -> np.dtype:
        """Smallest unsigned NumPy dtype that holds one encoding."""
        for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
            if self.width <= np.dtype(dt).itemsize * 8:
                return np.dtype(dt)
        raise AssertionError("widths are at most 64 bits by construction")

    @property
    def has_inf(self) -> bool:
        return self.specials == "ieee"

    @property
    def has_nan(self) -> bool:
        return self.specials != "none"

    @property
    def inf(self) -> int:
        """Magnitude encoding of +Inf (IEEE formats only)."""
        if not self.has_inf:
            raise ValueError(f"Format {self.name!r} has no Inf encoding; it uses {self.specials!r} specials.")
        return self.exp_field_max << self.man_bits

    @property
    def nan(self) -> int:
        """Magnitude encoding of the canonical quiet NaN."""
        if self.specials == "ieee":
            return (self.exp_field_max << self.man_bits) | (1 << max(self.man_bits - 1, 0))
        if self.specials == "fn":
            return self.magnitude_mask
        raise ValueError(f"Format {self.name!r} has no NaN encoding; it uses 'none' specials.")

    def is_nan(self, enc) -> np.ndarray:
        mag = np.asarray(enc, dtype=np.uint64) & np.uint64(self.magnitude_mask)
        if self.specials == "ieee":
            return (mag > np.uint64(self.inf))
        if self.specials == "fn":
            return mag == np.uint64(self.magnitude_mask)
        return np.zeros(mag.shape, dtype=bool)

    def is_inf(self, enc) -> np.ndarray:
        mag = np.asarray(enc, dtype=np.uint64) & np.uint64(self.magnitude_mask)
        if self.specials == "ieee":
            return mag == np.uint64(self.inf)
        return np.zeros(mag.shape, dtype=bool)

    def is_subnormal(self, enc) -> np.ndarray:
        mag = np.asarray(enc, dtype=np.uint64) & np.uint64(self.magnitude_mask)
        return (mag >> np.uint64(self.man_bits) == 0) & (mag != 0)


PRESETS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("fp32", 8, 23, 127, "ieee"),
        Format("fp16", 5, 10, 15, "ieee"),
        Format("bf16", 8, 7, 127, "ieee"),
        Format("e4m3", 4, 3, 7, "fn"),
        Format("e5m2", 5, 2, 15, "ieee"),
        Format("e3m2", 3, 2, 3, "none"),
        Format("e2m3", 2, 3, 1, "none"),
        Format("e2m1", 2, 1, 1, "none"),
        Format("e8m0", 8, 0, 127, "fn", signed=False),
    )
}


def get(fmt: "str | Format") -> Format:
    """Look a format up by preset name, or pass a :class:`Format` through."""
    if isinstance(fmt, Format):
        return fmt
    try:
        return PRESETS[fmt]
    except KeyError:
        raise ValueError(
            f"Unknown format {fmt!r}; use one of {', '.join(PRESETS)} or build a Format(...)."
        ) from None


def shortened_fp32(man_bits: int) -> Format:
    """fp32's exponent (8 bits, bias 127, IEEE specials) with ``man_bits`` mantissa bits, as the
    L-Mul paper emulates shorter mantissas; the preset where one has that shape (7: bf16, 23: fp32)."""
    shape = (8, man_bits, 127, "ieee", True)
    for fmt in PRESETS.values():
        if (fmt.exp_bits, fmt.man_bits, fmt.bias, fmt.specials, fmt.signed) == shape:
            return fmt
    return Format(f"e8m{man_bits}", 8, man_bits, 127, "ieee")
