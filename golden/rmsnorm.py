"""RMSNorm (Llama, Qwen3; also Qwen3's QK-norm, per head) on encodings, as the norm unit computes it.

For a row ``x`` of K encodings of ``fmt`` and the weight ``w`` (K encodings):

1. ``ss = RN(x_k·x_k + ss)`` for k = 0 .. K-1 in index order, one FMA each, from ``ss = +0``;
2. ``v = RN(RN(ss·RN(1/K)) + RN(eps))``;
3. ``r = rsqrt(v)`` (:func:`lutforge.golden.fp_funcs.rsqrt`: seed table and Newton steps);
4. ``y_k = RN(RN(x_k·r)·w_k)``.

:func:`rmsnorm_bound` derives the largest relative error of a normal ``y_k`` against
``x_k·w_k / sqrt(mean(x²) + eps)`` in exact arithmetic.
"""

from __future__ import annotations

import numpy as np

from .convert import encode
from .fp import add, fma, mul
from .fp_funcs import check_function_format, rsqrt, rsqrt_bound

__all__ = ["rmsnorm", "rmsnorm_bound", "check_eps"]


def check_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < 1:
        raise ValueError(f"RMSNorm eps={eps!r} is outside [0, 1); use the model's value (1e-5 for SmolLM2, "
                         f"1e-6 for Qwen3).")
    return float(eps)


def rmsnorm(x, weight, fmt, *, eps: float, seed_bits: int = 7) -> np.ndarray:
    """RMSNorm over the last axis of ``x`` (..., K) with ``weight`` (K,), encodings of ``fmt``."""
    fmt = check_function_format(fmt)
    eps = check_eps(eps)
    x = np.asarray(x).astype(fmt.dtype)
    weight = np.asarray(weight).astype(fmt.dtype)
    k = x.shape[-1]
    if weight.shape != (k,):
        raise ValueError(f"RMSNorm weight has shape {weight.shape}, the rows have {k} elements; pass one "
                         f"weight per element.")
    ss = np.zeros(x.shape[:-1], fmt.dtype)
    for i in range(k):
        ss = fma(x[..., i], x[..., i], ss, fmt)
    v = add(mul(ss, encode(np.array(1.0 / k), fmt), fmt), encode(np.array(eps), fmt), fmt)
    r = rsqrt(v, fmt, seed_bits=seed_bits)
    return mul(mul(x, r[..., None], fmt), weight, fmt)


def rmsnorm_bound(fmt, k: int, *, seed_bits: int = 7) -> float:
    """Largest relative error of a normal output of :func:`rmsnorm` on rows of ``k`` elements (no
    overflow in the sum of squares): the FMA chain of k positive terms (gamma_k), the roundings of
    1/K, of eps, of the mean and of the sum with eps (v off by at most eps_v), v^(-1/2) turning
    that into (1 - eps_v)^(-1/2), the rsqrt method's bound, and the two products."""
    fmt = check_function_format(fmt)
    u = 2.0 ** -(fmt.man_bits + 1)
    if k * u >= 0.5:
        raise ValueError(f"RMSNorm in {fmt.name} over rows of {k} elements has no useful bound (K·u = {k * u:g} "
                         f"is 1/2 or more: the sum of squares can lose every bit); run the norm unit in a "
                         f"wider format such as fp32, or use rows of fewer than {int(0.5 / u)} elements.")
    gamma = k * u / (1 - k * u)
    eps_v = (1 + gamma) * (1 + u) ** 4 - 1
    return (1 - eps_v) ** -0.5 * (1 + rsqrt_bound(fmt, seed_bits=seed_bits)) * (1 + u) ** 2 - 1
