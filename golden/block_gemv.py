"""Golden model of the block-format GEMV core (``lutforge.hdl.block_gemv``): result and memory images.

Weights in one of :data:`WEIGHT_FORMATS` (MXINT8, MXINT4, MXFP4, NVFP4), activations in one of
:data:`ACT_FORMATS` (MXINT8, MXFP8 E4M3), element and scale codes as :func:`lutforge.golden.mx.quantize`
returns them. The dot product runs over *chunks* of ``C = min(weight block, activation block)``
elements (16 with NVFP4, else 32); a chunk has one weight scale per row and one activation scale.

**Integer elements.** Every element is an integer times a fixed power of two, ``value = i · 2^-f``:
MXINT8 ``i`` = the code's two's complement value (-128 included), f = 6; MXINT4 the 4-bit two's
complement value, f = 2; E2M1 ``i`` in ±{0, 1, 2, 3, 4, 6, 8, 12}, f = 1; E4M3 ``i`` = value · 2^9
(smallest subnormal 2^-9 -> 1, 448 -> 229376), f = 9. E4M3 codes 0x7F / 0xFF are NaN.

**Accumulator** of output row n for one activation vector (fp32 = IEEE binary32, RNE, subnormals
kept, overflow to ±Inf)::

    S_c     = sum_j ia_j · iw_j                                  exact integer over the chunk
    value_c = S_c · 2^(ea_c - 127 - fa) · wscale_c · 2^-fw       exact
              wscale_c = 2^(ew_c - 127) (E8M0, MX) or the exact value of the E4M3 code (NVFP4, sign included)
    p_c     = fp32(value_c)                                      one rounding; +0 when value_c = 0
    acc     = +0;  acc = fp32(acc + p_c) for c = 0, 1, ... in order

``p_c`` is NaN when the chunk's activation scale is E8M0 0xFF, its weight scale is NaN (E8M0 0xFF,
E4M3 0x7F / 0xFF) or one of its activation elements is an E4M3 NaN; a NaN ``acc`` (from a NaN
``p_c`` or from Inf - Inf) is always the canonical :data:`NAN` = 0x7FC00000. The output is acc's
fp32 bit pattern. NVFP4's fp32 tensor scale is applied by the host: :func:`host_output`.

**Memory images** (:func:`core_images`; rows of little-endian uint32 words, one row per memory
word, all bases 0), for L lanes and ``chunks = K / C``:

* channel ``w`` word ``w_base + t·chunks + c``: tile t (rows ``t L .. t L + L - 1``) at chunk c,
  lane i's C element codes at bits ``(i C + j) eb`` (eb = 8 or 4 element bits);
* channel ``s`` word ``s_base + t·chunks + c``: lane i's 8-bit weight scale code at bits ``8 i``.

Rows past N are padding: element codes 0 and scale code 0 (E8M0 2^-127 or E4M3 +0), which give
``p_c = +0``; the core also forces padding lanes of its output to 0.

**Activation stream** (:func:`x_payloads`): one transfer per chunk, element j's 8-bit code at bits
``8 j`` and the chunk's 8-bit activation scale code at bits ``8 C .. 8 C + 7`` (the scale of the
32-element block holding the chunk, so it repeats for chunks of 16).

**Descriptor** (:data:`BLOCK_DESCRIPTOR`, fields LSB first): ``chunks`` (16 bits, 1 .. the build's
max_chunks), ``out_features`` (16 bits, N >= 1), ``w_base``, ``s_base`` (addr_width bits each).
"""

from dataclasses import dataclass

import numpy as np

from .gemv_core import pack_descriptor, pack_words, tile_count
from .mx import BLOCK_FORMATS

__all__ = ["WEIGHT_FORMATS", "ACT_FORMATS", "BLOCK_DESCRIPTOR", "NAN", "BlockGemvFormat", "BlockCoreImages",
           "block_descriptor_fields", "element_integers", "scale_terms", "block_gemv", "tile_outputs",
           "core_images", "x_payloads", "host_output"]

WEIGHT_FORMATS = ("mxint8", "mxint4", "mxfp4", "nvfp4")
ACT_FORMATS = ("mxint8", "mxfp8_e4m3")
NAN = 0x7FC00000

# The descriptor of one run, fields LSB first: (name, width in bits; None = the address width).
# The RTL's descriptor layout (lutforge.hdl.block_gemv.block_descriptor_layout) is built from it.
BLOCK_DESCRIPTOR = (("chunks", 16), ("out_features", 16), ("w_base", None), ("s_base", None))

# Element -> (code bits, fraction bits f of value = i * 2^-f).
_ELEMENTS = {"int8": (8, 6), "int4": (4, 2), "e2m1": (4, 1), "e4m3": (8, 9)}


def block_descriptor_fields(addr_width: int = 32) -> tuple[tuple[str, int], ...]:
    """The descriptor's (name, width) pairs, LSB first, for memory addresses of ``addr_width`` bits."""
    return tuple((name, addr_width if width is None else width) for name, width in BLOCK_DESCRIPTOR)


@dataclass(frozen=True)
class BlockGemvFormat:
    """The weight and activation block formats of one core build (names of ``golden.mx.BLOCK_FORMATS``)."""

    weight: str
    act: str

    def __post_init__(self):
        if self.weight not in WEIGHT_FORMATS:
            raise ValueError(
                f"Weight format {self.weight!r} is not supported by the block GEMV core; use one of "
                f"{', '.join(WEIGHT_FORMATS)}."
            )
        if self.act not in ACT_FORMATS:
            raise ValueError(
                f"Activation format {self.act!r} is not supported by the block GEMV core; use one of "
                f"{', '.join(ACT_FORMATS)}."
            )

    @property
    def weight_block(self) -> int:
        return BLOCK_FORMATS[self.weight].block

    @property
    def act_block(self) -> int:
        return BLOCK_FORMATS[self.act].block

    @property
    def chunk(self) -> int:
        """C: elements per chunk, the smaller of the two block sizes."""
        return min(self.weight_block, self.act_block)

    @property
    def k_multiple(self) -> int:
        """K must be a multiple of the larger block."""
        return max(self.weight_block, self.act_block)

    @property
    def weight_element(self) -> str:
        return BLOCK_FORMATS[self.weight].element

    @property
    def act_element(self) -> str:
        return BLOCK_FORMATS[self.act].element

    @property
    def weight_scale(self) -> str:
        """``"e8m0"`` (MX) or ``"e4m3"`` (NVFP4)."""
        return BLOCK_FORMATS[self.weight].scale

    @property
    def weight_bits(self) -> int:
        return _ELEMENTS[self.weight_element][0]

    @property
    def act_bits(self) -> int:
        return _ELEMENTS[self.act_element][0]

    @property
    def weight_frac(self) -> int:
        return _ELEMENTS[self.weight_element][1]

    @property
    def act_frac(self) -> int:
        return _ELEMENTS[self.act_element][1]


def _fmt(fmt) -> BlockGemvFormat:
    if isinstance(fmt, BlockGemvFormat):
        return fmt
    if isinstance(fmt, tuple) and len(fmt) == 2:
        return BlockGemvFormat(*fmt)
    raise TypeError(f"fmt={fmt!r} is not a BlockGemvFormat; pass BlockGemvFormat(weight, act).")


def element_integers(codes, element: str) -> tuple[np.ndarray, np.ndarray]:
    """``(i, nan)``: the int64 integer ``value · 2^f`` of each element code and its NaN mask."""
    c = np.asarray(codes).astype(np.int64)
    bits = _ELEMENTS[element][0]
    nan = np.zeros(c.shape, bool)
    if element in ("int8", "int4"):
        return np.where(c >= 1 << (bits - 1), c - (1 << bits), c), nan
    sign = c >> (bits - 1)
    man_bits = 1 if element == "e2m1" else 3
    field = (c >> man_bits) & ((1 << (bits - 1 - man_bits)) - 1)
    man = c & ((1 << man_bits) - 1)
    mag = np.where(field == 0, man, ((1 << man_bits) + man) << np.maximum(field - 1, 0))
    if element == "e4m3":
        nan = (c & 0x7F) == 0x7F
        mag = np.where(nan, 0, mag)
    return np.where(sign == 1, -mag, mag), nan


def scale_terms(codes, scale: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sig, exp, nan)``: a scale code's exact value ``sig · 2^exp`` (int64 arrays) and its NaN mask."""
    c = np.asarray(codes).astype(np.int64)
    if scale == "e8m0":
        return np.ones(c.shape, np.int64), c - 127, c == 0xFF
    field, man = (c >> 3) & 15, c & 7
    sig = np.where(field == 0, man, 8 + man)
    return np.where(c >> 7 == 1, -sig, sig), np.maximum(field, 1) - 10, (c & 0x7F) == 0x7F


def _codes(what: str, a, shape_hint: str, bits: int) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "ui":
        raise TypeError(f"{what} must be integer codes (uint8), got dtype {a.dtype}; pass quantize()'s codes.")
    if a.size and (a.min() < 0 or a.max() >= 1 << bits):
        bad = int(a.max()) if a.max() >= 1 << bits else int(a.min())
        raise ValueError(f"{what} hold the code {bad}, which is not a {bits}-bit code; {shape_hint}")
    return a.astype(np.int64)


def _check_operands(fmt: BlockGemvFormat, x_elems, x_scales, w_elems, w_scales):
    x = _codes("The activation elements", x_elems, "pass the element codes of golden.mx.quantize.", fmt.act_bits)
    w = _codes("The weight elements", w_elems, "pass the element codes of golden.mx.quantize.", fmt.weight_bits)
    xs = _codes("The activation scales", x_scales, "scale codes are one byte each.", 8)
    ws = _codes("The weight scales", w_scales, "scale codes are one byte each.", 8)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(
            f"Activations {x.shape} and weights {w.shape} must be (T, K) and (N, K) with the same K; "
            f"transpose or reshape them."
        )
    k = x.shape[1]
    if k == 0 or k % fmt.k_multiple:
        raise ValueError(
            f"K={k} is not a positive multiple of {fmt.k_multiple}, the larger block of {fmt.weight} x "
            f"{fmt.act}; pad K with zero elements to a multiple of {fmt.k_multiple}."
        )
    for what, s, rows, block in (("activation", xs, x.shape[0], fmt.act_block),
                                 ("weight", ws, w.shape[0], fmt.weight_block)):
        if s.shape != (rows, k // block):
            raise ValueError(
                f"The {what} scales have shape {s.shape}; K={k} in blocks of {block} needs "
                f"{(rows, k // block)}."
            )
    return x, xs, w, ws


def block_gemv(x_elems, x_scales, w_elems, w_scales, fmt: BlockGemvFormat) -> np.ndarray:
    """fp32 bit patterns (T, N) uint32 of the accumulators (see the module docstring).

    ``x_elems`` (T, K) and ``w_elems`` (N, K) are element codes (uint8, one per byte), ``x_scales``
    (T, K / activation block) and ``w_scales`` (N, K / weight block) scale codes.
    """
    fmt = _fmt(fmt)
    x, xs, w, ws = _check_operands(fmt, x_elems, x_scales, w_elems, w_scales)
    t_count, k = x.shape
    n_count = w.shape[0]
    c_size = fmt.chunk
    chunks = k // c_size
    ia, a_nan = element_integers(x, fmt.act_element)
    iw, _ = element_integers(w, fmt.weight_element)
    per_chunk = np.arange(chunks) * c_size
    a_exp = xs[:, per_chunk // fmt.act_block] - 127 - fmt.act_frac  # (T, chunks)
    a_bad = (xs[:, per_chunk // fmt.act_block] == 0xFF) | a_nan.reshape(t_count, chunks, c_size).any(-1)
    w_sig, w_exp, w_bad = scale_terms(ws[:, per_chunk // fmt.weight_block], fmt.weight_scale)  # (N, chunks)
    # NaN chunks are overwritten below; their exponents are not values and must not bound anything.
    a_exp = np.where(a_bad, 0, a_exp)
    w_exp = np.where(w_bad, 0, w_exp - fmt.weight_frac)
    xa = ia.reshape(t_count, chunks, c_size)
    wa = iw.reshape(n_count, chunks, c_size) * w_sig[:, :, None]  # integers iw * sig, |.| < 2^12
    products = _products_fp32 if _fp32_exact(xa, wa, a_exp, w_exp) else _products_fp64
    bad = (a_bad[:, None, :] | w_bad[None, :, :]) if (a_bad.any() or w_bad.any()) else None
    acc = np.zeros((t_count, n_count), np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        for c, p in enumerate(products(xa, wa, a_exp, w_exp)):
            # + (+0) turns the -0 of a negative scale times S_c = 0 into the +0 the contract says.
            p += np.float32(0)
            if bad is not None:
                p[bad[:, :, c]] = np.nan
            acc += p
    bits = acc.view(np.uint32)
    return np.where(np.isnan(acc), np.uint32(NAN), bits).astype(np.uint32)


def _fp32_exact(xa, wa, a_exp, w_exp) -> bool:
    """Whether :func:`_products_fp32` computes every ``p_c`` exactly: every weight chunk with a
    non-zero element carries a column scale ``2^ew`` in [2^-126, 2^127) (normal, so no
    flush-to-zero in the matrix product), its chunk sums ``S_c`` are integers below 2^24 (so every
    partial sum times ``2^ew`` is a float32, in whatever order the product adds) that stay below
    2^127 scaled, and ``2^ea`` is a float32 (subnormal allowed: numpy's multiply rounds them
    correctly)."""
    live = (wa != 0).any(-1)  # (N, chunks): all-zero chunks (padding) give S_c = 0 at any scale
    if not (xa.size and live.any()):
        return True
    bound = xa.shape[-1] * max(1, int(np.abs(xa).max())) * int(np.abs(wa).max())
    ew = w_exp[live]
    return (bound < 1 << 24 and int(ew.min()) >= -126 and bound * 2.0 ** int(ew.max()) < 2.0 ** 127
            and -149 <= int(a_exp.min()) and int(a_exp.max()) <= 127)


def _products_fp32(xa, wa, a_exp, w_exp):
    """``p_c`` (T, N) float32 per chunk: the weights carry their column scale exactly, a float32
    product sums exact integer multiples of it, and one multiply by ``2^ea`` is the one RNE rounding."""
    ew = np.where((wa != 0).any(-1), w_exp, 0)  # all-zero chunks stay 0 at any scale
    w32 = np.ldexp(wa.astype(np.float32), ew[:, :, None].astype(np.int32))  # exact (see _fp32_exact)
    x32 = xa.astype(np.float32)
    fa = np.ldexp(np.float32(1), a_exp.astype(np.int32))  # (T, chunks), exact powers of two
    for c in range(xa.shape[1]):
        s = x32[:, c, :] @ w32[:, c, :].T
        s *= fa[:, c, None]
        yield s


def _products_fp64(xa, wa, a_exp, w_exp):
    """``p_c`` per chunk through float64 for any operands: integer operands below 2^18 and 2^12, C
    <= 32, so every partial sum of S_c is an integer far below 2^53, and ldexp of it by an exponent
    in [-300, 300] stays exact; the float32 cast is then the one RNE rounding (subnormals kept,
    overflow to Inf)."""
    xf, wf = xa.astype(np.float64), wa.astype(np.float64)
    for c in range(xa.shape[1]):
        s = xf[:, c, :] @ wf[:, c, :].T
        yield np.ldexp(s, a_exp[:, c, None] + w_exp[None, :, c]).astype(np.float32)


def tile_outputs(acc_bits, lanes: int) -> np.ndarray:
    """One run's (N,) accumulators as the core's ``acc`` tiles (tiles, lanes), padding lanes 0."""
    acc_bits = np.asarray(acc_bits, np.uint32)
    out = np.zeros(tile_count(len(acc_bits), lanes) * lanes, np.uint32)
    out[: len(acc_bits)] = acc_bits
    return out.reshape(-1, lanes)


@dataclass(frozen=True)
class BlockCoreImages:
    """Memory images (uint32 words, one row per memory word) and the descriptor fields of one run."""

    w: np.ndarray
    s: np.ndarray
    descriptor: dict

    def descriptor_word(self, addr_width: int = 32) -> int:
        """The descriptor as one integer, fields LSB first as the core's ``desc`` payload."""
        return pack_descriptor(self.descriptor, block_descriptor_fields(addr_width))


def core_images(w_elems, w_scales, fmt: BlockGemvFormat, lanes: int) -> BlockCoreImages:
    """The core's weight and scale images for (N, K) weight codes, all bases 0 (module docstring)."""
    fmt = _fmt(fmt)
    if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
        raise ValueError(f"lanes={lanes!r} is not a lane count; use 1 or more.")
    w = _codes("The weight elements", w_elems, "pass the element codes of golden.mx.quantize.", fmt.weight_bits)
    ws = _codes("The weight scales", w_scales, "scale codes are one byte each.", 8)
    if w.ndim != 2 or w.shape[1] == 0 or w.shape[1] % fmt.k_multiple:
        raise ValueError(
            f"Weights of shape {w.shape} are not (N, K) with K a positive multiple of {fmt.k_multiple}; "
            f"pad K with zero elements."
        )
    n, k = w.shape
    if ws.shape != (n, k // fmt.weight_block):
        raise ValueError(f"The weight scales have shape {ws.shape}; {fmt.weight} weights {w.shape} need "
                         f"{(n, k // fmt.weight_block)}.")
    c_size, chunks = fmt.chunk, k // fmt.chunk
    if not 1 <= n < 1 << 16 or chunks >= 1 << 16:
        raise ValueError(
            f"N={n} rows and {chunks} chunks do not fit the 16-bit descriptor fields; split the layer "
            f"into runs of at most 65535 rows and 65535 chunks."
        )
    tiles = tile_count(n, lanes)
    codes = np.zeros((tiles * lanes, k), np.int64)
    codes[:n] = w
    scales = np.zeros((tiles * lanes, chunks), np.int64)
    scales[:n] = ws[:, np.arange(chunks) * c_size // fmt.weight_block]
    # Word t * chunks + c: lanes outermost inside the word, then the chunk's elements.
    per_word = codes.reshape(tiles, lanes, chunks, c_size).transpose(0, 2, 1, 3).reshape(-1, lanes * c_size)
    scale_words = scales.reshape(tiles, lanes, chunks).transpose(0, 2, 1).reshape(-1, lanes)
    descriptor = {"chunks": chunks, "out_features": n, "w_base": 0, "s_base": 0}
    return BlockCoreImages(pack_words(per_word, fmt.weight_bits), pack_words(scale_words, 8), descriptor)


def x_payloads(x_elems, x_scales, fmt: BlockGemvFormat) -> list[int]:
    """The ``x`` stream transfers of one activation vector (K,) (or of T vectors (T, K), run after run)."""
    fmt = _fmt(fmt)
    x = _codes("The activation elements", x_elems, "pass the element codes of golden.mx.quantize.", fmt.act_bits)
    xs = _codes("The activation scales", x_scales, "scale codes are one byte each.", 8)
    if x.ndim == 1:
        x, xs = x[None], xs[None]
    if x.ndim != 2 or x.shape[1] == 0 or x.shape[1] % fmt.k_multiple or xs.shape != (
            x.shape[0], x.shape[1] // fmt.act_block):
        raise ValueError(
            f"Activations {x.shape} with scales {xs.shape} are not (K,) / (T, K) codes with K a positive "
            f"multiple of {fmt.k_multiple} and one scale per {fmt.act_block} elements; pad K with zeros."
        )
    c_size = fmt.chunk
    out = []
    for row, scales in zip(x, xs):
        for c in range(len(row) // c_size):
            word = int(scales[c * c_size // fmt.act_block]) << (fmt.act_bits * c_size)
            for j, code in enumerate(row[c * c_size:(c + 1) * c_size].tolist()):
                word |= code << (fmt.act_bits * j)
            out.append(word)
    return out


def host_output(acc_bits, tensor_scale) -> np.ndarray:
    """``float32(acc) · float32(tensor_scale)``, one fp32 multiply (RNE); ``None`` (MX) multiplies by 1."""
    acc = np.asarray(acc_bits, np.uint32).view(np.float32)
    ts = np.float32(1.0 if tensor_scale is None else tensor_scale)
    with np.errstate(over="ignore", invalid="ignore"):
        return acc * ts
