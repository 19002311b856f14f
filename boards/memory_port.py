"""The SoC's byte memory port, shared by every memory behind it.

One byte address a cycle that reads (``re``) or writes (``we``); the memory takes the request in a
cycle in which it raises ``ready`` (the requester holds ``addr``, ``wdata`` and the enable until
then), and a read's byte comes back on ``rdata`` in the cycle ``rvalid`` is high, in the order the
reads were taken. Block RAM and SPRAM take every request and answer the next cycle; an SDRAM
controller (:mod:`.sdram`) takes a request when its row is open and no refresh is due, and
answers after the CAS latency, so the requesters (the host link and the cores,
:mod:`.soc`) never assume a latency.
"""

from amaranth import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["memory_signature", "BlockRamMemory"]


def memory_signature(size: int) -> wiring.Signature:
    """The port as a memory sees it (:class:`.soc.Soc` flips it for the link and the cores)."""
    return wiring.Signature({
        "addr": In(range(size)), "wdata": In(8), "we": In(1), "re": In(1),
        "ready": Out(1), "rdata": Out(8), "rvalid": Out(1),
    })


class BlockRamMemory(wiring.Component):
    """``size`` bytes of inferred block RAM: every request taken, a read's byte the next cycle."""

    def __init__(self, size: int):
        self.size = size
        super().__init__(memory_signature(size))

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=8, depth=self.size, init=[])
        rd, wr = mem.read_port(), mem.write_port()
        m.d.comb += [rd.addr.eq(self.addr), wr.addr.eq(self.addr), wr.data.eq(self.wdata),
                     wr.en.eq(self.we), self.rdata.eq(rd.data), self.ready.eq(1)]
        m.d.sync += self.rvalid.eq(self.re & ~self.we)
        return m
