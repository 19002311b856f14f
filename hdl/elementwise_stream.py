"""A stream around a fixed-latency elementwise datapath (the non-linear units of the decoder block).

The datapath (ports ``a`` -> ``r``, ``latency`` register stages that never stall) accepts one
element per cycle. Its results enter a FIFO of ``latency + 2`` entries, and ``i.ready`` holds only
while the FIFO has room for every element already in flight, so nothing is ever dropped when
``o`` stalls. While ``o`` is ready, ``latency`` elements are in the pipeline and one sits in the
FIFO (a written entry is read the cycle after), so with room for one more the rate is one element
per cycle: n elements take ``n + latency + 1`` cycles.
"""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .pipeline import delay

__all__ = ["ElementwiseStream"]


class ElementwiseStream(wiring.Component):
    """Streams ``i`` (payload: the datapath's ``a``) and ``o`` (its ``r``) around ``datapath``."""

    def __init__(self, datapath, latency: int):
        self.datapath, self.latency = datapath, latency
        super().__init__({"i": In(stream.Signature(datapath.a.shape())),
                          "o": Out(stream.Signature(datapath.r.shape()))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.datapath = dp = self.datapath
        # The pipeline's elements, the one being read and the one arriving (module docstring).
        depth = self.latency + 2
        m.submodules.fifo = fifo = SyncFIFO(width=len(dp.r.as_value()), depth=depth)
        accept = Signal()
        in_flight = Signal(range(depth + 1))
        done, = delay(m, [accept], self.latency, name="valid")
        m.d.comb += [
            dp.a.eq(self.i.payload),
            # Room for what is in flight plus this one: the FIFO level and the pipeline's valid bits.
            self.i.ready.eq(fifo.level + in_flight < depth),
            accept.eq(self.i.valid & self.i.ready),
            fifo.w_data.eq(dp.r.as_value()), fifo.w_en.eq(done),
            self.o.valid.eq(fifo.r_rdy), self.o.payload.eq(fifo.r_data), fifo.r_en.eq(self.o.ready),
        ]
        if self.latency:
            m.d.sync += in_flight.eq(in_flight + accept - done)
        return m
