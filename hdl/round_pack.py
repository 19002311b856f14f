"""Round-and-pack: one rounding of ``(-1)**sign * sig * 2**exp`` into a format, with its policies.

The RTL counterpart of ``golden.convert.round_pack``, shared by every FP block so rounding,
subnormal and overflow handling exist once.
"""

from contextlib import contextmanager

from amaranth import Module, Signal, Cat, Const, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.convert import check_policy
from ..golden.formats import Format, get
from .float_layout import FloatLayout
from .lzc import LeadingZeros, shift_right_sticky
from .pipeline import delay

__all__ = ["RoundPack", "RTL_ROUNDINGS", "check_rtl_policy", "policy_grid", "rejecting"]

RTL_ROUNDINGS = ("rne", "truncate")


@contextmanager
def rejecting(component):
    """Wrap a component's parameter checks: a rejected component must not warn as an unused one."""
    try:
        yield
    except ValueError:
        component._MustUse__silence = True
        raise


def check_rtl_policy(fmt: Format, rounding, overflow, subnormals) -> str:
    """The golden policy check, limited to what the RTL implements; returns the resolved overflow."""
    if rounding == "stochastic":
        raise ValueError(
            "rounding='stochastic' is implemented by the golden conversion only, not in RTL; "
            "use 'rne' or 'truncate'."
        )
    if not (fmt.signed and fmt.has_zero):
        raise ValueError(
            f"Format {fmt.name!r} is unsigned or has no mantissa; the FP RTL needs a signed format "
            f"with mantissa bits (E8M0 scales are handled by the MX unit)."
        )
    return check_policy(fmt, rounding, overflow, subnormals, roundings=RTL_ROUNDINGS)


class RoundPack(wiring.Component):
    """Round ``(-1)**sign * (sig + δ) * 2**exp`` into ``fmt``; ``sticky`` says ``0 < δ < 1``.

    ``sig`` may be unnormalised (any bit may lead); callers that set ``sticky`` keep at least
    ``man_bits + 3`` significant bits in ``sig``. ``nan``/``inf`` force the special results of the
    golden model. With ``stages=1`` a register sits after the normalising shift.

    Datapath: count leading zeros, shift the leading one to the top, shift right again by the
    subnormal deficit (keeping a sticky bit), round at ``man_bits`` below the top, then add the
    biased exponent so a rounding carry moves into the exponent field by itself.
    """

    def __init__(self, fmt: "str | Format", sig_width: int, exp_width: int, *, rounding="rne",
                 overflow=None, subnormals="keep", stages: int = 0):
        with rejecting(self):
            self.format = get(fmt)
            self.overflow = check_rtl_policy(self.format, rounding, overflow, subnormals)
            if stages not in (0, 1):
                raise ValueError(f"RoundPack takes stages=0 or 1, not {stages}.")
        self.rounding, self.subnormals = rounding, subnormals
        self.stages = stages
        self.sig_width, self.exp_width = sig_width, exp_width
        super().__init__({
            "sign": In(1), "sig": In(sig_width), "exp": In(signed(exp_width)),
            "sticky": In(1), "nan": In(1), "inf": In(1),
            "r": Out(FloatLayout(self.format)),
        })

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        man = fmt.man_bits
        pad = max(0, man + 3 - self.sig_width)
        width = self.sig_width + pad
        sig = Cat(Const(0, pad), self.sig)

        m.submodules.lzc = lzc = LeadingZeros(width)
        m.d.comb += lzc.value.eq(sig)
        norm = Signal(width)
        m.d.comb += norm.eq((sig << lzc.count)[:width])
        # Biased exponent field the value would have if it were normal (lead bit at 2^(field-bias)).
        biased = Signal(signed(self.exp_width + width.bit_length() + 2))
        m.d.comb += biased.eq(self.exp + (self.sig_width - 1 + fmt.bias) - lzc.count)
        zero = Signal()
        m.d.comb += zero.eq((self.sig == 0) & ~self.sticky)

        norm, biased, zero, sign, sticky, nan, inf = delay(
            m, [norm, biased, zero, self.sign, self.sticky, self.nan, self.inf], self.stages,
            name="norm")

        deficit = Signal(signed(len(biased) + 1))
        m.d.comb += deficit.eq(1 - biased)
        shifted, lost = shift_right_sticky(m, norm, deficit, man + 2, name="denorm")
        top = shifted[width - man - 1:]
        guard = shifted[width - man - 2]
        rest = Signal()
        m.d.comb += rest.eq(shifted[:width - man - 2].any() | lost | sticky)
        up = Signal()
        if self.rounding == "rne":
            m.d.comb += up.eq(guard & (rest | top[0]))
        rounded = Signal(man + 2)
        m.d.comb += rounded.eq(top + up)

        mag = Signal(signed(len(biased) + man + 2))
        m.d.comb += mag.eq(Mux(biased < 1, 0, biased - 1) * (1 << man) + rounded)
        out_mag = Signal(fmt.exp_bits + man)
        m.d.comb += out_mag.eq(mag)
        if self.subnormals == "flush":
            with m.If(mag < (1 << man)):
                m.d.comb += out_mag.eq(0)
        with m.If(mag > fmt.max_finite):
            if self.overflow == "saturate" or self.rounding == "truncate":
                m.d.comb += out_mag.eq(fmt.max_finite)
            else:
                m.d.comb += out_mag.eq(fmt.inf if fmt.has_inf else fmt.nan)
        with m.If(zero):
            m.d.comb += out_mag.eq(0)
        with m.If(inf):
            if fmt.has_inf:
                m.d.comb += out_mag.eq(fmt.inf)
            else:
                m.d.comb += out_mag.eq(fmt.max_finite if self.overflow == "saturate" else fmt.nan)

        result = Signal(fmt.width)
        m.d.comb += result.eq(Cat(out_mag, sign))
        if fmt.has_nan:
            # The canonical NaN is positive, also when an overflow or an Inf produced it.
            made_nan = nan
            if fmt.specials == "fn":
                made_nan = nan | (out_mag == fmt.magnitude_mask)
            with m.If(made_nan):
                m.d.comb += result.eq(fmt.nan)
        m.d.comb += self.r.eq(result)
        return m


def policy_grid(fmt: "str | Format") -> list[dict]:
    """Every policy combination the RTL implements for ``fmt``, as keyword dictionaries."""
    fmt = get(fmt)
    overflows = ("saturate",) if fmt.specials == "none" else ("inf", "saturate")
    return [{"rounding": r, "overflow": o, "subnormals": s}
            for r in RTL_ROUNDINGS for o in overflows for s in ("keep", "flush")]
