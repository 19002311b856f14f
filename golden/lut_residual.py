"""Residual (two-stage) LUT layers: the weight is coded by two codebooks, the second fitted to the
first one's residual, and the output is the sum of two LUT GEMVs that share one activation search.

Integer contract: each stage is a plain :class:`~lutforge.golden.lut_layer.LutLayer` run on the
same activation indices; the core runs the stages as two programs (two table/index streams) and
the host adds the dequantized outputs, stage 0 first::

    y[n] = dequantize(lut_gemv(a, stage0))[n] + dequantize(lut_gemv(a, stage1))[n]

so every hardware check of a stage is the ordinary single-stage check.
"""

from collections.abc import Sequence

import numpy as np

from .centroid_search import search_positions
from .lut_gemv import dequantize, lut_gemv
from .lut_layer import LutLayer

__all__ = ["check_stages", "residual_linear"]


def check_stages(stages: Sequence[LutLayer]) -> list[LutLayer]:
    """The stages as a list, after checking they can share one activation search."""
    stages = list(stages)
    if not stages:
        raise ValueError("A residual LUT layer needs at least one stage; got none.")
    first = stages[0]
    for i, s in enumerate(stages[1:], 1):
        if (s.in_features, s.out_features, s.v, s.metric) != (first.in_features, first.out_features,
                                                               first.v, first.metric):
            raise ValueError(
                f"Stage {i} is {s.out_features}x{s.in_features} with v={s.v}, metric={s.metric!r}; "
                f"stage 0 is {first.out_features}x{first.in_features} with v={first.v}, "
                f"metric={first.metric!r}; residual stages must have the same shape, v and metric.")
        if not np.array_equal(s.act_codebooks, first.act_codebooks):
            raise ValueError(f"Stage {i} has different activation codebooks from stage 0; residual "
                             f"stages share one centroid search, so build them from one codebook set.")
    return stages


def residual_linear(x, stages: Sequence[LutLayer]) -> np.ndarray:
    """Float64 outputs (..., N): one centroid search, then the stages' dequantized sums added in order."""
    stages = check_stages(stages)
    a = search_positions(x, stages[0].act_codebooks, stages[0].metric)
    y = dequantize(lut_gemv(a, stages[0]), stages[0])
    for s in stages[1:]:
        y = y + dequantize(lut_gemv(a, s), s)
    return y
