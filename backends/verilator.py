"""The ``sim`` backend of the host driver: the GEMV core RTL in Verilator, no per-cycle Python.

One :meth:`SimBackend.run_layer` call is one batch-harness job: the layer's three memory images
sit in simulated external memories (``memory_latency`` cycles, any number outstanding), and the
descriptor and activation streams carry every run of every token back to back. The core is built
once per parameter set and cached by :class:`lutforge.sim.batch.BatchSim` (content-hashed).
"""

from __future__ import annotations

import numpy as np

from ..program.backend import LayerResult
from ..program.artifact import LoweredLayer
from ..program.core import GemvCoreParams
from ..hdl.gemv_core import GemvCore
from ..sim.batch import BatchSim

__all__ = ["SimBackend", "pack_activations"]


def pack_activations(x_q: np.ndarray) -> np.ndarray:
    """int8 sub-vectors (..., v) -> uint64 ``x`` payloads, element j at bits 8j."""
    b = np.asarray(x_q, dtype=np.int8).view(np.uint8).astype(np.uint64)
    return (b << (np.arange(b.shape[-1], dtype=np.uint64) * np.uint64(8))).sum(axis=-1, dtype=np.uint64)


class SimBackend:
    name = "sim"

    def __init__(self, core: GemvCoreParams = GemvCoreParams(), *, memory_latency: int = 4,
                 max_cycles: int = 50_000_000):
        """``core`` gives the build parameters a layer does not fix (``chains``, ``max_positions``);
        each layer's own quantization and lanes complete them (:meth:`GemvCoreParams.for_layer`)."""
        self.params = core
        self.memory_latency, self.max_cycles = memory_latency, max_cycles
        self._sims: dict[GemvCoreParams, tuple[GemvCore, BatchSim]] = {}
        self.build_seconds = 0.0
        self.builds_cached = True

    def core(self, layer: LoweredLayer) -> tuple[GemvCore, BatchSim]:
        key = self.params.for_layer(layer)
        if key not in self._sims:
            core = GemvCore(**key.hdl_kwargs())
            sim = BatchSim(core)
            self.build_seconds += sim.build_seconds
            self.builds_cached &= sim.cached
            self._sims[key] = core, sim
        return self._sims[key]

    def run_layer(self, layer: LoweredLayer, x_q: np.ndarray) -> LayerResult:
        core, sim = self.core(layer)
        t = x_q.shape[0]
        descs = np.array([run.descriptor_word(core.addr_width) for run in layer.runs] * t, dtype=object)
        xs = np.concatenate([pack_activations(x_q[i, run.first_position:run.first_position + run.positions])
                             for i in range(t) for run in layer.runs])
        tiles = layer.tiles
        result = sim.run_streams(
            {"desc": descs, "x": xs}, {"acc": t * len(layer.runs) * tiles},
            memories={"mem__cb": layer.cb, "mem__tab": layer.tab, "mem__idx": layer.idx},
            memory_latency=self.memory_latency, max_cycles=self.max_cycles)
        if result.final["error"]:
            raise RuntimeError(f"The GEMV core refused a descriptor of layer {layer.name} with error "
                               f"{result.final['error']}; check the Program against the core's limits.")
        words = np.asarray(result.outputs["acc"], dtype=object)
        mask, w = (1 << core.acc_width) - 1, core.acc_width
        acc = np.array([[(int(word) >> (w * i)) & mask for i in range(core.lanes)] for word in words],
                       dtype=np.int64)
        requests = {k: len(result.outputs[f"mem__{k}__req"]) for k in ("cb", "tab", "idx")}
        return LayerResult(acc.reshape(t, len(layer.runs), tiles * core.lanes), int(result.cycles), requests)
