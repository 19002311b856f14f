"""MX / NV block dot-product unit, bit-exact with ``golden.mx.dot`` (single-level scaling).

Interface (``lib.stream``):

* ``i``: one block pair per transfer — ``a``/``b``: the ``block`` element encodings of each
  operand (element 0 in the low bits), ``a_scale``/``b_scale``: their 8-bit block scales (E8M0 for
  MX, E4M3 for NV), ``last``: this is the final block of the vector.
* ``o``: the fp32 encoding of the dot product, one transfer per vector.

Datapath, following the golden accumulator step by step with IEEE fp32 operations (RNE, Inf/NaN,
subnormals kept): one element multiplier turns element pair ``k`` into its exact fp32 product per
cycle; one fp32 adder sums the ``block`` products by a balanced tree, level by level, in place;
the block sum is multiplied by ``a``'s scale, then ``b``'s (an E8M0 scale is an exponent add
followed by the fp32 round-and-pack, so underflow to subnormals and overflow round exactly as
``fp.mul``); block results are summed by a balanced tree over the vector kept as a binary-counter
stack (entries with levels): equal levels are added as they arrive, and at ``last`` the stack is
folded from the top, adding +0 whenever a level has an odd count, as the golden padding does.

Throughput: about ``2·block + log2(blocks) + 4`` cycles per block pair; a vector may have at most
``2**max_levels - 1`` blocks. NV tensor scales are not applied here (the golden ``dot`` with
``tensor_scale=None`` is matched; two fp32 multiplies by the tensor scales follow outside).
"""

from amaranth import Module, Signal, Cat, Const
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.formats import get
from ..golden.mx import get_block_format
from .float_layout import FloatLayout
from .fp_add import FPAdder
from .fp_mul import FPMultiplier
from .fp_unpack import exp_shape, unpack
from .round_pack import RoundPack, rejecting
from .sig_mul import SignificandMultiplier

__all__ = ["MXDotProduct", "ScaleMultiplier"]

_FP32 = get("fp32")


class ScaleMultiplier(wiring.Component):
    """``r = fp32(s × scale)`` rounded RNE, for an E8M0 or E4M3 block scale.

    An E8M0 scale has a one-bit significand, so the multiplier degenerates to the exponent add.
    """

    def __init__(self, scale: str):
        with rejecting(self):
            if scale not in ("e8m0", "e4m3"):
                raise ValueError(f"Block scale format {scale!r} is not supported; use 'e8m0' or 'e4m3'.")
        self.scale_format = get(scale)
        super().__init__({"s": In(FloatLayout(_FP32)), "scale": In(8), "r": Out(FloatLayout(_FP32))})

    def elaborate(self, platform):
        m = Module()
        s = unpack(m, self.s, _FP32, "keep", name="s")
        if self.scale_format.name == "e8m0":
            k_sig, k_sign, k_nan, k_zero, k_inf = Const(1, 1), Const(0), self.scale == 0xFF, Const(0), Const(0)
            k_exp = Signal(exp_shape(_FP32))
            m.d.comb += k_exp.eq(self.scale - 127)
        else:
            k = unpack(m, data.View(FloatLayout(self.scale_format), self.scale), self.scale_format, "keep",
                       name="k")
            k_sig, k_sign, k_exp, k_nan, k_zero, k_inf = k.sig, k.sign, k.exp, k.nan, k.zero, k.inf
        m.submodules.sig_mul = mul = SignificandMultiplier(len(s.sig), len(k_sig))
        m.submodules.round_pack = rp = RoundPack(_FP32, len(s.sig) + len(k_sig), exp_shape(_FP32).width + 1)
        m.d.comb += [
            mul.a.eq(s.sig), mul.b.eq(k_sig),
            rp.sign.eq(s.sign ^ k_sign), rp.sig.eq(mul.p), rp.exp.eq(s.exp + k_exp), rp.sticky.eq(0),
            rp.nan.eq(s.nan | k_nan | (s.inf & k_zero) | (k_inf & s.zero)),
            rp.inf.eq(s.inf | k_inf),
            self.r.eq(rp.r),
        ]
        return m


class MXDotProduct(wiring.Component):
    """Dot product of two block-scaled vectors, streamed one block pair at a time (see module docs)."""

    def __init__(self, block_format: str = "mxfp8_e4m3", *, max_levels: int = 16):
        with rejecting(self):
            self.block_format = bf = get_block_format(block_format)
            if bf.int_bits:
                raise ValueError(
                    f"Block format {bf.name!r} has integer elements; the MX dot-product unit takes FP "
                    f"elements (mxfp8_e4m3, mxfp8_e5m2, mxfp6_*, mxfp4, nvfp4).")
            if bf.block & (bf.block - 1):
                raise ValueError(f"Block size {bf.block} of {bf.name!r} is not a power of two; the "
                                 f"in-place tree needs one.")
            if not 1 <= max_levels <= 30:
                raise ValueError(f"max_levels={max_levels} is out of range; use 1 to 30 "
                                 f"(vectors of up to 2**max_levels - 1 blocks).")
        self.max_levels = max_levels
        self.element = bf.elem_fmt
        self.block = bf.block
        payload = data.StructLayout({
            "a": data.ArrayLayout(self.element.width, self.block),
            "b": data.ArrayLayout(self.element.width, self.block),
            "a_scale": 8, "b_scale": 8, "last": 1,
        })
        super().__init__({"i": In(stream.Signature(payload)), "o": Out(stream.Signature(32))})

    def elaborate(self, platform):
        m = Module()
        w, block, levels = self.element.width, self.block, self.max_levels
        m.submodules.mul = mul = FPMultiplier(self.element, result=_FP32)
        m.submodules.add = add = FPAdder(_FP32)
        m.submodules.scale = scale = ScaleMultiplier(self.block_format.scale)

        a_bits, b_bits = Signal(w * block), Signal(w * block)
        a_scale, b_scale, last = Signal(8), Signal(8), Signal()
        buf = [Signal(32, name=f"buf{k}") for k in range(block)]
        step = Signal(range(block))
        size = Signal(range(block + 1))
        cur = Signal(32)
        cur_level = Signal(range(levels + 2))
        depth = Signal(range(levels + 1))
        stack_val = [Signal(32, name=f"stack{k}") for k in range(levels)]
        stack_lvl = [Signal(range(levels + 2), name=f"stack_level{k}") for k in range(levels)]

        # Reads select with word_select (a shift) and writes with one If per entry: both give
        # Verilog without partial case statements, so the generated code is lint-clean.
        def read(entries, index):
            return Cat(*entries).word_select(index, len(entries[0]))

        def write(entries, index, value):
            for k, entry in enumerate(entries):
                with m.If(index == k):
                    m.d.sync += entry.eq(value)

        below = Signal.like(depth)
        m.d.comb += below.eq(depth - 1)
        top_val = read(stack_val, below)
        top_lvl = read(stack_lvl, below)
        m.d.comb += [mul.a.eq(a_bits.word_select(step, w)), mul.b.eq(b_bits.word_select(step, w))]

        # One-hot states (names as in the docstring's order of work).
        states = ("idle", "product", "tree", "scale_a", "scale_b", "push", "fold", "done")
        state = {name: Signal(name=f"state_{name}", init=name == "idle") for name in states}

        def goto(name):
            m.d.sync += [flag.eq(other == name) for other, flag in state.items()]

        with m.If(state["idle"]):
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                m.d.sync += [
                    a_bits.eq(self.i.payload.a.as_value()), b_bits.eq(self.i.payload.b.as_value()),
                    a_scale.eq(self.i.payload.a_scale), b_scale.eq(self.i.payload.b_scale),
                    last.eq(self.i.payload.last), step.eq(0),
                ]
                goto("product")
        with m.If(state["product"]):
            write(buf, step, mul.r.as_value())
            m.d.sync += step.eq(step + 1)
            with m.If(step == block - 1):
                m.d.sync += [step.eq(0), size.eq(block)]
                goto("tree" if block > 1 else "scale_a")
        with m.If(state["tree"]):
            # Level by level in place: entry j of the next level overwrites entry j, which no
            # later step of this level reads (they read 2j' >= 2j + 2).
            m.d.comb += [add.a.eq(read(buf, step * 2)), add.b.eq(read(buf, step * 2 + 1))]
            write(buf, step, add.r.as_value())
            m.d.sync += step.eq(step + 1)
            with m.If(step == (size >> 1) - 1):
                m.d.sync += [step.eq(0), size.eq(size >> 1)]
                with m.If(size == 2):
                    goto("scale_a")
        with m.If(state["scale_a"]):
            m.d.comb += [scale.s.eq(buf[0]), scale.scale.eq(a_scale)]
            m.d.sync += buf[0].eq(scale.r.as_value())
            goto("scale_b")
        with m.If(state["scale_b"]):
            m.d.comb += [scale.s.eq(buf[0]), scale.scale.eq(b_scale)]
            m.d.sync += [cur.eq(scale.r.as_value()), cur_level.eq(0)]
            goto("push")
        with m.If(state["push"]):
            # Binary-counter stack: a block result meets every earlier partial of its level.
            with m.If((depth != 0) & (top_lvl == cur_level)):
                m.d.comb += [add.a.eq(top_val), add.b.eq(cur)]
                m.d.sync += [cur.eq(add.r.as_value()), cur_level.eq(cur_level + 1), depth.eq(depth - 1)]
            with m.Elif(last):
                goto("fold")
            with m.Else():
                write(stack_val, depth, cur)
                write(stack_lvl, depth, cur_level)
                m.d.sync += depth.eq(depth + 1)
                goto("idle")
        with m.If(state["fold"]):
            # The padded tree: a level with an odd count adds +0 to its last node.
            with m.If(depth == 0):
                goto("done")
            with m.Elif(top_lvl == cur_level):
                m.d.comb += [add.a.eq(top_val), add.b.eq(cur)]
                m.d.sync += [cur.eq(add.r.as_value()), cur_level.eq(cur_level + 1), depth.eq(depth - 1)]
            with m.Else():
                m.d.comb += [add.a.eq(cur), add.b.eq(0)]
                m.d.sync += [cur.eq(add.r.as_value()), cur_level.eq(cur_level + 1)]
        with m.If(state["done"]):
            m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(cur)]
            with m.If(self.o.ready):
                goto("idle")
        return m
