"""Attention decode unit for one head, reading its KV cache from the accelerator's memory,
bit-exact with :func:`lutforge.golden.attention.attention` (exact or L-Mul products, ``lanes``
products per beat summed by the golden's adder tree) for one query at a time: a prefill of T
queries is T decode steps, as the golden defines it.

Interface, in the manner of the GEMV cores (:mod:`lutforge.hdl.gemv_core`):

* ``desc`` (in): one descriptor per query, fields LSB first (:func:`lutforge.golden.attention.
  descriptor_fields`): ``keys`` (16 bits, the cached tokens the query sees, 1 to ``max_keys``),
  ``k_base`` and ``v_base`` (``addr_width`` bits each, word addresses);
* ``q`` (in): the query's D elements in the data format, ``lanes`` per beat, after its descriptor;
* ``mem.k`` / ``mem.v`` (read channels: a ``req`` address stream out and an in-order ``resp``
  stream in, any latency, any number outstanding): words of ``lanes`` elements laid out by
  :func:`lutforge.golden.attention.cache_words` from ``k_base`` and ``v_base`` (with one lane,
  element i of token j at ``base + j·D + i``). Whoever produces keys and values (the host driver,
  or the RoPE unit's output through a writer) appends token j's before a query that sees it is
  started;
* ``o`` (out): the D outputs in the data format;
* ``busy``, ``done`` and ``error`` (1: ``keys`` is 0 or above ``max_keys``; a refused query
  touches neither the memory nor the streams).

Datapath, one beat per cycle in the accumulation format ``acc`` (operands widened exactly); a
beat's ``lanes`` products are summed by the adder tree, and a sum runs over its beats in order from
the first beat's tree sum:

1. scores: ``s_j = RN(RN(sum_i q_i·k_ji) · RN(1/sqrt(D)))``, D/``lanes`` beats per key, kept in a
   score buffer of ``max_keys`` entries (``lanes`` banks, key j in bank ``j mod lanes``) while a
   comparator keeps the first maximum;
2. one key per cycle: ``e_j = exp(RN(s_j - m))`` overwrites ``s_j`` and ``S = RN(S + e_j)`` (from
   +0, which adds exactly); ``r = reciprocal(S)``;
3. A·V: ``acc_d = sum_j p_j·v_jd`` with ``p_j = RN(e_j·r)``, a beat being ``lanes`` consecutive
   keys (keys past n give +0 products, the golden's padding), for every block of keys and element
   d (an accumulator buffer of D entries);
4. each ``acc_d`` rounded into the data format leaves on ``o``.

A product ``a·b`` is ``RN(a·b)`` in ``acc`` (``mul="exact"``) or, with ``mul="lmul"``, the L-Mul
product of the two operands in the data format (``p_j`` first rounded into it), at ``offset``
(default: the paper's), widened into ``acc`` exactly: the multiplier is one integer adder.

Memory reads of the values are issued from the end of the scores on, so their latency overlaps
the softmax. A query over n keys takes about n·D/lanes + n + ceil(n/lanes)·D + D + D/lanes cycles
with a memory that answers every cycle (:func:`lutforge.compiler.perf_units.attention_cycles`).
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
from .lmul_dot import FormatWiden, adder_tree
from .round_pack import rejecting
from .softmax import order_key

__all__ = ["AttentionDecode", "descriptor_layout"]


def descriptor_layout(addr_width: int = 32) -> data.StructLayout:
    """The descriptor of one query (and of the token the KV cache writer appends for it)."""
    return data.StructLayout({name: unsigned(width) for name, width in descriptor_fields(addr_width)})


class AttentionDecode(wiring.Component):
    """One attention head over a KV cache of up to ``max_keys`` tokens of ``d`` elements, ``lanes``
    products per beat (module docstring)."""

    def __init__(self, fmt, d: int, max_keys: int, *, acc=None, mul: str = "exact", offset: int | None = None,
                 lanes: int = 1, seed_bits: int = 7, addr_width: int = 32):
        with rejecting(self):
            self.format = get(fmt)
            self.acc = self.format if acc is None else get(acc)
            golden.check_function_format(self.acc)
            check_acc_format(self.format, self.acc)
            self.d = check_int("d", d, 2, 1024, fix="a head holds 2 to 1024 elements")
            self.max_keys = check_int("max_keys", max_keys, 2, (1 << 16) - 1,
                                      fix="the score buffer holds 2 to 65535 keys (the descriptor's 16-bit field)")
            self.lanes = check_int("lanes", lanes, 1, self.d, fix="a beat takes 1 to D products")
            if self.d % self.lanes:
                raise ValueError(f"The head dimension {self.d} is not a multiple of lanes={self.lanes}; choose "
                                 f"lanes dividing {self.d}.")
            self.addr_width = check_int("addr_width", addr_width, 2, 64, fix="word addresses have 2 to 64 bits")
            if mul not in MULS:
                raise ValueError(f"Attention multiplier {mul!r} is not one of {', '.join(MULS)}; choose one of them.")
            if mul == "exact" and offset is not None:
                raise ValueError(f"An L-Mul offset ({offset}) was given for exact products; give mul='lmul' or "
                                 f"leave the offset out.")
            self.mul = mul
            # The L-Mul units of the scores' and A·V's lanes (built here so a bad offset fails here).
            self.lmuls = ([LMulMultiplier(self.format, offset=offset) for _ in range(2 * self.lanes)]
                          if mul == "lmul" else None)
            self.offset = self.lmuls[0].offset if self.lmuls else None
            self.exp = FPExp(self.acc)
            self.recip = FPReciprocal(self.acc, seed_bits=seed_bits)
        f = FloatLayout(self.format)
        read = MemoryReadSignature(self.addr_width, self.format.width * self.lanes)
        super().__init__({
            "desc": In(stream.Signature(descriptor_layout(self.addr_width))),
            "q": In(stream.Signature(data.ArrayLayout(f, self.lanes))),
            "o": Out(stream.Signature(f)),
            "mem": Out(wiring.Signature({"k": Out(read), "v": Out(read)})),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
        })

    def _widen(self, m, value, name):
        """``value`` of the data format in ``acc`` (exact)."""
        return self._convert(m, value, name, lambda: FormatWiden(self.format, self.acc))

    def _narrow(self, m, value, name):
        """``value`` of ``acc`` rounded into the data format."""
        return self._convert(m, value, name, lambda: FPConvert(self.acc, self.format))

    def _convert(self, m, value, name, unit):
        if self.acc == self.format:
            return value
        m.submodules[name] = converter = unit()
        m.d.comb += converter.a.eq(value)
        return converter.r

    def _product(self, m, which: int, name, a, b, narrow_a: bool = False):
        """``a·b`` in ``acc`` (module docstring), on L-Mul unit ``which``: ``b`` is in the data
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
        fmt, acc, d, n_max, lanes = self.format, self.acc, self.d, self.max_keys, self.lanes
        alay, flay = FloatLayout(acc), FloatLayout(fmt)
        beats = d // lanes                 # beats of one key's scores
        blocks_max = -(-n_max // lanes)    # blocks of `lanes` keys in the score buffer
        m.submodules.q_mem = q_mem = Memory(shape=unsigned(fmt.width * lanes), depth=beats, init=[])
        m.submodules.o_mem = o_mem = Memory(shape=unsigned(acc.width), depth=d, init=[])
        banks = [Memory(shape=unsigned(acc.width), depth=blocks_max, init=[]) for _ in range(lanes)]
        for lane, bank in enumerate(banks):
            m.submodules[f"s_bank{lane}"] = bank
        q_w, o_w = q_mem.write_port(), o_mem.write_port()
        q_r, o_r = q_mem.read_port(domain="comb"), o_mem.read_port(domain="comb")
        s_w = [bank.write_port() for bank in banks]
        s_r = [bank.read_port(domain="comb") for bank in banks]

        b = Signal(range(max(beats, 2)))     # beat of a key (scores)
        e = Signal(range(d))                 # element (A·V, output)
        j = Signal(range(n_max))             # key
        lane = Signal(range(max(lanes, 2)))  # j mod lanes
        block = Signal(range(blocks_max))    # j div lanes (scores, softmax) or the key block (A·V)
        desc = Signal.like(self.desc.payload)
        keys = desc.keys
        # ceil(keys / lanes), registered with the descriptor: no divider on the A·V loop's path.
        blocks = Signal(range(blocks_max + 1))
        total, r, best, run = (Signal(alay, name=n) for n in ("total", "r", "best", "run"))
        last_b, last_e, last_j = b == beats - 1, e == d - 1, j == keys - 1
        k_resp, v_resp = self.mem.k.resp, self.mem.v.resp

        q_word = Signal(data.ArrayLayout(flay, lanes))
        k_word = Signal(data.ArrayLayout(flay, lanes))
        v_word = Signal(data.ArrayLayout(flay, lanes))
        out_acc = Signal(alay)
        score = Signal(alay)  # key j's entry (its bank at its block)
        m.d.comb += [q_r.addr.eq(b), o_r.addr.eq(e),
                     q_word.as_value().eq(q_r.data), k_word.as_value().eq(k_resp.payload),
                     v_word.as_value().eq(v_resp.payload), out_acc.as_value().eq(o_r.data),
                     q_w.addr.eq(b), q_w.data.eq(self.q.payload.as_value()), o_w.addr.eq(e)]
        for port in s_r + s_w:
            m.d.comb += port.addr.eq(block)
        selected = s_r[0].data
        for n in range(1, lanes):
            selected = Mux(lane == n, s_r[n].data, selected)
        m.d.comb += score.as_value().eq(selected)

        # Scores: a beat of products, its tree sum, the sum over beats, the scale.
        qk = adder_tree(m, [self._product(m, n, f"qk{n}", q_word[n], k_word[n]) for n in range(lanes)], acc, "qk_add")
        m.submodules.dot = dot = FPAdder(acc)
        m.d.comb += [dot.a.eq(run), dot.b.eq(qk)]
        summed = Mux(b == 0, qk.as_value(), dot.r.as_value())
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

        # A·V: a block of `lanes` keys per beat, keys past n giving +0.
        products = []
        for n in range(lanes):
            m.submodules[f"prob{n}"] = prob = FPMultiplier(acc)
            entry = Signal(alay, name=f"entry{n}")
            m.d.comb += [entry.as_value().eq(s_r[n].data), prob.a.eq(entry), prob.b.eq(r)]
            product = self._product(m, lanes + n, f"pv{n}", prob.r, v_word[n], narrow_a=True)
            masked = Signal(alay, name=f"pv_masked{n}")
            m.d.comb += masked.as_value().eq(Mux(block * lanes + n < keys, product.as_value(), 0))
            products.append(masked)
        pv = adder_tree(m, products, acc, "pv_add")
        m.submodules.av = av = FPAdder(acc)
        m.d.comb += [av.a.eq(out_acc), av.b.eq(pv), self.o.payload.eq(self._narrow(m, out_acc, "narrow_out"))]

        # Phases: 0 descriptor, 1 load q, 2 scores, 3 exp and sum, 4 reciprocal, 5 A·V, else output
        # (an If chain: every case covered).
        phase = Signal(range(7))
        # Address requests run ahead of the datapath: the keys' during the scores, the values' from
        # the softmax on (the memory buffers the answers, which come back in order).
        k_words, v_words = keys * beats, blocks * d
        k_sent = Signal(range(n_max * beats + 1))
        v_sent = Signal(range(blocks_max * d + 1))
        m.d.comb += [self.mem.k.req.valid.eq((phase == 2) & (k_sent < k_words)),
                     self.mem.k.req.payload.eq(desc.k_base + k_sent),
                     self.mem.v.req.valid.eq((phase >= 3) & (phase <= 5) & (v_sent < v_words)),
                     self.mem.v.req.payload.eq(desc.v_base + v_sent),
                     k_resp.ready.eq(phase == 2), v_resp.ready.eq(phase == 5),
                     self.busy.eq(phase != 0)]
        with m.If(self.mem.k.req.valid & self.mem.k.req.ready):
            m.d.sync += k_sent.eq(k_sent + 1)
        with m.If(self.mem.v.req.valid & self.mem.v.req.ready):
            m.d.sync += v_sent.eq(v_sent + 1)

        def next_key():
            m.d.sync += [j.eq(j + 1), lane.eq(lane + 1)]
            with m.If(lane == lanes - 1):
                m.d.sync += [lane.eq(0), block.eq(block + 1)]

        restart = [j.eq(0), lane.eq(0), block.eq(0)]
        with m.If(phase == 0):
            m.d.comb += self.desc.ready.eq(1)
            with m.If(self.desc.valid):
                m.d.sync += [desc.eq(self.desc.payload), self.done.eq(0), self.error.eq(0),
                             blocks.eq((self.desc.payload.keys + lanes - 1) // lanes)]
                with m.If((self.desc.payload.keys == 0) | (self.desc.payload.keys > n_max)):
                    m.d.sync += [self.error.eq(1), self.done.eq(1)]
                with m.Else():
                    m.d.sync += [b.eq(0), k_sent.eq(0), *restart, phase.eq(1)]
        with m.Elif(phase == 1):
            m.d.comb += [self.q.ready.eq(1), q_w.en.eq(self.q.valid)]
            with m.If(self.q.valid):
                m.d.sync += b.eq(b + 1)
                with m.If(last_b):
                    m.d.sync += [b.eq(0), phase.eq(2)]
        with m.Elif(phase == 2):
            with m.If(k_resp.valid):
                m.d.sync += [run.as_value().eq(summed), b.eq(b + 1)]
                with m.If(last_b):
                    m.d.sync += b.eq(0)
                    for n, port in enumerate(s_w):
                        m.d.comb += [port.en.eq(lane == n), port.data.eq(scale.r.as_value())]
                    with m.If((j == 0) | (new_key > best_key)):
                        m.d.sync += best.eq(scale.r)
                    next_key()
                    with m.If(last_j):
                        m.d.sync += [*restart, phase.eq(3), total.as_value().eq(0), v_sent.eq(0)]
        with m.Elif(phase == 3):
            for n, port in enumerate(s_w):
                m.d.comb += [port.en.eq(lane == n), port.data.eq(exp.r.as_value())]
            m.d.sync += total.eq(add.r)
            next_key()
            with m.If(last_j):
                m.d.sync += [*restart, e.eq(0), phase.eq(4)]
        with m.Elif(phase == 4):
            m.d.sync += [r.eq(recip.r), phase.eq(5)]
        with m.Elif(phase == 5):
            with m.If(v_resp.valid):
                m.d.comb += [o_w.en.eq(1), o_w.data.eq(Mux(block == 0, pv.as_value(), av.r.as_value()))]
                m.d.sync += e.eq(e + 1)
                with m.If(last_e):
                    m.d.sync += [e.eq(0), block.eq(block + 1)]
                    with m.If(block == blocks - 1):
                        m.d.sync += [block.eq(0), phase.eq(6)]
        with m.Else():
            m.d.comb += self.o.valid.eq(1)
            with m.If(self.o.ready):
                m.d.sync += e.eq(e + 1)
                with m.If(last_e):
                    m.d.sync += [e.eq(0), phase.eq(0), self.done.eq(1)]
        return m
