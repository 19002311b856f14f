"""LUT GEMV: integer table lookups and adds, then one dequantization per scale group.

Integer contract (what the RTL GEMV engine computes, bit-exact):

    acc[n, q] = sum over p in position group q of  table_codes[p, n // G, a[p], widx[n, p]]

with ``a[p]`` the activation index of position p (from the centroid search), all terms unsigned
``table_bits``-bit codes, summed exactly. The accumulator of group q needs
``accumulator_width(|q|, table_bits)`` unsigned bits (worst case: every code at ``2^b - 1``);
for one group over the whole layer that is ``accumulator_width(P, table_bits)``.

Dequantization, outside the integer engine, with ``c_q`` the number of positions in group q and
(scale, zp) the layer's ``scales[q, n // G]``, ``zero_points[q, n // G]``:

* scheme "asymmetric", on the host in float64:
  ``y[n] = sum_{q = 0 .. Q-1} scale * (acc[n, q] - zp * c_q)``, summed in increasing q;
  ``acc - zp * c_q`` is an exact int64, multiplied by the float32 scale widened to float64.
  "layer" and "head" granularity have Q = 1, so this is ``scale * (acc - zp * P)``.
* scheme "artifact", as the LUT-LLM authors' hardware, in float32 (every step one binary32
  operation, round-to-nearest-even): ``zp_hw = fp32(fp32(zp * scale) * P)`` (their host), then
  ``y[n] = fp32(fp32(float32(acc[n]) * scale) - zp_hw)`` (their kernel), returned widened to float64.
  Their kernel keeps each accumulator in a 22-bit lane; the integer contract above is exact, which
  is the same while ``P * (2^b - 1) < 2^22``.
"""

from dataclasses import dataclass

import numpy as np

from .centroid_search import search_positions
from .codebooks import pad_columns
from .lut_layer import LutLayer
from .lut_tables import entry_error_bound

__all__ = [
    "accumulator_width",
    "lut_gemv",
    "dequantize",
    "lut_linear",
    "ErrorReport",
    "error_bound",
    "error_report",
]

_U32 = 2.0**-24  # unit roundoff of float32
_U64 = 2.0**-53


def accumulator_width(num_positions: int, table_bits: int) -> int:
    """Unsigned bits that hold ``num_positions * (2^table_bits - 1)``, the largest possible sum."""
    if isinstance(num_positions, bool) or not isinstance(num_positions, (int, np.integer)) or num_positions < 1:
        raise ValueError(
            f"An accumulator sums at least one position; got num_positions={num_positions!r}."
        )
    if isinstance(table_bits, bool) or not isinstance(table_bits, (int, np.integer)) or not 1 <= table_bits <= 32:
        raise ValueError(f"Table entries of {table_bits!r} bits are not supported; use 1 to 32 bits.")
    return max(1, (int(num_positions) * ((1 << int(table_bits)) - 1)).bit_length())


def _group_sizes(layer: LutLayer) -> np.ndarray:
    return layer.quantized_tables().group_sizes()


def lut_gemv(act_idx, layer: LutLayer) -> np.ndarray:
    """Integer accumulators (..., N, Q) int64 for activation indices ``act_idx`` (..., P)."""
    a = np.asarray(act_idx)
    p_count = layer.num_positions
    if a.dtype.kind not in "iu" or a.ndim < 1 or a.shape[-1] != p_count:
        raise ValueError(
            f"Activation indices must be integers of shape (..., {p_count}); "
            f"got {a.dtype} of shape {a.shape}."
        )
    if a.size and (a.min() < 0 or a.max() >= layer.c_a):
        bad = int(a.min()) if a.min() < 0 else int(a.max())
        raise ValueError(
            f"Activation index {bad} is outside the codebook of C_a={layer.c_a} centroids "
            f"(0 .. {layer.c_a - 1})."
        )
    g_of_n = np.arange(layer.out_features) // layer.group_rows
    widx = layer.widx.astype(np.int64)
    a = a.astype(np.int64)
    vectors = a.reshape(-1, p_count)
    if len(vectors) < layer.c_a:
        acc = np.zeros((*a.shape[:-1], layer.out_features, layer.num_position_groups), dtype=np.int64)
        # One position at a time keeps memory at (..., N) per step instead of (..., N, P).
        for p in range(p_count):
            acc[..., p // layer.positions_per_group] += layer.table_codes[p, g_of_n, a[..., p, None], widx[:, p]]
        return acc
    # Many vectors (prefill, calibration): the same sums, gathering each position's (C_a, N) table
    # of the selected weight centroids once and then whole rows of it per vector.
    acc = np.zeros((layer.num_position_groups, len(vectors), layer.out_features), dtype=np.int64)
    for p in range(p_count):
        table = layer.table_codes[p, g_of_n, :, widx[:, p]].T  # (C_a, N)
        acc[p // layer.positions_per_group] += table[vectors[:, p]]
    return np.moveaxis(acc, 0, -1).reshape(*a.shape[:-1], layer.out_features, -1)


def dequantize(acc, layer: LutLayer) -> np.ndarray:
    """Float64 outputs (..., N) from accumulators (..., N, Q) by the formula in the module docstring."""
    acc = np.asarray(acc, dtype=np.int64)
    g_of_n = np.arange(layer.out_features) // layer.group_rows
    if layer.scheme == "artifact":
        s = layer.scales[0, g_of_n]
        zp_hw = layer.zero_points[0, g_of_n].astype(np.float32) * s * np.float32(layer.num_positions)
        return (acc[..., 0].astype(np.float32) * s - zp_hw).astype(np.float64)
    scales = layer.scales.astype(np.float64)[:, g_of_n]  # (Q, N)
    zps = layer.zero_points[:, g_of_n]
    sizes = _group_sizes(layer)
    y = np.zeros(acc.shape[:-1], dtype=np.float64)
    for q in range(acc.shape[-1]):
        y = y + scales[q] * (acc[..., q] - zps[q] * sizes[q]).astype(np.float64)
    return y


def lut_linear(x, layer: LutLayer) -> np.ndarray:
    """The co-quantized layer on activations ``x`` (..., K) float32 or bfloat16: float64 (..., N)."""
    return dequantize(lut_gemv(search_positions(x, layer.act_codebooks, layer.metric), layer), layer)


def error_bound(x, weight, layer: LutLayer) -> np.ndarray:
    """Bound (..., N) on ``|lut_linear(x) - W x|`` (W x exact), per output row.

    With a = a[p] the chosen activation centroid, w = W[n, p-th sub-vector], B = B[p, g][widx[n, p]],
    the identity ``x.w - A.B = (x - A).w + A.(w - B)`` and the table steps give, per position,

        min(|x-A|_2 |w|_2, |x-A|_inf |w|_1)  +  min(|A|_2 |w-B|_2, |A|_1 |w-B|_inf)
        + gamma_v |A|.|B|            (float32 table rounding, gamma_v = v u / (1 - v u), u = 2^-24)
        + entry_error_bound[q(p), g] (table quantization: half a step for rne, one for floor/trunc)

    summed over positions, plus float64 slack for the dequantization and the reference
    ``(Q + K + 2) 2^-52 (sum_q scale (|acc_q| + |zp| c_q) + sum_k |W[n, k] x_k|)``, and for scheme
    "artifact" ``2^-22 scale (|acc| + |zp| P)`` for its float32 dequantization (its five
    roundings move the result by at most ``3 * 2^-24 * scale (|acc| + |zp| P)`` plus second-order
    terms). Norms are taken in float64 and inflated by 1e-9 relative to cover their own rounding.
    """
    x32 = np.asarray(x).astype(np.float32)
    w = pad_columns(np.asarray(weight, dtype=np.float32), layer.v).astype(np.float64)
    v, p_count = layer.v, layer.num_positions
    act_idx = search_positions(x32, layer.act_codebooks, layer.metric)
    xs = pad_columns(x32, v).astype(np.float64).reshape(*x32.shape[:-1], 1, p_count, v)
    ws = w.reshape(layer.out_features, p_count, v)  # (N, P, v)
    g_of_n = np.arange(layer.out_features) // layer.group_rows
    a_vec = layer.act_codebooks.astype(np.float64)[np.arange(p_count), act_idx][..., None, :, :]
    b_vec = layer.weight_codebooks.astype(np.float64)[
        np.arange(p_count)[None, :], g_of_n[:, None], layer.widx.astype(np.int64)
    ]  # (N, P, v)
    dx = xs - a_vec  # (..., 1, P, v)
    dw = ws - b_vec  # (N, P, v)

    def l1(t):
        return np.sum(np.abs(t), axis=-1)

    def l2(t):
        return np.sqrt(np.sum(t * t, axis=-1))

    def linf(t):
        return np.max(np.abs(t), axis=-1)

    term_x = np.minimum(l2(dx) * l2(ws), linf(dx) * l1(ws))
    term_w = np.minimum(l2(a_vec) * l2(dw), l1(a_vec) * linf(dw))
    gamma = v * _U32 / (1 - v * _U32)
    term_t = gamma * np.sum(np.abs(a_vec) * np.abs(b_vec), axis=-1)
    per_pos = (term_x + term_w + term_t) * (1 + 1e-9)

    qt = layer.quantized_tables()
    q_of_p = np.arange(p_count) // qt.positions_per_group
    step = entry_error_bound(qt)[q_of_p][:, g_of_n].T  # (N, P)
    acc = lut_gemv(act_idx, layer)
    zps = np.abs(layer.zero_points[:, g_of_n].T.astype(np.float64))  # (N, Q)
    mag = np.sum(
        layer.scales.astype(np.float64)[:, g_of_n].T * (np.abs(acc) + zps * qt.group_sizes()), axis=-1
    )
    ref_mag = np.abs(x32.astype(np.float64)) @ np.abs(np.asarray(weight, dtype=np.float64)).T
    slack = (qt.num_position_groups + layer.in_features + 2) * 2 * _U64 * (mag + ref_mag)
    if layer.scheme == "artifact":
        slack = slack + 4 * _U32 * mag
    return np.sum(per_pos + step, axis=-1) + slack


@dataclass(frozen=True)
class ErrorReport:
    """Errors of the LUT layer against the float layer ``W x`` (float64), and the derived bound."""

    max_abs: float
    rel_rms: float
    cosine: float
    bound_max_abs: float
    within_bound: bool

    def __str__(self) -> str:
        return (
            f"max-abs {self.max_abs:.4g} (bound {self.bound_max_abs:.4g}, "
            f"{'within' if self.within_bound else 'EXCEEDS'}), rel-RMS {self.rel_rms:.4g}, "
            f"cosine {self.cosine:.6f}"
        )


def error_report(x, weight, layer: LutLayer) -> ErrorReport:
    """Compare ``lut_linear(x, layer)`` with ``W x`` in float64 over every output (and batch row)."""
    x32 = np.asarray(x).astype(np.float32)
    ref = x32.astype(np.float64) @ np.asarray(weight, dtype=np.float64).T
    got = lut_linear(x, layer)
    err = got - ref
    bound = error_bound(x, weight, layer)
    ref_norm = float(np.sqrt(np.sum(ref * ref)))
    got_norm = float(np.sqrt(np.sum(got * got)))
    err_norm = float(np.sqrt(np.sum(err * err)))
    denom = ref_norm * got_norm
    return ErrorReport(
        max_abs=float(np.max(np.abs(err))),
        rel_rms=err_norm / ref_norm if ref_norm > 0 else (0.0 if err_norm == 0 else float("inf")),
        cosine=float(np.sum(ref * got) / denom) if denom > 0 else float(ref_norm == got_norm),
        bound_max_abs=float(np.max(bound)),
        within_bound=bool(np.all(np.abs(err) <= bound)),
    )
