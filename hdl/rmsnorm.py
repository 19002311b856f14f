"""RMSNorm unit (and Qwen3's QK-norm, one head per row), bit-exact with
:func:`lutforge.golden.rmsnorm.rmsnorm`, as a stream of rows.

Stream ``i`` carries the K elements of a row in order; stream ``o`` returns the K normalised
elements. Two passes per row:

1. **accumulate**: each element is written to the row buffer and ``ss = RN(x·x + ss)`` by one
   combinational FMA in a loop (the golden's index order, so the loop is not pipelined);
2. after the K-th element, one cycle forms ``r = rsqrt(RN(RN(ss·RN(1/K)) + RN(eps)))`` (a
   multiplier, an adder and :class:`~lutforge.hdl.fp_funcs.FPRsqrt`, combinational);
3. **scale**: the buffer is read back and ``y = RN(RN(x·r)·w)`` leaves on ``o``, one element per
   cycle while ``o`` is ready.

A row takes 2K + 1 cycles. The gains ``w`` are the unit's ROM (one unit per norm of the model).
"""

import numpy as np
from amaranth import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden import fp_funcs as golden
from ..golden.convert import encode
from ..golden.rmsnorm import check_eps
from ..support.checks import check_int
from .float_layout import FloatLayout
from .fp_add import FPAdder
from .fp_fma import FPFusedMultiplyAdd
from .fp_funcs import FPRsqrt
from .fp_mul import FPMultiplier
from .round_pack import rejecting

__all__ = ["RMSNorm"]


class RMSNorm(wiring.Component):
    """RMSNorm over rows of ``k`` elements of ``fmt`` with gains ``weights`` (K encodings)."""

    def __init__(self, fmt, k: int, weights, *, eps: float, seed_bits: int = 7):
        with rejecting(self):
            self.format = golden.check_function_format(fmt)
            self.k = check_int("k", k, 2, 1 << 16, fix="a row holds 2 to 65536 elements")
            self.eps = check_eps(eps)
            self.weights = np.asarray(weights).astype(np.uint64)
            if self.weights.shape != (k,):
                raise ValueError(f"RMSNorm gains have shape {self.weights.shape}, the rows have {k} elements; "
                                 f"pass one gain per element.")
            self.rsqrt = FPRsqrt(self.format, seed_bits=seed_bits)
        layout = FloatLayout(self.format)
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        fmt, k = self.format, self.k
        layout = FloatLayout(fmt)
        m.submodules.row = row = Memory(shape=unsigned(fmt.width), depth=k, init=[])
        m.submodules.gain = gain = Memory(shape=unsigned(fmt.width), depth=k, init=[int(w) for w in self.weights])
        write = row.write_port()
        read = row.read_port(domain="comb")
        gain_read = gain.read_port(domain="comb")

        index = Signal(range(k))
        ss = Signal(layout)
        r = Signal(layout)
        m.submodules.square = square = FPFusedMultiplyAdd(fmt)
        m.d.comb += [square.a.eq(self.i.payload), square.b.eq(self.i.payload), square.c.eq(ss),
                     write.addr.eq(index), write.data.eq(self.i.payload)]

        m.submodules.mean = mean = FPMultiplier(fmt)
        m.submodules.add_eps = add_eps = FPAdder(fmt)
        m.submodules.rsqrt = rsqrt = self.rsqrt
        m.d.comb += [mean.a.eq(ss), mean.b.as_value().eq(int(encode(np.array(1.0 / k), fmt))),
                     add_eps.a.eq(mean.r), add_eps.b.as_value().eq(int(encode(np.array(self.eps), fmt))),
                     rsqrt.a.eq(add_eps.r)]

        m.submodules.by_r = by_r = FPMultiplier(fmt)
        m.submodules.by_gain = by_gain = FPMultiplier(fmt)
        m.d.comb += [read.addr.eq(index), gain_read.addr.eq(index),
                     by_r.a.eq(read.data), by_r.b.eq(r), by_gain.a.eq(by_r.r), by_gain.b.eq(gain_read.data),
                     self.o.payload.eq(by_gain.r)]

        last = index == k - 1
        # Phases: 0 accumulate, 1 normalise, else scale (an If chain: every case covered).
        phase = Signal(range(3))
        with m.If(phase == 0):
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                m.d.comb += write.en.eq(1)
                m.d.sync += [ss.eq(square.r), index.eq(index + 1)]
                with m.If(last):
                    m.d.sync += [index.eq(0), phase.eq(1)]
        with m.Elif(phase == 1):
            m.d.sync += [r.eq(rsqrt.r), ss.as_value().eq(0), phase.eq(2)]
        with m.Else():
            m.d.comb += self.o.valid.eq(1)
            with m.If(self.o.ready):
                m.d.sync += index.eq(index + 1)
                with m.If(last):
                    m.d.sync += [index.eq(0), phase.eq(0)]
        return m
