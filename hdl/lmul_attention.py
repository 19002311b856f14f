"""Attention-score unit: one L-Mul dot product ``q · k`` per key, q held in registers.

Bit-exact with :func:`lutforge.golden.lmul_dot.lmul_attention_scores` for the same format, lanes,
accumulation format, policy and offset.

Streams:

* ``q``: the query, ``dim / lanes`` beats of ``lanes`` elements, lane 0 holding the lowest index;
* ``k``: keys, ``dim / lanes`` beats each; ``last`` on a key's final beat says it is the final key
  for this query, after which the unit accepts the next query on ``q``;
* ``s``: one score per key, an encoding of the accumulation format.

No 1/sqrt(dim) scale is applied; fold it into q (a power of two is exact).
"""

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.formats import Format
from ..golden.lmul import LMulPolicy
from .float_layout import FloatLayout
from .lmul_dot import LMulDot
from .round_pack import rejecting

__all__ = ["LMulAttention", "key_layout"]


def key_layout(fmt: Format, lanes: int) -> data.StructLayout:
    return data.StructLayout({"k": data.ArrayLayout(FloatLayout(fmt), lanes), "last": 1})


class LMulAttention(wiring.Component):
    """Scores of one query against a stream of keys, ``lanes`` products per cycle."""

    def __init__(self, fmt: "str | Format", dim: int, lanes: int, acc_format: "str | Format | None" = None,
                 policy: "LMulPolicy | str | None" = None, *, offset: "int | None" = None):
        with rejecting(self):
            if not isinstance(dim, int) or dim < 1 or not isinstance(lanes, int) or lanes < 1 or dim % lanes:
                raise ValueError(
                    f"Attention head dimension {dim!r} is not a positive multiple of lanes={lanes!r}; "
                    f"choose lanes dividing the head dimension."
                )
            self.dot = LMulDot(fmt, lanes, acc_format, policy, offset=offset)
        self.format, self.acc_format, self.lanes = self.dot.format, self.dot.acc_format, lanes
        self.dim, self.beats = dim, dim // lanes
        super().__init__({
            "q": In(stream.Signature(data.ArrayLayout(FloatLayout(self.format), lanes))),
            "k": In(stream.Signature(key_layout(self.format, lanes))),
            "s": Out(stream.Signature(FloatLayout(self.acc_format))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.dot = dot = self.dot
        wiring.connect(m, dot.o, wiring.flipped(self.s))

        query = Signal(data.ArrayLayout(data.ArrayLayout(FloatLayout(self.format), self.lanes), self.beats))
        q_beat = Signal(range(self.beats))
        k_beat = Signal(range(self.beats))
        loaded = Signal()
        key_end = Signal()
        m.d.comb += key_end.eq(k_beat == self.beats - 1)

        m.d.comb += self.q.ready.eq(~loaded)
        with m.If(self.q.valid & self.q.ready):
            m.d.sync += [query[q_beat].eq(self.q.payload), q_beat.eq(q_beat + 1)]
            with m.If(q_beat == self.beats - 1):
                m.d.sync += [q_beat.eq(0), loaded.eq(1)]

        m.d.comb += [
            dot.i.payload.a.eq(query[k_beat]),
            dot.i.payload.b.eq(self.k.payload.k),
            dot.i.payload.last.eq(key_end),
            dot.i.valid.eq(self.k.valid & loaded),
            self.k.ready.eq(dot.i.ready & loaded),
        ]
        with m.If(self.k.valid & self.k.ready):
            m.d.sync += k_beat.eq(k_beat + 1)
            with m.If(key_end):
                m.d.sync += k_beat.eq(0)
                with m.If(self.k.payload.last):
                    m.d.sync += loaded.eq(0)
        return m
