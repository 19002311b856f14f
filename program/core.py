"""The GEMV core's build parameters, one definition for everything that sizes or targets a core:
the compiler (lowering, the performance model), the Verilator backend, the board SoC and its
backend. The RTL itself is :class:`lutforge.hdl.gemv_core.GemvCore`; :meth:`GemvCoreParams.hdl_kwargs`
gives its constructor arguments."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .artifact import LoweredLayer

__all__ = ["GemvCoreParams"]


@dataclass(frozen=True)
class GemvCoreParams:
    """``v``, ``c_a``, ``c_w`` and ``table_bits`` are set by the quantization (a core runs layers
    quantized for exactly these); ``lanes`` and ``metric`` by the lowering; ``chains`` (centroid
    search parallelism) and ``max_positions`` (positions per run; sizes the accumulators) by the
    build alone (``tables`` as the compiler chose it for the target)."""

    v: int = 2
    c_a: int = 64
    c_w: int = 16
    table_bits: int = 8
    lanes: int = 16
    metric: str = "linf"
    chains: int = 4
    max_positions: int = 1024
    # The table engine (:data:`lutforge.golden.gemv_core.TABLE_ENGINES`): "rows" reads a table row per tile
    # and selects with multiplexers, "resident" loads a row block's tables into block RAM once.
    # The same images run on both; :func:`lutforge.compiler.perf.choose_tables` picks per target.
    tables: str = "rows"

    # The fields a lowered layer fixes; a core runs a layer only when these agree.
    LAYER_FIELDS = ("v", "c_a", "c_w", "table_bits", "lanes", "metric")

    @property
    def widx_bits(self) -> int:
        return max(1, (self.c_w - 1).bit_length())

    @property
    def strides(self) -> dict[str, int]:
        """Bytes one memory word of each channel occupies: images are rows of 32-bit words."""
        words = lambda bits: -(-bits // 32)  # noqa: E731
        return {"cb": 4 * words(self.c_a * self.v * 8), "tab": 4 * words(self.c_w * self.table_bits),
                "idx": 4 * words(self.lanes * self.widx_bits), "x": self.v}

    @property
    def word_bytes(self) -> dict[str, int]:
        """Bytes of each channel's word the core uses (the rest of its stride is padding, which a
        byte port need not read): an index word of 2 lanes is 1 byte of its 4."""
        return {"cb": self.c_a * self.v, "tab": -(-self.c_w * self.table_bits // 8),
                "idx": -(-self.lanes * self.widx_bits // 8), "x": self.v}

    def layer_shape(self) -> tuple:
        return tuple(getattr(self, name) for name in self.LAYER_FIELDS)

    def for_layer(self, layer: LoweredLayer) -> "GemvCoreParams":
        """These build parameters with the layer's quantization and lanes (a core that runs it)."""
        return dataclasses.replace(self, **{name: getattr(layer, name) for name in self.LAYER_FIELDS})

    def hdl_kwargs(self) -> dict:
        """Keyword arguments of :class:`lutforge.hdl.gemv_core.GemvCore`."""
        return {"v": self.v, "c_a": self.c_a, "c_w": self.c_w, "table_bits": self.table_bits,
                "lanes": self.lanes, "metric": self.metric, "chains": self.chains,
                "max_positions": self.max_positions, "tables": self.tables}
