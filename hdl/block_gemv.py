"""Block-format GEMV core: MX/NV weights from an external memory, MX activations, fp32 accumulators.

One run computes, for one activation vector and N weight rows, the fp32 accumulator of
:mod:`lutforge.golden.block_gemv` (its docstring states the arithmetic and the memory, stream and
descriptor layouts; :func:`~lutforge.golden.block_gemv.core_images` and
:func:`~lutforge.golden.block_gemv.x_payloads` build them), bit for bit.

Build parameters: ``weight`` (``mxint8``, ``mxint4``, ``mxfp4``, ``nvfp4``), ``act`` (``mxint8``,
``mxfp8_e4m3``), ``lanes`` (L rows at a time), ``max_chunks`` (depth of the activation buffer,
1 .. 65535), ``addr_width`` (word addresses, default 32).

Ports: ``desc`` (in, :func:`block_descriptor_layout`), ``x`` (in, one chunk per transfer: C element
codes and the activation scale code), ``mem.w`` / ``mem.s`` (read channels as in
:class:`lutforge.hdl.gemv_core.GemvCore`: a ``req`` address stream out, an in-order ``resp`` word
stream in, any latency, any number outstanding), ``acc`` (out, one transfer per tile of L rows,
lane i's fp32 bits at ``32 i``, padding lanes 0), ``busy``, ``done``, ``error`` (:data:`ERRORS`;
a refused run touches neither the memory nor the streams).

Datapath, one (tile, chunk) memory word per cycle, three register stages:

1. per lane, C integer products of the decoded elements summed by an adder tree (exact), times the
   significand of an E4M3 weight scale, with the chunk's exponent ``ea - 127 - fa + (weight scale
   exponent) - fw`` and its NaN flag;
2. :class:`~lutforge.hdl.round_pack.RoundPack` rounds the signed integer into fp32 (``p_c``);
3. a combinational fp32 :class:`~lutforge.hdl.fp_add.FPAdder` adds ``p_c`` to the lane's
   accumulator (+0 at the first chunk); after the last chunk the tile goes to the ``acc`` register.

Requests for the weight and scale words run ahead from the descriptor on; the activations are
written into the buffer as they arrive and a word is used once its chunk is there. A run takes
about ``ceil(N / L) * chunks`` cycles plus the memory latency and the pipeline
(:func:`lutforge.compiler.perf.block_run_cycles`).
"""

from amaranth import Module, Signal, Cat, Const, Mux, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.block_gemv import BlockGemvFormat, block_descriptor_fields
from .fp_add import FPAdder
from .gemv_core import MemoryReadSignature
from .round_pack import RoundPack, rejecting

__all__ = ["BlockGemvCore", "ChunkProduct", "ChunkTerms", "chunk_sig_width", "block_descriptor_layout", "x_layout", "ERRORS"]

ERRORS = {1: "chunks out of range", 2: "no output rows"}

_EXP = signed(12)  # chunk exponents lie in [-269, 254]


def block_descriptor_layout(addr_width: int = 32) -> data.StructLayout:
    return data.StructLayout({name: unsigned(width) for name, width in block_descriptor_fields(addr_width)})


def x_layout(chunk: int) -> data.StructLayout:
    """One ``x`` transfer: ``chunk`` 8-bit element codes, then the 8-bit activation scale code."""
    return data.StructLayout({"elements": data.ArrayLayout(unsigned(8), chunk), "scale": unsigned(8)})


def _element(m, code, element: str, name: str):
    """``(i, nan)``: the signed integer ``value · 2^f`` of one element code (golden ``element_integers``)."""
    if element in ("int8", "int4"):
        return code.as_signed(), Const(0)
    width = len(code)
    man_bits = 1 if element == "e2m1" else 3
    man, field, sign = code[:man_bits], code[man_bits:width - 1], code[width - 1]
    mag = Signal(((1 << man_bits) * 2 << ((1 << len(field)) - 2)).bit_length(), name=f"{name}_mag")
    nan = Signal(name=f"{name}_nan")
    m.d.comb += mag.eq(Mux(field == 0, man, (Cat(man, Const(1, 1)) << field) >> 1))
    if element == "e4m3":
        m.d.comb += nan.eq(code[:7] == 0x7F)
        with m.If(nan):
            m.d.comb += mag.eq(0)
    value = Signal(signed(len(mag) + 1), name=f"{name}_i")
    m.d.comb += value.eq(Mux(sign, -mag, mag))
    return value, nan


def _tree(m, values, name: str):
    level = 0
    while len(values) > 1:
        pairs = [values[k] + values[k + 1] for k in range(0, len(values) - 1, 2)]
        sums = []
        for k, v in enumerate(pairs):
            s = Signal(v.shape(), name=f"{name}_l{level}_{k}")
            m.d.comb += s.eq(v)
            sums.append(s)
        values = sums + ([values[-1]] if len(values) % 2 else [])
        level += 1
    return values[0]


def _act_terms(m, fmt: BlockGemvFormat, xrow, chunk: int):
    """The chunk's activation integers, its NaN flag and its exponent part, shared by every lane."""
    decoded = [_element(m, xrow.elements[j], fmt.act_element, f"a{j}") for j in range(chunk)]
    act, nans = [i for i, _ in decoded], [nan for _, nan in decoded]
    act_nan = Signal()
    m.d.comb += act_nan.eq((xrow.scale == 0xFF) | Cat(*nans).any())
    a_exp = Signal(_EXP)
    m.d.comb += a_exp.eq(xrow.scale - (127 + fmt.act_frac + fmt.weight_frac))
    return act, act_nan, a_exp


def _lane_terms(m, fmt: BlockGemvFormat, act_terms, w_bits, scode, chunk: int, name: str):
    """``(sign, mag, exp, nan)`` of one lane's exact chunk value ``(-1)^sign · mag · 2^exp``."""
    act, act_nan, a_exp = act_terms
    eb = fmt.weight_bits
    products = []
    for j in range(chunk):
        iw, _ = _element(m, w_bits[j * eb:(j + 1) * eb], fmt.weight_element, f"{name}_w{j}")
        products.append(act[j] * iw)
    total = _tree(m, products, f"{name}_sum")
    mag = Signal(len(total) + (4 if fmt.weight_scale == "e4m3" else 0), name=f"{name}_mag")
    sign, exp, nan = Signal(name=f"{name}_sign"), Signal(_EXP, name=f"{name}_exp"), Signal(name=f"{name}_nan")
    magnitude = Mux(total < 0, -total, total)
    if fmt.weight_scale == "e8m0":
        m.d.comb += [mag.eq(magnitude), sign.eq((total < 0) & (mag != 0)),
                     exp.eq(a_exp + scode - 127), nan.eq(act_nan | (scode == 0xFF))]
    else:
        field, man = scode[3:7], scode[:3]
        sig = Mux(field == 0, man, Cat(man, Const(1, 1)))
        m.d.comb += [mag.eq(magnitude * sig), sign.eq(((total < 0) ^ scode[7]) & (mag != 0)),
                     exp.eq(a_exp + Mux(field == 0, 1, field) - 10),
                     nan.eq(act_nan | (scode[:7] == 0x7F))]
    return sign, mag, exp, nan


def chunk_sig_width(fmt: BlockGemvFormat, chunk: int) -> int:
    """Width of the magnitude that goes into a lane's fp32 :class:`RoundPack` (proofs share it)."""
    m = Module()
    _, mag, _, _ = _lane_terms(m, fmt, _act_terms(m, fmt, Signal(x_layout(chunk)), chunk),
                               Signal(chunk * fmt.weight_bits), Signal(8), chunk, "probe")
    m._MustUse__silence = True  # only its shapes are wanted
    return len(mag)


class ChunkProduct(wiring.Component):
    """``p = fp32(value_c)`` of one lane and one chunk, combinational: the core's stages 1 and 2
    without their registers (for proofs). ``chunk`` (default: the format's C) may be smaller."""

    def __init__(self, weight: str = "mxint4", act: str = "mxint8", *, chunk: "int | None" = None):
        self.format, self.chunk = _chunk_build(self, weight, act, chunk)
        super().__init__({"x": In(x_layout(chunk)), "w": In(chunk * self.format.weight_bits), "scale": In(8),
                          "p": Out(32)})

    def elaborate(self, platform):
        m = Module()
        terms = _lane_terms(m, self.format, _act_terms(m, self.format, self.x, self.chunk), self.w, self.scale,
                            self.chunk, "lane")
        sign, mag, exp, nan = terms
        m.submodules.round = rp = RoundPack("fp32", len(mag), len(exp))
        m.d.comb += [rp.sign.eq(sign), rp.sig.eq(mag), rp.exp.eq(exp), rp.sticky.eq(0), rp.nan.eq(nan),
                     rp.inf.eq(0), self.p.eq(rp.r.as_value())]
        return m


def _chunk_build(component, weight: str, act: str, chunk: "int | None") -> tuple[BlockGemvFormat, int]:
    """The format and chunk length of a chunk datapath (default: the format's C), checked."""
    with rejecting(component):
        fmt = BlockGemvFormat(weight, act)
        chunk = fmt.chunk if chunk is None else chunk
        if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= fmt.chunk:
            raise ValueError(f"chunk={chunk!r} is not allowed; use 1 to {fmt.chunk} elements.")
    return fmt, chunk


class ChunkTerms(wiring.Component):
    """The exact part of :class:`ChunkProduct`: ``(-1)^sign · mag · 2^exp`` and the NaN flag, before
    rounding (for proofs; the rounding is the shared :class:`RoundPack`). ``exp`` is the 12-bit
    two's complement pattern on an unsigned port."""

    def __init__(self, weight: str = "mxint4", act: str = "mxint8", *, chunk: "int | None" = None):
        self.format, self.chunk = _chunk_build(self, weight, act, chunk)
        super().__init__({"x": In(x_layout(chunk)), "w": In(chunk * self.format.weight_bits), "scale": In(8),
                          "sign": Out(1), "mag": Out(chunk_sig_width(self.format, chunk)), "exp": Out(_EXP.width),
                          "nan": Out(1)})

    def elaborate(self, platform):
        m = Module()
        terms = _lane_terms(m, self.format, _act_terms(m, self.format, self.x, self.chunk), self.w, self.scale,
                            self.chunk, "lane")
        m.d.comb += [port.eq(v) for port, v in zip((self.sign, self.mag, self.exp, self.nan), terms)]
        return m

class BlockGemvCore(wiring.Component):
    """One block-format GEMV run per descriptor; equals :func:`lutforge.golden.block_gemv.block_gemv`.

    See the module docstring for ports, datapath and throughput.
    """

    def __init__(self, weight: str = "mxint4", act: str = "mxint8", *, lanes: int = 4, max_chunks: int = 256,
                 addr_width: int = 32):
        with rejecting(self):
            self.format = BlockGemvFormat(weight, act)
            if isinstance(lanes, bool) or not isinstance(lanes, int) or not 1 <= lanes <= 64:
                raise ValueError(f"lanes={lanes!r} is not allowed; use 1 to 64 lanes.")
            if (isinstance(max_chunks, bool) or not isinstance(max_chunks, int)
                    or not 1 <= max_chunks < 1 << 16):
                raise ValueError(
                    f"max_chunks={max_chunks!r} does not fit the 16-bit chunks field; use 1 .. 65535."
                )
            if isinstance(addr_width, bool) or not isinstance(addr_width, int) or not 1 <= addr_width <= 64:
                raise ValueError(f"addr_width={addr_width!r} is not allowed; use 1 to 64 address bits.")
        self.weight, self.act = weight, act
        self.lanes, self.max_chunks, self.addr_width = lanes, max_chunks, addr_width
        self.chunk = self.format.chunk
        self.w_width = lanes * self.chunk * self.format.weight_bits
        self.s_width = 8 * lanes
        super().__init__({
            "desc": In(stream.Signature(block_descriptor_layout(addr_width))),
            "x": In(stream.Signature(x_layout(self.chunk))),
            "acc": Out(stream.Signature(data.ArrayLayout(unsigned(32), lanes))),
            "mem": Out(wiring.Signature({
                "w": Out(MemoryReadSignature(addr_width, self.w_width)),
                "s": Out(MemoryReadSignature(addr_width, self.s_width)),
            })),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(2),
        })

    def elaborate(self, platform):
        m = Module()
        fmt, lanes, chunk, aw = self.format, self.lanes, self.chunk, self.addr_width
        w_ch, s_ch = self.mem.w, self.mem.s
        m.submodules.xbuf = xbuf = Memory(shape=x_layout(chunk), depth=self.max_chunks, init=[])
        wport = xbuf.write_port()
        # A synchronous read (block RAM), addressed with the chunk the next cycle works on and
        # transparent for a chunk written in the same cycle.
        rport = xbuf.read_port(transparent_for=(wport,))

        desc = Signal(block_descriptor_layout(aw))
        busy = self.busy
        rows = Signal(range(1 << 16 | lanes))
        m.d.comb += [self.desc.ready.eq(~busy), rows.eq(desc.out_features)]
        start = self.desc.valid & ~busy
        with m.If(start):
            d = self.desc.payload
            m.d.sync += [desc.eq(d), self.done.eq(0), self.error.eq(0)]
            with m.If((d.chunks == 0) | (d.chunks > self.max_chunks)):
                m.d.sync += [self.error.eq(1), self.done.eq(1)]
            with m.Elif(d.out_features == 0):
                m.d.sync += [self.error.eq(2), self.done.eq(1)]
            with m.Else():
                m.d.sync += busy.eq(1)

        # Activations into the buffer, in chunk order.
        written = Signal(17)
        m.d.comb += [
            self.x.ready.eq(busy & (written < desc.chunks)),
            wport.addr.eq(written), wport.data.eq(self.x.payload), wport.en.eq(self.x.valid & self.x.ready),
        ]
        with m.If(self.x.valid & self.x.ready):
            m.d.sync += written.eq(written + 1)

        # Weight and scale requests, (tile, chunk) word after word, each channel as soon as it is ready.
        r_chunk = Signal(16)
        r_row = Signal.like(rows)
        r_idx = Signal(aw)
        w_sent, s_sent = Signal(), Signal()
        active = busy & (r_row < rows)
        m.d.comb += [
            w_ch.req.valid.eq(active & ~w_sent), w_ch.req.payload.eq(desc.w_base + r_idx),
            s_ch.req.valid.eq(active & ~s_sent), s_ch.req.payload.eq(desc.s_base + r_idx),
        ]
        w_now = w_sent | (w_ch.req.valid & w_ch.req.ready)
        s_now = s_sent | (s_ch.req.valid & s_ch.req.ready)
        with m.If(active & w_now & s_now):
            m.d.sync += [w_sent.eq(0), s_sent.eq(0), r_idx.eq(r_idx + 1)]
            with m.If(r_chunk + 1 == desc.chunks):
                m.d.sync += [r_chunk.eq(0), r_row.eq(r_row + lanes)]
            with m.Else():
                m.d.sync += r_chunk.eq(r_chunk + 1)
        with m.Else():
            m.d.sync += [w_sent.eq(w_now), s_sent.eq(s_now)]

        # Pipeline handshakes, from the output back: a stage moves when the next one is free or moves.
        a_valid, b_valid, out_valid = Signal(), Signal(), Signal()
        a_first, a_last, b_first, b_last = Signal(), Signal(), Signal(), Signal()
        fire_c = Signal()
        m.d.comb += fire_c.eq(b_valid & (~b_last | ~out_valid | self.acc.ready))
        b_free = ~b_valid | fire_c
        a_free = ~a_valid | b_free
        c_chunk = Signal(16)
        fire_a = Signal()
        m.d.comb += [
            fire_a.eq(busy & w_ch.resp.valid & s_ch.resp.valid & (c_chunk < written) & a_free),
            w_ch.resp.ready.eq(fire_a), s_ch.resp.ready.eq(fire_a),
        ]
        next_chunk = Signal(16)
        m.d.comb += next_chunk.eq(Mux(c_chunk + 1 == desc.chunks, 0, c_chunk + 1))
        with m.If(fire_a):
            m.d.sync += c_chunk.eq(next_chunk)
        m.d.comb += rport.addr.eq(Mux(start, 0, Mux(fire_a, next_chunk, c_chunk)))

        # Stage 1: exact chunk sums per lane.
        act = _act_terms(m, fmt, rport.data, chunk)
        stage_a = []
        for lane in range(lanes):
            w_bits = w_ch.resp.payload[lane * chunk * fmt.weight_bits:(lane + 1) * chunk * fmt.weight_bits]
            terms = _lane_terms(m, fmt, act, w_bits, s_ch.resp.payload[8 * lane:8 * lane + 8], chunk, f"l{lane}")
            regs = [Signal.like(v, name=f"a_{v.name}") for v in terms]
            with m.If(fire_a):
                m.d.sync += [r.eq(v) for r, v in zip(regs, terms)]
            stage_a.append(regs)
        with m.If(fire_a):
            m.d.sync += [a_first.eq(c_chunk == 0), a_last.eq(c_chunk + 1 == desc.chunks)]

        # Stage 2: one rounding into fp32.
        stage_b = []
        for lane, (sign, mag, exp, nan) in enumerate(stage_a):
            rp = RoundPack("fp32", len(mag), len(exp))
            m.submodules[f"round{lane}"] = rp
            m.d.comb += [rp.sign.eq(sign), rp.sig.eq(mag), rp.exp.eq(exp), rp.sticky.eq(0),
                         rp.nan.eq(nan), rp.inf.eq(0)]
            p = Signal(32, name=f"p{lane}")
            with m.If(b_free):
                m.d.sync += p.eq(rp.r.as_value())
            stage_b.append(p)
        with m.If(b_free):
            m.d.sync += [b_valid.eq(a_valid), b_first.eq(a_first), b_last.eq(a_last)]
        with m.If(a_free):
            m.d.sync += a_valid.eq(fire_a)

        # Stage 3: fp32 accumulation; a finished tile goes to the output register, padding lanes 0.
        c_row = Signal.like(rows)
        out_row = Signal.like(rows)
        out_data = Signal(data.ArrayLayout(unsigned(32), lanes))
        for lane, p in enumerate(stage_b):
            add = FPAdder("fp32")
            m.submodules[f"add{lane}"] = add
            acc = Signal(32, name=f"acc{lane}")
            m.d.comb += [add.a.eq(Mux(b_first, 0, acc)), add.b.eq(p)]
            with m.If(fire_c):
                m.d.sync += acc.eq(add.r.as_value())
                with m.If(b_last):
                    m.d.sync += out_data[lane].eq(Mux(c_row + lane < rows, add.r.as_value(), 0))
        with m.If(fire_c & b_last):
            m.d.sync += c_row.eq(c_row + lanes)

        m.d.comb += [self.acc.valid.eq(out_valid), self.acc.payload.eq(out_data)]
        with m.If(self.acc.valid & self.acc.ready):
            m.d.sync += [out_valid.eq(0), out_row.eq(out_row + lanes)]
            with m.If(out_row + lanes >= rows):
                m.d.sync += [busy.eq(0), self.done.eq(1)]
        with m.If(fire_c & b_last):
            m.d.sync += out_valid.eq(1)

        # Every counter restarts with a descriptor (the pipeline is empty between runs).
        with m.If(start):
            m.d.sync += [written.eq(0), r_chunk.eq(0), r_row.eq(0), r_idx.eq(0), w_sent.eq(0), s_sent.eq(0),
                         c_chunk.eq(0), c_row.eq(0), out_row.eq(0)]
        return m
