"""2D lookup tables of LUT-LLM, their integer quantization, and index packing.

Tables: ``T[p, g, a, w] = dot(A[p][a], B[p, g][w])`` in float32, summed in a fixed order:
``t = +0; for j in 0 .. v-1: t = fp32(t + fp32(A[p][a][j] * B[p,g][w][j]))`` (IEEE binary32,
round-to-nearest-even, no fused multiply-add).

Quantization (scheme ``"asymmetric"``) cuts the table into *scale cells*. A cell is a set of
positions (a *position group*: ``positions_per_group`` consecutive positions, the last group may be
shorter) times a set of row blocks:

* ``"layer"``: one cell, all positions and all row blocks;
* ``"head"``: all positions, ``blocks_per_head`` consecutive row blocks (a head of output rows);
* ``"block"``: ``positions_per_group`` positions (default 1: one cell per (p, g)) and one row block.

For each cell, with ``L = 2^bits - 1`` and ``lo, hi`` the cell's min and max (float64):
``scale = fp32((hi - lo) / L)`` (when ``hi == lo`` or that rounds to 0: ``fp32(max(|lo|, |hi|) / L)``,
or 1.0 for an all-zero cell); the zero point is an integer, ``zp = -R(lo / scale)``, and
``code = clamp(R(T / scale) + zp, 0, L)`` with ``R`` the rounding mode: ``"rne"`` (round half to
even, NumPy's ``rint``), ``"floor"`` or ``"trunc"``; the divisions are float64 using the float32
scale. The zero point is a signed integer that may lie outside [0, L] (a cell of one sign); it only
enters the dequantization ``T ~ scale * (code - zp)``. The clamp only acts at the range ends, where
float rounding of ``T / scale`` can step one code past ``L``. Per-entry error is at most
``scale * (f + (L + 1) * 2^-22)``, ``f = 1/2`` for rne and 1 for floor/trunc (see
:func:`entry_error_bound`).

Scheme ``"artifact"``: the table quantization of the LUT-LLM authors' code (github.com/LUT-FPGA/
LUT-LLM, ``ffn/ffn_tb.cpp`` ``compute_scale_zeropoint`` and ``quantize_value``, ``ffn/ffn.h``), bit
for bit; every operation is one IEEE binary32 operation, round-to-nearest-even:
``lo, hi`` = float32 min and max of the whole table, ``scale = fp32(fp32(hi - lo) / L)``,
``zp = fp32(-lo / scale)`` (a float32 zero point, not rounded to an integer),
``code = clamp(round_half_away(fp32(fp32(T / scale) + zp)), 0, L)`` with ``round_half_away`` C's
``std::round`` (halves away from zero). The authors use L = 255 (8-bit codes); other widths use
``2^bits - 1`` in its place. Where their code divides by a zero scale (a constant table, or a range
whose ``/ L`` underflows to 0) ours takes ``fp32(max(|lo|, |hi|) / L)``, or 1.0 for an all-zero
table; a range that overflows float32 is refused.

Where each scheme dequantizes, and in which format:

* ``"asymmetric"`` (granularity layer, head, block): the integer engine only sums codes; the host
  dequantizes each scale group in float64, ``scale * (acc - zp * c)`` with ``acc - zp * c`` an exact
  integer and the float32 scale widened (:func:`lutforge.golden.lut_gemv.dequantize`).
* ``"artifact"``: the authors' hardware dequantizes after the integer sum, in float32:
  the host computes ``zp_hw = fp32(fp32(zp * scale) * P)`` once per layer (``ffn_tb.cpp``,
  ``zeropoint * scale * in_size``) and the kernel outputs ``fp32(fp32(float(acc) * scale) - zp_hw)``
  (``ffn.h``, ``(float)acc * scale - zeropoint``), P the number of positions.
* :func:`dequantize_tables` (all schemes): per entry ``scale * (code - zp)`` in float64, for error
  analysis and the compiler's fast evaluation; no hardware forms it.

Index packing: a row of M indices of ``bits`` bits becomes a little-endian bit stream: index j
occupies stream bits ``j*bits .. (j+1)*bits - 1``, stream bit i is bit ``i % 8`` of byte ``i // 8``.
For 4-bit indices this is two per byte, low nibble = column j, high nibble = column j + 1. The
unused high bits of a row's last byte are zero; rows start on a byte boundary.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..support.checks import check_int
from .codebooks import num_positions

__all__ = [
    "Granularity",
    "Rounding",
    "GRANULARITIES",
    "ROUNDINGS",
    "QuantizedTables",
    "build_tables",
    "check_table_quantization",
    "quantize_tables",
    "quantize_tables_artifact",
    "dequantize_tables",
    "entry_error_bound",
    "pack_indices",
    "unpack_indices",
]

Granularity = Literal["layer", "head", "block"]
Rounding = Literal["rne", "floor", "trunc"]
ArtifactRounding = Literal["half-away"]  # C's std::round, only in scheme "artifact"
GRANULARITIES = ("layer", "head", "block")
ROUNDINGS = ("rne", "floor", "trunc")
_ROUND = {"rne": np.rint, "floor": np.floor, "trunc": np.trunc}


@dataclass(frozen=True)
class QuantizedTables:
    """Integer table codes and the per-cell scale and zero point, expanded to (Q, NG).

    ``codes``: (P, NG, C_a, C_w), uint8 for bits <= 8 else uint16.
    ``scales``: (Q, NG) float32; ``zero_points``: (Q, NG) int64, or float32 for scheme "artifact".
    ``rounding`` is the rounding of the codes: one of ``ROUNDINGS``, or "half-away" for "artifact".
    Position group q covers positions ``q * positions_per_group .. min(P, (q+1) * positions_per_group) - 1``.
    """

    codes: np.ndarray
    scales: np.ndarray
    zero_points: np.ndarray
    bits: int
    scheme: Literal["asymmetric", "artifact"]
    granularity: Granularity
    rounding: Rounding | ArtifactRounding
    positions_per_group: int

    @property
    def num_position_groups(self) -> int:
        return self.scales.shape[0]

    def group_sizes(self) -> np.ndarray:
        """Number of positions in each position group (int64, shape (Q,))."""
        p_count = self.codes.shape[0]
        starts = np.arange(self.num_position_groups) * self.positions_per_group
        return np.minimum(starts + self.positions_per_group, p_count) - starts


def _check_bits(bits, low: int, high: int, what: str) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not low <= bits <= high:
        raise ValueError(f"{what} of {bits!r} bits is not supported; use between {low} and {high} bits.")
    return int(bits)


def build_tables(act_codebooks: np.ndarray, weight_codebooks: np.ndarray) -> np.ndarray:
    """T (P, NG, C_a, C_w) float32 from A (P, C_a, v) and B (P, NG, C_w, v), in the stated order."""
    a = np.asarray(act_codebooks, dtype=np.float32)
    b = np.asarray(weight_codebooks, dtype=np.float32)
    if a.ndim != 3 or b.ndim != 4 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[3]:
        raise ValueError(
            f"Activation codebooks {a.shape} and weight codebooks {b.shape} do not fit together; "
            f"expected (P, C_a, v) and (P, NG, C_w, v)."
        )
    t = np.zeros((b.shape[0], b.shape[1], a.shape[1], b.shape[2]), dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        for j in range(a.shape[2]):
            t = t + a[:, None, :, None, j] * b[:, :, None, :, j]
    if not np.all(np.isfinite(t)):
        raise ValueError(
            "The 2D table overflows float32 (Inf or NaN entries); the codebooks are too large to "
            "tabulate, so rescale the layer first."
        )
    return t


def _cell_scale(lo: float, hi: float, levels: int) -> np.float32:
    scale = np.float32((hi - lo) / levels)
    if hi == lo or scale == 0:
        peak = max(abs(lo), abs(hi))
        scale = np.float32(peak / levels) if np.float32(peak / levels) > 0 else np.float32(1.0)
    return scale


def check_table_quantization(granularity, rounding, blocks_per_head=None, positions_per_group=1) -> None:
    """Raise ValueError naming the bad value unless the table-quantization parameters fit together."""
    if granularity not in GRANULARITIES:
        raise ValueError(
            f"Table granularity {granularity!r} is not supported; use 'layer', 'head' or 'block'."
        )
    if rounding not in ROUNDINGS:
        raise ValueError(
            f"Rounding mode {rounding!r} is not supported; use 'rne', 'floor' or 'trunc'."
        )
    if granularity == "head":
        check_int("blocks_per_head", blocks_per_head, fix="granularity 'head' needs 1 or more row blocks per head")
    elif blocks_per_head is not None:
        raise ValueError(
            f"blocks_per_head={blocks_per_head!r} only applies to granularity 'head', not "
            f"{granularity!r}; drop it or pass granularity='head'."
        )
    if granularity != "block" and positions_per_group != 1:
        raise ValueError(
            f"positions_per_group={positions_per_group!r} only applies to granularity 'block'; "
            f"'{granularity}' already shares one scale across all positions."
        )
    check_int("positions_per_group", positions_per_group,
              fix="use 1 (one scale per (p, g)) up to P (one scale per row block)")


def quantize_tables(
    tables: np.ndarray,
    bits: int = 8,
    granularity: Granularity = "block",
    rounding: Rounding = "rne",
    *,
    blocks_per_head: int | None = None,
    positions_per_group: int = 1,
) -> QuantizedTables:
    """Asymmetric integer quantization of ``tables`` (P, NG, C_a, C_w) with integer zero points."""
    bits = _check_bits(bits, 1, 16, "A table entry")
    check_table_quantization(granularity, rounding, blocks_per_head, positions_per_group)
    t = np.asarray(tables)
    if t.ndim != 4 or t.dtype != np.float32:
        raise ValueError(
            f"Tables must be a float32 array (P, NG, C_a, C_w); got {t.dtype} of shape {t.shape}."
        )
    p_count, blocks = t.shape[:2]
    row_cell = {"layer": blocks, "head": blocks_per_head, "block": 1}[granularity]
    ppg = min(int(positions_per_group), p_count) if granularity == "block" else p_count
    groups = num_positions(p_count, ppg)
    levels = (1 << bits) - 1
    rnd = _ROUND[rounding]
    scales = np.empty((groups, blocks), dtype=np.float32)
    zps = np.empty((groups, blocks), dtype=np.int64)
    codes = np.empty(t.shape, dtype=np.uint8 if bits <= 8 else np.uint16)
    for q in range(groups):
        ps = slice(q * ppg, min(p_count, (q + 1) * ppg))
        for h in range(0, blocks, row_cell):
            gs = slice(h, min(blocks, h + row_cell))
            cell = t[ps, gs].astype(np.float64)
            lo, hi = float(cell.min()), float(cell.max())
            scale = _cell_scale(lo, hi, levels)
            zp = -int(rnd(lo / np.float64(scale)))
            scales[q, gs] = scale
            zps[q, gs] = zp
            codes[ps, gs] = np.clip(rnd(cell / np.float64(scale)) + zp, 0, levels)
    return QuantizedTables(codes, scales, zps, bits, "asymmetric", granularity, rounding, ppg)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """Nearest integer, halves away from zero (C's ``round``); exact, as ``x - trunc(x)`` is."""
    whole = np.trunc(x)
    return whole + np.where(np.abs(x - whole) >= 0.5, np.sign(x), 0)


def quantize_tables_artifact(tables: np.ndarray, bits: int = 8) -> QuantizedTables:
    """The LUT-LLM authors' per-layer scheme in float32 (module docstring): float32 zero point
    ``-min / scale``, codes ``round_half_away(T / scale + zp)``."""
    bits = _check_bits(bits, 1, 16, "A table entry")
    t = np.asarray(tables)
    if t.ndim != 4 or t.dtype != np.float32:
        raise ValueError(
            f"Tables must be a float32 array (P, NG, C_a, C_w); got {t.dtype} of shape {t.shape}."
        )
    levels = np.float32((1 << bits) - 1)
    lo, hi = t.min(), t.max()
    with np.errstate(over="ignore"):
        span = hi - lo
    if not np.isfinite(span):
        raise ValueError(
            f"The range of the table ({lo:.7g} .. {hi:.7g}) overflows float32, so the artifact "
            f"scheme has no finite scale; rescale the layer first."
        )
    scale = span / levels
    if scale == 0:
        peak = max(abs(lo), abs(hi))
        scale = peak / levels if peak / levels > 0 else np.float32(1.0)
    zp = -lo / scale
    codes = np.clip(_round_half_away(t / scale + zp), 0, levels)
    shape = (1, t.shape[1])
    return QuantizedTables(
        codes.astype(np.uint8 if bits <= 8 else np.uint16),
        np.full(shape, scale, dtype=np.float32),
        np.full(shape, zp, dtype=np.float32),
        bits,
        "artifact",
        "layer",
        "half-away",
        t.shape[0],
    )


def _expand(per_cell: np.ndarray, qt: QuantizedTables) -> np.ndarray:
    """(Q, NG) values broadcast to (P, NG, 1, 1)."""
    q_of_p = np.arange(qt.codes.shape[0]) // qt.positions_per_group
    return per_cell[q_of_p][:, :, None, None]


def dequantize_tables(qt: QuantizedTables) -> np.ndarray:
    """Float64 tables ``scale * (code - zp)`` (P, NG, C_a, C_w), every scheme (module docstring)."""
    scale = _expand(qt.scales.astype(np.float64), qt)
    # Integer zero points stay integers so that code - zp is exact; float32 ones widen exactly.
    zps = qt.zero_points if qt.zero_points.dtype.kind == "i" else qt.zero_points.astype(np.float64)
    zp = _expand(zps, qt)
    return scale * (qt.codes.astype(np.int64) - zp)


def entry_error_bound(qt: QuantizedTables) -> np.ndarray:
    """Bound (Q, NG) float64 on ``|scale * (code - zp) - T|`` for every entry of each cell.

    Scheme "asymmetric": ``scale * (f + (L + 1) * 2^-22)``: f = 1/2 for round-half-even, 1 for
    floor/trunc; the second term covers the float32 rounding of the scale (at most L * 2^-24 codes
    across the cell's range) and the float64 division.

    Scheme "artifact": ``scale * (1/2 + (|zp| + 2 L + 2) * 2^-22)``. With u = 2^-24, the two float32
    roundings of ``T / scale + zp`` move it by at most ``u (|T / scale| + |T / scale + zp|)`` codes,
    ``|T / scale| <= |zp| + L + 1``; the exact ``T / scale + zp`` lies in
    ``[-u |zp|, L (1 + 3u) + u |zp|]`` (zp and scale are rounded), which bounds what the clamp adds.
    """
    levels = (1 << qt.bits) - 1
    scales = qt.scales.astype(np.float64)
    if qt.scheme == "artifact":
        return scales * (0.5 + (np.abs(qt.zero_points.astype(np.float64)) + 2 * levels + 2) * 2.0**-22)
    frac = 0.5 if qt.rounding == "rne" else 1.0
    return scales * (frac + (levels + 1) * 2.0**-22)


def pack_indices(indices, bits: int) -> np.ndarray:
    """Pack the last axis of non-negative integer ``indices`` (..., M) into bytes (..., ceil(M*bits/8))."""
    bits = _check_bits(bits, 1, 16, "An index")
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"Indices must be integers; got dtype {idx.dtype}.")
    if idx.ndim == 0:
        raise ValueError("Indices must have at least one axis (the packed axis).")
    if idx.size and (idx.min() < 0 or idx.max() >= (1 << bits)):
        bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
        raise ValueError(
            f"Index {bad} does not fit in {bits} bits (0 .. {(1 << bits) - 1}); "
            f"pack with more bits."
        )
    m = idx.shape[-1]
    nbytes = -(-m * bits // 8)
    # One bit per stream position, little-endian within each index and each byte.
    stream = (idx.astype(np.uint32)[..., None] >> np.arange(bits, dtype=np.uint32)) & 1
    stream = stream.reshape(*idx.shape[:-1], m * bits).astype(np.uint8)
    stream = np.concatenate(
        [stream, np.zeros((*idx.shape[:-1], nbytes * 8 - m * bits), dtype=np.uint8)], axis=-1
    )
    return np.packbits(stream, axis=-1, bitorder="little")


def unpack_indices(packed, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_indices`: (..., nbytes) uint8 -> (..., count) int64."""
    bits = _check_bits(bits, 1, 16, "An index")
    packed = np.asarray(packed)
    if packed.dtype != np.uint8 or packed.ndim == 0:
        raise TypeError(f"Packed indices must be a uint8 array with a byte axis; got {packed.dtype}.")
    nbytes = -(-int(count) * bits // 8)
    if count < 0 or packed.shape[-1] != nbytes:
        raise ValueError(
            f"{count} indices of {bits} bits need {nbytes} bytes per row; got {packed.shape[-1]}."
        )
    stream = np.unpackbits(packed, axis=-1, bitorder="little")[..., : count * bits]
    stream = stream.reshape(*packed.shape[:-1], count, bits).astype(np.int64)
    return np.sum(stream << np.arange(bits, dtype=np.int64), axis=-1)
