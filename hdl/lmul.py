"""L-Mul multiplier: a floating-point multiply done by one integer add of the magnitudes.

Bit-exact with :func:`lutforge.golden.lmul.lmul` for the same format, policy and offset.
"""

from amaranth import Module, Signal, Cat, Const
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.formats import Format, get
from ..golden.lmul import LMulPolicy, default_offset
from .float_layout import FloatLayout
from .pipeline import delay
from .round_pack import rejecting

__all__ = ["LMulMultiplier"]


class LMulMultiplier(wiring.Component):
    """``r = lmul(a, b)`` after ``latency`` clock cycles (0: combinational).

    With ``latency >= 1`` the first register sits right after the magnitude adder, the others at
    the output, so the adder and the special-case select are in different stages.
    """

    def __init__(self, fmt: "str | Format", policy: "LMulPolicy | str | None" = None, *,
                 offset: "int | None" = None, latency: int = 0):
        with rejecting(self):
            self._configure(fmt, policy, offset, latency)
        layout = FloatLayout(self.format)
        super().__init__({"a": In(layout), "b": In(layout), "r": Out(layout)})

    def _configure(self, fmt, policy, offset, latency):
        self.format = get(fmt)
        if not self.format.signed:
            raise ValueError(f"L-Mul needs a signed format; {self.format.name!r} has no sign bit.")
        self.policy = LMulPolicy.of(policy)
        self.offset = default_offset(self.format) if offset is None else int(offset)
        if not 0 <= self.offset < (1 << (self.format.width - 1)):
            raise ValueError(
                f"L-Mul offset {self.offset} does not fit the {self.format.width - 1}-bit magnitude "
                f"of {self.format.name}; use 0..{(1 << (self.format.width - 1)) - 1}."
            )
        if latency < 0:
            raise ValueError(f"L-Mul latency {latency} is negative; use 0 (combinational) or more stages.")
        self.latency = latency

    def _classify(self, m, operand):
        """(is_zero, is_inf, is_nan) of one operand under the policy."""
        fmt, pol = self.format, self.policy
        mag = operand.as_value()[:fmt.width - 1]
        zero = Const(0)
        if pol.zero == "exact":
            zero = mag == 0
        if pol.subnormal == "flush":
            zero = zero | ((operand.exponent == 0) & (mag != 0))
        inf = nan = Const(0)
        if pol.nan_inf == "propagate" and fmt.specials == "ieee":
            inf = mag == fmt.inf
            nan = mag > fmt.inf
        elif pol.nan_inf == "propagate" and fmt.specials == "fn":
            nan = mag == fmt.magnitude_mask
        return zero, inf, nan

    def elaborate(self, platform):
        m = Module()
        fmt, pol = self.format, self.policy
        w = fmt.width

        sign = Signal()
        total = Signal(range(-self.offset, 2 * fmt.magnitude_mask + 1))
        zero, inf, nan = Signal(), Signal(), Signal()
        za, ia, na = self._classify(m, self.a)
        zb, ib, nb = self._classify(m, self.b)
        m.d.comb += [
            sign.eq(self.a.sign ^ self.b.sign),
            total.eq(self.a.as_value()[:w - 1] + self.b.as_value()[:w - 1] - self.offset),
            zero.eq(za | zb),
            inf.eq(ia | ib),
            nan.eq(na | nb | ((ia | ib) & (za | zb))),
        ]

        stage = delay(m, [sign, total, zero, inf, nan], min(self.latency, 1), name="add")
        sign_s, total_s, zero_s, inf_s, nan_s = stage

        signed_zero = Cat(Const(0, w - 1), sign_s)
        result = Signal(w)
        m.d.comb += result.eq(total_s[:w] ^ signed_zero)
        if pol.overflow != "wrap":
            over = total_s > fmt.max_finite
            if pol.overflow == "saturate":
                top = fmt.max_finite
            else:
                top = fmt.inf if fmt.has_inf else fmt.nan
            with m.If(over):
                m.d.comb += result.eq(Cat(Const(top, w - 1), sign_s))
        if pol.underflow == "flush":
            with m.If(total_s < (1 << fmt.man_bits)):
                m.d.comb += result.eq(signed_zero)
        with m.If(zero_s):
            m.d.comb += result.eq(signed_zero)
        if fmt.has_inf:
            with m.If(inf_s):
                m.d.comb += result.eq(Cat(Const(fmt.inf, w - 1), sign_s))
        elif fmt.has_nan:
            with m.If(inf_s):
                m.d.comb += result.eq(Cat(Const(fmt.nan, w - 1), sign_s))
        if fmt.has_nan:
            with m.If(nan_s):
                m.d.comb += result.eq(fmt.nan)

        (out,) = delay(m, [result], max(self.latency - 1, 0), name="out")
        m.d.comb += self.r.eq(out)
        return m
