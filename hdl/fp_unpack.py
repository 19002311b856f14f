"""Operand decoding shared by the FP blocks: the RTL counterpart of ``golden.convert.unpack``."""

from dataclasses import dataclass

from amaranth import Signal, Cat, Mux, signed

from ..golden.formats import Format

__all__ = ["Unpacked", "unpack", "exp_shape"]


def exp_shape(fmt: Format):
    """A signed shape wide enough for LSB exponents of sums, products and normalised leads."""
    return signed(max(fmt.exp_bits + 4, 8))


@dataclass
class Unpacked:
    """``(-1)**sign * sig * 2**exp``; ``zero``/``inf``/``nan`` classify the operand."""
    sign: Signal
    sig: Signal
    exp: Signal
    zero: Signal
    inf: Signal
    nan: Signal


def unpack(m, view, fmt: Format, subnormals: str, *, name: str) -> Unpacked:
    """Split a ``FloatLayout`` view; ``subnormals="flush"`` turns subnormals into zeros of their sign."""
    man, field = view.mantissa, view.exponent
    normal = field != 0
    sign = Signal(name=f"{name}_sign")
    sig = Signal(fmt.man_bits + 1, name=f"{name}_sig")
    exp = Signal(exp_shape(fmt), name=f"{name}_exp")
    zero, inf, nan = (Signal(name=f"{name}_{n}") for n in ("zero", "inf", "nan"))
    m.d.comb += [
        sign.eq(view.sign),
        sig.eq(Cat(man, normal)),
        exp.eq(Mux(normal, field, 1) - (fmt.bias + fmt.man_bits)),
        zero.eq(sig == 0),
    ]
    if subnormals == "flush":
        with m.If(~normal):
            m.d.comb += sig.eq(0)
    mag = view.as_value()[:fmt.exp_bits + fmt.man_bits]
    if fmt.specials == "ieee":
        m.d.comb += [inf.eq(mag == fmt.inf), nan.eq(mag > fmt.inf)]
    elif fmt.specials == "fn":
        m.d.comb += [inf.eq(0), nan.eq(mag == fmt.magnitude_mask)]
    else:
        m.d.comb += [inf.eq(0), nan.eq(0)]
    return Unpacked(sign, sig, exp, zero, inf, nan)
