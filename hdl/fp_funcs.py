"""Reciprocal, reciprocal square root and exponential units, bit-exact with
:func:`lutforge.golden.fp_funcs.reciprocal`, :func:`~lutforge.golden.fp_funcs.rsqrt` and
:func:`~lutforge.golden.fp_funcs.exp` (the methods, seed tables, step counts and polynomial are
defined there).

**exp**: a multiplier forms ``t = a·log2 e``; the integer ``n = round(t)`` (ties to even) comes
from shifting t's significand, with a range check against the golden's limit; ``n`` goes back to
an encoding (exact), an adder forms ``f = t - n``, a Horner chain of FMAs evaluates ``2^f`` and a
:class:`RoundPack` scales it by ``2^n``. ``latency`` sets each multiplier's, adder's and FMA's
registers, the side signals travel alongside.

Datapath: the operand is normalised (a leading-zero count shifts subnormals up), the leading
fraction bits address a ROM of seeds, each Newton step runs through :class:`FPFusedMultiplyAdd`
instances on the mantissa alone (exponent fixed at 0 or 1, so nothing can overflow), and a
:class:`RoundPack` rescales the result by the operand's exponent, rounding only subnormal or
out-of-range results. ``latency`` sets each FMA's (and the rsqrt's squaring multiplier's)
pipeline registers; the operand's sign, exponent and class travel alongside in registers, so the
unit takes one operand per cycle at any latency.
"""

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden import fp_funcs as golden
from ..golden.convert import encode
from ..golden.formats import Format
from .float_layout import FloatLayout
from .fp_add import FPAdder
from .fp_fma import FPFusedMultiplyAdd
from .fp_mul import FPMultiplier, check_latency
from .fp_unpack import exp_shape, unpack
from .lzc import LeadingZeros
from .pipeline import delay
from .round_pack import RoundPack, rejecting

__all__ = ["FPReciprocal", "FPRsqrt", "FPExp"]


def _rom(m, index, entries, layout, *, name: str):
    """A combinational ROM: ``entries[index]`` as a ``layout`` signal."""
    out = Signal(layout, name=name)
    with m.Switch(index):
        for i, value in enumerate(entries):
            with m.Case(i):
                m.d.comb += out.as_value().eq(int(value))
    return out


def _encoding(fmt: Format, frac, exp_unbiased: int, sign: int):
    """The encoding ``(-1)^sign · (1 + frac/2^m) · 2^exp_unbiased`` as a value."""
    return Cat(frac, Const(exp_unbiased + fmt.bias, fmt.exp_bits), Const(sign, 1))


class _NewtonUnit(wiring.Component):
    """Shared front end (normalise, seed index) and back end (rescale, specials)."""

    def __init__(self, fmt, seed_bits: int, iterations, latency: int, what: str, steps_of):
        with rejecting(self):
            self.format = golden.check_function_format(fmt)
            golden.check_seed_bits(seed_bits)
            check_latency(what, latency)
            self.seed_bits = seed_bits
            self.iterations = steps_of(self.format, seed_bits) if iterations is None else iterations
            if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) or not 0 <= self.iterations <= 4:
                raise ValueError(f"{what} iterations={self.iterations!r} is outside 0 to 4; give 0 to 4, or a "
                                 f"larger seed table (seed_bits) that needs fewer steps.")
        self.latency = latency
        layout = FloatLayout(self.format)
        super().__init__({"a": In(layout), "r": Out(layout)})

    def _front(self, m):
        fmt = self.format
        man = fmt.man_bits
        a = unpack(m, self.a, fmt, "keep", name="a")
        m.submodules.lzc = lzc = LeadingZeros(man + 1)
        norm = Signal(man + 1)
        big_e = Signal(signed(len(a.exp) + 2))
        m.d.comb += [lzc.value.eq(a.sig), norm.eq((a.sig << lzc.count)[:man + 1]),
                     big_e.eq(a.exp + man - lzc.count)]
        frac = norm[:man]
        s = self.seed_bits
        index = frac[man - s:] if s <= man else Cat(Const(0, s - man), frac)
        return a, frac, big_e, index

    def _back(self, m, y, sign, shift, nan, inf, zero_result):
        """``r = ±y·2^shift`` rounded, with the special results forced."""
        fmt = self.format
        yu = unpack(m, y, fmt, "keep", name="y")
        m.submodules.rescale = rp = RoundPack(fmt, fmt.man_bits + 1, len(shift) + 1)
        m.d.comb += [rp.sign.eq(sign), rp.sig.eq(Mux(zero_result, 0, yu.sig)),
                     rp.exp.eq(yu.exp + shift), rp.sticky.eq(0), rp.nan.eq(nan), rp.inf.eq(inf),
                     self.r.eq(rp.r)]


class FPReciprocal(_NewtonUnit):
    """``r = 1/a`` by :func:`lutforge.golden.fp_funcs.reciprocal`'s method, after
    ``2 · iterations · latency`` cycles."""

    def __init__(self, fmt, *, seed_bits: int = 7, iterations: "int | None" = None, latency: int = 0):
        super().__init__(fmt, seed_bits, iterations, latency, "FP reciprocal", golden.reciprocal_steps)

    @property
    def total_latency(self) -> int:
        return 2 * self.iterations * self.latency

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        layout = FloatLayout(fmt)
        a, frac, big_e, index = self._front(m)
        seeds, _ = golden.reciprocal_seeds(fmt, self.seed_bits)
        y = _rom(m, index, seeds, layout, name="seed")
        neg_m = Signal(layout)
        m.d.comb += neg_m.as_value().eq(_encoding(fmt, frac, 0, 1))
        one = int(encode(np.array(1.0), fmt))
        side = [a.sign, big_e, a.nan, a.zero, a.inf]
        for step in range(self.iterations):
            m.submodules[f"err{step}"] = f1 = FPFusedMultiplyAdd(fmt, latency=self.latency)
            m.d.comb += [f1.a.eq(neg_m), f1.b.eq(y), f1.c.as_value().eq(one)]
            y_held, = delay(m, [y], self.latency, name=f"y{step}")
            m.submodules[f"step{step}"] = f2 = FPFusedMultiplyAdd(fmt, latency=self.latency)
            m.d.comb += [f2.a.eq(y_held), f2.b.eq(f1.r), f2.c.eq(y_held)]
            y = f2.r
            neg_m, = delay(m, [neg_m], 2 * self.latency, name=f"m{step}")
            side = delay(m, side, 2 * self.latency, name=f"side{step}")
        sign, e, nan, zero, inf = side
        self._back(m, y, sign, -e, nan, zero, inf)
        return m


class FPRsqrt(_NewtonUnit):
    """``r = 1/sqrt(a)`` by :func:`lutforge.golden.fp_funcs.rsqrt`'s method, after
    ``3 · iterations · latency`` cycles."""

    def __init__(self, fmt, *, seed_bits: int = 7, iterations: "int | None" = None, latency: int = 0):
        super().__init__(fmt, seed_bits, iterations, latency, "FP rsqrt", golden.rsqrt_steps)

    @property
    def total_latency(self) -> int:
        return 3 * self.iterations * self.latency

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        layout = FloatLayout(fmt)
        a, frac, big_e, index = self._front(m)
        odd = big_e[0]
        seeds, _ = golden.rsqrt_seeds(fmt, self.seed_bits)
        y = _rom(m, Cat(index, odd), seeds, layout, name="seed")
        # -X/2: X = M (even exponent) or 2M (odd), so -X/2 = -M·2^-1 or -M.
        neg_half_x = Signal(layout)
        with m.If(odd):
            m.d.comb += neg_half_x.as_value().eq(_encoding(fmt, frac, 0, 1))
        with m.Else():
            m.d.comb += neg_half_x.as_value().eq(_encoding(fmt, frac, -1, 1))
        half = int(encode(np.array(0.5), fmt))
        side = [a.sign, big_e, a.nan, a.zero, a.inf]
        for step in range(self.iterations):
            m.submodules[f"sq{step}"] = sq = FPMultiplier(fmt, latency=self.latency)
            m.d.comb += [sq.a.eq(y), sq.b.eq(y)]
            x_held, y_held = delay(m, [neg_half_x, y], self.latency, name=f"x{step}")
            m.submodules[f"err{step}"] = f1 = FPFusedMultiplyAdd(fmt, latency=self.latency)
            m.d.comb += [f1.a.eq(x_held), f1.b.eq(sq.r), f1.c.as_value().eq(half)]
            y_held, = delay(m, [y_held], self.latency, name=f"y{step}")
            m.submodules[f"step{step}"] = f2 = FPFusedMultiplyAdd(fmt, latency=self.latency)
            m.d.comb += [f2.a.eq(y_held), f2.b.eq(f1.r), f2.c.eq(y_held)]
            y = f2.r
            neg_half_x, = delay(m, [neg_half_x], 3 * self.latency, name=f"m{step}")
            side = delay(m, side, 3 * self.latency, name=f"side{step}")
        sign, e, nan, zero, inf = side
        even_e = Signal(signed(len(e)))
        m.d.comb += even_e.eq(e - e[0])
        # rsqrt(±0) = ±Inf, rsqrt(+Inf) = +0, negative non-zero (and NaN) give NaN.
        self._back(m, y, sign & zero, -(even_e >> 1), nan | (sign & ~zero), zero, inf)
        return m


class FPExp(wiring.Component):
    """``r = e^a`` by :func:`lutforge.golden.fp_funcs.exp`'s method, after
    ``(2 + degree) · latency`` cycles."""

    def __init__(self, fmt, *, latency: int = 0):
        with rejecting(self):
            self.format = golden.check_function_format(fmt)
            check_latency("FP exp", latency)
        self.latency = latency
        self.degree = golden.exp_degree(self.format)
        layout = FloatLayout(self.format)
        super().__init__({"a": In(layout), "r": Out(layout)})

    @property
    def total_latency(self) -> int:
        return (2 + self.degree) * self.latency

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        man = fmt.man_bits
        layout = FloatLayout(fmt)
        log2e, coeffs = golden.exp_constants(fmt)
        limit = 2 * (fmt.emax + man + 2)
        lat = self.latency

        m.submodules.scale = t_mul = FPMultiplier(fmt, latency=lat)
        m.d.comb += [t_mul.a.eq(self.a), t_mul.b.as_value().eq(int(log2e))]
        a_nan, = delay(m, [unpack(m, self.a, fmt, "keep", name="a").nan], lat, name="nan_t")
        t = unpack(m, t_mul.r, fmt, "keep", name="t")

        # |t|·2^(man+1) = sig·2^(exp+man+1) as an integer: exact down to |t| >= 1/2 (normal sig); below
        # that n = 0 whatever the bits, so nothing is shifted in.
        int_bits = limit.bit_length() + 1
        frac_bits = man + 1
        shifted = Signal(man + 1 + int_bits + frac_bits)
        with m.If((t.exp >= -frac_bits) & (t.exp < int_bits)):
            m.d.comb += shifted.eq(t.sig << (t.exp + frac_bits).as_unsigned())
        whole = shifted[frac_bits:]
        half = shifted[frac_bits - 1]
        below = shifted[:frac_bits - 1] != 0
        up = half & (below | whole[0])  # round half to even
        n_abs = Signal(len(whole) + 1)
        m.d.comb += n_abs.eq(whole + up)
        out_of_range = Signal()
        too_big = (t.exp >= int_bits) | (whole > limit) | ((whole == limit) & (half | below))
        m.d.comb += out_of_range.eq(t.nan | t.inf | too_big)
        n_mag = Signal(range(limit + 2))
        m.d.comb += n_mag.eq(Mux(out_of_range, 0, n_abs))

        # n as an encoding (exact: see golden), then f = t - n.
        m.submodules.n_enc = n_enc = RoundPack(fmt, len(n_mag), exp_shape(fmt).width)
        m.d.comb += [n_enc.sign.eq(~t.sign), n_enc.sig.eq(n_mag), n_enc.exp.eq(0), n_enc.sticky.eq(0),
                     n_enc.nan.eq(0), n_enc.inf.eq(0)]
        m.submodules.reduce = sub = FPAdder(fmt, latency=lat)
        m.d.comb += [sub.a.eq(t_mul.r), sub.b.eq(n_enc.r)]
        n = Signal(signed(len(n_mag) + 1))
        m.d.comb += n.eq(Mux(t.sign, -n_mag, n_mag))
        side = delay(m, [n, out_of_range, t.sign, a_nan], lat, name="reduce")
        f = sub.r
        p = Signal(layout)
        m.d.comb += p.as_value().eq(int(coeffs[-1]))
        for k in range(len(coeffs) - 2, -1, -1):
            m.submodules[f"horner{k}"] = fma = FPFusedMultiplyAdd(fmt, latency=lat)
            m.d.comb += [fma.a.eq(p), fma.b.eq(f), fma.c.as_value().eq(int(coeffs[k]))]
            p = fma.r
            f, = delay(m, [f], lat, name=f"f{k}")
            side = delay(m, side, lat, name=f"horner{k}")
        n, out_of_range, negative, nan = side
        pu = unpack(m, p, fmt, "keep", name="p")
        m.submodules.rescale = rp = RoundPack(fmt, man + 1, len(pu.exp) + 2)
        m.d.comb += [rp.sign.eq(0), rp.sig.eq(Mux(out_of_range, Mux(negative, 0, 1), pu.sig)),
                     rp.exp.eq(pu.exp + n), rp.sticky.eq(0), rp.nan.eq(nan),
                     rp.inf.eq(out_of_range & ~negative & ~nan)]
        m.d.comb += self.r.eq(rp.r)
        return m
