"""Block-scaled formats: OCP MX (MXFP8/6/4, MXINT8/4) and NVIDIA-style NVFP4/NVINT4.

A block format splits the last axis into blocks of ``block`` elements that share one scale.

**MX** (OCP Microscaling v1.0, blocks of 32, E8M0 scale): ``X = 2^(floor(log2(amax)) - emax_elem)``
with ``floor(log2(amax))`` read from the exponent (exact, never through a float cast), clamped to
E8M0's ``[2^-127, 2^127]``. Elements are ``x / X`` rounded to nearest even and **saturated** to the
element's largest finite value (the floor makes ``x / X`` reach ``(2 - ε)·2^emax``). A block whose
amax is NaN or Inf gets the NaN scale 0xFF and zero elements (it decodes to NaN). FP elements are
e4m3 (emax 8), e5m2 (15), e3m2 (4), e2m3 (2), e2m1 (2). INT elements are k-bit two's complement
read as ``q·2^-(k-2)`` (MXINT8: ``q·2^-6``, emax 0) with ``q`` in ``[-(2^(k-1)-1), 2^(k-1)-1]``
(symmetric: -2^(k-1) is never produced).

**NV** (blocks of 16, E4M3 block scale, one fp32 tensor scale), following torchao's
``nvfp4_quantize`` operation by operation in IEEE float32 (RNE), so the result is bit-identical:

* ``tensor_scale = float32(amax(|x|)) / float32(448 · elem_max)`` (``"auto"``; an all-zero tensor
  uses 1.0), or a given float32, or ``None`` for single-level scaling (tensor scale 1, no division);
* ``s = (amax_block / elem_max) / tensor_scale``, clamped to ``[2^-6, 448]`` and rounded RNE to e4m3;
* ``r = (1 / tensor_scale) / s`` (two float32 roundings; single-level: ``r = 1 / s``);
* elements ``x · r`` (float32), clamped to ``±elem_max`` and rounded RNE to e2m1 (NVFP4, max 6) or
  to an integer in ``[-7, 7]`` (NVINT4).

``quantize`` returns :class:`Blocks` ``(elements, scales, tensor_scale)``: element encodings
(uint8; e2m1/int4 codes one per byte, low bits), scale encodings (uint8, E8M0 or E4M3), and the
float32 tensor scale (NV) or ``None`` (MX). ``dequantize`` gives the exact float64 values
``element · scale · tensor_scale``.

``hadamard_size=n`` rotates each run of ``n`` (a power of two dividing the last axis) consecutive values
by the orthonormal Sylvester Hadamard matrix ``H_n / sqrt(n)`` before quantizing (computed in
float64, rounded once to float32); ``dequantize(..., hadamard_size=n)`` rotates back (H is symmetric and
orthonormal, so it is its own inverse). Dot products need no un-rotation: ``(Hx)·(Hy) = x·y``.

:func:`dot` defines the block dot-product accumulator: see its docstring.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import fp
from .convert import decode, encode
from .formats import Format, get

__all__ = ["BlockFormat", "Blocks", "BLOCK_FORMATS", "get_block_format", "quantize", "dequantize",
           "dot", "hadamard"]


@dataclass(frozen=True)
class BlockFormat:
    """``element`` is an FP format name (``"e4m3"``...) or ``"int8"``/``"int4"``; ``scale`` is
    ``"e8m0"`` (MX power-of-two scales) or ``"e4m3"`` (NV scales with an fp32 tensor scale)."""

    name: str
    element: str
    block: int
    scale: str

    @property
    def int_bits(self) -> "int | None":
        return int(self.element[3:]) if self.element.startswith("int") else None

    @property
    def elem_fmt(self) -> "Format | None":
        return None if self.int_bits else get(self.element)

    @property
    def elem_emax(self) -> int:
        """Exponent of the element's largest power of two (0 for MX INT elements)."""
        return 0 if self.int_bits else self.elem_fmt.emax

    @property
    def int_max(self) -> int:
        return (1 << (self.int_bits - 1)) - 1

    @property
    def int_frac_bits(self) -> int:
        """MX INT elements are q·2^-(k-2); NV INT elements are plain integers."""
        return self.int_bits - 2 if self.scale == "e8m0" else 0

    @property
    def elem_max(self) -> float:
        if self.int_bits:
            return self.int_max / 2.0 ** self.int_frac_bits
        return float(decode(np.uint64(self.elem_fmt.max_finite), self.elem_fmt))


BLOCK_FORMATS = {
    f.name: f
    for f in (
        BlockFormat("mxfp8_e4m3", "e4m3", 32, "e8m0"),
        BlockFormat("mxfp8_e5m2", "e5m2", 32, "e8m0"),
        BlockFormat("mxfp6_e3m2", "e3m2", 32, "e8m0"),
        BlockFormat("mxfp6_e2m3", "e2m3", 32, "e8m0"),
        BlockFormat("mxfp4", "e2m1", 32, "e8m0"),
        BlockFormat("mxint8", "int8", 32, "e8m0"),
        BlockFormat("mxint4", "int4", 32, "e8m0"),
        BlockFormat("nvfp4", "e2m1", 16, "e4m3"),
        BlockFormat("nvint4", "int4", 16, "e4m3"),
    )
}


def get_block_format(fmt: "str | BlockFormat") -> BlockFormat:
    if isinstance(fmt, BlockFormat):
        return fmt
    try:
        return BLOCK_FORMATS[fmt]
    except KeyError:
        raise ValueError(
            f"Unknown block format {fmt!r}; use one of {', '.join(BLOCK_FORMATS)} or build a BlockFormat(...)."
        ) from None


class Blocks(NamedTuple):
    elements: np.ndarray
    scales: np.ndarray
    tensor_scale: "np.float32 | None"


def hadamard(x, n: int) -> np.ndarray:
    """Rotate each run of ``n`` values along the last axis by ``H_n / sqrt(n)`` (float64 result)."""
    x = np.asarray(x, np.float64)
    if n < 1 or n & (n - 1):
        raise ValueError(f"Hadamard size {n} is not a power of two; use 2, 4, ..., 32, ...")
    if x.shape[-1] % n:
        raise ValueError(
            f"The last axis has {x.shape[-1]} values, not a multiple of the Hadamard size {n}; "
            f"pad the tensor or pick a size that divides it."
        )
    y = x.reshape(-1, n)
    h = 1
    while h < n:
        y = y.reshape(-1, n // (2 * h), 2, h)
        y = np.stack([y[:, :, 0] + y[:, :, 1], y[:, :, 0] - y[:, :, 1]], axis=2).reshape(-1, n)
        h *= 2
    return y.reshape(x.shape) / np.sqrt(n)


def _blocked(x, bf: BlockFormat, what="tensor"):
    if x.shape[-1] % bf.block:
        raise ValueError(
            f"The last axis of the {what} has {x.shape[-1]} values, not a multiple of {bf.name}'s block "
            f"size {bf.block}; pad it with zeros to a multiple of {bf.block}."
        )
    return x.reshape(*x.shape[:-1], x.shape[-1] // bf.block, bf.block)


def _int_codes(v, bf):
    q = np.clip(np.rint(v), -bf.int_max, bf.int_max).astype(np.int64)
    return (q & ((1 << bf.int_bits) - 1)).astype(np.uint8)


def _int_values(codes, bf):
    q = codes.astype(np.int64)
    return np.where(q >= 1 << (bf.int_bits - 1), q - (1 << bf.int_bits), q)


def quantize(x, fmt, *, tensor_scale="auto", hadamard_size=None) -> Blocks:
    """Quantize a float16/float32 array along its last axis; see the module docstring.

    ``tensor_scale`` applies to NV formats only: ``"auto"``, ``None`` or a float32 value.
    """
    bf = get_block_format(fmt)
    x = np.asarray(x)
    if x.dtype not in (np.float16, np.float32):
        raise TypeError(
            f"quantize takes float16 or float32 values, got dtype {x.dtype}; cast explicitly "
            f"(x.astype(np.float32)) so the rounding is visible."
        )
    x = x.astype(np.float32)
    if hadamard_size:
        x = hadamard(x, hadamard_size).astype(np.float32)
    xb = _blocked(x, bf)
    if bf.scale == "e8m0":
        return _quantize_mx(xb, bf, x.shape)
    return _quantize_nv(xb, bf, x.shape, tensor_scale)


def _quantize_mx(xb, bf, shape):
    v = xb.astype(np.float64)
    amax = np.max(np.abs(v), axis=-1)
    bad = ~np.isfinite(amax)
    with np.errstate(invalid="ignore"):
        _, e = np.frexp(np.where(bad | (amax == 0), 1.0, amax))
    flog = np.where(amax == 0, -(1 << 20), e.astype(np.int64) - 1)
    sexp = np.clip(flog - bf.elem_emax, -127, 127)
    scales = np.where(bad, 0xFF, sexp + 127).astype(np.uint8)
    v = np.where(bad[..., None], 0.0, np.ldexp(v, -sexp[..., None]))
    if bf.int_bits:
        elems = _int_codes(np.ldexp(v, bf.int_frac_bits), bf)
    else:
        elems = encode(v, bf.elem_fmt, overflow="saturate").astype(np.uint8)
    return Blocks(elems.reshape(shape), scales, None)


def _quantize_nv(xb, bf, shape, tensor_scale):
    if not np.all(np.isfinite(xb)):
        raise ValueError(f"{bf.name} cannot encode NaN or Inf inputs; remove or clip them before quantizing.")
    f32 = np.float32
    emax = f32(bf.elem_max)
    amax = np.max(np.abs(xb), axis=-1)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        bs = amax / emax
        if tensor_scale is None:
            s8 = encode(np.clip(bs, f32(2.0**-6), f32(448)), "e4m3")
            r = f32(1) / decode(s8, "e4m3").astype(f32)
            ts = None
        else:
            if isinstance(tensor_scale, str):
                if tensor_scale != "auto":
                    raise ValueError(f"tensor_scale={tensor_scale!r} is not understood; use 'auto', None or a float32.")
                t_amax = np.max(np.abs(xb)) if xb.size else f32(0)
                ts = f32(t_amax) / f32(448 * bf.elem_max) if t_amax > 0 else f32(1)
            else:
                ts = f32(tensor_scale)
                if not (np.isfinite(ts) and ts > 0):
                    raise ValueError(f"tensor_scale={tensor_scale!r} must be a positive finite float32.")
            s8 = encode(np.clip(bs / ts, f32(2.0**-6), f32(448)), "e4m3")
            r = (f32(1) / ts) / decode(s8, "e4m3").astype(f32)
        d = np.clip(xb * r[..., None], -emax, emax)
    if bf.int_bits:
        elems = _int_codes(d.astype(np.float64), bf)
    else:
        elems = encode(d, bf.elem_fmt, overflow="saturate").astype(np.uint8)
    return Blocks(elems.reshape(shape), s8.astype(np.uint8), ts)


def _element_values(elements, bf):
    if bf.int_bits:
        return np.ldexp(_int_values(elements, bf).astype(np.float64), -bf.int_frac_bits)
    return decode(elements, bf.elem_fmt)


def _scale_values(scales, bf):
    return decode(scales, bf.scale)


def dequantize(blocks: Blocks, fmt, *, hadamard_size=None) -> np.ndarray:
    """Exact float64 values ``element · scale · tensor_scale`` (rotated back with ``hadamard_size``)."""
    bf = get_block_format(fmt)
    el, sc, ts = blocks
    v = _blocked(_element_values(el, bf), bf, "elements") * _scale_values(sc, bf)[..., None]
    if ts is not None:
        v = v * np.float64(ts)
    v = v.reshape(el.shape)
    return hadamard(v, hadamard_size) if hadamard_size else v


_FP32 = get("fp32")


def _tree_sum(x):
    """fp32 sum over the last axis by a balanced tree ((x0+x1)+(x2+x3))+...; odd levels pad with +0."""
    while x.shape[-1] > 1:
        if x.shape[-1] % 2:
            x = np.concatenate([x, np.zeros(x.shape[:-1] + (1,), x.dtype)], axis=-1)
        x = fp.add(x[..., 0::2], x[..., 1::2], _FP32)
    return x[..., 0]


def _to_fp32(values):
    return encode(values, _FP32)


def dot(a: Blocks, b: Blocks, fmt) -> np.ndarray:
    """Block dot product of two quantized vectors (batched over leading axes), returned as float32.

    Accumulator (every step an IEEE fp32 operation of :mod:`lutforge.golden.fp`, RNE):

    1. element values become fp32 (exact for every element format) and are multiplied pairwise
       (exact: at most 2·4 significand bits, exponents within fp32's normal range);
    2. the ``block`` products of each block are summed by a balanced binary tree of fp32 adds
       (adjacent pairs first: ``((p0+p1)+(p2+p3))+...``);
    3. each block sum is multiplied by the fp32 value of ``a``'s block scale, then of ``b``'s;
    4. the block results are summed by the same balanced tree (a level of odd length pads +0);
    5. NV formats: the total is multiplied by ``a``'s then ``b``'s fp32 tensor scale.
    """
    bf = get_block_format(fmt)
    if a.elements.shape != b.elements.shape:
        raise ValueError(
            f"Cannot take a dot product of element arrays with shapes {a.elements.shape} and "
            f"{b.elements.shape}; quantize vectors of the same shape."
        )
    ea = _to_fp32(_element_values(a.elements, bf))
    eb = _to_fp32(_element_values(b.elements, bf))
    p = _blocked(fp.mul(ea, eb, _FP32), bf, "elements")
    s = _tree_sum(p)
    s = fp.mul(s, _to_fp32(_scale_values(a.scales, bf)), _FP32)
    s = fp.mul(s, _to_fp32(_scale_values(b.scales, bf)), _FP32)
    total = _tree_sum(s)
    for ts in (a.tensor_scale, b.tensor_scale):
        if ts is not None:
            total = fp.mul(total, np.asarray(np.float32(ts)).view(np.uint32), _FP32)
    return np.asarray(total, np.uint32).view(np.float32)
