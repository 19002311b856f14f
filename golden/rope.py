"""Rotary position embedding (Llama's and Qwen3's "rotate half" pairing) on encodings.

The angle table is the compiler's: ``theta[t, i] = position_t · base^(-2i/D)`` in float64, its
cosines and sines rounded once into ``fmt`` (:func:`rope_tables`), held in the unit's memory. For a
head vector ``x`` of D elements, with ``x1 = x[:D/2]``, ``x2 = x[D/2:]``:

``y1 = RN(x1·c - RN(x2·s))`` and ``y2 = RN(x2·c + RN(x1·s))`` (one product, then one FMA).

The rotation can cancel, so :func:`rope_bound` bounds the *absolute* error of each output.
"""

from __future__ import annotations

import numpy as np

from .convert import encode
from .fp import fma, mul
from .fp_funcs import check_function_format, negate

__all__ = ["rope_angles", "rope_tables", "rope", "rope_bound"]


def rope_angles(positions, dim: int, base: float, freq_factors=None) -> np.ndarray:
    """``theta`` (T, D/2) in float64 for the integer ``positions`` (T,); frequency i divided by
    ``freq_factors[i]`` when given (Llama 3's scaled RoPE, GGUF's ``rope_freqs``)."""
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2 or dim % 2:
        raise ValueError(f"RoPE head dimension {dim!r} is not an even number of at least 2; use the "
                         f"model's head_dim.")
    if not base > 1:
        raise ValueError(f"RoPE base {base!r} is not above 1; use the model's rope_theta (e.g. 10000 or 1e6).")
    inv = float(base) ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
    if freq_factors is not None:
        inv = inv / np.asarray(freq_factors, np.float64)
    return np.asarray(positions, np.float64)[:, None] * inv[None, :]


def rope_tables(positions, dim: int, base: float, fmt, freq_factors=None) -> tuple[np.ndarray, np.ndarray]:
    """The cosine and sine tables (T, D/2) as encodings of ``fmt`` (``freq_factors``: :func:`rope_angles`)."""
    fmt = check_function_format(fmt)
    theta = rope_angles(positions, dim, base, freq_factors)
    return encode(np.cos(theta), fmt), encode(np.sin(theta), fmt)


def rope(x, cos, sin, fmt) -> np.ndarray:
    """Rotate ``x`` (..., T, D) by the tables ``cos``, ``sin`` (T, D/2), encodings of ``fmt``."""
    fmt = check_function_format(fmt)
    x = np.asarray(x).astype(fmt.dtype)
    half = x.shape[-1] // 2
    if x.shape[-1] % 2 or np.shape(cos) != x.shape[-2:-1] + (half,) or np.shape(sin) != np.shape(cos):
        raise ValueError(f"RoPE tables of shape {np.shape(cos)} and {np.shape(sin)} do not match inputs of "
                         f"shape {x.shape}; build them with rope_tables(positions, {x.shape[-1]}, base, fmt) "
                         f"for the inputs' {x.shape[-2]} positions.")
    x1, x2 = x[..., :half], x[..., half:]
    y1 = fma(x1, cos, negate(mul(x2, sin, fmt), fmt), fmt)
    y2 = fma(x2, cos, mul(x1, sin, fmt), fmt)
    return np.concatenate([y1, y2], axis=-1)


def rope_bound(x: np.ndarray, theta: np.ndarray, fmt) -> np.ndarray:
    """Largest absolute error of each output of :func:`rope` at the float64 inputs ``x`` (..., T, D)
    and angles ``theta`` (T, D/2): the tables' roundings (u each), the product's (u) and the FMA's
    (u of the result)."""
    fmt = check_function_format(fmt)
    u = 2.0 ** -(fmt.man_bits + 1)
    half = x.shape[-1] // 2
    x1, x2 = np.abs(x[..., :half]), np.abs(x[..., half:])
    c, s = np.abs(np.cos(theta)), np.abs(np.sin(theta))
    exact = _rotate(x, theta)
    b1 = (1 + u) * (u * x1 * c + (2 * u + u * u) * x2 * s) + u * np.abs(exact[..., :half])
    b2 = (1 + u) * (u * x2 * c + (2 * u + u * u) * x1 * s) + u * np.abs(exact[..., half:])
    return np.concatenate([b1, b2], axis=-1)


def _rotate(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """The rotation in float64 (the bound's size of each output)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * np.cos(theta) - x2 * np.sin(theta), x2 * np.cos(theta) + x1 * np.sin(theta)], axis=-1)
