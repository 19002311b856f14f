"""Plain specification RTL, written only as proof targets for the optimized blocks in ``hdl/``:
proof and test reference RTL, never part of a generated design.

Each spec is a line-by-line transliteration of its golden model (``golden/``): no pipelining, no
shared terms, no layouts — the priority of special cases is the golden's order of ``np.where``
calls, so a reviewer can check the spec against the golden by eye and the proof carries that
check over to the optimized RTL.
"""

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.formats import Format, get
from ..golden.lmul import LMulPolicy, default_offset
from ..hdl.float_layout import FloatLayout

__all__ = ["LMulSpec", "ConvertSpec", "CentroidSearchSpec", "FunctionTableSpec", "PairSpec", "RoPESpec",
           "KVCacheWriterSpec"]


class LMulSpec(wiring.Component):
    """``r = lmul(a, b, fmt, policy, offset=offset)`` as combinational logic on plain bit vectors."""

    def __init__(self, fmt: "str | Format", policy: "LMulPolicy | str | None" = None, *,
                 offset: "int | None" = None):
        self.format = get(fmt)
        if not self.format.signed:
            raise ValueError(f"L-Mul needs a signed format; {self.format.name!r} has no sign bit.")
        self.policy = LMulPolicy.of(policy)
        self.offset = default_offset(self.format) if offset is None else int(offset)
        w = self.format.width
        super().__init__({"a": In(w), "b": In(w), "r": Out(w)})

    def elaborate(self, platform):
        m = Module()
        fmt, pol, w = self.format, self.policy, self.format.width
        sign = (self.a ^ self.b) & fmt.sign_mask
        ma = self.a & fmt.magnitude_mask
        mb = self.b & fmt.magnitude_mask
        # Signed arithmetic wide enough that ma + mb - offset never wraps.
        r = Signal(signed(w + 2))
        m.d.comb += r.eq(Cat(ma, Const(0, 2)).as_signed() + Cat(mb, Const(0, 2)).as_signed() - self.offset)

        over = (r > fmt.max_finite) if pol.overflow != "wrap" else Const(0)
        under = (r < (1 << fmt.man_bits)) if pol.underflow == "flush" else Const(0)
        out = Mux(over | under, 0, r.as_unsigned()[:w]) ^ sign
        if pol.overflow == "saturate":
            out = Mux(over, fmt.max_finite | sign, out)
        elif pol.overflow == "inf":
            out = Mux(over, (fmt.inf if fmt.has_inf else fmt.nan) | sign, out)
        out = Mux(under, sign, out)

        def subnormal(mag):
            return ((mag >> fmt.man_bits) == 0) & (mag != 0)

        zero_a = zero_b = Const(0)
        if pol.zero == "exact":
            zero_a, zero_b = ma == 0, mb == 0
        if pol.subnormal == "flush":
            zero_a = zero_a | subnormal(ma)
            zero_b = zero_b | subnormal(mb)
        out = Mux(zero_a | zero_b, sign, out)
        if pol.nan_inf == "propagate" and fmt.has_nan:
            def is_inf(mag):
                return (mag == fmt.inf) if fmt.has_inf else Const(0)

            def is_nan(mag):
                if fmt.specials == "ieee":
                    return mag > fmt.inf
                return mag == fmt.magnitude_mask
            inf = is_inf(ma) | is_inf(mb)
            out = Mux(inf, (fmt.inf if fmt.has_inf else fmt.nan) | sign, out)
            out = Mux(is_nan(ma) | is_nan(mb) | (inf & (zero_a | zero_b)), fmt.nan, out)
        m.d.comb += self.r.eq(out)
        return m


class ConvertSpec(wiring.Component):
    """``r = convert(a, src, dst)``: unpack, then the golden-shaped round-and-pack of the reference RTL."""

    def __init__(self, src: "str | Format", dst: "str | Format", *, rounding="rne", overflow=None,
                 subnormals="keep"):
        from ..hdl.round_pack import check_rtl_policy
        self.src, self.format = get(src), get(dst)
        self.overflow = check_rtl_policy(self.format, rounding, overflow, subnormals)
        self.rounding, self.subnormals = rounding, subnormals
        super().__init__({"a": In(FloatLayout(self.src)), "r": Out(FloatLayout(self.format))})

    def elaborate(self, platform):
        from .reference_fp import reference_round_pack
        from ..hdl.fp_unpack import exp_shape, unpack
        m = Module()
        a = unpack(m, self.a, self.src, self.subnormals, name="a")
        # Wide enough for either format's exponent range, so the round-and-pack never wraps.
        exp = Signal(signed(max(exp_shape(self.src).width, exp_shape(self.format).width) + 1))
        m.d.comb += exp.eq(a.exp)
        m.d.comb += self.r.eq(reference_round_pack(
            m, self.format, a.sign, a.sig, exp, Const(0), a.nan, a.inf, rounding=self.rounding,
            overflow=self.overflow, subnormals=self.subnormals))
        return m


class CentroidSearchSpec(wiring.Component):
    """The nearest codebook entry of each sub-vector, combinationally: ``o`` is ``i`` with no delay.

    Distances as :func:`lutforge.golden.centroid_search.search` defines them, then a linear scan
    that replaces the incumbent only on a strictly smaller distance (the lowest index wins ties).
    Same ports as :class:`lutforge.hdl.centroid_search.CentroidSearch` with the same
    ``element_bits``; it never stalls, so proofs against the pipelined unit assume ``o.ready``.
    """

    def __init__(self, v: int = 2, c_a: int = 4, *, metric: str = "linf", element_bits: int = 8):
        from amaranth.lib import data, stream
        from ..hdl.centroid_search import check_element_bits
        self.v, self.c_a, self.metric = v, c_a, metric
        try:
            self.element_bits = check_element_bits(element_bits)
        except ValueError:
            self._MustUse__silence = True  # a rejected component is not an unused one
            raise
        self.index_bits = max(1, (c_a - 1).bit_length())
        element = signed(self.element_bits)
        payload = data.StructLayout({"x": data.ArrayLayout(element, v),
                                     "codebook": data.ArrayLayout(element, c_a * v)})
        super().__init__({"i": In(stream.Signature(payload)), "o": Out(stream.Signature(self.index_bits))})

    def elaborate(self, platform):
        m = Module()
        x, book = self.i.payload.x, self.i.payload.codebook
        best_dist, best_index = None, Const(0, self.index_bits)
        for a in range(self.c_a):
            diffs = [x[j] - book[a * self.v + j] for j in range(self.v)]
            if self.metric == "linf":
                dist = Const(0, self.element_bits)
                for d in diffs:
                    dist = Mux(abs(d) > dist, abs(d), dist)
            else:
                dist = sum(d * d for d in diffs)
            if best_dist is None:
                best_dist = dist
            else:
                closer = dist < best_dist
                best_index = Mux(closer, a, best_index)
                best_dist = Mux(closer, dist, best_dist)
        m.d.comb += [self.i.ready.eq(1), self.o.valid.eq(self.i.valid), self.o.payload.eq(best_index)]
        return m


class FunctionTableSpec(wiring.Component):
    """``r = function(a)`` of a unary golden model as a plain table: one case per input encoding
    (formats of at most 8 bits), the golden's output written in. A proof against it is the
    exhaustive check as a theorem, and its fault campaign covers the unit's internals."""

    def __init__(self, fmt: "str | Format", function):
        self.format = get(fmt)
        if self.format.width > 8:
            raise ValueError(f"A table spec of {self.format.name} would hold 2^{self.format.width} cases; "
                             f"tabulate formats of at most 8 bits.")
        import numpy as np
        codes = np.arange(1 << self.format.width, dtype=np.uint64).astype(self.format.dtype)
        self.table = [int(v) for v in function(codes, self.format)]
        super().__init__({"a": In(FloatLayout(self.format)), "r": Out(FloatLayout(self.format))})

    def elaborate(self, platform):
        m = Module()
        a = self.a.as_value()
        # One OR of input matches per output bit (a case statement would become a ROM, which the
        # SAT engine cannot model).
        hits = [a == code for code in range(len(self.table))]
        bits = [Cat(*[hits[c] for c, v in enumerate(self.table) if v >> b & 1] or [Const(0)]).any()
                for b in range(self.format.width)]
        m.d.comb += self.r.as_value().eq(Cat(*bits))
        return m


class PairSpec(wiring.Component):
    """A two-operand reference block (ports ``a``, ``b``, ``r``) behind one ``{a, b}`` input port,
    the port of the stream units' datapaths (:class:`lutforge.hdl.fp_binary_stream.FPBinaryDatapath`)."""

    def __init__(self, reference):
        from ..hdl.fp_binary_stream import binary_input_layout
        self.reference = reference
        super().__init__({"a": In(binary_input_layout(reference.format)), "r": Out(FloatLayout(reference.format))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.reference = ref = self.reference
        m.d.comb += [ref.a.eq(self.a.a), ref.b.eq(self.a.b), self.r.eq(ref.r)]
        return m


class RoPESpec(wiring.Component):
    """The RoPE rotation of one pair as :func:`lutforge.golden.rope.rope` writes it, from the plain
    reference multiplier and FMA: ``y1 = RN(x1·c - RN(x2·s))``, ``y2 = RN(x2·c + RN(x1·s))``
    (the ports of :class:`lutforge.hdl.rope.RoPEDatapath`)."""

    def __init__(self, fmt):
        from ..hdl.rope import rope_input_layout, rope_output_layout
        self.format = get(fmt)
        super().__init__({"a": In(rope_input_layout(self.format)), "r": Out(rope_output_layout(self.format))})

    def elaborate(self, platform):
        from .reference_fp import ReferenceFMA, ReferenceMultiplier
        m = Module()
        a, fmt = self.a, self.format
        m.submodules.x2s = x2s = ReferenceMultiplier(fmt)
        m.submodules.x1s = x1s = ReferenceMultiplier(fmt)
        m.submodules.y1 = y1 = ReferenceFMA(fmt)
        m.submodules.y2 = y2 = ReferenceFMA(fmt)
        negated = x2s.r.as_value()
        m.d.comb += [x2s.a.eq(a.x2), x2s.b.eq(a.s), x1s.a.eq(a.x1), x1s.b.eq(a.s),
                     y1.a.eq(a.x1), y1.b.eq(a.c), y1.c.as_value().eq(Cat(negated[:-1], ~negated[-1])),
                     y2.a.eq(a.x2), y2.b.eq(a.c), y2.c.eq(x1s.r),
                     self.r.y1.eq(y1.r), self.r.y2.eq(y2.r)]
        return m


class KVCacheWriterSpec(wiring.Component):
    """The KV cache writer as :func:`lutforge.golden.attention.cache_writes` writes it: the latched
    descriptor, a count of the key writes and one of the value writes, and each write's address,
    data and mask computed from them by the golden's formulas (``k_base + j·D/lanes + b``,
    ``v_base + (j // lanes)·D + e``, lane ``j mod lanes``, with ``j = keys - 1``). Ports and
    handshakes of :class:`lutforge.hdl.kv_cache_writer.KVCacheWriter`, which keeps running
    addresses instead."""

    def __init__(self, fmt, d: int, *, lanes: int = 1, addr_width: int = 32):
        from ..hdl.kv_cache_writer import KVCacheWriter
        self.format, self.d, self.lanes, self.addr_width = get(fmt), d, lanes, addr_width
        # The writer's own signature, so the ports agree by construction; that writer is never built.
        writer = KVCacheWriter(fmt, d, lanes=lanes, addr_width=addr_width)
        writer._MustUse__silence = True
        super().__init__(writer.signature)

    def elaborate(self, platform):
        m = Module()
        d, lanes, width = self.d, self.lanes, self.format.width
        beats = d // lanes
        # keys starts at 1 (j = 0): idle payloads then equal the writer's, whose running addresses start at 0.
        keys, k_base, v_base = Signal(16, init=1), Signal(self.addr_width), Signal(self.addr_width)
        b, e = Signal(range(beats + 1)), Signal(range(d + 1))  # key and value writes done
        busy, done, error = Signal(), Signal(), Signal()
        j = Signal(16)
        m.d.comb += j.eq(keys - 1)
        kw, vw = self.mem.k.w, self.mem.v.w
        k_open, v_open = busy & (b < beats), busy & (e < d)
        m.d.comb += [self.busy.eq(busy), self.done.eq(done), self.error.eq(error), self.desc.ready.eq(~busy),
                     kw.valid.eq(self.k.valid & k_open), self.k.ready.eq(kw.ready & k_open),
                     kw.payload.addr.eq(k_base + j * beats + b), kw.payload.data.eq(self.k.payload.as_value()),
                     kw.payload.mask.eq((1 << lanes) - 1),
                     vw.valid.eq(self.v.valid & v_open), self.v.ready.eq(vw.ready & v_open),
                     vw.payload.addr.eq(v_base + (j // lanes) * d + e),
                     vw.payload.data.eq(self.v.payload.as_value() << ((j % lanes) * width)),
                     vw.payload.mask.eq(1 << (j % lanes))]
        with m.If(kw.valid & kw.ready):
            m.d.sync += b.eq(b + 1)
        with m.If(vw.valid & vw.ready):
            m.d.sync += e.eq(e + 1)
        with m.If(busy & (b == beats) & (e == d)):
            m.d.sync += [busy.eq(0), done.eq(1)]
        desc = self.desc.payload
        with m.If(self.desc.valid & ~busy):
            m.d.sync += [done.eq(desc.keys == 0), error.eq(desc.keys == 0)]
            with m.If(desc.keys != 0):
                m.d.sync += [busy.eq(1), b.eq(0), e.eq(0), keys.eq(desc.keys), k_base.eq(desc.k_base),
                             v_base.eq(desc.v_base)]
        return m
