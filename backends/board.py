"""The ``board`` backend of the compiler's host driver: a compiled layer run on the SoC's GEMV core
through any :class:`lutforge.boards.transport.Transport` — a board over a serial port, or the same
SoC in Verilator behind a simulated UART.

It implements :class:`lutforge.program.backend.Backend` (``run_layer(layer, x_q)``), so
``HostDriver(program, BoardBackend(transport, config.gemv))`` runs a Program on hardware with the
code CI runs against the simulation. Memory map (all regions 4-byte aligned): cb image, tab image,
idx image, one run's activations, one run's results. A layer whose images do not fit the device
memory at once goes through it one run at a time (each run's codebooks, tables and indices loaded
before that run's tokens); a run that does not fit alone is refused with the numbers.
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
        self._loaded = None  # (the layer, which part of it) the memory holds

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

    def _images(self, layer, run=None) -> dict:
        """The memory images the core reads: the whole layer's, or (``run``) only the words of that
        run (its codebooks, the tables of its positions in every row block, its index words)."""
        images = {"cb": layer.cb, "tab": layer.tab, "idx": layer.idx}
        if run is not None:
            d, pr = run.descriptor, run.positions
            images = {"cb": layer.cb[d["cb_base"]:d["cb_base"] + pr],
                      "tab": layer.tab[d["tab_base"]:d["tab_base"] + layer.num_blocks * pr * layer.c_a],
                      "idx": layer.idx[d["idx_base"]:d["idx_base"] + layer.tiles * pr]}
        return {name: np.ascontiguousarray(words, dtype="<u4") for name, words in images.items()}

    def _layout(self, layer, images: dict) -> tuple[dict, int]:
        """Byte offsets of the images, one run's activations and its results; the bytes in all."""
        strides = self.params.strides
        layout, offset = {}, 0
        for name, words in images.items():
            if words.shape[1] * 4 != strides[name]:
                raise ValueError(
                    f"Layer {layer.name}'s {name} image has {words.shape[1] * 4}-byte words but the core "
                    f"reads {strides[name]}-byte words; the Program and the core disagree on the layout."
                )
            layout[name] = offset
            offset = _align(offset + words.nbytes)
        layout["x"] = offset
        offset = _align(offset + max(run.positions for run in layer.runs) * layer.v)
        layout["acc"] = offset
        return layout, offset + layer.tiles * layer.lanes * 4

    def _plan(self, layer) -> list:
        """How the layer goes through the device memory: [(images, layout, runs)]. The whole layer
        at once when it fits, else one run at a time (each run's words rebased to 0), so that a
        layer larger than the memory still runs, its tables loaded once per call."""
        whole = self._images(layer)
        layout, needed = self._layout(layer, whole)
        if needed <= self.acc.mem_size:
            return [(whole, layout, [(r, run, run.descriptor) for r, run in enumerate(layer.runs)])]
        plan = []
        for r, run in enumerate(layer.runs):
            images = self._images(layer, run)
            layout, run_bytes = self._layout(layer, images)
            if run_bytes > self.acc.mem_size:
                raise ValueError(
                    f"Layer {layer.name} needs {needed} bytes of device memory at once, and its run {r} alone "
                    f"{run_bytes} bytes (its images and one run's activations and results), but the device has "
                    f"{self.acc.mem_size}; compile with fewer positions per run (the core's max_positions) or "
                    f"build the SoC with a larger mem_size.")
            plan.append((images, layout, [(r, run, dict(run.descriptor, cb_base=0, tab_base=0, idx_base=0))]))
        return plan

    def _load(self, layer, part, images: dict, layout: dict) -> None:
        # The layer itself is kept (not its id): a freed layer's id can be a new layer's.
        if self._loaded is not None and self._loaded[0] is layer and self._loaded[1] == part:
            return
        for name, words in images.items():
            self.acc.load_memory(layout[name], words.view(np.uint8).ravel())
        self._loaded = (layer, part)

    def run_layer(self, layer, x_q: np.ndarray):
        from ..program.backend import LayerResult

        if layer.kind != "lut":
            raise UsageError(f"Layer {layer.name} runs on the {layer.kind} core, which the board SoC does not "
                             f"carry (it holds the LUT core only); run this Program with --backend golden or sim.")
        self._check(layer)
        strides = self.params.strides
        x_q = np.asarray(x_q, dtype=np.int8)
        t = x_q.shape[0]
        acc = np.zeros((t, len(layer.runs), layer.tiles * layer.lanes), dtype=np.int64)
        cycles = 0
        plan = self._plan(layer)
        for part, (images, layout, runs) in enumerate(plan):
            self._load(layer, part if len(plan) > 1 else "all", images, layout)
            for r, run, d in runs:
                for i in range(t):
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
