"""Softmax unit over rows of n scores, bit-exact with :func:`lutforge.golden.softmax.softmax`, as a
stream of rows (masked scores arrive as -Inf).

Three passes over a row buffer:

1. **max**: the scores are written to the buffer while a comparator keeps the first maximum
   (NaN compares as -Inf, -0 equals +0: the golden's ``argmax``);
2. **exp and sum**: each score is read back, ``e = exp(RN(s - m))``
   (:class:`~lutforge.hdl.fp_funcs.FPExp`, combinational) overwrites it and ``S = RN(S + e)``
   accumulates in index order (from +0, which adds exactly); then ``r = reciprocal(S)``;
3. **scale**: ``p = RN(e·r)`` leaves on ``o``, one element per cycle while ``o`` is ready.

A row takes 3n + 1 cycles.
"""

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden import fp_funcs as golden
from ..support.checks import check_int
from .float_layout import FloatLayout
from .fp_add import FPAdder
from .fp_funcs import FPExp, FPReciprocal
from .fp_mul import FPMultiplier
from .round_pack import rejecting

__all__ = ["Softmax"]


def order_key(m, value, fmt, *, name: str):
    """A signed integer that orders encodings as the golden's ``argmax`` does: by value, -0 = +0,
    NaN as -Inf."""
    mag = value.as_value()[:fmt.exp_bits + fmt.man_bits]
    sign = value.as_value()[-1]
    key = Signal(signed(fmt.exp_bits + fmt.man_bits + 1), name=name)
    m.d.comb += key.eq(Mux(mag > fmt.inf, -fmt.inf, Mux(sign, -mag, mag)))
    return key


class Softmax(wiring.Component):
    """Softmax over rows of ``n`` encodings of ``fmt`` (module docstring)."""

    def __init__(self, fmt, n: int, *, seed_bits: int = 7):
        with rejecting(self):
            self.format = golden.check_function_format(fmt)
            self.n = check_int("n", n, 2, 1 << 16, fix="a row holds 2 to 65536 scores")
            self.exp = FPExp(self.format)
            self.recip = FPReciprocal(self.format, seed_bits=seed_bits)
        layout = FloatLayout(self.format)
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        fmt, n = self.format, self.n
        layout = FloatLayout(fmt)
        m.submodules.row = row = Memory(shape=unsigned(fmt.width), depth=n, init=[])
        write = row.write_port()
        read = row.read_port(domain="comb")
        index = Signal(range(n))
        last = index == n - 1
        best = Signal(layout)
        total = Signal(layout)
        r = Signal(layout)
        stored = Signal(layout)
        m.d.comb += [read.addr.eq(index), write.addr.eq(index), stored.as_value().eq(read.data)]

        new_key = order_key(m, self.i.payload, fmt, name="new_key")
        best_key = order_key(m, best, fmt, name="best_key")

        m.submodules.exp_unit = exp = self.exp
        m.submodules.sub = sub = FPAdder(fmt)
        m.submodules.sum = acc = FPAdder(fmt)
        m.submodules.recip_unit = recip = self.recip
        m.submodules.scale = scale = FPMultiplier(fmt)
        neg_best = Cat(best.as_value()[:-1], ~best.as_value()[-1])
        m.d.comb += [sub.a.eq(stored), sub.b.as_value().eq(neg_best), exp.a.eq(sub.r),
                     acc.a.eq(total), acc.b.eq(exp.r), recip.a.eq(total),
                     scale.a.eq(stored), scale.b.eq(r), self.o.payload.eq(scale.r)]

        # Phases: 0 max, 1 exp and sum, 2 reciprocal, else scale (an If chain: every case covered).
        phase = Signal(range(4))
        with m.If(phase == 0):
            m.d.comb += [self.i.ready.eq(1), write.data.eq(self.i.payload.as_value())]
            with m.If(self.i.valid):
                m.d.comb += write.en.eq(1)
                m.d.sync += index.eq(index + 1)
                with m.If((index == 0) | (new_key > best_key)):
                    m.d.sync += best.eq(self.i.payload)
                with m.If(last):
                    m.d.sync += [index.eq(0), phase.eq(1), total.as_value().eq(0)]
        with m.Elif(phase == 1):
            m.d.comb += [write.data.eq(exp.r.as_value()), write.en.eq(1)]
            m.d.sync += [total.eq(acc.r), index.eq(index + 1)]
            with m.If(last):
                m.d.sync += [index.eq(0), phase.eq(2)]
        with m.Elif(phase == 2):
            m.d.sync += [r.eq(recip.r), phase.eq(3)]
        with m.Else():
            m.d.comb += self.o.valid.eq(1)
            with m.If(self.o.ready):
                m.d.sync += index.eq(index + 1)
                with m.If(last):
                    m.d.sync += [index.eq(0), phase.eq(0)]
        return m
