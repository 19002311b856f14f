"""Floating-point multiplier, bit-exact with ``golden.fp.mul`` for the same format and policy."""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.formats import Format, get
from .float_layout import FloatLayout
from .fp_unpack import exp_shape, unpack
from .pipeline import delay
from .round_pack import RoundPack, check_rtl_policy, rejecting
from .sig_mul import SignificandMultiplier

__all__ = ["FPMultiplier", "check_latency"]


def check_latency(block: str, latency: int):
    if not isinstance(latency, int) or latency < 0:
        raise ValueError(f"{block} latency {latency!r} is not allowed; use 0 (combinational) or more stages.")


class FPMultiplier(wiring.Component):
    """``r = a × b`` rounded once into ``fmt`` after ``latency`` cycles (0: combinational).

    ``result`` names another format for ``r`` (the MX unit multiplies fp4/fp8 elements into fp32,
    which is the golden fp32 product of the exactly converted elements).

    Registers: the first after the significand multiplier, the second after the normalising shift
    of the round-and-pack; further stages are added at the output (for retiming).
    """

    def __init__(self, fmt: "str | Format", *, rounding="rne", overflow=None, subnormals="keep",
                 latency: int = 0, result: "str | Format | None" = None):
        with rejecting(self):
            self.format = get(fmt)
            self.result = self.format if result is None else get(result)
            check_rtl_policy(self.format, rounding, "saturate", subnormals)
            self.overflow = check_rtl_policy(self.result, rounding, overflow, subnormals)
            check_latency("FP multiplier", latency)
        self.rounding, self.subnormals = rounding, subnormals
        self.latency = latency
        super().__init__({"a": In(FloatLayout(self.format)), "b": In(FloatLayout(self.format)),
                          "r": Out(FloatLayout(self.result))})

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        a = unpack(m, self.a, fmt, self.subnormals, name="a")
        b = unpack(m, self.b, fmt, self.subnormals, name="b")
        m.submodules.sig_mul = mul = SignificandMultiplier(fmt.man_bits + 1, fmt.man_bits + 1)
        shape = max(exp_shape(fmt), exp_shape(self.result), key=lambda s: s.width)
        sign, exp, nan, inf = Signal(), Signal(shape), Signal(), Signal()
        m.d.comb += [
            mul.a.eq(a.sig), mul.b.eq(b.sig),
            sign.eq(a.sign ^ b.sign),
            exp.eq(a.exp + b.exp),
            nan.eq(a.nan | b.nan | (a.inf & b.zero) | (b.inf & a.zero)),
            inf.eq(a.inf | b.inf),
        ]
        sign, product, exp, nan, inf = delay(m, [sign, mul.p, exp, nan, inf], min(self.latency, 1),
                                             name="product")
        m.submodules.round_pack = rp = RoundPack(
            self.result, len(product), len(exp), rounding=self.rounding, overflow=self.overflow,
            subnormals=self.subnormals, stages=1 if self.latency >= 2 else 0)
        m.d.comb += [rp.sign.eq(sign), rp.sig.eq(product), rp.exp.eq(exp), rp.sticky.eq(0),
                     rp.nan.eq(nan), rp.inf.eq(inf)]
        (out,) = delay(m, [rp.r.as_value()], max(self.latency - 2, 0), name="out")
        m.d.comb += self.r.eq(out)
        return m
