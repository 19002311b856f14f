"""Attention decode unit for one head, with its KV cache, bit-exact with
:func:`lutforge.golden.attention.attention` (exact or L-Mul products, one product per beat) for one
query at a time: a prefill of T queries is T decode steps, as the golden defines it.

Streams, one element per beat:

* ``kv`` (in): the key and value elements ``{k, v}`` of each new token, D beats per token,
  appended to the cache (``max_keys`` tokens; ``kv`` stalls when it is full);
* ``q`` (in): the query's D elements ``{x, keys}``; ``keys`` (read on the last beat, 1 or more) is
  how many cached tokens it sees, and the unit waits until that many are written;
* ``o`` (out): the D outputs in the data format.

Datapath, one operation per cycle in the accumulation format ``acc`` (operands widened exactly):

1. scores: ``s_j = RN(RN(sum_i q_i·k_ji) · RN(1/sqrt(D)))``, each sum in index order from its
   first product, kept in a score buffer while a comparator keeps the first maximum;
2. ``e_j = exp(RN(s_j - m))`` overwrites ``s_j`` and ``S = RN(S + e_j)`` (from +0, which adds
   exactly); ``r = reciprocal(S)``;
3. A·V: ``acc_d = RN(acc_d + p_j·v_jd)`` with ``p_j = RN(e_j·r)`` for every key j and element d,
   each from its first product (an accumulator buffer of D entries);
4. each ``acc_d`` rounded into the data format leaves on ``o``.

A product ``a·b`` is ``RN(a·b)`` in ``acc`` (``mul="exact"``) or, with ``mul="lmul"``, the L-Mul
product of the two operands in the data format (``p_j`` first rounded into it), at ``offset``
(default: the paper's), widened into ``acc`` exactly: the multiplier is one integer adder.

A query over n keys takes about 2·D·n + n + 2D cycles.
"""

import math

import numpy as np
from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden import fp_funcs as golden
from ..golden.attention import MULS
from ..golden.convert import encode
from ..golden.formats import get
from ..golden.lmul_dot import check_acc_format
from ..support.checks import check_int
from .float_layout import FloatLayout
from .fp_add import FPAdder
from .fp_convert import FPConvert
from .fp_funcs import FPExp, FPReciprocal
from .fp_mul import FPMultiplier
from .lmul import LMulMultiplier
from .lmul_dot import FormatWiden
from .round_pack import rejecting
from .softmax import order_key

__all__ = ["AttentionDecode"]


class AttentionDecode(wiring.Component):
    """One attention head over a KV cache of ``max_keys`` tokens of ``d`` elements (module docstring)."""

    def __init__(self, fmt, d: int, max_keys: int, *, acc=None, mul: str = "exact", offset: int | None = None,
                 seed_bits: int = 7):
        with rejecting(self):
            self.format = get(fmt)
            self.acc = self.format if acc is None else get(acc)
            golden.check_function_format(self.acc)
            check_acc_format(self.format, self.acc)
            self.d = check_int("d", d, 2, 1024, fix="a head holds 2 to 1024 elements")
            self.max_keys = check_int("max_keys", max_keys, 2, 1 << 16, fix="the cache holds 2 to 65536 tokens")
            if mul not in MULS:
                raise ValueError(f"Attention multiplier {mul!r} is not one of {', '.join(MULS)}; choose one of them.")
            if mul == "exact" and offset is not None:
                raise ValueError(f"An L-Mul offset ({offset}) was given for exact products; give mul='lmul' or "
                                 f"leave the offset out.")
            self.mul = mul
            # One multiplier per product, the scores' and A·V's (built here so bad offsets fail here).
            self.lmuls = [LMulMultiplier(self.format, offset=offset) for _ in range(2)] if mul == "lmul" else None
            self.offset = self.lmuls[0].offset if self.lmuls else None
            self.exp = FPExp(self.acc)
            self.recip = FPReciprocal(self.acc, seed_bits=seed_bits)
        f = FloatLayout(self.format)
        super().__init__({
            "kv": In(stream.Signature(data.StructLayout({"k": f, "v": f}))),
            "q": In(stream.Signature(data.StructLayout({"x": f, "keys": range(self.max_keys + 1)}))),
            "o": Out(stream.Signature(f)),
        })

    def _widen(self, m, value, name):
        if self.acc == self.format:
            return value
        m.submodules[name] = w = FormatWiden(self.format, self.acc)
        m.d.comb += w.a.eq(value)
        return w.r

    def _narrow(self, m, value, name):
        if self.acc == self.format:
            return value
        m.submodules[name] = n = FPConvert(self.acc, self.format)
        m.d.comb += n.a.eq(value)
        return n.r

    def _product(self, m, which: int, name, a, b, narrow_a: bool = False):
        """``a·b`` in ``acc`` (module docstring), on multiplier ``which``: ``b`` is in the data
        format, ``a`` too unless ``narrow_a`` (then it is in ``acc``, rounded into the data format
        for L-Mul)."""
        if self.mul == "lmul":
            m.submodules[name] = unit = self.lmuls[which]
            m.d.comb += [unit.a.eq(self._narrow(m, a, f"narrow_{name}") if narrow_a else a), unit.b.eq(b)]
            return self._widen(m, unit.r, f"widen_{name}")
        m.submodules[name] = unit = FPMultiplier(self.acc)
        m.d.comb += [unit.a.eq(a if narrow_a else self._widen(m, a, f"widen_{name}_a")),
                     unit.b.eq(self._widen(m, b, f"widen_{name}_b"))]
        return unit.r

    def elaborate(self, platform):
        m = Module()
        fmt, acc, d, n_max = self.format, self.acc, self.d, self.max_keys
        alay = FloatLayout(acc)
        width = unsigned(fmt.width)
        m.submodules.k_mem = k_mem = Memory(shape=width, depth=n_max * d, init=[])
        m.submodules.v_mem = v_mem = Memory(shape=width, depth=n_max * d, init=[])
        m.submodules.q_mem = q_mem = Memory(shape=width, depth=d, init=[])
        m.submodules.s_mem = s_mem = Memory(shape=unsigned(acc.width), depth=n_max, init=[])
        m.submodules.o_mem = o_mem = Memory(shape=unsigned(acc.width), depth=d, init=[])
        k_w, v_w, q_w, s_w, o_w = (mem.write_port() for mem in (k_mem, v_mem, q_mem, s_mem, o_mem))
        k_r, v_r, q_r, s_r, o_r = (mem.read_port(domain="comb") for mem in (k_mem, v_mem, q_mem, s_mem, o_mem))

        # The cache: kv beats append element by element.
        written = Signal(range(n_max * d + 1))
        m.d.comb += [self.kv.ready.eq(written < n_max * d), k_w.addr.eq(written), v_w.addr.eq(written),
                     k_w.data.eq(self.kv.payload.k.as_value()), v_w.data.eq(self.kv.payload.v.as_value())]
        with m.If(self.kv.valid & self.kv.ready):
            m.d.comb += [k_w.en.eq(1), v_w.en.eq(1)]
            m.d.sync += written.eq(written + 1)

        i = Signal(range(d))           # element of the head
        j = Signal(range(n_max))       # key
        addr = Signal(range(n_max * d))  # j·D + i, counted
        keys = Signal(range(n_max + 1))
        total, r, best, run = (Signal(alay, name=n) for n in ("total", "r", "best", "run"))
        last_i, last_j = i == d - 1, j == keys - 1

        q_elem = Signal(FloatLayout(fmt))
        k_elem = Signal(FloatLayout(fmt))
        v_elem = Signal(FloatLayout(fmt))
        score = Signal(alay)
        out_acc = Signal(alay)
        m.d.comb += [q_r.addr.eq(i), k_r.addr.eq(addr), v_r.addr.eq(addr), s_r.addr.eq(j), o_r.addr.eq(i),
                     q_elem.as_value().eq(q_r.data), k_elem.as_value().eq(k_r.data),
                     v_elem.as_value().eq(v_r.data), score.as_value().eq(s_r.data),
                     out_acc.as_value().eq(o_r.data),
                     q_w.addr.eq(i), q_w.data.eq(self.q.payload.x.as_value()),
                     s_w.addr.eq(j), o_w.addr.eq(i)]

        # Scores: products and their sum.
        qk = self._product(m, 0, "qk", q_elem, k_elem)
        m.submodules.dot = dot = FPAdder(acc)
        m.d.comb += [dot.a.eq(run), dot.b.eq(qk)]
        summed = Mux(i == 0, qk.as_value(), dot.r.as_value())
        m.submodules.scale = scale = FPMultiplier(acc)
        m.d.comb += [scale.a.as_value().eq(summed),
                     scale.b.as_value().eq(int(encode(np.array(1 / math.sqrt(d)), acc)))]
        new_key, best_key = order_key(m, scale.r, acc, name="new_key"), order_key(m, best, acc, name="best_key")

        # Softmax over the score buffer.
        m.submodules.sub = sub = FPAdder(acc)
        m.submodules.exp_unit = exp = self.exp
        m.submodules.sum = add = FPAdder(acc)
        m.submodules.recip_unit = recip = self.recip
        neg_best = Cat(best.as_value()[:-1], ~best.as_value()[-1])
        m.d.comb += [sub.a.eq(score), sub.b.as_value().eq(neg_best), exp.a.eq(sub.r),
                     add.a.eq(total), add.b.eq(exp.r), recip.a.eq(total)]

        # A·V.
        m.submodules.prob = prob = FPMultiplier(acc)
        m.d.comb += [prob.a.eq(score), prob.b.eq(r)]
        pv = self._product(m, 1, "pv", prob.r, v_elem, narrow_a=True)
        m.submodules.av = av = FPAdder(acc)
        m.d.comb += [av.a.eq(out_acc), av.b.eq(pv), self.o.payload.eq(self._narrow(m, out_acc, "narrow_out"))]

        def step_element(after_last_key):
            """Next element; after the last, the next key; after the last key, ``after_last_key``."""
            m.d.sync += [i.eq(i + 1), addr.eq(addr + 1)]
            with m.If(last_i):
                m.d.sync += [i.eq(0), j.eq(j + 1)]
                with m.If(last_j):
                    m.d.sync += [j.eq(0), addr.eq(0), *after_last_key]

        # Phases: 0 load q, 1 wait for the cache, 2 scores, 3 exp and sum, 4 reciprocal, 5 A·V,
        # else output (an If chain: every case covered).
        phase = Signal(range(7))
        with m.If(phase == 0):
            m.d.comb += [self.q.ready.eq(1), q_w.en.eq(self.q.valid)]
            with m.If(self.q.valid):
                m.d.sync += i.eq(i + 1)
                with m.If(last_i):
                    m.d.sync += [i.eq(0), keys.eq(self.q.payload.keys), phase.eq(1)]
        with m.Elif(phase == 1):
            with m.If(written >= keys * d):
                m.d.sync += [j.eq(0), i.eq(0), addr.eq(0), phase.eq(2)]
        with m.Elif(phase == 2):
            m.d.sync += run.as_value().eq(summed)
            with m.If(last_i):
                m.d.comb += [s_w.en.eq(1), s_w.data.eq(scale.r.as_value())]
                with m.If((j == 0) | (new_key > best_key)):
                    m.d.sync += best.eq(scale.r)
            step_element([phase.eq(3), total.as_value().eq(0)])
        with m.Elif(phase == 3):
            m.d.comb += [s_w.en.eq(1), s_w.data.eq(exp.r.as_value())]
            m.d.sync += [total.eq(add.r), j.eq(j + 1)]
            with m.If(last_j):
                m.d.sync += [j.eq(0), phase.eq(4)]
        with m.Elif(phase == 4):
            m.d.sync += [r.eq(recip.r), phase.eq(5)]
        with m.Elif(phase == 5):
            m.d.comb += [o_w.en.eq(1), o_w.data.eq(Mux(j == 0, pv.as_value(), av.r.as_value()))]
            step_element([phase.eq(6)])
        with m.Else():
            m.d.comb += self.o.valid.eq(1)
            with m.If(self.o.ready):
                m.d.sync += i.eq(i + 1)
                with m.If(last_i):
                    m.d.sync += [i.eq(0), phase.eq(0)]
        return m
