"""Format conversion, bit-exact with ``golden.convert.convert`` for the same formats and policy."""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.formats import Format, get
from .float_layout import FloatLayout
from .fp_mul import check_latency
from .fp_unpack import exp_shape, unpack
from .pipeline import delay
from .round_pack import RoundPack, check_rtl_policy, rejecting

__all__ = ["FPConvert"]


class FPConvert(wiring.Component):
    """``r = convert(a, src, dst)`` after ``latency`` cycles (0: combinational).

    ``subnormals="flush"`` flushes subnormal inputs of ``src`` and subnormal results in ``dst``, as
    the golden model does. NaN inputs into a format without NaN (fp6, fp4) are refused by the golden
    model; this block then outputs ``±max_finite`` and callers must not rely on it. Stochastic
    rounding is golden-only. Registers: after the normalising shift, then at the output.
    """

    def __init__(self, src: "str | Format", dst: "str | Format", *, rounding="rne", overflow=None,
                 subnormals="keep", latency: int = 0):
        with rejecting(self):
            self.src, self.format = get(src), get(dst)
            check_rtl_policy(self.src, "rne", "saturate", subnormals)
            self.overflow = check_rtl_policy(self.format, rounding, overflow, subnormals)
            check_latency("FP conversion", latency)
        self.rounding, self.subnormals = rounding, subnormals
        self.latency = latency
        super().__init__({"a": In(FloatLayout(self.src)), "r": Out(FloatLayout(self.format))})

    def elaborate(self, platform):
        m = Module()
        a = unpack(m, self.a, self.src, self.subnormals, name="a")
        exp_width = max(exp_shape(self.src).width, exp_shape(self.format).width) + 1
        m.submodules.round_pack = rp = RoundPack(
            self.format, len(a.sig), exp_width, rounding=self.rounding, overflow=self.overflow,
            subnormals=self.subnormals, stages=min(self.latency, 1))
        m.d.comb += [rp.sign.eq(a.sign), rp.sig.eq(a.sig), rp.exp.eq(a.exp), rp.sticky.eq(0),
                     rp.nan.eq(a.nan), rp.inf.eq(a.inf)]
        (out,) = delay(m, [rp.r.as_value()], max(self.latency - 1, 0), name="out")
        m.d.comb += self.r.eq(out)
        return m
