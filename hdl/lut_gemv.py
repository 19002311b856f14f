"""LUT GEMV engine: one table row per cycle, fanned out to L lanes that each select and accumulate.

Bit-exact with the integer contract of :func:`lutforge.golden.lut_gemv.lut_gemv` for one position
group (Q = 1): lane ``i`` of a tile computes ``acc = sum_p row_p[widx_p[i]]`` where ``row_p`` is the
table row ``T[p, g, a_p, :]`` the caller fetched for the activation index ``a_p``.

"Extract the row, then copy": each transfer on ``rows`` carries one C_w-entry row (entry w at bits
``w*b .. w*b+b-1``), the L weight indices of the tile at this position (lane i at bits
``i*wb .. i*wb+wb-1``, ``wb = ceil(log2 C_w)``), a lane mask (lanes past N are padding: they add
nothing and read out as 0) and ``last``, which closes the tile. The tile's L accumulators leave on
``acc`` (lane i at bits ``i*W .. i*W+W-1``) while the next tile already accumulates, so with an
always-ready sink the engine takes a row every cycle.

The accumulator width W is derived from the worst case, every entry at ``2^b - 1`` for
``max_positions`` positions (:func:`lutforge.golden.lut_gemv.accumulator_width`); an explicit
``acc_width`` below that is refused at elaboration with the numbers.
"""

from amaranth import Module, Signal, Mux, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.codebooks import check_centroid_count
from ..golden.lut_gemv import accumulator_width
from ..support.checks import check_int

__all__ = ["LutGemvEngine", "check_accumulator"]


def check_accumulator(max_positions: int, table_bits: int, acc_width: "int | None") -> int:
    """The accumulator width for ``max_positions`` rows of ``table_bits``-bit entries, checked."""
    check_int("max_positions", max_positions, fix="the engine sums 1 or more positions")
    need = accumulator_width(max_positions, table_bits)
    if acc_width is None:
        return need
    worst = max_positions * ((1 << table_bits) - 1)
    if isinstance(acc_width, bool) or not isinstance(acc_width, int) or acc_width < need:
        raise ValueError(
            f"An accumulator of {acc_width!r} bits can overflow: {max_positions} positions of "
            f"{table_bits}-bit entries sum to at most {max_positions} * {(1 << table_bits) - 1} = "
            f"{worst}, which needs {need} bits; use acc_width >= {need} or lower max_positions to "
            f"{((1 << acc_width) - 1) // ((1 << table_bits) - 1) if isinstance(acc_width, int) and acc_width > 0 else 0}."
        )
    return acc_width


class LutGemvEngine(wiring.Component):
    """Accumulates table entries selected by weight indices: lane i adds ``row_p[widx_p[i]]``.

    Equals the integer part of :func:`lutforge.golden.lut_gemv.lut_gemv` for one position group.

    Ports: ``rows`` (in: one table row of ``c_w`` entries, the ``lanes`` weight indices of the tile at
    this position, a lane mask and ``last``, which closes the tile) and ``acc`` (out: the tile's
    ``lanes`` unsigned sums, padding lanes 0).

    Parameters: ``c_w`` (entries per row), ``table_bits`` (1 to 32: 4 or 8 for the co-quantized
    tables, up to 26 for the biased run-time tables of :mod:`lutforge.hdl.tmac_core`), ``lanes`` (L),
    ``max_positions`` (rows a tile may sum) and ``acc_width`` (default and minimum: the width that
    cannot overflow, :func:`check_accumulator`).

    Throughput: one row per cycle, ``lanes`` lookups and adds each; the sums of a tile appear on
    ``acc`` the cycle after its ``last`` row and the next tile accumulates meanwhile, so only an
    ``acc`` sink that holds a full buffer stalls ``rows``.
    """

    def __init__(self, c_w: int = 16, table_bits: int = 8, lanes: int = 16, *, max_positions: int = 4096,
                 acc_width: "int | None" = None):
        try:
            self.c_w = check_centroid_count(c_w, "C_w")
            check_int("lanes", lanes, fix="the engine computes 1 or more output lanes")
            self.lanes = lanes
            self.max_positions = max_positions
            # Also refuses table_bits outside 1 .. 32 (accumulator_width).
            self.acc_width = check_accumulator(max_positions, table_bits, acc_width)
            self.table_bits = int(table_bits)
        except ValueError:
            self._MustUse__silence = True  # a rejected component is not an unused one
            raise
        self.widx_bits = max(1, (self.c_w - 1).bit_length())
        self.row_layout = data.StructLayout({
            "row": data.ArrayLayout(unsigned(table_bits), self.c_w),
            "widx": data.ArrayLayout(unsigned(self.widx_bits), lanes),
            "mask": unsigned(lanes),
            "last": unsigned(1),
        })
        super().__init__({
            "rows": In(stream.Signature(self.row_layout)),
            "acc": Out(stream.Signature(data.ArrayLayout(unsigned(self.acc_width), lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        self.add_to(m)
        return m

    def add_to(self, m: Module) -> None:
        """Add the engine's logic to ``m`` (flat, so a core that embeds it stays one Verilog module)."""
        row, widx = self.rows.payload.row, self.rows.payload.widx
        mask, last = self.rows.payload.mask, self.rows.payload.last
        # Only a full output buffer that is not draining holds the rows.
        m.d.comb += self.rows.ready.eq(~self.acc.valid | self.acc.ready)
        with m.If(self.acc.valid & self.acc.ready):
            m.d.sync += self.acc.valid.eq(0)
        take = self.rows.valid & self.rows.ready
        for lane in range(self.lanes):
            acc = Signal(self.acc_width, name=f"acc{lane}")
            entry = Signal(self.table_bits, name=f"entry{lane}")
            m.d.comb += entry.eq(Mux(mask[lane], row[widx[lane]], 0))
            total = acc + entry
            with m.If(take):
                with m.If(last):
                    m.d.sync += [self.acc.payload[lane].eq(total), acc.eq(0)]
                with m.Else():
                    m.d.sync += acc.eq(total)
        with m.If(take & last):
            m.d.sync += self.acc.valid.eq(1)
