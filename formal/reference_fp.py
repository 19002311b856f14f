"""Plain reference forms of the FP multiplier and adder, written to be read, not to be fast.

They follow ``golden.convert.round_pack`` and ``golden.fp`` step by step (bit length, one signed
shift to the rounding point, exact alignment under the larger exponent with a sticky correction)
instead of the normalise/denormalise/jam structure of :mod:`.fp_mul` and :mod:`.fp_add`. Formal
equivalence proofs take these as the golden RTL; the significand multiplier is the same
:class:`~.sig_mul.SignificandMultiplier`, identically fed, so it can serve as a cut point.
Combinational only: proof and test reference RTL, never part of a generated design.
"""

from amaranth import Module, Signal, Cat, Const, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.formats import Format, get
from ..hdl.float_layout import FloatLayout
from ..hdl.fp_unpack import exp_shape, unpack
from ..hdl.round_pack import check_rtl_policy, rejecting
from ..hdl.sig_mul import SignificandMultiplier

__all__ = ["ReferenceMultiplier", "ReferenceAdder", "ReferenceFMA", "reference_round_pack"]


def _bit_length(m, value, *, name: str):
    """Number of significant bits of ``value`` (0 for 0)."""
    length = Signal(range(len(value) + 1), name=name)
    for bit in range(len(value)):
        with m.If(value[bit]):
            m.d.comb += length.eq(bit + 1)
    return length


def reference_round_pack(m, fmt: Format, sign, sig, exp, sticky, nan, inf, *, rounding, overflow,
                         subnormals):
    """Encoding of ``(-1)**sign * (sig + δ) * 2**exp`` rounded once, written as the golden model is."""
    man, bias = fmt.man_bits, fmt.bias
    wide = signed(len(exp) + 8)
    n = _bit_length(m, sig, name="sig_length")
    lead = Signal(wide)
    m.d.comb += lead.eq(exp + n - 1)
    # q: exponent of the last kept bit — man_bits below the lead, but never below the subnormal LSB.
    q = Signal(wide)
    m.d.comb += q.eq(Mux(lead > fmt.emin, lead, fmt.emin) - man)
    shift = Signal(wide)
    m.d.comb += shift.eq(q - exp)

    kept = Signal(len(sig) + man + 2)
    remainder, half = Signal(len(sig)), Signal(len(sig) + 1)
    # Beyond len(sig) + 1 every bit is below half a unit: the same result as at len(sig) + 1.
    right = Signal(range(len(sig) + 2))
    m.d.comb += right.eq(Mux(shift > len(sig) + 1, len(sig) + 1, shift))
    with m.If(shift <= 0):
        # Nothing is dropped: the value fits with room to spare (left shifts are exact).
        m.d.comb += kept.eq(sig << (-shift)[:(man + 1).bit_length()])
    with m.Else():
        m.d.comb += [
            kept.eq(sig >> right),
            remainder.eq(sig - ((sig >> right) << right)),
            half.eq((1 << right) >> 1),
        ]
        if rounding == "rne":
            with m.If((remainder > half) |
                      ((remainder == half) & (sticky | (sig >> right)[0]))):
                m.d.comb += kept.eq((sig >> right) + 1)

    mag = Signal(signed(wide.width + man + 2))
    m.d.comb += mag.eq(kept + ((q + man + bias - 1) << man))
    result_mag = Signal(fmt.exp_bits + man)
    m.d.comb += result_mag.eq(mag)
    if subnormals == "flush":
        with m.If(mag < (1 << man)):
            m.d.comb += result_mag.eq(0)
    with m.If(mag > fmt.max_finite):
        if overflow == "saturate" or rounding == "truncate":
            m.d.comb += result_mag.eq(fmt.max_finite)
        else:
            m.d.comb += result_mag.eq(fmt.inf if fmt.has_inf else fmt.nan)
    with m.If((sig == 0) & ~sticky):
        m.d.comb += result_mag.eq(0)
    with m.If(inf):
        if fmt.has_inf:
            m.d.comb += result_mag.eq(fmt.inf)
        else:
            m.d.comb += result_mag.eq(fmt.max_finite if overflow == "saturate" else fmt.nan)
    result = Signal(fmt.width)
    m.d.comb += result.eq(Cat(result_mag, sign))
    if fmt.has_nan:
        # The canonical NaN is positive, also when an overflow or an Inf produced it.
        made_nan = nan
        if fmt.specials == "fn":
            made_nan = nan | (result_mag == fmt.magnitude_mask)
        with m.If(made_nan):
            m.d.comb += result.eq(fmt.nan)
    return result


class _Reference(wiring.Component):
    def __init__(self, fmt, *, rounding="rne", overflow=None, subnormals="keep"):
        with rejecting(self):
            self.format = get(fmt)
            self.overflow = check_rtl_policy(self.format, rounding, overflow, subnormals)
        self.rounding, self.subnormals = rounding, subnormals
        self.latency = 0
        layout = FloatLayout(self.format)
        super().__init__({"a": In(layout), "b": In(layout), "r": Out(layout)})

    def _pack(self, m, sign, sig, exp, sticky, nan, inf):
        return reference_round_pack(m, self.format, sign, sig, exp, sticky, nan, inf,
                                    rounding=self.rounding, overflow=self.overflow,
                                    subnormals=self.subnormals)


class ReferenceMultiplier(_Reference):
    """``r = round(a × b)``: exact product, then :func:`reference_round_pack`."""

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        a = unpack(m, self.a, fmt, self.subnormals, name="a")
        b = unpack(m, self.b, fmt, self.subnormals, name="b")
        m.submodules.sig_mul = mul = SignificandMultiplier(fmt.man_bits + 1, fmt.man_bits + 1)
        m.d.comb += [mul.a.eq(a.sig), mul.b.eq(b.sig)]
        nan = a.nan | b.nan | (a.inf & b.zero) | (b.inf & a.zero)
        m.d.comb += self.r.eq(self._pack(m, a.sign ^ b.sign, mul.p, a.exp + b.exp, Const(0), nan,
                                         a.inf | b.inf))
        return m


class ReferenceAdder(_Reference):
    """``r = round(a + b)``: both addends aligned under the larger exponent with three guard bits.

    Bits of the smaller addend that fall off the bottom make a sticky bit; a difference then
    subtracts one unit and hands the sticky bit to the rounding, as the golden model does.
    """

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        guard = 3
        a = unpack(m, self.a, fmt, self.subnormals, name="a")
        b = unpack(m, self.b, fmt, self.subnormals, name="b")
        top = Signal(exp_shape(fmt))
        m.d.comb += top.eq(Mux(a.exp > b.exp, a.exp, b.exp))

        def align(operand, name):
            placed = operand.sig << guard
            distance = Signal(range(2 * (1 << fmt.exp_bits) + 1), name=f"{name}_distance")
            m.d.comb += distance.eq(top - operand.exp)
            x, lost = Signal(len(placed), name=f"{name}_x"), Signal(name=f"{name}_lost")
            m.d.comb += [
                x.eq(Mux(distance >= len(placed), 0, placed >> distance)),
                lost.eq(Mux(distance >= len(placed), placed != 0,
                            placed != ((placed >> distance) << distance)[:len(placed)])),
            ]
            return x, lost

        x1, lost1 = align(a, "a")
        x2, lost2 = align(b, "b")
        sticky = Signal()
        m.d.comb += sticky.eq(lost1 | lost2)
        same = a.sign == b.sign
        difference = Signal(signed(len(x1) + 2))
        m.d.comb += difference.eq(x1 - x2)
        magnitude = Signal(len(x1) + 1)
        m.d.comb += magnitude.eq(Mux(same, x1 + x2,
                                     Mux(difference < 0, -difference, difference) - (sticky & ~same)))
        sign = Signal()
        m.d.comb += sign.eq(Mux(same | (difference > 0), a.sign, b.sign))
        nan = Signal()
        m.d.comb += nan.eq(a.nan | b.nan | (a.inf & b.inf & (a.sign != b.sign)))
        with m.If(a.inf | b.inf):
            m.d.comb += sign.eq(Mux(a.inf, a.sign, b.sign))
        with m.Elif((magnitude == 0) & ~sticky):
            m.d.comb += sign.eq(a.sign & b.sign)
        m.d.comb += self.r.eq(self._pack(m, sign, magnitude, top - guard, sticky & ~nan, nan,
                                         a.inf | b.inf))
        return m


class ReferenceFMA(wiring.Component):
    """``r = round(a × b + c)`` with one rounding, for the small formats: the exact product and the
    addend placed in one integer whose least bit is the least exponent either can have, summed
    exactly (no alignment, no sticky bit), then :func:`reference_round_pack`. The width grows with
    the exponent range (66 bits for e5m2), so this reference is for proofs of 8-bit formats."""

    def __init__(self, fmt, *, rounding="rne", overflow=None, subnormals="keep"):
        with rejecting(self):
            self.format = get(fmt)
            self.overflow = check_rtl_policy(self.format, rounding, overflow, subnormals)
            if self.format.width > 8:
                raise ValueError(f"The reference FMA places every value of {self.format.name} in one integer; use "
                                 f"it for formats of at most 8 bits.")
        self.rounding, self.subnormals = rounding, subnormals
        self.latency = 0
        layout = FloatLayout(self.format)
        super().__init__({"a": In(layout), "b": In(layout), "c": In(layout), "r": Out(layout)})

    def elaborate(self, platform):
        m = Module()
        fmt, man = self.format, self.format.man_bits
        a, b, c = (unpack(m, getattr(self, n), fmt, self.subnormals, name=n) for n in "abc")
        low = 2 * (fmt.emin - man)  # the least bit of any product (and below any addend's)
        width = 2 * (man + 1) + 2 * (fmt.emax - man) - low + 2
        m.submodules.sig_mul = mul = SignificandMultiplier(man + 1, man + 1)
        m.d.comb += [mul.a.eq(a.sig), mul.b.eq(b.sig)]
        product, addend = Signal(width), Signal(width)
        m.d.comb += [product.eq(mul.p << (a.exp + b.exp - low).as_unsigned()),
                     addend.eq(c.sig << (c.exp - low).as_unsigned())]
        sp = a.sign ^ b.sign
        total = Signal(signed(width + 2))
        m.d.comb += total.eq(Mux(sp, -product, product) + Mux(c.sign, -addend, addend))
        magnitude = Signal(width + 1)
        m.d.comb += magnitude.eq(Mux(total < 0, -total, total))
        product_nan = a.nan | b.nan | (a.inf & b.zero) | (b.inf & a.zero)
        product_inf = (a.inf | b.inf) & ~product_nan
        nan, inf, sign = Signal(), Signal(), Signal()
        m.d.comb += [nan.eq(product_nan | c.nan | (product_inf & c.inf & (sp != c.sign))),
                     inf.eq((product_inf | c.inf) & ~nan)]
        with m.If(inf):
            m.d.comb += sign.eq(Mux(product_inf, sp, c.sign))
        with m.Elif(total == 0):
            # Exact cancellation is +0; two zeros of one sign keep it (the golden's rule).
            m.d.comb += sign.eq(sp & c.sign)
        with m.Else():
            m.d.comb += sign.eq(total < 0)
        m.d.comb += self.r.eq(reference_round_pack(m, fmt, sign, magnitude, Const(low, signed(16)), Const(0), nan,
                                                   inf, rounding=self.rounding, overflow=self.overflow,
                                                   subnormals=self.subnormals))
        return m
