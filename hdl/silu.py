"""SiLU unit: ``y = RN(x · reciprocal(RN(1 + exp(-x))))``, bit-exact with
:func:`lutforge.golden.silu.silu`, as a stream of one element per cycle.

Datapath: :class:`~lutforge.hdl.fp_funcs.FPExp` on ``-x``, an adder, a
:class:`~lutforge.hdl.fp_funcs.FPReciprocal` and a multiplier, ``x`` delayed alongside; ``latency``
sets each operator's registers (:attr:`SiLU.datapath_latency` in all).
"""

import numpy as np
from amaranth import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden import fp_funcs as golden
from ..golden.convert import encode
from .elementwise_stream import ElementwiseStream
from .float_layout import FloatLayout
from .fp_add import FPAdder
from .fp_funcs import FPExp, FPReciprocal
from .fp_mul import FPMultiplier, check_latency
from .pipeline import delay
from .round_pack import rejecting

__all__ = ["SiLUDatapath", "SiLU"]


class SiLUDatapath(wiring.Component):
    """``r = silu(a)`` after :attr:`total_latency` cycles (ports as the FP blocks)."""

    def __init__(self, fmt, *, seed_bits: int = 7, latency: int = 0):
        with rejecting(self):
            self.format = golden.check_function_format(fmt)
            check_latency("SiLU", latency)
            self.exp = FPExp(self.format, latency=latency)
            self.recip = FPReciprocal(self.format, seed_bits=seed_bits, latency=latency)
        self.latency = latency
        layout = FloatLayout(self.format)
        super().__init__({"a": In(layout), "r": Out(layout)})

    @property
    def total_latency(self) -> int:
        return self.exp.total_latency + self.latency + self.recip.total_latency + self.latency

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        m.submodules.exp_unit = self.exp
        m.submodules.recip_unit = self.recip
        m.submodules.add_unit = add = FPAdder(fmt, latency=self.latency)
        m.submodules.mul_unit = mul = FPMultiplier(fmt, latency=self.latency)
        a = self.a.as_value()
        m.d.comb += self.exp.a.as_value().eq(Cat(a[:-1], ~a[-1]))  # -x: the sign flipped
        m.d.comb += [add.a.as_value().eq(int(encode(np.array(1.0), fmt))), add.b.eq(self.exp.r),
                     self.recip.a.eq(add.r)]
        x, = delay(m, [self.a], self.exp.total_latency + self.latency + self.recip.total_latency, name="x")
        m.d.comb += [mul.a.eq(x), mul.b.eq(self.recip.r), self.r.eq(mul.r)]
        return m


class SiLU(ElementwiseStream):
    """Streams ``i`` (one element) and ``o`` (its SiLU) around :class:`SiLUDatapath`."""

    def __init__(self, fmt, *, seed_bits: int = 7, latency: int = 0):
        dp = SiLUDatapath(fmt, seed_bits=seed_bits, latency=latency)
        self.format = dp.format
        super().__init__(dp, dp.total_latency)
