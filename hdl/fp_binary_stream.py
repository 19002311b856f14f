"""The decoder block's two-operand elementwise unit: ``r = RN(a + b)`` (the residual adds) or
``r = RN(a · b)`` (the norms' gains, SiLU(gate) · up), bit-exact with :func:`lutforge.golden.fp.add`
and :func:`~lutforge.golden.fp.mul`, as a stream of one operand pair per cycle.

Each ``i`` beat carries ``{a, b}``; ``o`` returns the rounded result, behind
:class:`~lutforge.hdl.elementwise_stream.ElementwiseStream` (``latency`` registers in the operator).
"""

from amaranth import Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..golden import fp_funcs as golden
from .elementwise_stream import ElementwiseStream
from .float_layout import FloatLayout
from .fp_add import FPAdder
from .fp_mul import FPMultiplier, check_latency
from .round_pack import rejecting

__all__ = ["BINARY_OPS", "binary_input_layout", "FPBinaryDatapath", "FPBinaryStream"]

# Operation -> operator (both take ``latency`` cycles in all).
BINARY_OPS = {"add": FPAdder, "mul": FPMultiplier}


def binary_input_layout(fmt) -> data.StructLayout:
    f = FloatLayout(fmt)
    return data.StructLayout({"a": f, "b": f})


class FPBinaryDatapath(wiring.Component):
    """``r = a op b`` after :attr:`total_latency` cycles."""

    def __init__(self, fmt, op: str, *, latency: int = 0):
        with rejecting(self):
            self.format = golden.check_function_format(fmt)
            if op not in BINARY_OPS:
                raise ValueError(f"Elementwise operation {op!r} is not one of {', '.join(BINARY_OPS)}; choose "
                                 f"one of them.")
            check_latency("elementwise unit", latency)
        self.op, self.latency = op, latency
        super().__init__({"a": In(binary_input_layout(self.format)), "r": Out(FloatLayout(self.format))})

    @property
    def total_latency(self) -> int:
        return self.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.operator = unit = BINARY_OPS[self.op](self.format, latency=self.latency)
        m.d.comb += [unit.a.eq(self.a.a), unit.b.eq(self.a.b), self.r.eq(unit.r)]
        return m


class FPBinaryStream(ElementwiseStream):
    """Streams ``i`` (``{a, b}``) and ``o`` (``a op b``) around :class:`FPBinaryDatapath`."""

    def __init__(self, fmt, op: str, *, latency: int = 0):
        dp = FPBinaryDatapath(fmt, op, latency=latency)
        self.format, self.op = dp.format, dp.op
        super().__init__(dp, dp.total_latency)
