"""Fused multiply-add ``a·b + c`` with one rounding, bit-exact with ``golden.fp.fma``."""

from amaranth import Module, Signal, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.formats import Format, get
from .float_layout import FloatLayout
from .fp_add import GUARD_BITS, jam
from .fp_mul import check_latency
from .fp_unpack import exp_shape, unpack
from .lzc import LeadingZeros, shift_right_sticky
from .pipeline import delay
from .round_pack import RoundPack, check_rtl_policy, rejecting
from .sig_mul import SignificandMultiplier

__all__ = ["FPFusedMultiplyAdd"]


class FPFusedMultiplyAdd(wiring.Component):
    """``r = round(a × b + c)`` in ``fmt`` after ``latency`` cycles (0: combinational).

    The exact product (``2·(man_bits+1)`` bits) and ``c`` are both normalised into a window of that
    width, so the addend with the higher leading bit is normal; the other is shifted right under
    three guard bits with a jammed sticky bit, which rounds exactly like the exact sum. Registers:
    after the significand multiplier, after the aligned add, after the normalising shift of the
    round-and-pack, then at the output.
    """

    def __init__(self, fmt: "str | Format", *, rounding="rne", overflow=None, subnormals="keep",
                 latency: int = 0):
        with rejecting(self):
            self.format = get(fmt)
            self.overflow = check_rtl_policy(self.format, rounding, overflow, subnormals)
            check_latency("FP fused multiply-add", latency)
        self.rounding, self.subnormals = rounding, subnormals
        self.latency = latency
        layout = FloatLayout(self.format)
        super().__init__({"a": In(layout), "b": In(layout), "c": In(layout), "r": Out(layout)})

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        sig_bits = fmt.man_bits + 1
        window = 2 * sig_bits
        lead_shape = signed(exp_shape(fmt).width + 2)
        a = unpack(m, self.a, fmt, self.subnormals, name="a")
        b = unpack(m, self.b, fmt, self.subnormals, name="b")
        c = unpack(m, self.c, fmt, self.subnormals, name="c")
        m.submodules.sig_mul = mul = SignificandMultiplier(sig_bits, sig_bits)
        p_sign, p_exp, p_zero = Signal(), Signal(lead_shape), Signal()
        nan, inf, inf_sign = Signal(), Signal(), Signal()
        p_nan = a.nan | b.nan | (a.inf & b.zero) | (b.inf & a.zero)
        p_inf = a.inf | b.inf
        m.d.comb += [
            mul.a.eq(a.sig), mul.b.eq(b.sig),
            p_sign.eq(a.sign ^ b.sign), p_exp.eq(a.exp + b.exp), p_zero.eq(a.zero | b.zero),
            nan.eq(p_nan | c.nan | (p_inf & c.inf & (p_sign != c.sign))),
            inf.eq(p_inf | c.inf),
            inf_sign.eq(Mux(p_inf, p_sign, c.sign)),
        ]
        c_sig, c_exp, c_sign, c_zero = c.sig, c.exp, c.sign, c.zero
        (p_sig, p_sign, p_exp, p_zero, c_sig, c_exp, c_sign, c_zero, nan, inf, inf_sign) = delay(
            m, [mul.p, p_sign, p_exp, p_zero, c_sig, c_exp, c_sign, c_zero, nan, inf, inf_sign],
            min(self.latency, 1), name="product")

        def normalise(name, sig, lsb_exp):
            m.submodules[f"{name}_lzc"] = lzc = LeadingZeros(window)
            placed = sig << (window - len(sig))
            norm, lead = Signal(window, name=f"{name}_norm"), Signal(lead_shape, name=f"{name}_lead")
            m.d.comb += [
                lzc.value.eq(placed),
                norm.eq((placed << lzc.count)[:window]),
                lead.eq(lsb_exp + (len(sig) - 1) - lzc.count),
            ]
            return norm, lead

        p_norm, p_lead = normalise("p", p_sig, p_exp)
        c_norm, c_lead = normalise("c", c_sig, c_exp)
        c_big = Signal()
        m.d.comb += c_big.eq(p_zero | ((c_lead > p_lead) & ~c_zero))
        big, small = Signal(window), Signal(window)
        big_lead, big_sign, small_sign = Signal(lead_shape), Signal(), Signal()
        distance = Signal(signed(lead_shape.width + 1))
        m.d.comb += [
            big.eq(Mux(c_big, c_norm, p_norm)), small.eq(Mux(c_big, p_norm, c_norm)),
            big_lead.eq(Mux(c_big, c_lead, p_lead)),
            big_sign.eq(Mux(c_big, c_sign, p_sign)), small_sign.eq(Mux(c_big, p_sign, c_sign)),
            distance.eq(Mux(c_big, c_lead - p_lead, p_lead - c_lead)),
        ]
        aligned, lost = shift_right_sticky(m, small << GUARD_BITS, distance, window + GUARD_BITS,
                                           name="align")
        small_j = jam(m, aligned, lost, name="small")
        # Equal leads can leave the "small" addend larger (nothing is shifted out then): the signed
        # difference says so and its magnitude is exact.
        total = Signal(signed(window + GUARD_BITS + 2))
        with m.If(big_sign ^ small_sign):
            m.d.comb += total.eq((big << GUARD_BITS) - small_j)
        with m.Else():
            m.d.comb += total.eq((big << GUARD_BITS) + small_j)
        magnitude, sign, exp = Signal(window + GUARD_BITS + 1), Signal(), Signal(lead_shape)
        m.d.comb += [
            magnitude.eq(Mux(total < 0, -total, total)),
            sign.eq(big_sign ^ (total < 0)),
            exp.eq(big_lead - (window - 1) - GUARD_BITS),
        ]
        with m.If(inf):
            m.d.comb += sign.eq(inf_sign)
        with m.Elif(total == 0):
            # Exact cancellation is +0 (rne and truncate); zeros of the same sign keep it.
            m.d.comb += sign.eq(p_sign & c_sign)

        sign, magnitude, exp, nan, inf = delay(m, [sign, magnitude, exp, nan, inf],
                                               1 if self.latency >= 2 else 0, name="sum")
        m.submodules.round_pack = rp = RoundPack(
            fmt, len(magnitude), len(exp), rounding=self.rounding, overflow=self.overflow,
            subnormals=self.subnormals, stages=1 if self.latency >= 3 else 0)
        m.d.comb += [rp.sign.eq(sign), rp.sig.eq(magnitude), rp.exp.eq(exp), rp.sticky.eq(0),
                     rp.nan.eq(nan), rp.inf.eq(inf)]
        (out,) = delay(m, [rp.r.as_value()], max(self.latency - 3, 0), name="out")
        m.d.comb += self.r.eq(out)
        return m
