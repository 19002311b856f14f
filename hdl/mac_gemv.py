"""MAC-array GEMV of the same throughput as the LUT GEMV engine: the resource baseline.

Per cycle, one transfer on ``i`` carries v activations (shared by all lanes) and the v weights of
each of L lanes; every lane multiplies and adds them into its accumulator, so the array does
L * v multiply-accumulates per cycle, as the LUT engine with L lanes does at one position (v
weights) per cycle. ``last`` closes the tile and the L accumulators leave on ``o``.

``fmt="int8"``: signed 8-bit operands, exact products, a signed accumulator wide enough for
``max_positions`` positions. Otherwise a float format of :mod:`lutforge.golden.formats`
(e.g. "bf16"): :class:`~lutforge.hdl.fp_mul.FPMultiplier` for each product and
:class:`~lutforge.hdl.fp_add.FPAdder` for each addition, all in that format, combinational.
"""

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.formats import get

__all__ = ["MacGemv"]


class MacGemv(wiring.Component):
    """A multiply-accumulate GEMV tile, the baseline the LUT engine is compared with in resources.

    Lane i adds ``sum_j x[j] * w[i, j]`` per transfer; ``last`` closes the tile. With ``"int8"``
    the sums are exact (``numpy`` dot products of the operands); with a float format each product
    and sum is rounded by :class:`~lutforge.hdl.fp_mul.FPMultiplier` and
    :class:`~lutforge.hdl.fp_add.FPAdder`, so it equals :func:`lutforge.golden.fp.mul` and
    :func:`lutforge.golden.fp.add` (default policies) applied in that order.

    Ports: ``i`` (in: ``x``, v activations shared by all lanes; ``w``, the v weights of each lane;
    ``last``) and ``o`` (out: the ``lanes`` sums of the tile).

    Parameters: ``lanes`` (L), ``v`` (weights per lane per cycle), ``fmt`` (``"int8"`` or a
    :mod:`lutforge.golden.formats` name), ``max_positions`` (sizes the int8 accumulator).

    Throughput: ``lanes * v`` multiply-accumulates per cycle, as many as the LUT engine with L lanes
    does at one position; the sums appear the cycle after ``last``.
    """

    def __init__(self, lanes: int = 16, v: int = 2, fmt: str = "int8", *, max_positions: int = 4096):
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1 or v < 1:
            self._MustUse__silence = True  # a rejected component is not an unused one
            raise ValueError(f"A MAC GEMV needs at least one lane and one weight per lane; got L={lanes}, v={v}.")
        self.lanes, self.v, self.fmt = lanes, v, fmt
        if fmt == "int8":
            element = signed(8)
            self.acc_width = 16 + (max_positions * v).bit_length()
            acc = signed(self.acc_width)
        else:
            self.format = get(fmt)
            element = unsigned(self.format.width)
            acc = element
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "x": data.ArrayLayout(element, v),
                "w": data.ArrayLayout(element, lanes * v),
                "last": unsigned(1),
            }))),
            "o": Out(stream.Signature(data.ArrayLayout(acc, lanes))),
        })

    def _lane_sum(self, m, acc, products_of, lane):
        if self.fmt == "int8":
            return acc + sum(products_of(j) for j in range(self.v))
        from .fp_add import FPAdder
        from .fp_mul import FPMultiplier
        total = acc
        for j in range(self.v):
            mul = FPMultiplier(self.format)
            add = FPAdder(self.format)
            m.submodules[f"mul{lane}_{j}"] = mul
            m.submodules[f"add{lane}_{j}"] = add
            x, w = products_of(j, operands=True)
            m.d.comb += [mul.a.eq(x), mul.b.eq(w), add.a.eq(total), add.b.eq(mul.r)]
            total = add.r
        return total

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        m.d.comb += i.ready.eq(~o.valid | o.ready)
        with m.If(o.valid & o.ready):
            m.d.sync += o.valid.eq(0)
        take = i.valid & i.ready
        for lane in range(self.lanes):
            acc = Signal.like(o.payload[lane], name=f"acc{lane}")

            def products_of(j, operands=False, lane=lane):
                x, w = i.payload.x[j], i.payload.w[lane * self.v + j]
                return (x, w) if operands else x * w

            total = self._lane_sum(m, acc, products_of, lane)
            with m.If(take):
                with m.If(i.payload.last):
                    m.d.sync += [o.payload[lane].eq(total), acc.eq(0)]
                with m.Else():
                    m.d.sync += acc.eq(total)
        with m.If(take & i.payload.last):
            m.d.sync += o.valid.eq(1)
        return m
