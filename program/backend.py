"""What every backend implements: one call that turns a layer's quantized activations into the
core's accumulators::

    run_layer(layer: LoweredLayer, x_q: int8 (T, P, v)) -> LayerResult
    run_layer(layer: BlockLoweredLayer, x_q: BlockActivations) -> LayerResult
    run_layer(layer: TmacLoweredLayer, x_q: TmacActivations) -> LayerResult

with ``acc`` (T, runs, tiles * lanes) int64, exactly the ``acc`` stream of the layer's core for
every run of every token (padding lanes read 0): unsigned sums of table codes for a LUT layer, the
fp32 bit patterns of the accumulators (one run) for a block layer, biased integer sums of the
run-time tables for a weight-only LUT layer. The golden models'
implementation, the definition the others must equal, is :mod:`lutforge.program.golden`; the RTL
in Verilator and a board over a transport are in :mod:`lutforge.backends`, one registry for all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .artifact import LoweredLayer

__all__ = ["LayerResult", "UnitResult", "Backend"]


@dataclass(frozen=True)
class LayerResult:
    acc: np.ndarray           # (T, runs, tiles * lanes) int64
    cycles: int | None = None  # simulated cycles for all T tokens (None: not a cycle model)
    requests: dict | None = None  # memory words read per channel (cb, tab, idx), when observed


@dataclass(frozen=True)
class UnitResult:
    out: np.ndarray            # the unit's outputs, encodings of its format, in the inputs' shape
    cycles: int | None = None  # simulated cycles of the call (None: not a cycle model)


class Backend(Protocol):
    name: str

    def run_layer(self, layer: LoweredLayer, x_q: np.ndarray) -> LayerResult: ...
