"""The ``golden`` backend: the golden models on arrays decoded back from the Program's memory images.

It runs :mod:`lutforge.golden` (for LUT layers the int8 centroid search and the LUT GEMV that the
golden core model :func:`lutforge.golden.gemv_core.gemv_core` is made of; for block layers
:func:`lutforge.golden.block_gemv.block_gemv`; for weight-only LUT layers
:func:`lutforge.golden.tmac.tmac_dense_accumulators`, proven equal to the table form) on what :func:`~lutforge.program.artifact.decode_layer`
and :func:`~lutforge.program.artifact.decode_block_layer` read out of the images, so it checks the
images too.
"""

from __future__ import annotations

import numpy as np

from ..golden import fp
from ..golden.attention import attention as golden_attention
from ..golden.block_gemv import block_gemv
from ..golden.centroid_search import search
from ..golden.convert import encode
from ..golden.lut_gemv import lut_gemv
from ..golden.rmsnorm import rmsnorm as golden_rmsnorm
from ..golden.rope import rope as golden_rope
from ..golden.silu import silu as golden_silu
from ..golden.tmac import tmac_dense_accumulators, tmac_weight_codes
from .artifact import (BlockActivations, BlockLoweredLayer, LoweredLayer, TmacActivations, TmacLoweredLayer,
                       decode_block_layer, decode_layer, decode_tmac_layer)
from .backend import LayerResult, UnitResult

__all__ = ["GoldenBackend"]


class GoldenBackend:
    name = "golden"

    def __init__(self):
        self._decoded: dict[int, list] = {}

    def _decode(self, layer):
        # Keyed on the object, which is kept alive with its decoding (an id is reused once freed).
        key = id(layer)
        if key not in self._decoded:
            decode = {"block": decode_block_layer, "lut": decode_layer,
                      # Each run with the codes its indices select, for the one-product form.
                      "tmac": lambda low: [(p0, sub, tmac_weight_codes(sub)) for p0, sub in decode_tmac_layer(low)]
                      }[layer.kind]
            self._decoded[key] = (layer, decode(layer))
        return self._decoded[key][1]

    def run_layer(self, layer: LoweredLayer | BlockLoweredLayer, x_q) -> LayerResult:
        if layer.kind == "block":
            return self._run_block(layer, x_q)
        if layer.kind == "tmac":
            return self._run_tmac(layer, x_q)
        runs = self._decode(layer)
        t = x_q.shape[0]
        acc = np.zeros((t, len(runs), layer.tiles * layer.lanes), dtype=np.int64)
        for r, (p0, cb, sub) in enumerate(runs):
            a = search(x_q[:, p0:p0 + sub.num_positions], cb, layer.metric)
            acc[:, r, : layer.out_features] = lut_gemv(a, sub)[..., 0]
        return LayerResult(acc)

    def _run_block(self, layer: BlockLoweredLayer, x: BlockActivations) -> LayerResult:
        elements, scales = self._decode(layer)
        acc = np.zeros((x.elements.shape[0], 1, layer.tiles * layer.lanes), dtype=np.int64)
        acc[:, 0, : layer.out_features] = block_gemv(x.elements, x.scales, elements, scales, layer.format)
        return LayerResult(acc)

    def _run_tmac(self, layer: TmacLoweredLayer, x: TmacActivations) -> LayerResult:
        runs = self._decode(layer)
        acc = np.zeros((x.x_q.shape[0], len(runs), layer.tiles * layer.lanes), dtype=np.int64)
        for r, (p0, sub, codes) in enumerate(runs):
            acc[:, r, : layer.out_features] = tmac_dense_accumulators(x.x_q[:, p0:p0 + sub.num_positions], sub, codes)
        return LayerResult(acc)

    # -- the decoder block's units (lutforge.program.decoder) ---------------------------------

    @staticmethod
    def rmsnorm(x, fmt, *, eps: float, seed_bits: int = 7) -> UnitResult:
        ones = encode(np.ones(np.shape(x)[-1]), fmt)
        return UnitResult(golden_rmsnorm(x, ones, fmt, eps=eps, seed_bits=seed_bits))

    @staticmethod
    def binary(op: str, a, b, fmt) -> UnitResult:
        return UnitResult({"add": fp.add, "mul": fp.mul}[op](a, b, fmt))

    @staticmethod
    def silu(x, fmt, *, seed_bits: int = 7) -> UnitResult:
        return UnitResult(golden_silu(x, fmt, seed_bits=seed_bits))

    @staticmethod
    def rope(x, cos, sin, fmt) -> UnitResult:
        return UnitResult(golden_rope(x, cos, sin, fmt))

    @staticmethod
    def attention(q, k, v, fmt, *, acc, mul: str, offset, lanes: int, seed_bits: int = 7) -> UnitResult:
        # Query head h reads key/value head h // group; every head at once.
        group = q.shape[0] // k.shape[0]
        k, v = (np.repeat(a, group, axis=0) for a in (k, v))
        return UnitResult(golden_attention(q, k, v, fmt, acc=acc, mul=mul, lanes=lanes, offset=offset,
                                           seed_bits=seed_bits))
