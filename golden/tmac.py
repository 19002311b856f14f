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

__all__ = ["VqLayer", "vq_quantize", "tmac_tables", "tmac_linear"]


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
