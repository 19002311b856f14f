"""SiLU (the gate of Llama's and Qwen3's MLP) on encodings, as the activation unit computes it:
``y = RN(x · reciprocal(RN(1 + exp(-x))))`` with :func:`lutforge.golden.fp_funcs.exp` and
:func:`~lutforge.golden.fp_funcs.reciprocal`. Where ``exp(-x)`` overflows (x very negative) the
result is -0; there and where it comes near overflow the result is within ``2.5·|x|·e^-|x|`` of
silu(x) (below 1e-33 in 8-exponent-bit formats). :func:`silu_bound` gives the relative error
elsewhere.
"""

from __future__ import annotations

import numpy as np

from .convert import decode, encode
from .fp import add, mul
from .fp_funcs import check_function_format, exp, exp_bound, negate, reciprocal, reciprocal_bound

__all__ = ["silu", "silu_bound"]


def silu(x, fmt, *, seed_bits: int = 7) -> np.ndarray:
    fmt = check_function_format(fmt)
    x = np.asarray(x).astype(fmt.dtype)
    d = add(encode(np.array(1.0), fmt), exp(negate(x, fmt), fmt), fmt)
    return mul(x, reciprocal(d, fmt, seed_bits=seed_bits), fmt)


def silu_bound(x: np.ndarray, fmt, *, seed_bits: int = 7) -> np.ndarray:
    """Largest relative error of a normal output of :func:`silu` at the float64 inputs ``x`` where
    ``exp(-x)`` cannot overflow (infinite elsewhere: nothing bounds the relative error there): exp's bound (weighted by ``e/(1 + e) = sigmoid(-x)``) and the
    rounding of the sum give the denominator's error, then the reciprocal's bound and the product."""
    fmt = check_function_format(fmt)
    u = 2.0 ** -(fmt.man_bits + 1)
    x = np.asarray(x, np.float64)
    eps_e = exp_bound(fmt, np.abs(x) * (1 + u) / np.log(2))
    with np.errstate(over="ignore"):
        eps_d = (1 + eps_e / (1 + np.exp(x))) * (1 + u) - 1
        max_finite = decode(np.array(fmt.max_finite, fmt.dtype), fmt)
        overflows = np.exp(-x) * (1 + eps_e) >= max_finite
    # Where exp(-x) may overflow, or the denominator be off by 100 % or more, there is no bound.
    return np.where((eps_d < 1) & ~overflows, (1 + reciprocal_bound(fmt, seed_bits=seed_bits)) * (1 + u) / (1 - np.minimum(eps_d, 0.5)) - 1,
                    np.inf)
