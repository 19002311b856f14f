"""Floating-point adder, bit-exact with ``golden.fp.add`` for the same format and policy."""

from amaranth import Module, Signal, Cat, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.formats import Format, get
from .float_layout import FloatLayout
from .fp_mul import check_latency
from .fp_unpack import exp_shape, unpack
from .lzc import shift_right_sticky
from .pipeline import delay
from .round_pack import RoundPack, check_rtl_policy, rejecting

__all__ = ["FPAdder", "GUARD_BITS", "jam"]

# Guard, round and sticky: with the shifted-out bits jammed into the last one, the aligned sum
# rounds exactly like the exact sum (the larger addend is normal whenever bits are shifted out,
# so at most one leading bit cancels and the rounding point stays two bits above the jammed bit).
GUARD_BITS = 3


def jam(m, value, sticky, *, name: str):
    """``value`` with ``sticky`` ORed into its last bit."""
    jammed = Signal(len(value), name=name)
    m.d.comb += jammed.eq(Cat(value[0] | sticky, value[1:]))
    return jammed


class FPAdder(wiring.Component):
    """``r = a + b`` rounded once into ``fmt`` after ``latency`` cycles (0: combinational).

    The larger-magnitude operand is found by comparing exponents and significands, the smaller one
    is shifted right under three guard bits with a sticky bit, and the sum or difference goes to
    :class:`RoundPack`. Registers: after the aligned add, after the normalising shift, then at the
    output.
    """

    def __init__(self, fmt: "str | Format", *, rounding="rne", overflow=None, subnormals="keep",
                 latency: int = 0):
        with rejecting(self):
            self.format = get(fmt)
            self.overflow = check_rtl_policy(self.format, rounding, overflow, subnormals)
            check_latency("FP adder", latency)
        self.rounding, self.subnormals = rounding, subnormals
        self.latency = latency
        layout = FloatLayout(self.format)
        super().__init__({"a": In(layout), "b": In(layout), "r": Out(layout)})

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        width = fmt.man_bits + 1 + GUARD_BITS
        a = unpack(m, self.a, fmt, self.subnormals, name="a")
        b = unpack(m, self.b, fmt, self.subnormals, name="b")

        a_big = Signal()
        m.d.comb += a_big.eq((a.exp > b.exp) | ((a.exp == b.exp) & (a.sig >= b.sig)))
        big_sig, small_sig = Signal(fmt.man_bits + 1), Signal(fmt.man_bits + 1)
        big_exp, small_exp = Signal(exp_shape(fmt)), Signal(exp_shape(fmt))
        big_sign, small_sign = Signal(), Signal()
        m.d.comb += [
            big_sig.eq(Mux(a_big, a.sig, b.sig)), small_sig.eq(Mux(a_big, b.sig, a.sig)),
            big_exp.eq(Mux(a_big, a.exp, b.exp)), small_exp.eq(Mux(a_big, b.exp, a.exp)),
            big_sign.eq(Mux(a_big, a.sign, b.sign)), small_sign.eq(Mux(a_big, b.sign, a.sign)),
        ]
        distance = Signal(range(2 * (1 << fmt.exp_bits) + 1))
        m.d.comb += distance.eq(big_exp - small_exp)
        aligned, lost = shift_right_sticky(m, small_sig << GUARD_BITS, distance, width, name="align")
        small = jam(m, aligned, lost, name="small")
        total = Signal(width + 1)
        with m.If(big_sign ^ small_sign):
            m.d.comb += total.eq((big_sig << GUARD_BITS) - small)
        with m.Else():
            m.d.comb += total.eq((big_sig << GUARD_BITS) + small)

        sign, exp, nan, inf = Signal(), Signal(exp_shape(fmt)), Signal(), Signal()
        m.d.comb += [
            nan.eq(a.nan | b.nan | (a.inf & b.inf & (a.sign != b.sign))),
            inf.eq(a.inf | b.inf),
            exp.eq(big_exp - GUARD_BITS),
            sign.eq(big_sign),
        ]
        with m.If(a.inf | b.inf):
            m.d.comb += sign.eq(Mux(a.inf, a.sign, b.sign))
        with m.Elif(total == 0):
            # Exact cancellation is +0 (rne and truncate); two zeros of the same sign keep it.
            m.d.comb += sign.eq(a.sign & b.sign)

        sign, total, exp, nan, inf = delay(m, [sign, total, exp, nan, inf], min(self.latency, 1),
                                           name="sum")
        m.submodules.round_pack = rp = RoundPack(
            fmt, len(total), len(exp), rounding=self.rounding, overflow=self.overflow,
            subnormals=self.subnormals, stages=1 if self.latency >= 2 else 0)
        m.d.comb += [rp.sign.eq(sign), rp.sig.eq(total), rp.exp.eq(exp), rp.sticky.eq(0),
                     rp.nan.eq(nan), rp.inf.eq(inf)]
        (out,) = delay(m, [rp.r.as_value()], max(self.latency - 2, 0), name="out")
        m.d.comb += self.r.eq(out)
        return m
