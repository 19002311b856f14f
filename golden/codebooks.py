"""Codebooks for LUT-LLM activation–weight co-quantization: seeded k-means and index assignment.

Layout, shared by every golden LUT model and by the compiler:

* ``K`` input features are cut into ``P = ceil(K / v)`` sub-vector positions of length ``v``.
  When ``K`` is not a multiple of ``v`` the input (calibration activations, weights, run-time
  activations) is zero-padded on the right to ``P * v`` columns. The padded coordinates of every
  centroid are then exactly zero (k-means++ picks data points and means of zeros are zero), so the
  padding adds nothing to any table entry or distance. Nothing is dropped.
* ``N`` output rows are cut into ``NG = ceil(N / G)`` row blocks of ``G`` rows; row ``n`` belongs
  to block ``n // G``. The last block holds the remaining ``N - (NG - 1) * G`` rows and its weight
  codebooks are trained on those rows only; no rows are padded.

K-means (``kmeans``) is deterministic for a given seed: k-means++ initialisation drawn from
``numpy.random.default_rng(seed)``, then a fixed number of Lloyd iterations in float64 with squared
Euclidean distance; ties in assignment go to the lowest centroid index, an empty cluster keeps its
previous centroid. When the data has fewer distinct points than ``k``, the extra centroids repeat
points already chosen (the lowest-index copy wins every tie, so repeats are never selected).
Centroids are returned as float32.
"""

import numpy as np

from ..support.checks import check_int
from ..support.progress import progress as progress_bar

__all__ = [
    "SUBVECTOR_LENGTHS",
    "MAX_CENTROIDS",
    "check_subvector_length",
    "check_centroid_count",
    "check_group_rows",
    "num_positions",
    "pad_columns",
    "kmeans",
    "train_activation_codebooks",
    "train_weight_codebooks",
    "assign_weight_indices",
]

SUBVECTOR_LENGTHS = (1, 2, 4, 8)
# Indices are stored in one byte (activation indices travel to the table engine as 8-bit values).
MAX_CENTROIDS = 256


def check_subvector_length(v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) not in SUBVECTOR_LENGTHS:
        raise ValueError(
            f"Sub-vector length v={v!r} is not supported; use one of 1, 2, 4 or 8."
        )
    return int(v)


def check_centroid_count(count, name: str) -> int:
    return check_int(name, count, 1, MAX_CENTROIDS, fix="more centroids do not fit an 8-bit index")


def num_positions(k: int, v: int) -> int:
    """Number of sub-vector positions ``ceil(k / v)``."""
    return -(-int(k) // int(v))


def pad_columns(x: np.ndarray, v: int) -> np.ndarray:
    """Zero-pad the last axis of ``x`` to a multiple of ``v`` (a copy only when padding is needed)."""
    k = x.shape[-1]
    pad = num_positions(k, v) * v - k
    if pad == 0:
        return x
    widths = [(0, 0)] * (x.ndim - 1) + [(0, pad)]
    return np.pad(x, widths)


def _check_finite(data: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(data)):
        raise ValueError(
            f"{what} contain NaN or Inf; k-means needs finite values, so clean or clip them first."
        )


def _sqdist_to(points: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    d2 = np.zeros(points.shape[0])
    for j in range(points.shape[1]):
        diff = points[:, j] - centroid[j]
        d2 += diff * diff
    return d2


def _nearest_l2(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid in float64 squared L2; ties go to the lowest index."""
    out = np.empty(points.shape[0], dtype=np.int64)
    # Chunked so that n * k * v doubles never exceed about 32 MB.
    step = max(1, (1 << 22) // max(1, centroids.shape[0] * centroids.shape[1]))
    for start in range(0, points.shape[0], step):
        chunk = points[start:start + step]
        # Coordinate by coordinate: numpy reduces a short last axis far slower than it adds planes.
        d2 = np.zeros((chunk.shape[0], centroids.shape[0]))
        for j in range(centroids.shape[1]):
            diff = chunk[:, j, None] - centroids[None, :, j]
            d2 += diff * diff
        out[start:start + step] = np.argmin(d2, axis=-1)
    return out


def kmeans(data: np.ndarray, k: int, *, seed: int = 0, iterations: int = 20) -> np.ndarray:
    """Seeded k-means (k-means++ init, ``iterations`` Lloyd steps) of ``data`` (n, d) into ``k`` centroids.

    Returns float32 centroids of shape (k, d). Deterministic for a given ``seed``.
    """
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError(
            f"k-means needs a non-empty 2-D array of points (n, d); got shape {data.shape}."
        )
    check_int("k", k, fix="k-means needs 1 or more centroids")
    check_int("iterations", iterations, 0, fix="k-means needs a non-negative iteration count")
    _check_finite(data, "The k-means points")
    x = data.astype(np.float64)
    n = x.shape[0]
    k = int(k)
    rng = np.random.default_rng(seed)

    centroids = np.empty((k, x.shape[1]), dtype=np.float64)
    centroids[0] = x[rng.integers(n)]
    d2 = _sqdist_to(x, centroids[0])
    for i in range(1, k):
        total = d2.sum()
        if total > 0.0:
            pick = int(np.searchsorted(np.cumsum(d2), rng.random() * total, side="right"))
            pick = min(pick, n - 1)
        else:
            # Every point already coincides with a centroid: repeat the first point.
            pick = 0
        centroids[i] = x[pick]
        d2 = np.minimum(d2, _sqdist_to(x, centroids[i]))

    for _ in range(int(iterations)):
        labels = _nearest_l2(x, centroids)
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, x)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids.astype(np.float32)


def train_activation_codebooks(
    calibration: np.ndarray, v: int, c_a: int, *, seed: int = 0, iterations: int = 20, progress: bool = False
) -> np.ndarray:
    """Activation codebooks A (P, c_a, v) float32, one k-means per position.

    ``calibration`` is (n_samples, K) activations; K is zero-padded to a multiple of v.
    Position ``p`` uses seed ``seed + p`` so positions are independent but reproducible.
    ``progress`` shows a bar over positions (on a terminal).
    """
    v = check_subvector_length(v)
    c_a = check_centroid_count(c_a, "C_a")
    calibration = np.asarray(calibration)
    if calibration.ndim != 2 or calibration.shape[0] == 0 or calibration.shape[1] == 0:
        raise ValueError(
            f"Calibration activations must be a non-empty (n_samples, K) array; "
            f"got shape {calibration.shape}."
        )
    _check_finite(calibration, "The calibration activations")
    x = pad_columns(calibration.astype(np.float32), v)
    p_count = x.shape[1] // v
    return np.stack(
        [
            kmeans(x[:, p * v:(p + 1) * v], c_a, seed=seed + p, iterations=iterations)
            for p in progress_bar(
                range(p_count), desc="activation codebooks", unit="pos", disable=None if progress else True
            )
        ]
    )


def _weight_subvectors(weight: np.ndarray, v: int) -> np.ndarray:
    weight = np.asarray(weight)
    if weight.ndim != 2 or weight.shape[0] == 0 or weight.shape[1] == 0:
        raise ValueError(
            f"The weight must be a non-empty (N, K) matrix; got shape {weight.shape}."
        )
    _check_finite(weight, "The weights")
    w = pad_columns(weight.astype(np.float32), v)
    return w.reshape(w.shape[0], w.shape[1] // v, v)


def check_group_rows(group_rows) -> int:
    return check_int("Row-block size G", group_rows, fix="a row block holds 1 or more output rows")


def assign_weight_indices(weight: np.ndarray, codebooks: np.ndarray, group_rows: int) -> np.ndarray:
    """Weight indices widx (N, P) uint8: nearest centroid of B[p, n // G] in float64 squared L2.

    Ties go to the lowest index. ``codebooks`` is (P, NG, C_w, v).
    """
    group_rows = check_group_rows(group_rows)
    v = codebooks.shape[-1]
    w = _weight_subvectors(weight, v)
    n, p_count, _ = w.shape
    if codebooks.shape[0] != p_count or codebooks.shape[1] != num_positions(n, group_rows):
        raise ValueError(
            f"Weight codebooks of shape {codebooks.shape} do not match a {n}x{weight.shape[1]} "
            f"weight with v={v}, G={group_rows}; expected ({p_count}, "
            f"{num_positions(n, group_rows)}, C_w, {v})."
        )
    widx = np.empty((n, p_count), dtype=np.uint8)
    cb = codebooks.astype(np.float64)
    for g in range(codebooks.shape[1]):
        rows = slice(g * group_rows, min(n, (g + 1) * group_rows))
        for p in range(p_count):
            widx[rows, p] = _nearest_l2(w[rows, p].astype(np.float64), cb[p, g])
    return widx


def train_weight_codebooks(
    weight: np.ndarray,
    v: int,
    c_w: int,
    group_rows: int,
    *,
    seed: int = 0,
    iterations: int = 20,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Weight codebooks B (P, NG, c_w, v) float32 and indices widx (N, P) uint8.

    Block ``g`` of position ``p`` is trained on rows ``g*G .. min(N, (g+1)*G) - 1`` with seed
    ``seed + p * NG + g``. ``progress`` shows a bar over positions (on a terminal).
    """
    v = check_subvector_length(v)
    c_w = check_centroid_count(c_w, "C_w")
    group_rows = check_group_rows(group_rows)
    w = _weight_subvectors(weight, v)
    n, p_count, _ = w.shape
    blocks = num_positions(n, group_rows)
    codebooks = np.empty((p_count, blocks, c_w, v), dtype=np.float32)
    for p in progress_bar(range(p_count), desc="weight codebooks", unit="pos", disable=None if progress else True):
        for g in range(blocks):
            rows = w[g * group_rows:min(n, (g + 1) * group_rows), p]
            codebooks[p, g] = kmeans(rows, c_w, seed=seed + p * blocks + g, iterations=iterations)
    return codebooks, assign_weight_indices(weight, codebooks, group_rows)
