"""The significand multiplier, a sub-block of its own.

The optimised and the reference FP multipliers (and the FMA) instantiate it identically, so formal
equivalence proofs can use it as a cut point and only the normalisation and rounding logic differ.
"""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SignificandMultiplier"]


class SignificandMultiplier(wiring.Component):
    """``p = a * b`` for unsigned ``a_width``- and ``b_width``-bit significands."""

    def __init__(self, a_width: int, b_width: int):
        self.a_width, self.b_width = a_width, b_width
        super().__init__({"a": In(a_width), "b": In(b_width), "p": Out(a_width + b_width)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.p.eq(self.a * self.b)
        return m
