"""MAC-array GEMV of the same throughput as the LUT GEMV engine: the resource baseline.

Per cycle, one transfer on ``i`` carries v activations (shared by all lanes) and the v weights of
each of L lanes; every lane multiplies and adds them into its accumulator, so the array does
L * v multiply-accumulates per cycle, as the LUT engine with L lanes does at one position (v
weights) per cycle. ``last`` closes the tile and the L accumulators leave on ``o``.

``fmt="int8"``: signed 8-bit operands, exact products, a signed accumulator wide enough for
``max_positions`` positions. Otherwise a float format of :mod:`lutforge.golden.formats`
(e.g. "bf16"): :class:`~lutforge.hdl.fp_mul.FPMultiplier` for each product and
:class:`~lutforge.hdl.fp_add.FPAdder` for each addition, all in that format.

``stages`` pipelines the multipliers: their products reach the accumulators that many cycles
after the transfer (the float multiplier's own registers, or registers after the int8 products),
so the loop a cycle must close is the accumulation alone. The additions stay in the loop: one per
weight per cycle, in order, so the sums are the same as the combinational array's. A tile's
``last`` blocks new transfers until it has reached the accumulators (``stages`` cycles per tile).
"""

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.formats import get
from .pipeline import delay

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

    def __init__(self, lanes: int = 16, v: int = 2, fmt: str = "int8", *, max_positions: int = 4096,
                 stages: int = 0):
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1 or v < 1:
            self._MustUse__silence = True  # a rejected component is not an unused one
            raise ValueError(f"A MAC GEMV needs at least one lane and one weight per lane; got L={lanes}, v={v}.")
        if isinstance(stages, bool) or not isinstance(stages, int) or stages < 0:
            self._MustUse__silence = True
            raise ValueError(f"MAC GEMV stages {stages!r} is not allowed; use 0 (combinational) or more.")
        self.lanes, self.v, self.fmt, self.stages = lanes, v, fmt, stages
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

    def _lane_sum(self, m, acc, lane):
        """The lane's accumulator plus its products, which arrive ``stages`` cycles after the transfer."""
        x, w = self.i.payload.x, self.i.payload.w[lane * self.v:(lane + 1) * self.v]
        if self.fmt == "int8":
            (products,) = delay(m, [sum(x[j] * w[j] for j in range(self.v))], self.stages, name=f"products{lane}")
            return acc + products
        from .fp_add import FPAdder
        from .fp_mul import FPMultiplier
        total = acc
        for j in range(self.v):
            mul = FPMultiplier(self.format, latency=self.stages)
            add = FPAdder(self.format)
            m.submodules[f"mul{lane}_{j}"] = mul
            m.submodules[f"add{lane}_{j}"] = add
            m.d.comb += [mul.a.eq(x[j]), mul.b.eq(w[j]), add.a.eq(total), add.b.eq(mul.r)]
            total = add.r
        return total

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        # Transfers in the multipliers' pipeline: whether each stage holds one, and its ``last``.
        taken, closing = Signal(self.stages + 1), Signal(self.stages + 1)
        m.d.comb += [taken[0].eq(i.valid & i.ready), closing[0].eq(i.payload.last)]
        if self.stages:
            m.d.sync += [taken[1:].eq(taken[:-1]), closing[1:].eq(closing[:-1])]
        arrives, last = taken[-1], closing[-1]  # the transfer whose products reach the accumulators
        tile_in_flight = (taken[1:] & closing[1:]).any() if self.stages else 0
        m.d.comb += i.ready.eq((~o.valid | o.ready) & ~tile_in_flight)
        with m.If(o.valid & o.ready):
            m.d.sync += o.valid.eq(0)
        for lane in range(self.lanes):
            acc = Signal.like(o.payload[lane], name=f"acc{lane}")
            total = self._lane_sum(m, acc, lane)
            with m.If(arrives):
                with m.If(last):
                    m.d.sync += [o.payload[lane].eq(total), acc.eq(0)]
                with m.Else():
                    m.d.sync += acc.eq(total)
        with m.If(arrives & last):
            m.d.sync += o.valid.eq(1)
        return m
