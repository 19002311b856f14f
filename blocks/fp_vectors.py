"""Operand sets for FP blocks: directed corners and random encodings that reach every datapath."""

import numpy as np

from ..golden.formats import Format, get

__all__ = ["corner_encodings", "random_operands", "corner_pairs"]


def corner_encodings(fmt: "str | Format") -> np.ndarray:
    """Both signs of zero, subnormal edges, normal edges, ±1 and its neighbours, the overflow and
    underflow thresholds of products, max finite and every special, as a sorted uint64 array."""
    fmt = get(fmt)
    m, bias = fmt.man_bits, fmt.bias
    one = bias << m
    mags = {0, 1, 2, fmt.man_mask, fmt.man_mask - 1, 1 << m, (1 << m) + 1, one, one + 1, one - 1,
            one | fmt.man_mask, fmt.max_finite, fmt.max_finite - 1, (fmt.max_finite >> m) << m,
            ((bias + (fmt.emax + 1) // 2) << m) | fmt.man_mask, max(bias - bias // 2, 1) << m,
            ((bias + fmt.emin // 2) << m) | (fmt.man_mask >> 1)}
    if fmt.has_inf:
        mags |= {fmt.inf, fmt.inf + 1, fmt.magnitude_mask}
    if fmt.has_nan:
        mags.add(fmt.nan)
    mags = np.array(sorted(v for v in mags if 0 <= v <= fmt.magnitude_mask), dtype=np.uint64)
    return np.concatenate([mags, mags | np.uint64(fmt.sign_mask)])


def corner_pairs(fmt: "str | Format", rng: np.random.Generator, count: int = 20_000):
    """Every pair of corners, plus ``count`` near-cancelling pairs (b ≈ −a) and ``count`` pairs whose
    exponents differ by 0 … man_bits + 6 (the alignment and sticky boundaries of an adder)."""
    fmt = get(fmt)
    c = corner_encodings(fmt)
    a, b = (x.ravel() for x in np.meshgrid(c, c))
    finite = np.uint64(fmt.max_finite)
    x = rng.integers(0, fmt.max_finite + 1, count, dtype=np.uint64)
    step = rng.integers(-4, 5, count)
    near = np.clip(x.astype(np.int64) + step, 0, int(finite)).astype(np.uint64) | np.uint64(fmt.sign_mask)
    y = rng.integers(1 << fmt.man_bits, fmt.max_finite + 1, count, dtype=np.uint64)
    dist = rng.integers(0, fmt.man_bits + 7, count).astype(np.uint64)
    far = np.where(y >> np.uint64(fmt.man_bits) > dist, y - (dist << np.uint64(fmt.man_bits)), y)
    far = (far & ~np.uint64(fmt.man_mask)) | rng.integers(0, fmt.man_mask + 1, count, dtype=np.uint64)
    far |= rng.integers(0, 2, count, dtype=np.uint64) * np.uint64(fmt.sign_mask)
    return np.concatenate([a, x, y]), np.concatenate([b, near, far])


def random_operands(fmt: "str | Format", rng: np.random.Generator, count: int, arity: int = 2):
    """``arity`` arrays of ``count`` encodings: half uniform over all bit patterns, half with
    exponents within a few binades of 1 so products and sums stay in range and round often."""
    fmt = get(fmt)
    out = []
    for _ in range(arity):
        bits = rng.integers(0, 1 << fmt.width, count, dtype=np.uint64)
        spread = max(2, min(fmt.bias, 12))
        field = np.clip(fmt.bias + rng.integers(-spread, spread + 1, count), 0, fmt.exp_field_max)
        near = (bits & np.uint64(fmt.sign_mask | fmt.man_mask)) | (field.astype(np.uint64) << np.uint64(fmt.man_bits))
        out.append(np.where(rng.random(count) < 0.5, bits, near))
    return out
