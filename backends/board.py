"""The ``board`` backend of the compiler's host driver: a compiled layer run on the SoC's GEMV core
through any :class:`lutforge.boards.transport.Transport` — a board over a serial port, or the same
SoC in Verilator behind a simulated UART.

It implements :class:`lutforge.program.backend.Backend` (``run_layer(layer, x_q)``), so
``HostDriver(program, BoardBackend(transport, config.gemv))`` runs a Program on hardware with the
code CI runs against the simulation. Memory map per layer (all regions 4-byte aligned):
cb image, tab image, idx image, one run's activations, one run's results; a layer whose images do
not fit the device memory is refused with the numbers.
"""

import numpy as np

from ..boards.host import Accelerator, AcceleratorError
from ..boards.protocol import Reg
from ..boards.soc import BOARD_GEMV, CORES
from ..boards.transport import Transport
from ..program.core import GemvCoreParams
from ..support.errors import UsageError

__all__ = ["BoardBackend"]


def _align(n: int) -> int:
    return (n + 3) & ~3


class BoardBackend:
    name = "board"

    def __init__(self, transport: Transport, params: GemvCoreParams = BOARD_GEMV, *, timeout: float = 60.0):
        self.acc = Accelerator(transport)
        if self.acc.core != CORES["gemv"][0]:
            raise AcceleratorError(
                f"The device runs core {self.acc.core}, not the GEMV core ({CORES['gemv'][0]}); "
                f"build the bitstream with core: gemv."
            )
        self.params = params
        self.timeout = timeout
        self.cycles = 0
        self._loaded = None  # (id of the layer, its memory map)

    def _check(self, layer) -> None:
        p = self.params
        have, want = p.layer_shape(), p.for_layer(layer).layer_shape()
        if have != want:
            raise ValueError(
                f"Layer {layer.name} was compiled for ({', '.join(p.LAYER_FIELDS)}) = {want} "
                f"but the device's core is built for {have}; compile for the board's core or rebuild it."
            )
        if max(run.positions for run in layer.runs) > p.max_positions:
            raise ValueError(
                f"Layer {layer.name} has a run of {max(r.positions for r in layer.runs)} positions; the "
                f"device's core takes at most {p.max_positions}: compile with positions_per_run <= {p.max_positions}."
            )

    def _load(self, layer) -> dict:
        if self._loaded and self._loaded[0] is layer:
            return self._loaded[1]
        self._check(layer)
        strides = self.params.strides
        images = {"cb": layer.cb, "tab": layer.tab, "idx": layer.idx}
        layout, offset = {}, 0
        for name, words in images.items():
            words = np.ascontiguousarray(words, dtype="<u4")
            if words.shape[1] * 4 != strides[name]:
                raise ValueError(
                    f"Layer {layer.name}'s {name} image has {words.shape[1] * 4}-byte words but the core "
                    f"reads {strides[name]}-byte words; the Program and the core disagree on the layout."
                )
            layout[name] = offset
            offset = _align(offset + words.nbytes)
        max_positions = max(run.positions for run in layer.runs)
        layout["x"] = offset
        offset = _align(offset + max_positions * layer.v)
        layout["acc"] = offset
        offset += layer.tiles * layer.lanes * 4
        if offset > self.acc.mem_size:
            raise ValueError(
                f"Layer {layer.name} needs {offset} bytes of device memory (images and one run's "
                f"activations and results) but the device has {self.acc.mem_size}; split the layer "
                f"or build the SoC with a larger mem_size."
            )
        for name, words in images.items():
            self.acc.load_memory(layout[name], np.ascontiguousarray(words, dtype="<u4").view(np.uint8).ravel())
        self._loaded = (layer, layout)
        return layout

    def run_layer(self, layer, x_q: np.ndarray):
        from ..program.backend import LayerResult
        if layer.kind != "lut":
            raise UsageError(f"Layer {layer.name} runs on the {layer.kind} core, which the board SoC does not "
                             f"carry (it holds the LUT core only); run this Program with --backend golden or sim.")
        layout = self._load(layer)
        strides = self.params.strides
        x_q = np.asarray(x_q, dtype=np.int8)
        t = x_q.shape[0]
        acc = np.zeros((t, len(layer.runs), layer.tiles * layer.lanes), dtype=np.int64)
        cycles = 0
        for i in range(t):
            for r, run in enumerate(layer.runs):
                d = run.descriptor
                x = x_q[i, run.first_position:run.first_position + run.positions]
                self.acc.load_memory(layout["x"], x.view(np.uint8).ravel())
                cycles += self.acc.run([
                    run.positions | (layer.out_features << 16),
                    d["tiles_per_block"],
                    layout["cb"] + d["cb_base"] * strides["cb"],
                    layout["tab"] + d["tab_base"] * strides["tab"],
                    layout["idx"] + d["idx_base"] * strides["idx"],
                    layout["x"],
                    layout["acc"],
                ], timeout=self.timeout)
                status = self.acc.transport.read_reg(Reg.STATUS)
                if status & Reg.STATUS_ERROR:
                    raise AcceleratorError(
                        f"The GEMV core flagged run {r} of layer {layer.name} (STATUS {status:#x}): it refused "
                        f"the descriptor or an address fell outside the memory."
                    )
                words = self.acc.read_results(layout["acc"], layer.tiles * layer.lanes * 4)
                acc[i, r] = np.frombuffer(words, "<u4")
        self.cycles += cycles
        return LayerResult(acc, cycles)
