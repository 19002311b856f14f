"""RoPE rotation unit, bit-exact with :func:`lutforge.golden.rope.rope`, as a stream of pairs.

Each ``i`` beat carries one rotate-half pair ``(x1, x2)`` with the table entries ``(c, s)`` of its
position and frequency (the compiler's float64 tables rounded once, read from memory alongside);
``o`` returns ``y1 = RN(x1·c - RN(x2·s))`` and ``y2 = RN(x2·c + RN(x1·s))``: two multipliers and
two FMAs, ``latency`` registers each, behind :class:`~lutforge.hdl.elementwise_stream.ElementwiseStream`.
"""

from amaranth import Cat, Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..golden import fp_funcs as golden
from .elementwise_stream import ElementwiseStream
from .float_layout import FloatLayout
from .fp_fma import FPFusedMultiplyAdd
from .fp_mul import FPMultiplier, check_latency
from .pipeline import delay
from .round_pack import rejecting

__all__ = ["rope_input_layout", "rope_output_layout", "RoPEDatapath", "RoPE"]


def rope_input_layout(fmt) -> data.StructLayout:
    f = FloatLayout(fmt)
    return data.StructLayout({"x1": f, "x2": f, "c": f, "s": f})


def rope_output_layout(fmt) -> data.StructLayout:
    f = FloatLayout(fmt)
    return data.StructLayout({"y1": f, "y2": f})


class RoPEDatapath(wiring.Component):
    """One pair rotated after ``2 · latency`` cycles (a product, then an FMA)."""

    def __init__(self, fmt, *, latency: int = 0):
        with rejecting(self):
            self.format = golden.check_function_format(fmt)
            check_latency("RoPE", latency)
        self.latency = latency
        super().__init__({"a": In(rope_input_layout(self.format)), "r": Out(rope_output_layout(self.format))})

    @property
    def total_latency(self) -> int:
        return 2 * self.latency

    def elaborate(self, platform):
        m = Module()
        fmt, a = self.format, self.a
        m.submodules.x2s = x2s = FPMultiplier(fmt, latency=self.latency)
        m.submodules.x1s = x1s = FPMultiplier(fmt, latency=self.latency)
        m.d.comb += [x2s.a.eq(a.x2), x2s.b.eq(a.s), x1s.a.eq(a.x1), x1s.b.eq(a.s)]
        x1, x2, c = delay(m, [a.x1, a.x2, a.c], self.latency, name="held")
        m.submodules.y1 = y1 = FPFusedMultiplyAdd(fmt, latency=self.latency)
        m.submodules.y2 = y2 = FPFusedMultiplyAdd(fmt, latency=self.latency)
        neg = x2s.r.as_value()
        m.d.comb += [y1.a.eq(x1), y1.b.eq(c), y1.c.as_value().eq(Cat(neg[:-1], ~neg[-1])),
                     y2.a.eq(x2), y2.b.eq(c), y2.c.eq(x1s.r),
                     self.r.y1.eq(y1.r), self.r.y2.eq(y2.r)]
        return m


class RoPE(ElementwiseStream):
    """Streams ``i`` (:func:`rope_input_layout`) and ``o`` (:func:`rope_output_layout`)."""

    def __init__(self, fmt, *, latency: int = 0):
        dp = RoPEDatapath(fmt, latency=latency)
        self.format = dp.format
        super().__init__(dp, dp.total_latency)
