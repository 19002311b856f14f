"""Attention decode unit for one head, reading its KV cache from the accelerator's memory,
bit-exact with :func:`lutforge.golden.attention.attention` (exact or L-Mul products, one product
per beat) for one query at a time: a prefill of T queries is T decode steps, as the golden defines
it.

Interface, in the manner of the GEMV cores (:mod:`lutforge.hdl.gemv_core`):

* ``desc`` (in): one descriptor per query, fields LSB first (:func:`lutforge.golden.attention.
  descriptor_fields`): ``keys`` (16 bits, the cached tokens the query sees, 1 to ``max_keys``),
  ``k_base`` and ``v_base`` (``addr_width`` bits each, word addresses);
* ``q`` (in): the query's D elements in the data format, after its descriptor;
* ``mem.k`` / ``mem.v`` (read channels: a ``req`` address stream out and an in-order ``resp``
  stream in, any latency, any number outstanding): element i of cached token j is the word
  ``k_base + j·D + i`` (``v_base + j·D + i``), one data-format element per word. Whoever produces
  keys and values (the host driver, or the RoPE unit's output through a writer) appends token j's
  before a query that sees it is started;
* ``o`` (out): the D outputs in the data format;
* ``busy``, ``done`` and ``error`` (1: ``keys`` is 0 or above ``max_keys``; a refused query
  touches neither the memory nor the streams).

Datapath, one operation per cycle in the accumulation format ``acc`` (operands widened exactly):

1. scores: ``s_j = RN(RN(sum_i q_i·k_ji) · RN(1/sqrt(D)))``, each sum in index order from its
   first product, kept in a score buffer of ``max_keys`` entries while a comparator keeps the
   first maximum;
2. ``e_j = exp(RN(s_j - m))`` overwrites ``s_j`` and ``S = RN(S + e_j)`` (from +0, which adds
   exactly); ``r = reciprocal(S)``;
3. A·V: ``acc_d = RN(acc_d + p_j·v_jd)`` with ``p_j = RN(e_j·r)`` for every key j and element d,
   each from its first product (an accumulator buffer of D entries);
4. each ``acc_d`` rounded into the data format leaves on ``o``.

A product ``a·b`` is ``RN(a·b)`` in ``acc`` (``mul="exact"``) or, with ``mul="lmul"``, the L-Mul
product of the two operands in the data format (``p_j`` first rounded into it), at ``offset``
(default: the paper's), widened into ``acc`` exactly: the multiplier is one integer adder.

Memory reads of the values are issued from the end of the scores on, so their latency overlaps
the softmax. A query over n keys takes about 2·D·n + n + 2D cycles with a memory that answers
every cycle.
"""

import math

import numpy as np
from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden import fp_funcs as golden
from ..golden.attention import MULS, descriptor_fields
from ..golden.convert import encode
from ..golden.formats import get
from ..golden.lmul_dot import check_acc_format
from ..support.checks import check_int
from .float_layout import FloatLayout
from .fp_add import FPAdder
from .fp_convert import FPConvert
from .fp_funcs import FPExp, FPReciprocal
from .fp_mul import FPMultiplier
from .gemv_core import MemoryReadSignature
from .lmul import LMulMultiplier
from .lmul_dot import FormatWiden
from .round_pack import rejecting
from .softmax import order_key

__all__ = ["AttentionDecode"]


class AttentionDecode(wiring.Component):
    """One attention head over a KV cache of ``max_keys`` tokens of ``d`` elements (module docstring)."""

    def __init__(self, fmt, d: int, max_keys: int, *, acc=None, mul: str = "exact", offset: int | None = None,
                 seed_bits: int = 7, addr_width: int = 32):
        with rejecting(self):
            self.format = get(fmt)
            self.acc = self.format if acc is None else get(acc)
            golden.check_function_format(self.acc)
            check_acc_format(self.format, self.acc)
            self.d = check_int("d", d, 2, 1024, fix="a head holds 2 to 1024 elements")
            self.max_keys = check_int("max_keys", max_keys, 2, (1 << 16) - 1,
                                      fix="the score buffer holds 2 to 65535 keys (the descriptor's 16-bit field)")
            self.addr_width = check_int("addr_width", addr_width, 2, 64, fix="word addresses have 2 to 64 bits")
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
        read = MemoryReadSignature(self.addr_width, self.format.width)
        super().__init__({
            "desc": In(stream.Signature(data.StructLayout(
                {name: unsigned(width) for name, width in descriptor_fields(self.addr_width)}))),
            "q": In(stream.Signature(f)),
            "o": Out(stream.Signature(f)),
            "mem": Out(wiring.Signature({"k": Out(read), "v": Out(read)})),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
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
        m.submodules.q_mem = q_mem = Memory(shape=unsigned(fmt.width), depth=d, init=[])
        m.submodules.s_mem = s_mem = Memory(shape=unsigned(acc.width), depth=n_max, init=[])
        m.submodules.o_mem = o_mem = Memory(shape=unsigned(acc.width), depth=d, init=[])
        q_w, s_w, o_w = (mem.write_port() for mem in (q_mem, s_mem, o_mem))
        q_r, s_r, o_r = (mem.read_port(domain="comb") for mem in (q_mem, s_mem, o_mem))

        i = Signal(range(d))           # element of the head
        j = Signal(range(n_max))       # key
        desc = Signal.like(self.desc.payload)
        keys = desc.keys
        total, r, best, run = (Signal(alay, name=n) for n in ("total", "r", "best", "run"))
        last_i, last_j = i == d - 1, j == keys - 1
        k_resp, v_resp = self.mem.k.resp, self.mem.v.resp

        q_elem = Signal(FloatLayout(fmt))
        k_elem = Signal(FloatLayout(fmt))
        v_elem = Signal(FloatLayout(fmt))
        score = Signal(alay)
        out_acc = Signal(alay)
        m.d.comb += [q_r.addr.eq(i), s_r.addr.eq(j), o_r.addr.eq(i),
                     q_elem.as_value().eq(q_r.data), k_elem.as_value().eq(k_resp.payload),
                     v_elem.as_value().eq(v_resp.payload), score.as_value().eq(s_r.data),
                     out_acc.as_value().eq(o_r.data),
                     q_w.addr.eq(i), q_w.data.eq(self.q.payload.as_value()),
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

        # Phases: 0 descriptor, 1 load q, 2 scores, 3 exp and sum, 4 reciprocal, 5 A·V, else output
        # (an If chain: every case covered).
        phase = Signal(range(7))
        words = keys * d
        # Address requests run ahead of the datapath: the keys' during the scores, the values' from
        # the softmax on (the memory buffers the answers, which come back in order).
        k_sent, v_sent = Signal(range(n_max * d + 1)), Signal(range(n_max * d + 1))
        m.d.comb += [self.mem.k.req.valid.eq((phase == 2) & (k_sent < words)),
                     self.mem.k.req.payload.eq(desc.k_base + k_sent),
                     self.mem.v.req.valid.eq((phase >= 3) & (phase <= 5) & (v_sent < words)),
                     self.mem.v.req.payload.eq(desc.v_base + v_sent),
                     k_resp.ready.eq(phase == 2), v_resp.ready.eq(phase == 5),
                     self.busy.eq(phase != 0)]
        with m.If(self.mem.k.req.valid & self.mem.k.req.ready):
            m.d.sync += k_sent.eq(k_sent + 1)
        with m.If(self.mem.v.req.valid & self.mem.v.req.ready):
            m.d.sync += v_sent.eq(v_sent + 1)

        def step_element(after_last_key):
            """Next element; after the last, the next key; after the last key, ``after_last_key``."""
            m.d.sync += i.eq(i + 1)
            with m.If(last_i):
                m.d.sync += [i.eq(0), j.eq(j + 1)]
                with m.If(last_j):
                    m.d.sync += [j.eq(0), *after_last_key]

        with m.If(phase == 0):
            m.d.comb += self.desc.ready.eq(1)
            with m.If(self.desc.valid):
                m.d.sync += [desc.eq(self.desc.payload), self.done.eq(0), self.error.eq(0)]
                with m.If((self.desc.payload.keys == 0) | (self.desc.payload.keys > n_max)):
                    m.d.sync += [self.error.eq(1), self.done.eq(1)]
                with m.Else():
                    m.d.sync += [i.eq(0), j.eq(0), k_sent.eq(0), phase.eq(1)]
        with m.Elif(phase == 1):
            m.d.comb += [self.q.ready.eq(1), q_w.en.eq(self.q.valid)]
            with m.If(self.q.valid):
                m.d.sync += i.eq(i + 1)
                with m.If(last_i):
                    m.d.sync += [i.eq(0), phase.eq(2)]
        with m.Elif(phase == 2):
            with m.If(k_resp.valid):
                m.d.sync += run.as_value().eq(summed)
                with m.If(last_i):
                    m.d.comb += [s_w.en.eq(1), s_w.data.eq(scale.r.as_value())]
                    with m.If((j == 0) | (new_key > best_key)):
                        m.d.sync += best.eq(scale.r)
                step_element([phase.eq(3), total.as_value().eq(0), v_sent.eq(0)])
        with m.Elif(phase == 3):
            m.d.comb += [s_w.en.eq(1), s_w.data.eq(exp.r.as_value())]
            m.d.sync += [total.eq(add.r), j.eq(j + 1)]
            with m.If(last_j):
                m.d.sync += [j.eq(0), phase.eq(4)]
        with m.Elif(phase == 4):
            m.d.sync += [r.eq(recip.r), phase.eq(5)]
        with m.Elif(phase == 5):
            with m.If(v_resp.valid):
                m.d.comb += [o_w.en.eq(1), o_w.data.eq(Mux(j == 0, pv.as_value(), av.r.as_value()))]
                step_element([phase.eq(6)])
        with m.Else():
            m.d.comb += self.o.valid.eq(1)
            with m.If(self.o.ready):
                m.d.sync += i.eq(i + 1)
                with m.If(last_i):
                    m.d.sync += [i.eq(0), phase.eq(0), self.done.eq(1)]
        return m
