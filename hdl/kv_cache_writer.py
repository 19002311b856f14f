"""KV cache writer: appends one token's keys and values to the cache in the accelerator's memory,
in the layout the attention unit reads (:func:`lutforge.golden.attention.cache_words`), equal to
:func:`lutforge.golden.attention.cache_writes` write for write.

* ``desc`` (in): the attention unit's descriptor (:func:`lutforge.golden.attention.
  descriptor_fields`) of the token's query: ``keys`` (the cache length after the append, 1 to
  65535; the token is key ``keys - 1``), ``k_base``, ``v_base``; one descriptor serves both units;
* ``k`` (in): the token's D key elements, ``lanes`` per beat; ``v`` (in): its D value elements,
  one per beat (each goes to another value word);
* ``mem.k`` / ``mem.v`` (out): write streams ``{addr, data, mask}`` (word address, a word of
  ``lanes`` elements, one enable bit per element): D/lanes whole key words, then D value words
  with only the token's lane enabled;
* ``busy``, ``done``, ``error`` (1: ``keys`` is 0; a refused descriptor writes nothing).

The two streams run side by side at one beat per cycle each, so a token takes D cycles. A memory
that applies the writes in order before it answers later reads of the same port lets the
attention unit's query for this token follow at once.
"""

from amaranth import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.formats import get
from ..support.checks import check_int
from .attention import descriptor_layout
from .float_layout import FloatLayout
from .round_pack import rejecting

__all__ = ["KVCacheWriter", "MemoryWriteSignature"]


def MemoryWriteSignature(addr_width: int, data_width: int, lanes: int) -> wiring.Signature:
    """A write channel: one stream of ``{addr, data, mask}``, ``mask`` one enable bit per lane."""
    return wiring.Signature({"w": Out(stream.Signature(data.StructLayout(
        {"addr": unsigned(addr_width), "data": unsigned(data_width), "mask": unsigned(lanes)})))})


class KVCacheWriter(wiring.Component):
    """Appends a token's keys and values to the cache (module docstring)."""

    def __init__(self, fmt, d: int, *, lanes: int = 1, addr_width: int = 32):
        with rejecting(self):
            self.format = get(fmt)
            self.d = check_int("d", d, 2, 1024, fix="a head holds 2 to 1024 elements")
            self.lanes = check_int("lanes", lanes, 1, self.d, fix="a beat takes 1 to D products")
            if self.d % self.lanes:
                raise ValueError(f"The head dimension {self.d} is not a multiple of lanes={self.lanes}; choose "
                                 f"lanes dividing {self.d}.")
            self.addr_width = check_int("addr_width", addr_width, 2, 64, fix="word addresses have 2 to 64 bits")
        f = FloatLayout(self.format)
        write = MemoryWriteSignature(self.addr_width, self.format.width * self.lanes, self.lanes)
        super().__init__({
            "desc": In(stream.Signature(descriptor_layout(self.addr_width))),
            "k": In(stream.Signature(data.ArrayLayout(f, self.lanes))),
            "v": In(stream.Signature(f)),
            "mem": Out(wiring.Signature({"k": Out(write), "v": Out(write)})),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        d, lanes, width = self.d, self.lanes, self.format.width
        beats = d // lanes
        k_addr, v_addr = Signal(self.addr_width), Signal(self.addr_width)  # the next write of each
        lane = Signal(range(max(lanes, 2)))
        k_left, v_left = Signal(range(beats + 1)), Signal(range(d + 1))
        busy = Signal()
        kw, vw = self.mem.k.w, self.mem.v.w
        m.d.comb += [self.busy.eq(busy), self.desc.ready.eq(~busy),
                     kw.valid.eq(self.k.valid & (k_left != 0)), self.k.ready.eq(kw.ready & (k_left != 0)),
                     kw.payload.addr.eq(k_addr), kw.payload.data.eq(self.k.payload.as_value()),
                     kw.payload.mask.eq((1 << lanes) - 1),
                     vw.valid.eq(self.v.valid & (v_left != 0)), self.v.ready.eq(vw.ready & (v_left != 0)),
                     vw.payload.addr.eq(v_addr), vw.payload.data.eq(self.v.payload.as_value() << (lane * width)),
                     vw.payload.mask.eq(1 << lane)]
        with m.If(kw.valid & kw.ready):
            m.d.sync += [k_addr.eq(k_addr + 1), k_left.eq(k_left - 1)]
        with m.If(vw.valid & vw.ready):
            m.d.sync += [v_addr.eq(v_addr + 1), v_left.eq(v_left - 1)]
        with m.If(busy & (k_left == 0) & (v_left == 0)):
            m.d.sync += [busy.eq(0), self.done.eq(1)]

        desc = self.desc.payload
        token = Signal(16)
        m.d.comb += token.eq(desc.keys - 1)
        with m.If(self.desc.valid & ~busy):
            m.d.sync += [self.done.eq(0), self.error.eq(0)]
            with m.If(desc.keys == 0):
                m.d.sync += [self.error.eq(1), self.done.eq(1)]
            with m.Else():
                m.d.sync += [busy.eq(1), k_left.eq(beats), v_left.eq(d), lane.eq(token % lanes),
                             k_addr.eq(desc.k_base + token * beats),
                             v_addr.eq(desc.v_base + (token // lanes) * d)]
        return m
