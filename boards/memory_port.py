"""The SoC's memory port, shared by every memory behind it.

One request a cycle that reads (``re``) or writes (``we``) the ``width``-byte word holding byte
address ``addr`` (1 or 2 bytes: the SDRAM's and the SPRAM's words are 16 bits). The memory takes
the request in a cycle in which it raises ``ready`` (the requester holds ``addr``, ``wdata``,
``wmask`` and the enable until then); a write changes the bytes of the word whose ``wmask`` bit is
set, and a read's word (byte ``i`` of it in ``rdata[8i:8i+8]``) comes back in the cycle ``rvalid``
is high, in the order the reads were taken. Block RAM and SPRAM take every request and answer the
next cycle; an SDRAM controller (:mod:`.sdram`) takes a request when its row is open and no refresh
is due, and answers after the CAS latency, so the requesters (the host link and the cores,
:mod:`.soc`) never assume a latency.

The GEMV core's sequencer reads and writes whole words; the host link and the L-Mul core move a
byte at a time and reach a wider port through :class:`ByteView`.
"""

from amaranth import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["PORT_WIDTHS", "memory_signature", "BlockRamMemory", "ByteView"]

# Bytes a port's word may hold: a byte, or the 16-bit word of the SDRAM and of an SPRAM block.
PORT_WIDTHS = (1, 2)


def memory_signature(size: int, width: int = 1) -> wiring.Signature:
    """The port as a memory sees it (:class:`.soc.Soc` flips it for the link and the cores)."""
    return wiring.Signature({
        "addr": In(range(size)), "wdata": In(8 * width), "wmask": In(width), "we": In(1), "re": In(1),
        "ready": Out(1), "rdata": Out(8 * width), "rvalid": Out(1),
    })


class BlockRamMemory(wiring.Component):
    """``size`` bytes of inferred block RAM in ``width``-byte words: every request taken, a read's
    word the next cycle."""

    def __init__(self, size: int, width: int = 1):
        self.size, self.width = size, width
        super().__init__(memory_signature(size, width))

    def elaborate(self, platform):
        m = Module()
        w = self.width
        m.submodules.mem = mem = memory.Memory(shape=8 * w, depth=self.size // w, init=[])
        rd, wr = mem.read_port(), mem.write_port(granularity=8)
        word = self.addr[(w - 1).bit_length():]
        m.d.comb += [rd.addr.eq(word), wr.addr.eq(word), wr.data.eq(self.wdata),
                     wr.en.eq(self.wmask & self.we.replicate(w)),
                     self.rdata.eq(rd.data), self.ready.eq(1)]
        m.d.sync += self.rvalid.eq(self.re & ~self.we)
        return m


class ByteView(wiring.Component):
    """A requester of single bytes (``byte``) on a port of ``width``-byte words (``wide``): a write
    drives its byte into every byte of the word and enables the addressed one; a read's byte is
    taken from the word by the address it was issued with. The requester keeps at most one read in
    flight (the host link and the L-Mul core wait for each byte), so one register remembers it."""

    def __init__(self, size: int, width: int):
        self.size, self.width = size, width
        super().__init__({"byte": Out(memory_signature(size, 1)), "wide": In(memory_signature(size, width))})

    def elaborate(self, platform):
        m = Module()
        b, w = self.byte, self.wide
        lane_bits = (self.width - 1).bit_length()
        lane, read_lane = b.addr[:lane_bits], Signal(lane_bits)
        with m.If(b.re & w.ready):
            m.d.sync += read_lane.eq(lane)
        m.d.comb += [w.addr.eq(b.addr), w.wdata.eq(b.wdata.replicate(self.width)),
                     w.wmask.eq(b.wmask << lane), w.we.eq(b.we), w.re.eq(b.re),
                     b.ready.eq(w.ready), b.rvalid.eq(w.rvalid), b.rdata.eq(w.rdata.word_select(read_lane, 8))]
        return m
