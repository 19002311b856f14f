"""Weight-only vector quantization with a run-time 1D table (T-MAC style), for comparison with LUT-LLM.

Only the weights are quantized (same codebooks B[p, g] and indices widx as the co-quantization,
same padding rules). At run time each activation sub-vector builds a 1D table
``t[p, g, w] = dot(x_p, B[p, g][w])`` in float32 (``t = +0; for j: t = fp32(t + fp32(x_j * B_j))``),
and ``y[n] = sum_p t[p, n // G, widx[n, p]]`` summed in float64 in increasing p.

With ``table_bits`` the run-time table of each input row is quantized first (one asymmetric scale
and integer zero point per row block, all positions, as :func:`quantize_tables` with granularity
"block" and ``positions_per_group = P``); the lookups are then summed as integers and dequantized
as ``scale * (acc - zp * P)``. No activation codebook exists, so no activation error either: the
difference to LUT-LLM isolates what the activation codebook costs.
"""

from dataclasses import dataclass

import numpy as np

from .centroid_search import as_operand
from .codebooks import (
    check_centroid_count,
    check_group_rows,
    check_subvector_length,
    num_positions,
    pad_columns,
    train_weight_codebooks,
)
from .lut_tables import Rounding, quantize_tables

__all__ = ["VqLayer", "vq_quantize", "tmac_tables", "tmac_linear", "TmacLayer", "TmacImages", "tmac_integer_layer",
           "tmac_activations", "tmac_core_tables", "tmac_core_accumulators", "tmac_core",
           "tmac_weight_codes", "tmac_dense_accumulators", "tmac_output",
           "tmac_core_images", "tmac_descriptor_fields", "tmac_bias", "tmac_table_bits", "check_codebook_bits",
           "TMAC_DESCRIPTOR"]


@dataclass(frozen=True)
class VqLayer:
    """Weight-only VQ layer: B (P, NG, c_w, v) float32 and widx (N, P) uint8."""

    in_features: int
    out_features: int
    v: int
    c_w: int
    group_rows: int
    weight_codebooks: np.ndarray
    widx: np.ndarray

    @property
    def num_positions(self) -> int:
        return num_positions(self.in_features, self.v)


def vq_quantize(
    weight: np.ndarray, *, v: int = 2, c_w: int = 16, group_rows: int = 512, seed: int = 0, iterations: int = 20
) -> VqLayer:
    v = check_subvector_length(v)
    c_w = check_centroid_count(c_w, "C_w")
    group_rows = check_group_rows(group_rows)
    weight = np.asarray(weight)
    codebooks, widx = train_weight_codebooks(weight, v, c_w, group_rows, seed=seed, iterations=iterations)
    return VqLayer(weight.shape[1], weight.shape[0], v, c_w, group_rows, codebooks, widx)


def tmac_tables(x, layer: VqLayer) -> np.ndarray:
    """Run-time tables (..., P, NG, C_w) float32 for activations ``x`` (..., K)."""
    x = as_operand(x, "The activations")
    if x.dtype != np.float32 or x.ndim < 1 or x.shape[-1] != layer.in_features:
        raise ValueError(
            f"Activations must be float or bfloat16 of shape (..., {layer.in_features}); "
            f"got {x.dtype} of shape {x.shape}."
        )
    p_count, v = layer.num_positions, layer.v
    xs = pad_columns(x, v).reshape(*x.shape[:-1], p_count, 1, 1, v)
    t = np.zeros((*x.shape[:-1], *layer.weight_codebooks.shape[:3]), dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        for j in range(v):
            t = t + xs[..., j] * layer.weight_codebooks[..., j]
    return t


def tmac_linear(x, layer: VqLayer, table_bits: int | None = None, rounding: Rounding = "rne") -> np.ndarray:
    """Float64 outputs (..., N) of the weight-only VQ layer; see the module docstring."""
    t = tmac_tables(x, layer)
    p_count = layer.num_positions
    g_of_n = np.arange(layer.out_features) // layer.group_rows
    pick = (np.arange(p_count)[None, :], g_of_n[:, None], layer.widx.astype(np.int64))
    if table_bits is None:
        terms = t[(..., *pick)].astype(np.float64)  # (..., N, P)
        y = np.zeros(terms.shape[:-1], dtype=np.float64)
        for p in range(p_count):
            y = y + terms[..., p]
        return y
    flat = t.reshape(-1, *t.shape[-3:])
    out = np.empty((flat.shape[0], layer.out_features), dtype=np.float64)
    for i, row in enumerate(flat):
        qt = quantize_tables(row[:, :, None, :], table_bits, "block", rounding, positions_per_group=p_count)
        acc = np.sum(qt.codes[:, :, 0, :][pick].astype(np.int64), axis=-1)
        out[i] = qt.scales[0, g_of_n].astype(np.float64) * (acc - qt.zero_points[0, g_of_n] * p_count)
    return out.reshape(*t.shape[:-3], layer.out_features)


# --- The integer form the weight-only LUT core (lutforge.hdl.tmac_core) runs ------------------------
#
# Activations: one symmetric int8 scale per input row (token), ``s_x = max|x| / 127`` (1 for an
# all-zero row), ``x_q = clip(rint(x / s_x), -127, 127)`` zero-padded to P * v.
# Weights: the VQ codebooks B (P, NG, C_w, v) as signed ``cb_bits``-bit codes with one float32
# scale per row block, ``s_w[g] = max |B[:, g]| / c_max`` with ``c_max = 2^(cb_bits-1) - 1``
# (1 for an all-zero block); codes ``clip(rint(B / s_w[g]), -c_max, c_max)``.
# Run-time table (built by the core from each activation sub-vector, exact integers), stored with
# a bias so that the LUT engine's unsigned accumulators hold it:
#     u[p, g, w] = sum_j x_q[p, j] * code[p, g, w, j] + bias,   bias = v * 127 * c_max
# Core result: acc[n] = sum_p u[p, n // G, widx[n, p]]  (unsigned, exact).
# Host: y[n] = float64(acc[n] - bias * P) * float64(s_w[n // G]) * s_x   (float64, this order).

TMAC_DESCRIPTOR = (("positions", 16), ("out_features", 16), ("tiles_per_block", 16), ("blocks", 16),
                   ("cb_base", None), ("idx_base", None))


def tmac_descriptor_fields(addr_width: int = 32) -> tuple[tuple[str, int], ...]:
    """The weight-only core's descriptor (name, width) pairs, LSB first (None = the address width)."""
    return tuple((name, addr_width if width is None else width) for name, width in TMAC_DESCRIPTOR)


def check_codebook_bits(cb_bits) -> int:
    if isinstance(cb_bits, bool) or not isinstance(cb_bits, (int, np.integer)) or not 2 <= int(cb_bits) <= 16:
        raise ValueError(f"Weight codebook entries of {cb_bits!r} bits are not supported; use 2 to 16 bits.")
    return int(cb_bits)


@dataclass(frozen=True)
class TmacLayer:
    """A weight-only LUT layer as the core runs it: integer codebooks (P, NG, C_w, v), one float32
    scale per row block (NG,), weight indices (N, P)."""

    in_features: int
    out_features: int
    v: int
    c_w: int
    group_rows: int
    cb_bits: int
    codes: np.ndarray   # (P, NG, C_w, v) int16 in [-c_max, c_max]
    scales: np.ndarray  # (NG,) float32
    widx: np.ndarray    # (N, P) uint8

    @property
    def num_positions(self) -> int:
        return num_positions(self.in_features, self.v)

    @property
    def num_blocks(self) -> int:
        return -(-self.out_features // self.group_rows)

    @property
    def c_max(self) -> int:
        return (1 << (self.cb_bits - 1)) - 1

    @property
    def bias(self) -> int:
        return tmac_bias(self.v, self.cb_bits)

    @property
    def table_bits(self) -> int:
        return tmac_table_bits(self.v, self.cb_bits)


def tmac_bias(v: int, cb_bits: int) -> int:
    """The table bias ``v * 127 * c_max``: the most negative dot product, moved to 0."""
    return int(v) * 127 * ((1 << (int(cb_bits) - 1)) - 1)


def tmac_table_bits(v: int, cb_bits: int) -> int:
    """Unsigned bits of one biased table entry (at most ``2 * bias``)."""
    return (2 * tmac_bias(v, cb_bits)).bit_length()


def tmac_integer_layer(layer: VqLayer, cb_bits: int = 8) -> TmacLayer:
    """The integer form of a weight-only VQ layer (module comment above for the rounding)."""
    cb_bits = check_codebook_bits(cb_bits)
    c_max = (1 << (cb_bits - 1)) - 1
    b = np.asarray(layer.weight_codebooks, dtype=np.float64)
    peak = np.max(np.abs(b), axis=(0, 2, 3), initial=0.0)
    scales = np.where(peak > 0, peak / c_max, 1.0).astype(np.float32)
    codes = np.clip(np.rint(b / scales.astype(np.float64)[None, :, None, None]), -c_max, c_max).astype(np.int16)
    return TmacLayer(layer.in_features, layer.out_features, layer.v, layer.c_w, layer.group_rows, cb_bits,
                     codes, scales, np.asarray(layer.widx))


def tmac_activations(x, v: int) -> tuple[np.ndarray, np.ndarray]:
    """int8 sub-vectors (..., P, v) and float64 per-row scales (...) of activations ``x`` (..., K)."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("The activations hold Inf or NaN, which no int8 scale represents; find where the "
                         "model overflowed before quantizing them.")
    peak = np.max(np.abs(x), axis=-1, initial=0.0)
    scale = np.where(peak > 0, peak / 127.0, 1.0)
    xs = pad_columns(x / scale[..., None], v)
    x_q = np.clip(np.rint(xs), -127, 127).astype(np.int8)
    return x_q.reshape(*x.shape[:-1], -1, v), scale


def tmac_core_tables(x_q, layer: TmacLayer) -> np.ndarray:
    """Biased run-time tables u (..., P, NG, C_w) int64 of int8 sub-vectors ``x_q`` (..., P, v)."""
    x_q = np.asarray(x_q)
    if x_q.dtype != np.int8 or x_q.shape[-2:] != (layer.num_positions, layer.v):
        raise ValueError(f"The core's activations must be int8 of shape (..., {layer.num_positions}, {layer.v}); "
                         f"got {x_q.dtype} {x_q.shape}.")
    dots = np.einsum("...pj,pgwj->...pgw", x_q.astype(np.int64), layer.codes.astype(np.int64))
    return dots + layer.bias


def tmac_core_accumulators(x_q, layer: TmacLayer) -> np.ndarray:
    """Accumulators (..., N) int64: ``sum_p u[p, n // G, widx[n, p]]``."""
    u = tmac_core_tables(x_q, layer)
    g = np.arange(layer.out_features) // layer.group_rows
    picked = u[..., np.arange(layer.num_positions)[None, :], g[:, None], layer.widx.astype(np.int64)]
    return picked.sum(axis=-1)


def tmac_weight_codes(layer: TmacLayer) -> np.ndarray:
    """The code each weight's index selects, (N, P * v) int16: ``code[p, n // G, widx[n, p], j]``."""
    g = np.arange(layer.out_features) // layer.group_rows
    picked = layer.codes[np.arange(layer.num_positions)[None, :], g[:, None], layer.widx.astype(np.int64)]
    return picked.reshape(layer.out_features, -1)


def tmac_dense_accumulators(x_q, layer: TmacLayer, weight_codes: np.ndarray | None = None) -> np.ndarray:
    """:func:`tmac_core_accumulators` computed as one matrix product: summing a table entry per
    position is summing ``x_q . code`` over positions plus the bias per position, so the
    accumulators are ``x_q (..., P v) @ weight_codes^T + bias * P``. The products are integers of
    at most ``P v 127 c_max`` in magnitude, exact in float64 below 2^53 (checked), so this equals
    the table form bit for bit (``tests/golden/test_tmac.py``); ``weight_codes`` is
    :func:`tmac_weight_codes`, when the caller keeps it."""
    x_q = np.asarray(x_q)
    p_count, v = layer.num_positions, layer.v
    if x_q.dtype != np.int8 or x_q.shape[-2:] != (p_count, v):
        raise ValueError(f"The core's activations must be int8 of shape (..., {p_count}, {v}); "
                         f"got {x_q.dtype} {x_q.shape}.")
    if p_count * v * 127 * layer.c_max >= 1 << 53:
        raise ValueError(f"{p_count * v} features of int8 times {layer.cb_bits}-bit codes can exceed 2^53, "
                         f"where float64 sums stop being exact; use tmac_core_accumulators.")
    w = tmac_weight_codes(layer) if weight_codes is None else weight_codes
    flat = x_q.reshape(*x_q.shape[:-2], p_count * v).astype(np.float64)
    return (flat @ w.T.astype(np.float64)).astype(np.int64) + layer.bias * p_count


def tmac_core(x_q, layer: TmacLayer, lanes: int) -> np.ndarray:
    """One core run: accumulators (tiles, lanes) int64, padding rows 0, for ``x_q`` (P, v) int8."""
    from .gemv_core import tile_count

    if layer.group_rows % lanes:
        raise ValueError(f"Row blocks of G={layer.group_rows} rows are not a whole number of {lanes}-lane "
                         f"tiles; use G a multiple of the lane count.")
    out = np.zeros(tile_count(layer.out_features, lanes) * lanes, dtype=np.int64)
    out[: layer.out_features] = tmac_core_accumulators(x_q, layer)
    return out.reshape(-1, lanes)


def tmac_output(acc, x_scale, layer: TmacLayer) -> np.ndarray:
    """The host's float64 outputs (..., N) from accumulators (..., N) and row scales (...)."""
    g = np.arange(layer.out_features) // layer.group_rows
    centred = (np.asarray(acc, dtype=np.int64) - layer.bias * layer.num_positions).astype(np.float64)
    return centred * layer.scales[g].astype(np.float64) * np.asarray(x_scale, dtype=np.float64)[..., None]


@dataclass(frozen=True)
class TmacImages:
    """The weight-only core's memory images (uint32 words, one row per memory word) and descriptor."""

    cb: np.ndarray
    idx: np.ndarray
    x: np.ndarray  # (P,) uint64 payloads of the activation stream, v int8 each
    descriptor: dict

    def descriptor_word(self, addr_width: int = 32) -> int:
        from .gemv_core import pack_descriptor

        return pack_descriptor(self.descriptor, tmac_descriptor_fields(addr_width))


def tmac_core_images(x_q, layer: TmacLayer, lanes: int) -> TmacImages:
    """Memory images, all bases 0: ``cb`` word ``g * P + p`` holds the codes of B[p, g] (entry w
    element j at bits ``cb_bits * (w v + j)``, two's complement); ``idx`` word ``t * P + p`` holds
    the weight indices of tile t at position p (the LUT core's layout, padding rows 0)."""
    from .gemv_core import activation_payloads, index_words, pack_words

    p_count, v, c_w, blocks = layer.num_positions, layer.v, layer.c_w, layer.num_blocks
    if layer.group_rows % lanes:
        raise ValueError(f"Row blocks of G={layer.group_rows} rows are not a whole number of {lanes}-lane "
                         f"tiles; use G a multiple of the lane count.")
    if np.any(np.abs(layer.codes.astype(np.int64)) > layer.c_max):
        raise ValueError(f"The layer's codes exceed +-{layer.c_max}, the range of {layer.cb_bits}-bit codes the "
                         f"core's table bias assumes; build it with tmac_integer_layer.")
    x_q = np.asarray(x_q)
    if x_q.dtype != np.int8 or x_q.shape != (p_count, v):
        raise ValueError(f"The core's activations must be int8 of shape ({p_count}, {v}); got {x_q.dtype} "
                         f"{x_q.shape}.")
    mask = (1 << layer.cb_bits) - 1
    codes = np.transpose(layer.codes.astype(np.int64), (1, 0, 2, 3)).reshape(blocks * p_count, c_w * v) & mask
    cb = pack_words(codes, layer.cb_bits)
    idx = index_words(layer.widx, c_w, lanes)
    x = activation_payloads(x_q)
    descriptor = {"positions": p_count, "out_features": layer.out_features,
                  "tiles_per_block": layer.group_rows // lanes, "blocks": blocks, "cb_base": 0, "idx_base": 0}
    return TmacImages(cb, idx, x, descriptor)
