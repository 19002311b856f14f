"""Whole-GEMV proof of the block-RAM LUT engine against the same plain reference as the multiplexer
engine's.

:class:`BramGemvProof` is :class:`lutforge.formal.gemv.GemvProof` (same ports, operands, stall
budget, output check and :func:`~lutforge.formal.gemv.mac_reference`) driving
:class:`lutforge.hdl.lut_bram_gemv.LutBramGemvEngine` the way that engine is used: first every
table entry through ``load`` (entry ``(p * C_a + a) * C_w + w`` on cycle ``p C_a C_w + a C_w + w``
when nothing stalls), then, position by position of every tile, the activation index with the
tile's weight indices and lane mask through ``lookups``. ``gap`` keeps a load or a lookup back for a
cycle, ``hold`` the output stream, within the same ``stalls`` budget. Both engines are thereby
proved equal to one reference, so equal to each other, for every table, index and mask of the
shape and every stall pattern within the budget.

Deadline: ``C_a C_w positions`` load cycles, ``tiles * positions`` lookups, 2 cycles of read and
accumulate latency before the last tile is offered and taken, one cycle per stall; after that the
verdict is final, as in :mod:`lutforge.formal.gemv`, so a bounded proof to the deadline is complete.
"""

from amaranth import Module, Signal
from amaranth.lib import data

from ..hdl.lut_bram_gemv import LutBramGemvEngine
from .gemv import GemvProof, mac_reference

__all__ = ["BramGemvProof", "bram_deadline"]


def bram_deadline(*, c_a: int, c_w: int, positions: int, tiles: int, stalls: int) -> int:
    """The cycle by which a :class:`BramGemvProof` of this shape has its verdict (module docstring)."""
    return c_a * c_w * positions + tiles * positions + 2 + stalls


class BramGemvProof(GemvProof):
    """One whole GEMV on the block-RAM engine, tables loaded first, checked (module docstring).
    ``engine`` and ``reference`` replace the engine class and the reference, as in
    :class:`~lutforge.formal.gemv.GemvProof`."""

    def __init__(self, *, c_w: int = 2, table_bits: int = 2, lanes: int = 2, positions: int = 2, tiles: int = 2,
                 c_a: int = 2, stalls: int = 1, engine=None, reference=mac_reference):
        engine_class = engine or LutBramGemvEngine
        super().__init__(c_w=c_w, table_bits=table_bits, lanes=lanes, positions=positions, tiles=tiles, c_a=c_a,
                         stalls=stalls, reference=reference,
                         engine=lambda c_w, table_bits, lanes, max_positions: engine_class(
                             c_a, c_w, table_bits, lanes, positions=max_positions))
        self.deadline = bram_deadline(c_a=c_a, c_w=c_w, positions=positions, tiles=tiles, stalls=stalls)

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        load, lookups = engine.load, engine.lookups
        cycle, (table, act, widx, mask), use_gap, use_hold = self._operands_and_stalls(m)

        # Loading: every entry once, in address order (the table's own element order).
        depth = engine.depth
        entries = data.View(data.ArrayLayout(self.table.shape().elem_shape.elem_shape.elem_shape, depth),
                            table.as_value())
        address = Signal(range(depth + 1))
        loaded = address >= depth
        m.d.comb += [load.valid.eq(~loaded & ~use_gap),
                     load.payload.addr.eq(address),
                     load.payload.code.eq(entries[address])]
        with m.If(load.valid & load.ready):
            m.d.sync += address.eq(address + 1)

        # Then the lookups: each position's activation index beside the tile's indices and mask.
        p = self._tile_stream(m, lookups, loaded, use_gap, widx, mask)
        m.d.comb += lookups.payload.a.eq(act[p])

        m.d.comb += self.ok.eq(self._verdict(m, cycle, use_hold, table, act, widx, mask))
        return m
