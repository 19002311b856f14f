"""Small blocks whose right answers are obvious, for testing the simulation machinery itself."""

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out


class WideAdder(wiring.Component):
    """r = a + b after `latency` registers: exercises one-, two- and multi-word ports."""

    def __init__(self, latency, width=100):
        self.latency, self.width = latency, width
        super().__init__({"a": In(width), "b": In(width), "r": Out(width + 1)})

    def elaborate(self, platform):
        m = Module()
        value = self.a + self.b
        for stage in range(self.latency):
            reg = Signal(self.width + 1, name=f"stage{stage}")
            m.d.sync += reg.eq(value)
            value = reg
        m.d.comb += self.r.eq(value)
        return m


class Pair(data.Struct):
    a: 8
    b: 8


class StreamAdder(wiring.Component):
    """A one-deep register stage on a stream: o = i.a + i.b + k."""

    i: In(stream.Signature(Pair))
    o: Out(stream.Signature(9))
    k: In(8)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.payload.eq(self.i.payload.a + self.i.payload.b + self.k), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m
