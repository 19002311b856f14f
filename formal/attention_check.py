"""The attention unit against plain reference RTL, by a bounded proof of one query.

:class:`AttentionSpec` is :func:`lutforge.golden.attention.attention` for one query over up to
two keys, written combinationally from the plain reference multiplier and adder
(:mod:`.reference_fp`) and the golden exp and reciprocal as tables (:class:`.specs.FunctionTableSpec`):
no buffers, no schedule, the golden's operations in the golden's order, invisible keys masked as
the golden masks them.

:class:`AttentionCheck` holds :class:`lutforge.hdl.attention.AttentionDecode` and the spec: the
query, the cache and the number of keys are free values held from the first cycle, every
handshake stalls freely (descriptor, query, both memory channels, the output), the memory answers
after any delay, and every output the unit gives must equal the spec's, no more than D of them.
:func:`lutforge.formal.engines.prove_properties` checks it for every input and stall pattern up to
a depth that covers the query without stalls (a cover shows that the outputs are reached).
"""

from amaranth import Module, Mux, Signal, signed
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from ..golden import fp_funcs
from ..golden.convert import encode
from ..golden.formats import get
from .reference_fp import ReferenceAdder, ReferenceMultiplier
from .specs import FunctionTableSpec

__all__ = ["AttentionSpec", "AttentionCheck"]


class AttentionSpec(wiring.Component):
    """One query's outputs over ``n`` (1 to ``keys``) of ``keys`` cached tokens of ``d`` elements,
    exact products, accumulation in the data format ``fmt`` (at most 8 bits: exp and reciprocal are
    tables), one product per beat. Inputs are plain signals set by the caller: ``q`` (D), ``k``
    and ``v`` (keys × D) and ``n``; ``o`` (D) are the outputs."""

    def __init__(self, fmt, d: int, keys: int, *, seed_bits: int = 7):
        self.format, self.d, self.keys, self.seed_bits = get(fmt), d, keys, seed_bits
        w = self.format.width
        self.q = [Signal(w, name=f"q{i}") for i in range(d)]
        self.k = [[Signal(w, name=f"k{j}_{i}") for i in range(d)] for j in range(keys)]
        self.v = [[Signal(w, name=f"v{j}_{i}") for i in range(d)] for j in range(keys)]
        self.n = Signal(range(keys + 1))
        super().__init__({"o": Out(w).array(d)})

    def elaborate(self, platform):
        m = Module()
        fmt, d, keys = self.format, self.d, self.keys
        count = iter(range(1 << 20))

        def unit(cls, *args):
            name = f"u{next(count)}"
            m.submodules[name] = block = cls(*args)
            return block

        def binary(cls, a, b):
            block = unit(cls, fmt)
            m.d.comb += [block.a.as_value().eq(a), block.b.as_value().eq(b)]
            return block.r.as_value()

        def table(function, a):
            block = unit(FunctionTableSpec, fmt, function)
            m.d.comb += block.a.as_value().eq(a)
            return block.r.as_value()

        def mul(a, b):
            return binary(ReferenceMultiplier, a, b)

        def add(a, b):
            return binary(ReferenceAdder, a, b)

        def total(terms):  # one product per beat: the beats left to right from the first
            result = terms[0]
            for term in terms[1:]:
                result = add(result, term)
            return result

        def const(x):
            return int(encode(x, fmt))

        neg_inf, neg_zero = const(float("-inf")), const(-0.0)
        scale = const(1 / d ** 0.5)
        visible = [self.n > j for j in range(keys)]
        scores = [mul(total([mul(self.q[i], self.k[j][i]) for i in range(d)]), scale) for j in range(keys)]
        scores = [Mux(visible[j], scores[j], neg_inf) for j in range(keys)]

        # Softmax (golden.softmax): the first maximum, NaNs compared as -Inf.
        mag_mask, inf_mag = (1 << (fmt.width - 1)) - 1, neg_inf & ((1 << (fmt.width - 1)) - 1)

        def order(x):  # a signed integer in the order of the values (-0 = +0; NaN as -Inf)
            key = Signal(signed(fmt.width + 1))
            mag = x & mag_mask
            m.d.comb += key.eq(Mux(mag > inf_mag, -inf_mag, Mux(x[-1], -mag, mag)))
            return key

        best = scores[0]
        for s in scores[1:]:
            best = Mux(order(s) > order(best), s, best)
        negated = best ^ fmt.sign_mask
        e = [table(fp_funcs.exp, add(s, negated)) for s in scores]
        r = table(lambda a, f: fp_funcs.reciprocal(a, f, seed_bits=self.seed_bits), total(e))
        p = [mul(e_j, r) for e_j in e]
        # A·V: a hidden key's product is -0 (one key per beat: none shares the last visible's beat).
        for i in range(d):
            products = [Mux(visible[j], mul(p[j], self.v[j][i]), neg_zero) for j in range(keys)]
            m.d.comb += self.o[i].eq(total(products))
        return m


class AttentionCheck(wiring.Component):
    """:class:`lutforge.hdl.attention.AttentionDecode` (``fmt``, ``d``, ``keys``, exact products,
    accumulation in ``fmt``, one lane) and :class:`AttentionSpec` on the same free query, cache
    and key count, with free stalls everywhere (module docstring). Its inputs are free each cycle;
    the data inputs are taken on the first cycle and held. ``outputs``: how many outputs the
    unit has given (all checked)."""

    def __init__(self, fmt, d: int, keys: int, *, unit=None):
        from ..hdl.attention import AttentionDecode
        self.format, self.d, self.keys = get(fmt), d, keys
        w = self.format.width
        # A changed unit (a mutant) may be given in place of the one built here.
        self.unit = unit or AttentionDecode(fmt, d, keys, acc=fmt, addr_width=4)
        super().__init__({
            "q_in": wiring.In(w).array(d), "k_in": wiring.In(w).array(keys * d), "v_in": wiring.In(w).array(keys * d),
            "n_in": wiring.In(range(keys + 1)),
            # Stall inputs: desc/q valid, k/v request ready, k/v response valid, o ready.
            "go": wiring.In(7),
            "outputs": Out(range(d + 2)),
        })

    def elaborate(self, platform):
        m = Module()
        d, keys = self.d, self.keys
        m.submodules.unit = u = self.unit
        m.submodules.spec = spec = AttentionSpec(self.format, d, keys)
        first = Signal(init=1)
        m.d.sync += first.eq(0)

        def held(port, name):  # the port's value on the first cycle, on every cycle
            reg = Signal.like(port, name=name)
            with m.If(first):
                m.d.sync += reg.eq(port)
            return Mux(first, port, reg)

        q = [held(self.q_in[i], f"q{i}") for i in range(d)]
        k = [held(self.k_in[x], f"k{x}") for x in range(keys * d)]
        v = [held(self.v_in[x], f"v{x}") for x in range(keys * d)]
        n = held(self.n_in, "n")
        m.d.comb += Assume((n >= 1) & (n <= keys))
        m.d.comb += [spec.n.eq(n)] + [spec.q[i].eq(q[i]) for i in range(d)]
        m.d.comb += [spec.k[j][i].eq(k[j * d + i]) for j in range(keys) for i in range(d)]
        m.d.comb += [spec.v[j][i].eq(v[j * d + i]) for j in range(keys) for i in range(d)]

        # One descriptor (keys at word 0, values at word keys·D), then the query's D elements.
        go = self.go
        sent, q_beat = Signal(), Signal(range(d + 1))
        m.d.comb += [u.desc.valid.eq(~sent & go[0]), u.desc.payload.keys.eq(n),
                     u.desc.payload.k_base.eq(0), u.desc.payload.v_base.eq(keys * d)]
        with m.If(u.desc.valid & u.desc.ready):
            m.d.sync += sent.eq(1)
        m.d.comb += [u.q.valid.eq(sent & (q_beat < d) & go[1]),
                     u.q.payload.as_value().eq(_select(q, q_beat))]
        with m.If(u.q.valid & u.q.ready):
            m.d.sync += q_beat.eq(q_beat + 1)

        # Each memory channel: one request outstanding, answered after any delay.
        words = k + v
        for which, (ready, answer) in (("k", (2, 4)), ("v", (3, 5))):
            port = getattr(u.mem, which)
            pending, addr = Signal(name=f"{which}_pending"), Signal(4, name=f"{which}_addr")
            m.d.comb += [port.req.ready.eq(~pending & go[ready]), port.resp.valid.eq(pending & go[answer]),
                         port.resp.payload.eq(_select(words, addr))]
            with m.If(port.req.valid & port.req.ready):
                m.d.sync += [pending.eq(1), addr.eq(port.req.payload)]
            with m.If(port.resp.valid & port.resp.ready):
                m.d.sync += pending.eq(0)

        outputs = Signal(range(d + 2))
        m.d.comb += [u.o.ready.eq(go[6]), self.outputs.eq(outputs)]
        with m.If(u.o.valid & u.o.ready):
            m.d.sync += outputs.eq(outputs + 1)
            m.d.comb += Assert(outputs < d)
            m.d.comb += Assert(u.o.payload.as_value() == _select([spec.o[i] for i in range(d)], outputs))
        m.d.comb += Cover(outputs == d)
        return m


def _select(values, index):
    """``values[index]`` as a mux chain (0 past the end)."""
    result = 0
    for i, value in reversed(list(enumerate(values))):
        result = Mux(index == i, value, result)
    return result
