"""Centroid search: the index of the codebook entry nearest to each activation sub-vector.

Bit-exact arithmetic, so the RTL can reproduce every distance:

Floating point (inputs ``float32`` arrays, or ``ml_dtypes.bfloat16`` arrays, i.e. bf16 encodings,
which are widened exactly to float32 first; a float32 array holding bf16-representable values is
the same thing). All arithmetic is IEEE binary32 with round-to-nearest-even, no fused multiply-add:

* ``d_j = fp32(x_j - c_j)`` then ``|d_j|`` (sign bit cleared) for j = 0 .. v-1;
* ``"linf"`` (Chebyshev, the artifact's): ``dist = max(|d_0|, ..., |d_{v-1}|)``; max is exact, and
  the distance is NaN if any ``d_j`` is NaN;
* ``"l2"`` (squared Euclidean): ``s = +0; for j in 0 .. v-1: s = fp32(s + fp32(d_j * d_j))``,
  strictly in index order; overflow gives +Inf as IEEE does.

Integer (inputs ``int8`` for both the activations and the codebook): ``d_j = x_j - c_j`` exactly
(9 bits signed), ``"linf"``: ``max |d_j|`` (8 bits unsigned, at most 255), ``"l2"``: ``sum d_j^2``
(at most v * 255^2 = 520200 for v = 8, 20 bits unsigned). :func:`int8_operands` gives the
integer form of a float search: activations and codebook quantized with one shared scale.

Selection, identical for both forms: the lowest index whose distance equals the minimum over the
non-NaN distances (so ties go to the lowest index, +0 and -0 tie, +Inf beats NaN, NaN never wins);
a row where every distance is NaN returns index 0. In hardware terms: scan indices upwards and
replace the incumbent only when the new distance is strictly smaller, or when the incumbent is NaN
and the new one is not.
"""

from typing import Literal

import ml_dtypes
import numpy as np

from .codebooks import check_subvector_length, num_positions, pad_columns

__all__ = [
    "Metric",
    "METRICS",
    "as_operand",
    "check_metric",
    "distances",
    "search",
    "search_positions",
    "int8_operands",
]

Metric = Literal["linf", "l2"]
METRICS = ("linf", "l2")


def check_metric(metric) -> str:
    if metric not in METRICS:
        raise ValueError(f"Distance metric {metric!r} is not supported; use 'linf' or 'l2'.")
    return metric


def as_operand(a, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == np.float32 or a.dtype == np.int8:
        return a
    if a.dtype == ml_dtypes.bfloat16:
        return a.astype(np.float32)
    raise TypeError(
        f"{what} has dtype {a.dtype}; the centroid search takes float32, bfloat16 (ml_dtypes) "
        f"or int8, so convert it first (e.g. .astype(np.float32))."
    )


def distances(x, codebook, metric: Metric = "linf") -> np.ndarray:
    """Distances (..., C) between sub-vectors ``x`` (..., v) and every row of ``codebook`` (..., C, v).

    Leading axes of ``codebook`` broadcast against those of ``x``. Float inputs give float32
    distances, int8 inputs give int32 distances, computed exactly as the module docstring states.
    """
    metric = check_metric(metric)
    x = as_operand(x, "The activation sub-vector")
    codebook = as_operand(codebook, "The codebook")
    if (x.dtype == np.int8) != (codebook.dtype == np.int8):
        raise TypeError(
            f"The activations are {x.dtype} and the codebook is {codebook.dtype}; the integer search "
            f"needs both int8, so quantize both with int8_operands()."
        )
    if codebook.ndim < 2 or x.ndim < 1 or x.shape[-1] != codebook.shape[-1]:
        raise ValueError(
            f"Sub-vectors of shape {x.shape} do not match a codebook of shape {codebook.shape}; "
            f"the codebook must be (..., C, v) with v = x.shape[-1]."
        )
    v = check_subvector_length(x.shape[-1])
    if x.dtype == np.int8:
        diff = x[..., None, :].astype(np.int32) - codebook.astype(np.int32)
        if metric == "linf":
            return np.max(np.abs(diff), axis=-1)
        return np.sum(diff * diff, axis=-1, dtype=np.int32)
    # Inf - Inf and overflow are defined IEEE results here, not accidents worth a warning.
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(np.subtract(x[..., None, :], codebook, dtype=np.float32))
        if metric == "linf":
            # np.max propagates NaN, which is what the contract asks for.
            return np.max(diff, axis=-1)
        acc = np.zeros(diff.shape[:-1], dtype=np.float32)
        for j in range(v):
            acc = acc + diff[..., j] * diff[..., j]
    return acc


def _select(dist: np.ndarray) -> np.ndarray:
    if dist.dtype.kind == "f":
        valid = ~np.isnan(dist)
        key = np.where(valid, dist, np.inf)
    else:
        valid = np.ones(dist.shape, dtype=bool)
        key = dist
    hit = valid & (key == key.min(axis=-1, keepdims=True))
    # argmax returns the first True, and 0 for an all-NaN row (no True at all).
    return np.argmax(hit, axis=-1)


def search(x, codebook, metric: Metric = "linf") -> np.ndarray:
    """Nearest-centroid index (int64, shape x.shape[:-1]) of each sub-vector ``x`` (..., v)."""
    return _select(distances(x, codebook, metric))


def search_positions(x, act_codebooks, metric: Metric = "linf") -> np.ndarray:
    """Activation indices (..., P) for activations ``x`` (..., K) and codebooks A (P, C_a, v).

    ``x`` is zero-padded on the right to ``P * v`` columns, as the codebooks were trained.
    """
    x = as_operand(x, "The activations")
    act_codebooks = as_operand(act_codebooks, "The activation codebooks")
    if act_codebooks.ndim != 3:
        raise ValueError(
            f"Activation codebooks must be (P, C_a, v); got shape {act_codebooks.shape}."
        )
    p_count, _, v = act_codebooks.shape
    if x.ndim < 1 or num_positions(x.shape[-1], v) != p_count:
        raise ValueError(
            f"Activations with {x.shape[-1] if x.ndim else 0} features do not match {p_count} "
            f"positions of length v={v}; pass K features with ceil(K / v) = {p_count}."
        )
    xs = pad_columns(x, v).reshape(*x.shape[:-1], p_count, v)
    return search(xs, act_codebooks, metric)


def int8_operands(x, codebook, scale=None) -> tuple[np.ndarray, np.ndarray, float]:
    """Integer form of a float search: ``(x_q, codebook_q, scale)`` with int8 values.

    Both operands are divided by one shared float64 ``scale``, rounded half-to-even and clamped to
    [-127, 127]. Without ``scale`` it is ``max(|x|, |codebook|) / 127`` (1.0 if both are zero), so
    nothing clamps; with a given scale, values beyond ``127 * scale`` saturate to +-127 (the int8
    search format defines this). Rounding can move near-ties, so the integer search approximates the
    float one; the integer search itself is exact.
    """
    xf = np.asarray(as_operand(x, "The activation sub-vector"), dtype=np.float64)
    cf = np.asarray(as_operand(codebook, "The codebook"), dtype=np.float64)
    if not (np.all(np.isfinite(xf)) and np.all(np.isfinite(cf))):
        raise ValueError(
            "The int8 search form needs finite activations and codebooks; found NaN or Inf."
        )
    if scale is None:
        peak = max(float(np.max(np.abs(xf), initial=0.0)), float(np.max(np.abs(cf), initial=0.0)))
        scale = peak / 127.0 if peak > 0.0 else 1.0
    elif not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"The int8 search scale must be a positive finite number; got {scale!r}.")

    def q(a):
        return np.clip(np.rint(a / scale), -127, 127).astype(np.int8)

    return q(xf), q(cf), float(scale)
