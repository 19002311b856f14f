"""The ``golden`` backend: the golden models on arrays decoded back from the Program's memory images.

It runs :mod:`lutforge.golden` (the int8 centroid search and the LUT GEMV that the golden core model
:func:`lutforge.golden.gemv_core.gemv_core` is made of) on what :func:`~lutforge.program.artifact.decode_layer`
reads out of the images, so it checks the images too.
"""

from __future__ import annotations

import numpy as np

from ..golden.centroid_search import search
from ..golden.lut_gemv import lut_gemv
from ..program.artifact import LoweredLayer, decode_layer
from ..program.backend import LayerResult

__all__ = ["GoldenBackend"]


class GoldenBackend:
    name = "golden"

    def __init__(self):
        self._decoded: dict[int, list] = {}

    def run_layer(self, layer: LoweredLayer, x_q: np.ndarray) -> LayerResult:
        key = id(layer)
        if key not in self._decoded:
            self._decoded[key] = (layer, decode_layer(layer))
        runs = self._decoded[key][1]
        t = x_q.shape[0]
        acc = np.zeros((t, len(runs), layer.tiles * layer.lanes), dtype=np.int64)
        for r, (p0, cb, sub) in enumerate(runs):
            a = search(x_q[:, p0:p0 + sub.num_positions], cb, layer.metric)
            acc[:, r, : layer.out_features] = lut_gemv(a, sub)[..., 0]
        return LayerResult(acc)
