"""Attention's two products in a hardware number format, in PyTorch: the scores ``q·kᵀ`` and the
output ``P·V`` with every operand rounded into a format and every product exact or L-Mul
(arXiv 2410.00907), to measure what the format and the multiplier cost a real model
(``bench/lmul_attention.py``).

The rules are those of the golden models; ``tests/compiler/test_attention_numerics.py`` checks the
two equal bit for bit (exhaustively for 8-bit formats):

* an fp32 operand rounded into a format (:func:`round_to`) is ``golden.convert.encode(x, fmt,
  overflow="saturate")``: to nearest, ties to even, subnormals kept, magnitudes above the largest
  finite value saturate;
* an L-Mul product (:func:`lmul`) is ``golden.lmul.lmul`` with its default policy: a zero or
  subnormal operand gives a signed zero, results below the smallest normal flush to a signed zero,
  results above the largest finite value saturate, NaN and Inf propagate.

The products are summed in fp32 by PyTorch, in its order: this measures the operand format and the
multiplier, not an accumulator. An exact product of two operands of at most 12 significand bits is
an fp32 value (unless it falls below fp32's normal range, which attention's values do not reach),
so an exact row is a plain matmul of the rounded operands. The 1/sqrt(head_dim)
scale is applied to q before it is rounded, as the attention unit expects (``hdl/lmul_attention.py``;
for a head dimension that is a power of four the scale is a power of two and exact).

A second implementation of the golden rules exists because the golden ones (NumPy, int64, one
array per call) cost minutes per 512-token window of SmolLM2's 270 attention heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..golden.convert import decode as golden_decode
from ..golden.formats import Format, get
from ..golden.lmul import default_offset
from .torch_reference import attention as reference_attention

__all__ = ["AttentionNumerics", "round_to", "decode", "lmul", "products", "split_lmul_products", "attention"]

MULS = ("exact", "lmul")


@dataclass(frozen=True)
class AttentionNumerics:
    """How attention's products are computed: operands rounded into ``format`` and multiplied
    ``mul`` ("exact" or "lmul"; L-Mul with ``offset``, None for the paper's constant)."""
    format: Format
    mul: str = "exact"
    offset: int | None = None

    def __post_init__(self):
        fmt = _check_format(self.format)
        object.__setattr__(self, "format", fmt)
        if self.mul not in MULS:
            raise ValueError(f"Attention multiplier {self.mul!r} is not known; use one of {', '.join(MULS)}.")
        if self.mul == "exact" and fmt != get("fp32") and 2 * (fmt.man_bits + 1) > 24:
            raise ValueError(f"Products of two {fmt.name} operands ({fmt.man_bits + 1}-bit significands) are not "
                             f"exact in fp32, so mul='exact' cannot be emulated; use a format with at most 11 "
                             f"mantissa bits, or fp32.")
        if self.offset is not None and self.mul != "lmul":
            raise ValueError(f"An L-Mul offset ({self.offset}) was given for {self.mul} products; give offsets "
                             f"only with mul='lmul'.")
        if self.mul == "lmul" and not 0 <= self.lmul_offset < (1 << (fmt.width - 1)):
            raise ValueError(f"L-Mul offset {self.offset} does not fit the {fmt.width - 1}-bit magnitude of "
                             f"{fmt.name}; use 0..{(1 << (fmt.width - 1)) - 1}.")

    @property
    def lmul_offset(self) -> int:
        return default_offset(self.format) if self.offset is None else int(self.offset)

    @property
    def is_fp32(self) -> bool:
        """Exact products of fp32 operands: the reference's own attention."""
        return self.mul == "exact" and self.format == get("fp32")

    def label(self) -> str:
        if self.mul == "exact":
            return f"{self.format.name} exact"
        return f"{self.format.name} L-Mul, offset {self.lmul_offset}"


def _check_format(fmt) -> Format:
    fmt = get(fmt)
    if not fmt.signed or fmt.man_bits < 1 or fmt.exp_bits > 8 or fmt.man_bits > 23:
        raise ValueError(f"Attention operands in {fmt.name} cannot be emulated: the format must be signed with "
                         f"1 to 23 mantissa bits and at most 8 exponent bits (a subset of fp32); use e.g. "
                         f"bf16, e4m3 or Format('e8m4', 8, 4, 127, 'ieee').")
    return fmt


def _int(fmt: Format) -> torch.dtype:
    # Two magnitudes and their sum fit 31 bits up to 30-bit formats.
    return torch.int32 if fmt.width <= 30 else torch.int64


def _max_finite_value(fmt: Format) -> float:
    return float(golden_decode(fmt.max_finite, fmt))


def round_to(x: torch.Tensor, fmt: "str | Format") -> torch.Tensor:
    """Encodings of ``fmt`` (an integer tensor) nearest to the finite fp32 values ``x``."""
    fmt = _check_format(fmt)
    if not torch.isfinite(x).all():
        raise ValueError(f"Attention operands must be finite to be rounded into {fmt.name}; the tensor holds "
                         f"NaN or Inf (check the layer before the attention).")
    m, emin = fmt.man_bits, 1 - fmt.bias
    # float64 holds every fp32 value and every power of two the scaling needs (down to 2^-149-23).
    a = x.double().abs()
    _, e = torch.frexp(a)  # a = f 2^e, f in [0.5, 1); e = 0 for a = 0
    quantum = torch.clamp(e - 1, min=emin) - m  # exponent of one unit in the last place
    r = torch.ldexp(torch.round(torch.ldexp(a, -quantum)), quantum)  # round half to even
    r = torch.clamp(r, max=_max_finite_value(fmt))
    _, er = torch.frexp(r)
    normal = (er - 1 >= emin) & (r > 0)
    field = torch.where(normal, er - 1 + fmt.bias, 0)
    man = torch.where(normal, torch.ldexp(r, m - (er - 1)) - (1 << m), torch.ldexp(r, torch.full_like(er, m - emin)))
    dtype = _int(fmt)
    mag = (field.to(dtype) << m) | man.to(dtype)
    return torch.where(torch.signbit(x), mag | fmt.sign_mask, mag)


def decode(enc: torch.Tensor, fmt: "str | Format") -> torch.Tensor:
    """The fp32 values of encodings of ``fmt`` (exact: the format is a subset of fp32)."""
    fmt = _check_format(fmt)
    m, emin = fmt.man_bits, 1 - fmt.bias
    mag = enc & fmt.magnitude_mask
    field, man = mag >> m, (mag & ((1 << m) - 1)).double()
    value = torch.where(field == 0, torch.ldexp(man, torch.full_like(field, emin - m)),
                        torch.ldexp(man + (1 << m), field - fmt.bias - m))
    if fmt.has_inf:
        value = torch.where(mag == fmt.inf, torch.inf, value)
    if fmt.has_nan:
        nan = (mag > fmt.inf) if fmt.specials == "ieee" else (mag == fmt.magnitude_mask)
        value = torch.where(nan, torch.nan, value)
    return torch.where((enc & fmt.sign_mask) != 0, -value, value).float()


def lmul(a: torch.Tensor, b: torch.Tensor, fmt: "str | Format", offset: int | None = None) -> torch.Tensor:
    """L-Mul of encodings ``a`` and ``b`` (broadcast), golden.lmul.lmul's default policy."""
    fmt = _check_format(fmt)
    off = default_offset(fmt) if offset is None else int(offset)
    m = fmt.man_bits
    sign = (a ^ b) & fmt.sign_mask
    ma, mb = a & fmt.magnitude_mask, b & fmt.magnitude_mask
    r = ma + mb - off
    out = torch.where(r > fmt.max_finite, fmt.max_finite, r)
    out = torch.where(r < (1 << m), 0, out)  # below the smallest normal: flushed
    out = torch.where(((ma >> m) == 0) | ((mb >> m) == 0), 0, out)  # zero or subnormal operand
    out = out | sign
    if fmt.specials == "ieee":
        inf = (ma == fmt.inf) | (mb == fmt.inf)
        nan = (ma > fmt.inf) | (mb > fmt.inf) | (inf & (((ma >> m) == 0) | ((mb >> m) == 0)))
        out = torch.where(nan, fmt.nan, torch.where(inf, fmt.inf | sign, out))
    elif fmt.specials == "fn":
        out = torch.where((ma == fmt.magnitude_mask) | (mb == fmt.magnitude_mask), fmt.nan, out)
    return out


def products(a: torch.Tensor, b: torch.Tensor, numerics: AttentionNumerics, rows: int = 32) -> torch.Tensor:
    """``a @ b.T`` over the last dimension for encodings ``a`` (..., t, d) and ``b`` (..., s, d):
    the products of ``numerics`` summed in fp32. L-Mul products are formed one by one, ``rows``
    rows of ``a`` at a time (a (rows, s, d) tensor each); :func:`split_lmul_products` is the fast
    form the benchmark uses."""
    fmt = numerics.format
    if numerics.mul == "exact":
        return decode(a, fmt) @ decode(b, fmt).transpose(-1, -2)
    out = []
    for r0 in range(0, a.shape[-2], rows):
        p = lmul(a[..., r0:r0 + rows, None, :], b[..., None, :, :], fmt, numerics.lmul_offset)
        out.append(decode(p, fmt).sum(-1))
    return torch.cat(out, dim=-2)


def _power_and_mantissa(enc: torch.Tensor, fmt: Format) -> tuple[torch.Tensor, torch.Tensor]:
    """±2^exponent (0 for zero and subnormal encodings, which L-Mul flushes) and the mantissa field."""
    m = fmt.man_bits
    field = (enc & fmt.magnitude_mask) >> m
    power = torch.where(field == 0, 0.0, torch.ldexp(torch.ones_like(field, dtype=torch.float32), field - fmt.bias))
    return torch.where((enc & fmt.sign_mask) != 0, -power, power), (enc & ((1 << m) - 1)).float()


def split_lmul_products(a: torch.Tensor, b: torch.Tensor, numerics: AttentionNumerics) -> torch.Tensor:
    """The sums of :func:`products` for L-Mul in formats with 8 exponent bits, as matrix products.

    For normal operands ``±2^Ea (1 + i/2^m)`` and ``±2^Eb (1 + j/2^m)``, L-Mul's integer sum
    ``|a| + |b| - offset`` is ``±2^(Ea+Eb) h(i + j)`` with ``D = bias·2^m - offset`` and
    ``h(n) = 1 + x + max(0, x - 1) + 2 max(0, x - 2) + max(0, -x)/2`` with ``x = (n + D)/2^m``
    (the mantissa field's sum carries once into the exponent above 1, twice above 2, and borrows
    from it below 0). Each product is so split
    into four exact fp32 terms: ``(1 + D/2^m) A B``, ``(A i/2^m) B``, ``A (B j/2^m)`` (A = ±2^Ea,
    B = ±2^Eb) and the carries, summed over the mantissa value v of a as ``(A [i = v]) (B c_v(j))``:
    3 + 2^m matrix products instead of t·s·d elementwise L-Mul. The result is the elementwise sum up to fp32
    rounding (a different grouping of the same exact terms), with one difference: a product below
    2^-126 (the smallest normal) is kept, not flushed, so each sum can differ by up to d·2^-126
    more. Operands whose products could saturate are refused."""
    fmt = numerics.format
    m, d = fmt.man_bits, (fmt.bias << fmt.man_bits) - numerics.lmul_offset
    if fmt.exp_bits != 8 or not -(1 << m) < d < (1 << m):
        raise ValueError(f"The split form of L-Mul needs 8 exponent bits and an offset within 2^m - 1 of "
                         f"bias·2^m; {numerics.label()} is not one: use products().")
    pa, i = _power_and_mantissa(a, fmt)
    pb, j = _power_and_mantissa(b, fmt)
    if pa.abs().amax() * pb.abs().amax() >= 2.0 ** 125:  # h < 4: products stay below 2^127
        raise ValueError(f"L-Mul products in {fmt.name} could reach 2^127 and saturate, which the split form "
                         f"does not model; use products().")
    scale = 2.0 ** -m
    bt = pb.transpose(-1, -2)
    out = (1 + d * scale) * (pa @ bt) + (pa * i * scale) @ bt + pa @ (pb * j * scale).transpose(-1, -2)
    for v in range(1 << m):
        n = v + j + d
        carry = torch.clamp(n - (1 << m), min=0) + 2 * torch.clamp(n - (2 << m), min=0) + torch.clamp(-n, min=0) / 2
        if not carry.any():
            continue
        out = out + (pa * (i == v)) @ (pb * carry * scale).transpose(-1, -2)
    return out


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
              numerics: AttentionNumerics, split: bool = False) -> torch.Tensor:
    """``softmax(q kᵀ / sqrt(d) + mask) v`` for q (..., t, d), k and v (..., s, d) and an additive
    mask (t, s), both products in ``numerics`` and the softmax in fp32 (L-Mul sums in the split
    form of :func:`split_lmul_products` when ``split``)."""
    if numerics.is_fp32:
        return reference_attention(q, k, v, mask)
    fmt = numerics.format
    dot = split_lmul_products if split and numerics.mul == "lmul" else products
    scores = dot(round_to(q * q.shape[-1] ** -0.5, fmt), round_to(k, fmt), numerics) + mask
    weights = torch.softmax(scores, dim=-1)
    return dot(round_to(weights, fmt), round_to(v.transpose(-1, -2), fmt), numerics)
