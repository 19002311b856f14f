"""Leading-zero count and a right shift that keeps a sticky bit: the normalisation pieces every FP
block shares."""

from amaranth import Module, Signal, Cat, Const
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["LeadingZeros", "shift_right_sticky"]


class LeadingZeros(wiring.Component):
    """``count`` = number of zero bits above the highest set bit of ``value`` (``width`` for 0)."""

    def __init__(self, width: int):
        if width < 1:
            raise ValueError(f"A leading-zero counter needs at least 1 input bit, not {width}.")
        self.width = width
        super().__init__({"value": In(width), "count": Out(range(width + 1))})

    def elaborate(self, platform):
        m = Module()
        # A priority chain of statements (not one nested expression), so elaboration stays shallow
        # for 100-bit inputs; later assignments win, so the highest set bit decides.
        m.d.comb += self.count.eq(self.width)
        for bit in range(self.width):
            with m.If(self.value[bit]):
                m.d.comb += self.count.eq(self.width - 1 - bit)
        return m


def shift_right_sticky(m, value, amount, limit: int, *, name: str):
    """``(value >> min(amount, limit), sticky)`` where sticky is the OR of the bits shifted out.

    A negative (signed) ``amount`` shifts by 0. ``limit`` must be at least ``len(value)`` for the sticky bit to see every bit when the shift
    saturates.
    """
    width = len(value)
    capped = Signal(range(limit + 1), name=f"{name}_amount")
    m.d.comb += capped.eq(amount)
    with m.If(amount > limit):
        m.d.comb += capped.eq(limit)
    if amount.shape().signed:
        with m.If(amount < 0):
            m.d.comb += capped.eq(0)
    # Shifting value·2^limit right keeps the shifted-out bits below position ``limit``.
    wide = Signal(width + limit, name=f"{name}_wide")
    m.d.comb += wide.eq(Cat(Const(0, limit), value) >> capped)
    kept = Signal(width, name=f"{name}_kept")
    sticky = Signal(name=f"{name}_sticky")
    m.d.comb += [kept.eq(wide[limit:]), sticky.eq(wide[:limit].any())]
    return kept, sticky
