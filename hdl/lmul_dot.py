"""L-Mul dot-product unit: N lanes of L-Mul products, an FP adder tree and an FP accumulator.

Bit-exact with :func:`lutforge.golden.lmul_dot.lmul_dot` (same format, lanes, accumulation format,
policy and offset); the module docstring there fixes the pairing order of the tree and the order of
the accumulation.

Stream ``i`` carries one beat per ``lanes`` elements (``a``, ``b``, and ``last`` on the final beat of
a vector); stream ``o`` carries one sum per vector, an encoding of the accumulation format.
"""

from amaranth import Module, Signal, Mux
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.formats import Format, get
from ..golden.lmul import LMulPolicy
from ..golden.lmul_dot import check_acc_format
from ..support.checks import check_int
from .float_layout import FloatLayout
from .fp_add import FPAdder
from .fp_unpack import unpack
from .lmul import LMulMultiplier
from .round_pack import RoundPack, rejecting

__all__ = ["adder_tree", "FormatWiden", "LMulBeatSum", "LMulDot", "dot_input_layout"]


class FormatWiden(wiring.Component):
    """Exact conversion of ``src`` encodings into a format ``dst`` that holds every ``src`` value."""

    def __init__(self, src: "str | Format", dst: "str | Format"):
        with rejecting(self):
            self.src, self.dst = get(src), get(dst)
            check_acc_format(self.src, self.dst)
        super().__init__({"a": In(FloatLayout(self.src)), "r": Out(FloatLayout(self.dst))})

    def elaborate(self, platform):
        m = Module()
        u = unpack(m, self.a, self.src, "keep", name="src")
        m.submodules.round = rp = RoundPack(self.dst, self.src.man_bits + 1, len(u.exp))
        m.d.comb += [rp.sign.eq(u.sign), rp.sig.eq(u.sig), rp.exp.eq(u.exp), rp.sticky.eq(0),
                     rp.nan.eq(u.nan), rp.inf.eq(u.inf), self.r.eq(rp.r)]
        return m


class LMulBeatSum(wiring.Component):
    """Combinational sum of ``lanes`` L-Mul products by the fixed adder tree, in ``acc_format``."""

    def __init__(self, fmt: "str | Format", lanes: int, acc_format: "str | Format | None" = None,
                 policy: "LMulPolicy | str | None" = None, *, offset: "int | None" = None):
        with rejecting(self):
            self.format = get(fmt)
            self.acc_format = self.format if acc_format is None else get(acc_format)
            check_int("lanes", lanes, fix="a dot product takes 1 or more products per beat")
            check_acc_format(self.format, self.acc_format)
            self.lanes, self.policy, self.offset = lanes, LMulPolicy.of(policy), offset
            self.multipliers = [LMulMultiplier(self.format, self.policy, offset=offset) for _ in range(lanes)]
        vec = data.ArrayLayout(FloatLayout(self.format), lanes)
        super().__init__({"a": In(vec), "b": In(vec), "r": Out(FloatLayout(self.acc_format))})

    def elaborate(self, platform):
        m = Module()
        level = []
        for lane, mul in enumerate(self.multipliers):
            m.submodules[f"mul{lane}"] = mul
            m.d.comb += [mul.a.eq(self.a[lane]), mul.b.eq(self.b[lane])]
            product = mul.r
            if self.acc_format != self.format:
                m.submodules[f"widen{lane}"] = widen = FormatWiden(self.format, self.acc_format)
                m.d.comb += widen.a.eq(product)
                product = widen.r
            level.append(product)
        m.d.comb += self.r.eq(adder_tree(m, level, self.acc_format, "add"))
        return m


def adder_tree(m, values, fmt: Format, name: str):
    """The sum of ``values`` (``FloatLayout(fmt)`` values) by the fixed adder tree of
    :func:`lutforge.golden.lmul_dot.tree_sum` (neighbours, the odd one moves up), combinational;
    the adders are submodules ``{name}{depth}_{pair}`` of ``m``."""
    level, depth = list(values), 0
    while len(level) > 1:
        nxt = []
        for pair in range(len(level) // 2):
            m.submodules[f"{name}{depth}_{pair}"] = add = FPAdder(fmt)
            m.d.comb += [add.a.eq(level[2 * pair]), add.b.eq(level[2 * pair + 1])]
            nxt.append(add.r)
        if len(level) % 2:
            nxt.append(level[-1])
        level, depth = nxt, depth + 1
    return level[0]


def dot_input_layout(fmt: Format, lanes: int) -> data.StructLayout:
    vec = data.ArrayLayout(FloatLayout(fmt), lanes)
    return data.StructLayout({"a": vec, "b": vec, "last": 1})


class LMulDot(wiring.Component):
    """Streaming L-Mul dot product: one ``i`` beat per ``lanes`` element pairs, one ``o`` per vector.

    Two register stages: the beat sum (L-Mul, widening, adder tree) is registered, then added to the
    accumulator, which starts from the first beat's sum of each vector. Both stages advance together
    whenever the output register is empty or being read, so a full throughput of one beat per cycle
    holds while ``o`` is ready.
    """

    def __init__(self, fmt: "str | Format", lanes: int, acc_format: "str | Format | None" = None,
                 policy: "LMulPolicy | str | None" = None, *, offset: "int | None" = None):
        with rejecting(self):
            self.beat = LMulBeatSum(fmt, lanes, acc_format, policy, offset=offset)
        self.format, self.acc_format, self.lanes = self.beat.format, self.beat.acc_format, lanes
        super().__init__({
            "i": In(stream.Signature(dot_input_layout(self.format, lanes))),
            "o": Out(stream.Signature(FloatLayout(self.acc_format))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.beat = beat = self.beat
        m.d.comb += [beat.a.eq(self.i.payload.a), beat.b.eq(self.i.payload.b)]

        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        acc_layout = FloatLayout(self.acc_format)
        s1_valid, s1_last = Signal(), Signal()
        s1_sum = Signal(acc_layout)
        first = Signal(init=1)
        acc = Signal(acc_layout)
        m.submodules.acc_add = add = FPAdder(self.acc_format)
        m.d.comb += [add.a.eq(acc), add.b.eq(s1_sum)]
        updated = Signal(acc_layout)
        m.d.comb += updated.eq(Mux(first, s1_sum, add.r))

        with m.If(advance):
            m.d.sync += [s1_valid.eq(self.i.valid), s1_sum.eq(beat.r), s1_last.eq(self.i.payload.last),
                         self.o.valid.eq(s1_valid & s1_last)]
            with m.If(s1_valid):
                m.d.sync += [acc.eq(updated), first.eq(s1_last)]
                with m.If(s1_last):
                    m.d.sync += self.o.payload.eq(updated)
        return m
