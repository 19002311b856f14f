"""Softmax over the last axis on encodings, as the attention unit computes it.

For a row of scores ``s`` (encodings of ``fmt``; masked positions are -Inf):

1. ``m = max(s)`` (a comparison: exact);
2. ``d_j = RN(s_j - m)`` (<= 0) and ``e_j = exp(d_j)`` (:func:`lutforge.golden.fp_funcs.exp`);
3. ``S = RN(... RN(e_0 + e_1) ... + e_(n-1))`` in index order;
4. ``r = reciprocal(S)`` (:func:`lutforge.golden.fp_funcs.reciprocal`) and ``p_j = RN(e_j·r)``.

A row of -Inf only (nothing visible) gives NaN, as in PyTorch. :func:`softmax_bound` derives each
element's largest relative error against the exact softmax from the method.
"""

from __future__ import annotations

import numpy as np

from .convert import decode
from .fp import add, mul
from .fp_funcs import check_function_format, exp, exp_bound, negate, reciprocal, reciprocal_bound

__all__ = ["softmax", "softmax_bound"]


def softmax(s, fmt, *, seed_bits: int = 7) -> np.ndarray:
    """Softmax over the last axis of the score encodings ``s`` (module docstring)."""
    fmt = check_function_format(fmt)
    s = np.asarray(s).astype(fmt.dtype)
    values = decode(s, fmt)
    # The first maximum (a NaN anywhere makes the row NaN through the subtraction below).
    first = np.argmax(np.where(np.isnan(values), -np.inf, values), axis=-1)
    m = np.take_along_axis(s, first[..., None], axis=-1)
    e = exp(add(s, negate(m, fmt), fmt), fmt)
    total = e[..., 0]
    for j in range(1, s.shape[-1]):
        total = add(total, e[..., j], fmt)
    return mul(e, reciprocal(total, fmt, seed_bits=seed_bits)[..., None], fmt)


def softmax_bound(scores: np.ndarray, fmt, *, seed_bits: int = 7) -> np.ndarray:
    """Largest relative error of each normal output of :func:`softmax` on the finite float64
    ``scores`` (the decoded inputs; every ``e_j`` normal), elementwise.

    ``d_j`` carries a relative rounding, so ``e_j`` is off by ``e^(|d_j| u)`` on top of exp's bound
    (``eps_j``); the sum of positive terms is off by the softmax-weighted mean of ``eps_j`` and
    ``gamma_(n-1)``; then the reciprocal's bound and the last product."""
    fmt = check_function_format(fmt)
    u = 2.0 ** -(fmt.man_bits + 1)
    scores = np.asarray(scores, np.float64)
    d = np.max(scores, axis=-1, keepdims=True) - scores
    eps = np.exp(d * u) * (1 + exp_bound(fmt, d * (1 + u) / np.log(2))) - 1
    p = np.exp(-d) / np.sum(np.exp(-d), axis=-1, keepdims=True)
    n = scores.shape[-1]
    gamma = (n - 1) * u / (1 - (n - 1) * u)
    eps_sum = (1 + np.sum(p * eps, axis=-1, keepdims=True)) * (1 + gamma) - 1
    # Where the sum may be off by 100 % or more there is no bound.
    return np.where(eps_sum < 1, (1 + eps) * (1 + reciprocal_bound(fmt, seed_bits=seed_bits)) * (1 + u)
                    / (1 - np.minimum(eps_sum, 0.5)) - 1, np.inf)
