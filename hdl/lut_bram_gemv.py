"""LUT GEMV engine whose lookups are reads of embedded memory (LUT-LLM's memory-based computation).

:class:`lutforge.hdl.lut_gemv.LutGemvEngine` receives one table row per position and lets every lane
pick its entry with a ``C_w``:1 multiplexer (about ``C_w - 1`` LUT4 per entry bit per lane). Here
the tables of a run stay on chip and a lookup is a memory read: lane ``i`` reads entry
``T[p, a_p, widx_p[i]]`` at address ``(p * C_a + a_p) * C_w + widx_p[i]`` of its own table bank, a
simple dual-port memory (one write port, one synchronous read port) that yosys maps to block RAM
(EBR on iCE40 and ECP5; BRAM or URAM on larger parts). Each lane has its own bank, a copy of the
same tables, because a lookup per lane per cycle needs a read port per lane; the copies are the
price of reading instead of multiplexing, paid in block RAM instead of LUTs.

Bit-exact with the integer contract of :func:`lutforge.golden.lut_gemv.lut_gemv` for one position
group (Q = 1) and one row block (the tables of block ``g`` are loaded before its tiles run):
``acc[i] = sum_p T[p, a_p, widx_p[i]]``.

Streams:

* ``load`` (in): one table entry per transfer, ``addr`` = ``(p * C_a + a) * C_w + w`` and its
  ``table_bits``-bit code, written to every bank. Loading a block's tables takes
  ``positions * C_a * C_w`` cycles; they then serve all ``G / L`` tiles of the block.
* ``lookups`` (in): per position of a tile, the activation index ``a`` of that position, the L
  weight indices (lane i at bits ``i*wb ..``, ``wb = ceil(log2 C_w)``), a lane mask and ``last``
  (closes the tile). The position counts from 0 at the first lookup of each tile.
* ``acc`` (out): the tile's L unsigned sums (padding lanes 0), two cycles after its ``last``
  lookup, while the next tile already runs.

A load and the lookups must not overlap (the caller sequences them; a load during a tile would
change the tables it reads). Throughput: one lookup per cycle, ``lanes`` memory reads each; only an
``acc`` sink that holds a full buffer stalls ``lookups``.
"""

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.codebooks import check_centroid_count
from ..support.checks import check_int
from .lut_gemv import check_accumulator

__all__ = ["LutBramGemvEngine", "MAX_TABLE_ENTRIES"]

# The largest table image of one bank: 2^22 entries (32 Mbit at 8 bits) is past any FPGA's block
# RAM per lane, and keeps address arithmetic in 22 bits; generation time grows with the depth.
MAX_TABLE_ENTRIES = 1 << 22


def _power_of_two(count: int) -> bool:
    return count & (count - 1) == 0


def _log2(count: int) -> int:
    """The bits of an index below ``count``, a power of two (0 for a single centroid)."""
    return count.bit_length() - 1


class LutBramGemvEngine(wiring.Component):
    """Accumulates table entries read from on-chip memory: lane i adds ``T[p, a_p, widx_p[i]]``.

    Parameters: ``c_a`` and ``c_w`` (activation and weight centroids), ``table_bits`` (1 to 32),
    ``lanes`` (L), ``positions`` (the most positions whose tables the banks hold, and so the most a
    tile sums; it sizes the memories and the accumulators), ``acc_width`` (default and minimum: the
    width that cannot overflow, :func:`lutforge.hdl.lut_gemv.check_accumulator`).
    """

    def __init__(self, c_a: int = 16, c_w: int = 16, table_bits: int = 8, lanes: int = 4, *,
                 positions: int = 16, acc_width: "int | None" = None):
        try:
            self.c_a = check_centroid_count(c_a, "C_a")
            self.c_w = check_centroid_count(c_w, "C_w")
            check_int("lanes", lanes, fix="the engine computes 1 or more output lanes")
            check_int("positions", positions, fix="the banks hold the tables of 1 or more positions")
            self.lanes, self.positions = lanes, positions
            self.depth = positions * self.c_a * self.c_w
            if self.depth > MAX_TABLE_ENTRIES:
                raise ValueError(
                    f"Tables of {positions} positions x {self.c_a} x {self.c_w} entries = {self.depth} entries per "
                    f"bank exceed the {MAX_TABLE_ENTRIES} a bank may hold; lower positions to "
                    f"{MAX_TABLE_ENTRIES // (self.c_a * self.c_w)} or fewer, and run longer inputs as several tiles.")
            self.acc_width = check_accumulator(positions, table_bits, acc_width)
            self.table_bits = int(table_bits)
        except ValueError:
            self._MustUse__silence = True  # a rejected component is not an unused one
            raise
        self.addr_bits = max(1, (self.depth - 1).bit_length())
        self.a_bits = max(1, (self.c_a - 1).bit_length())
        self.widx_bits = max(1, (self.c_w - 1).bit_length())
        self.p_bits = max(1, (positions - 1).bit_length())
        self.load_layout = data.StructLayout({"addr": unsigned(self.addr_bits), "code": unsigned(self.table_bits)})
        self.lookup_layout = data.StructLayout({
            "a": unsigned(self.a_bits),
            "widx": data.ArrayLayout(unsigned(self.widx_bits), lanes),
            "mask": unsigned(lanes),
            "last": unsigned(1),
        })
        super().__init__({
            "load": In(stream.Signature(self.load_layout)),
            "lookups": In(stream.Signature(self.lookup_layout)),
            "acc": Out(stream.Signature(data.ArrayLayout(unsigned(self.acc_width), lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        look = self.lookups.payload
        # Stage 1 holds the lookup whose entries the banks are reading; a tile's end waits there
        # while the output buffer is full and not draining, and the read ports hold their data.
        s1_valid, s1_last = Signal(), Signal()
        s1_mask = Signal(self.lanes)
        stall = s1_valid & s1_last & self.acc.valid & ~self.acc.ready
        m.d.comb += [self.lookups.ready.eq(~stall), self.load.ready.eq(1)]
        take = self.lookups.valid & self.lookups.ready

        position = Signal(self.p_bits)
        with m.If(take):
            m.d.sync += position.eq(Mux(look.last, 0, position + 1))
        # The table row this position reads, p * C_a + a, shared by the lanes; each lane's address is
        # row * C_w + its weight index. Power-of-two centroid counts make both plain wiring (Cat),
        # where an adder per lane would cost a carry chain of the address's width.
        row = Signal(range(self.positions * self.c_a))
        m.d.comb += row.eq(Cat(look.a[:_log2(self.c_a)], position) if _power_of_two(self.c_a)
                           else position * self.c_a + look.a)

        with m.If(self.acc.valid & self.acc.ready):
            m.d.sync += self.acc.valid.eq(0)
        with m.If(~stall):
            m.d.sync += [s1_valid.eq(take), s1_last.eq(look.last), s1_mask.eq(look.mask)]
        ends = s1_valid & s1_last & ~stall
        for lane in range(self.lanes):
            bank = Memory(shape=unsigned(self.table_bits), depth=self.depth, init=[])
            m.submodules[f"bank{lane}"] = bank
            write = bank.write_port()
            read = bank.read_port(transparent_for=())
            m.d.comb += [write.addr.eq(self.load.payload.addr), write.data.eq(self.load.payload.code),
                         write.en.eq(self.load.valid),
                         read.addr.eq(Cat(look.widx[lane][:_log2(self.c_w)], row) if _power_of_two(self.c_w)
                                      else row * self.c_w + look.widx[lane]),
                         read.en.eq(~stall)]
            acc = Signal(self.acc_width, name=f"acc{lane}")
            total = acc + Mux(s1_mask[lane], read.data, 0)
            with m.If(s1_valid & ~stall):
                with m.If(s1_last):
                    m.d.sync += [self.acc.payload[lane].eq(total), acc.eq(0)]
                with m.Else():
                    m.d.sync += acc.eq(total)
        with m.If(ends):
            m.d.sync += self.acc.valid.eq(1)
        return m
