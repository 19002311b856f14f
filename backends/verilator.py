"""The ``sim`` backend of the host driver: the cores' RTL in Verilator, no per-cycle Python (and the
decoder block's units: :mod:`lutforge.backends.decoder_units`).

One :meth:`SimBackend.run_layer` call is one batch-harness job: the layer's memory images (the LUT
core's three, the block core's two, the weight-only core's two) sit in simulated external memories (``memory_latency`` cycles,
any number outstanding), and the descriptor and activation streams carry every run of every token
back to back. A core is built once per parameter set and cached by
:class:`lutforge.sim.batch.BatchSim` (content-hashed).
"""

from __future__ import annotations

import numpy as np

from ..golden.block_gemv import x_payloads
from ..golden.gemv_core import pack_descriptor
from ..golden.tmac import tmac_descriptor_fields
from ..hdl.block_gemv import BlockGemvCore
from ..hdl.gemv_core import GemvCore
from ..hdl.tmac_core import TmacCore
from ..program.artifact import BlockActivations, BlockLoweredLayer, LoweredLayer, TmacActivations, TmacLoweredLayer
from ..program.backend import LayerResult
from ..program.core import GemvCoreParams
from ..sim.batch import BatchSim
from .decoder_units import SimDecoderUnits

__all__ = ["SimBackend", "pack_activations"]


def pack_activations(x_q: np.ndarray) -> np.ndarray:
    """int8 sub-vectors (..., v) -> uint64 ``x`` payloads, element j at bits 8j."""
    b = np.asarray(x_q, dtype=np.int8).view(np.uint8).astype(np.uint64)
    return (b << (np.arange(b.shape[-1], dtype=np.uint64) * np.uint64(8))).sum(axis=-1, dtype=np.uint64)


class SimBackend(SimDecoderUnits):
    name = "sim"

    def __init__(self, core: GemvCoreParams = GemvCoreParams(), *, memory_latency: int = 4,
                 max_cycles: int = 50_000_000, decoder_max_keys: int = 256):
        """``core`` gives the build parameters a layer does not fix (``chains``, ``max_positions``,
        which is also the block core's ``max_chunks``); each layer's own quantization (or block
        formats) and lanes complete them (:meth:`GemvCoreParams.for_layer`). ``decoder_max_keys``:
        the attention unit's score buffer (:class:`lutforge.program.decoder.DecoderSpec`)."""
        self.params, self.decoder_max_keys = core, decoder_max_keys
        self.memory_latency, self.max_cycles = memory_latency, max_cycles
        self._sims: dict[object, tuple[object, BatchSim]] = {}
        self.build_seconds = 0.0
        self.builds_cached = True

    def core(self, layer: LoweredLayer | BlockLoweredLayer) -> tuple[GemvCore | BlockGemvCore, BatchSim]:
        """The core that runs ``layer``, built (or read from the build cache) on first use."""
        limit = self.params.max_positions
        if layer.kind == "block":
            key = ("block", layer.weight, layer.act, layer.lanes, limit)
        elif layer.kind == "tmac":
            # Its table memory holds max_positions rows, as the lowering assumed.
            key = ("tmac", layer.v, layer.c_w, layer.cb_bits, layer.lanes, limit)
        else:
            key = self.params.for_layer(layer)
        if key not in self._sims:
            if layer.kind == "block":
                core = BlockGemvCore(layer.weight, layer.act, lanes=layer.lanes, max_chunks=limit)
            elif layer.kind == "tmac":
                core = TmacCore(layer.v, layer.c_w, cb_bits=layer.cb_bits, lanes=layer.lanes, max_positions=limit,
                                max_table_rows=limit)
            else:
                core = GemvCore(**key.hdl_kwargs())
            sim = BatchSim(core)
            self.build_seconds += sim.build_seconds
            self.builds_cached &= sim.cached
            self._sims[key] = core, sim
        return self._sims[key]

    def run_layer(self, layer: LoweredLayer | BlockLoweredLayer | TmacLoweredLayer, x_q) -> LayerResult:
        if layer.kind == "block":
            return self._run_block(layer, x_q)
        if layer.kind == "tmac":
            return self._run_tmac(layer, x_q)
        core, _ = self.core(layer)
        descs = [run.descriptor_word(core.addr_width) for run in layer.runs]
        return self._run_positions(layer, x_q, descs, {"cb": layer.cb, "tab": layer.tab, "idx": layer.idx},
                                   "GEMV core")

    def _run_block(self, layer: BlockLoweredLayer, x: BlockActivations) -> LayerResult:
        core, sim = self.core(layer)
        if layer.chunks > core.max_chunks:
            raise RuntimeError(f"Layer {layer.name} has {layer.chunks} chunks but the block core buffers at most "
                               f"{core.max_chunks}; build it with core.max_positions >= {layer.chunks}.")
        t, tiles = x.elements.shape[0], layer.tiles
        descs = np.array([layer.descriptor_word(core.addr_width)] * t, dtype=object)
        xs = np.array(x_payloads(x.elements, x.scales, layer.format), dtype=object)
        result = sim.run_streams(
            {"desc": descs, "x": xs}, {"acc": t * tiles},
            memories={"mem__w": layer.w, "mem__s": layer.s},
            memory_latency=self.memory_latency, max_cycles=self.max_cycles)
        if result.final["error"]:
            raise RuntimeError(f"The block core refused the descriptor of layer {layer.name} with error "
                               f"{result.final['error']}; check the Program against the core's limits.")
        words = np.asarray(result.outputs["acc"], dtype=object)
        acc = np.array([[(int(word) >> (32 * i)) & 0xFFFFFFFF for i in range(core.lanes)] for word in words],
                       dtype=np.int64)
        requests = {k: len(result.outputs[f"mem__{k}__req"]) for k in ("w", "s")}
        return LayerResult(acc.reshape(t, 1, tiles * core.lanes), int(result.cycles), requests)


    def _run_tmac(self, layer: TmacLoweredLayer, x: TmacActivations) -> LayerResult:
        core, _ = self.core(layer)
        fields = tmac_descriptor_fields(core.addr_width)
        descs = [pack_descriptor(run.descriptor, fields) for run in layer.runs]
        return self._run_positions(layer, x.x_q, descs, {"cb": layer.cb, "idx": layer.idx}, "weight-only core")

    def _run_positions(self, layer, x_q: np.ndarray, descs: list[int], memories: dict, what: str) -> LayerResult:
        """Every run of every token of a LUT-kind layer (``descs``: one descriptor word per run) in
        one job, activations cut into the runs' positions; ``memories`` by channel name."""
        core, sim = self.core(layer)
        t, tiles = x_q.shape[0], layer.tiles
        xs = np.concatenate([pack_activations(x_q[i, run.first_position:run.first_position + run.positions])
                             for i in range(t) for run in layer.runs])
        result = sim.run_streams(
            {"desc": np.array(descs * t, dtype=object), "x": xs}, {"acc": t * len(layer.runs) * tiles},
            memories={f"mem__{k}": words for k, words in memories.items()},
            memory_latency=self.memory_latency, max_cycles=self.max_cycles)
        if result.final["error"]:
            raise RuntimeError(f"The {what} refused a descriptor of layer {layer.name} with error "
                               f"{result.final['error']}; check the Program against the core's limits.")
        words = np.asarray(result.outputs["acc"], dtype=object)
        mask, w = (1 << core.acc_width) - 1, core.acc_width
        acc = np.array([[(int(word) >> (w * i)) & mask for i in range(core.lanes)] for word in words],
                       dtype=np.int64)
        requests = {k: len(result.outputs[f"mem__{k}__req"]) for k in memories}
        return LayerResult(acc.reshape(t, len(layer.runs), tiles * core.lanes), int(result.cycles), requests)
