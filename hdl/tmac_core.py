"""Weight-only LUT GEMV core (T-MAC style): run-time table build + LUT GEMV engine + control.

One run computes, for one weight-only VQ layer in its integer form
(:class:`lutforge.golden.tmac.TmacLayer`),

    u[p, g, w] = sum_j x_q[p, j] * code[p, g, w, j] + bias      (exact, bias = v * 127 * c_max)
    acc[n]     = sum_p u[p, n // G, widx[n, p]]                 (unsigned, exact)

bit-exact with :func:`lutforge.golden.tmac.tmac_core`, whose
:func:`~lutforge.golden.tmac.tmac_core_images` builds the memory images and the descriptor
described here. Unlike the co-quantized core (:mod:`.gemv_core`) there is no activation codebook:
the core builds each table row itself from the int8 activations and the weight codebook, so the
table never leaves the chip and only codebooks and indices are read from memory.

Build parameters: ``v`` (1, 2, 4 or 8), ``c_w``, ``cb_bits`` (signed codebook codes, 2 to 16
bits; c_max = 2^(cb_bits-1) - 1), ``lanes`` (L), ``max_positions`` (P limit; sizes the
accumulators, W = ceil(log2(max_positions * (2^b - 1) + 1)) bits with the table entry width
b = :func:`~lutforge.golden.tmac.tmac_table_bits`), ``max_table_rows`` (depth of the on-chip table:
a run needs blocks * P rows of c_w * b bits), ``acc_width``, ``addr_width`` (default 32).

Descriptor (stream ``desc``; one transfer starts a run; fields LSB first,
:func:`~lutforge.golden.tmac.tmac_descriptor_fields`):

    bits   0..15   positions        P = ceil(K / v), 1 .. max_positions
    bits  16..31   out_features     N, >= 1
    bits  32..47   tiles_per_block  G / L (G, the weight-codebook row block, a multiple of L)
    bits  48..63   blocks           row blocks whose tables are built, ceil(N / G)
    bits  64..     cb_base, idx_base: addr_width bits each, word addresses

Memory port ``mem``: two read channels ``mem.cb`` and ``mem.idx``, each a request stream ``req``
(payload: word address) and an in-order response stream ``resp`` (any latency, any number
outstanding), as :func:`.gemv_core.MemoryReadSignature`. Words:

* ``cb`` word ``cb_base + g * P + p`` (c_w * v * cb_bits bits): the codes of codebook B[p, g],
  entry w element j at bits ``cb_bits (w v + j)``, two's complement. Blocks g are outermost.
* ``idx`` word ``idx_base + t * P + p`` (L * ceil(log2 c_w) bits): the weight indices of tile t at
  position p, row ``t L + i`` at bits ``i wb ..`` (the co-quantized core's layout). Rows past N are
  padding; the core ignores their fields.

Activations (stream ``x``): P transfers in position order, each v int8 (element j at bits 8j..),
the input zero-padded to P * v features.

Results (stream ``acc``): ceil(N / L) transfers, tile t = rows ``t L ..``; lane i at bits
``i W .. i W + W - 1``, an unsigned accumulator. Padding lanes (row >= N) are 0. The host
dequantizes: ``y[n] = (acc[n] - bias * P) * s_w[n // G] * s_x`` (:func:`~lutforge.golden.tmac.tmac_output`).

A run has two phases. Table build: for each position p, the codebook words of every block g are
requested (p outer, g inner) and each is joined with activation transfer p, which is taken with
the last block's word; the c_w biased dot products of a word become table row ``g P + p``. Lookup:
for each tile t (block g = t // tiles_per_block) and position p, index word ``t P + p`` is joined
with table row ``g P + p`` and fed to the LUT GEMV engine, ``last`` at p = P - 1.

Control/status outputs: ``busy`` (a run is in progress; ``desc`` is not accepted), ``done`` (the
last run finished or was refused; cleared by the next descriptor), ``error`` (0 = none; see
:data:`ERRORS`). Codes 1 to 5 refuse a descriptor: 1 = positions is 0 or above max_positions (the
accumulators could overflow), 2 = out_features is 0, 3 = tiles_per_block is 0, 4 = blocks is 0 or
blocks * positions is above max_table_rows (the tables do not fit on chip), 5 = blocks *
tiles_per_block * L < out_features (the row blocks do not cover the rows). A refused run touches
neither the memory nor the streams; while idle the core takes nothing from ``x`` or the memory
answers. Code 6 is raised during a run whose table build met an activation of -128 or a code of
-2^(cb_bits-1): the table entries are sized for the contract's ranges (±127, ±c_max), so such a
run's entries wrap; it still delivers all its tiles, which the host must discard.

Throughput: one table row per cycle in each phase once the memory answers every cycle, so a run
takes about ``blocks * P + ceil(N / L) * P`` cycles plus the memory latency and a few cycles; index
requests start as soon as the last codebook word is requested, so the lookup's memory latency
hides under the end of the build.
"""

from amaranth import Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.codebooks import check_centroid_count, check_subvector_length
from ..golden.tmac import check_codebook_bits, tmac_bias, tmac_descriptor_fields, tmac_table_bits
from .gemv_core import MemoryReadSignature
from .lut_gemv import LutGemvEngine

__all__ = ["TmacCore", "tmac_descriptor_layout", "ERRORS"]

ERRORS = {1: "positions out of range", 2: "no output rows", 3: "tiles_per_block is 0",
          4: "tables do not fit max_table_rows", 5: "blocks do not cover out_features",
          6: "operand outside the table range"}

# The largest blocks * positions a descriptor can ask for (two 16-bit fields).
_MAX_ROWS = ((1 << 16) - 1) ** 2


def tmac_descriptor_layout(addr_width: int = 32) -> data.StructLayout:
    return data.StructLayout({name: unsigned(width) for name, width in tmac_descriptor_fields(addr_width)})


class TmacCore(wiring.Component):
    """One weight-only LUT GEMV run per descriptor: table build from the activations, then lookups.

    Computes ``acc[n] = sum_p u[p, n // G, widx[n, p]]`` with the biased exact tables
    ``u[p, g, w] = x_q[p] . code[p, g, w] + bias`` built on chip from int8 activations and signed
    codebook codes read from memory; the host removes ``bias * P`` and applies the scales. Equals
    :func:`lutforge.golden.tmac.tmac_core`, whose :func:`~lutforge.golden.tmac.tmac_core_images`
    lays out the memory words.

    Ports: ``desc`` (in, the run descriptor), ``x`` (in, P transfers of v int8 activations),
    ``mem.cb`` / ``mem.idx`` (read channels, each a ``req`` address stream out and an in-order
    ``resp`` word stream in), ``acc`` (out, ceil(N / L) tiles of L unsigned W-bit sums), ``busy``,
    ``done`` and ``error`` (status, see :data:`ERRORS`).

    Parameters: ``v``, ``c_w``, ``cb_bits`` (codebook code bits), ``lanes``, ``max_positions``,
    ``acc_width`` (as :class:`~lutforge.hdl.lut_gemv.LutGemvEngine`, for table entries of
    :func:`~lutforge.golden.tmac.tmac_table_bits` bits), ``max_table_rows`` (on-chip table depth,
    at least ``max_positions``), ``addr_width`` (word addresses).

    Throughput: one table row per cycle while building and one looked-up row per cycle while
    accumulating, about ``blocks * P + ceil(N / L) * P`` cycles a run plus the memory latency. The
    module docstring gives the bit layouts.
    """

    def __init__(self, v: int = 2, c_w: int = 16, *, cb_bits: int = 8, lanes: int = 16,
                 max_positions: int = 4096, max_table_rows: int = 4096, acc_width: "int | None" = None,
                 addr_width: int = 32):
        try:
            v = check_subvector_length(v)
            c_w = check_centroid_count(c_w, "C_w")
            cb_bits = check_codebook_bits(cb_bits)
            if (isinstance(max_positions, bool) or not isinstance(max_positions, int)
                    or not 1 <= max_positions < 1 << 16):
                raise ValueError(
                    f"max_positions={max_positions!r} does not fit the 16-bit positions field; use 1 .. 65535."
                )
            if (isinstance(max_table_rows, bool) or not isinstance(max_table_rows, int)
                    or not max_positions <= max_table_rows <= _MAX_ROWS):
                raise ValueError(
                    f"max_table_rows={max_table_rows!r} is not allowed: one row block of max_positions="
                    f"{max_positions} positions needs {max_positions} table rows, and no descriptor asks "
                    f"for more than {_MAX_ROWS}; use {max_positions} .. {_MAX_ROWS}."
                )
            if isinstance(addr_width, bool) or not isinstance(addr_width, int) or not 1 <= addr_width <= 64:
                raise ValueError(f"addr_width={addr_width!r} is not allowed; use 1 to 64 address bits.")
            self.table_bits = tmac_table_bits(v, cb_bits)
            self.engine = LutGemvEngine(c_w, self.table_bits, lanes, max_positions=max_positions,
                                        acc_width=acc_width)
            # Its logic is added flat into the core (add_to), so it is never elaborated itself.
            self.engine._MustUse__silence = True
        except ValueError:
            self._MustUse__silence = True  # a rejected component is not an unused one
            raise
        self.v, self.c_w, self.cb_bits, self.lanes = v, c_w, cb_bits, lanes
        self.max_positions, self.max_table_rows, self.addr_width = max_positions, max_table_rows, addr_width
        self.bias = tmac_bias(v, cb_bits)
        self.acc_width = self.engine.acc_width
        self.widx_bits = self.engine.widx_bits
        self.cb_width = c_w * v * cb_bits
        self.idx_width = lanes * self.widx_bits
        super().__init__({
            "desc": In(stream.Signature(tmac_descriptor_layout(addr_width))),
            "x": In(stream.Signature(data.ArrayLayout(signed(8), v))),
            "acc": Out(stream.Signature(data.ArrayLayout(unsigned(self.acc_width), lanes))),
            "mem": Out(wiring.Signature({
                "cb": Out(MemoryReadSignature(addr_width, self.cb_width)),
                "idx": Out(MemoryReadSignature(addr_width, self.idx_width)),
            })),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(3),
        })

    def elaborate(self, platform):
        m = Module()
        engine = self.engine
        engine.add_to(m)
        aw, lanes, v, c_w, cb_bits = self.addr_width, self.lanes, self.v, self.c_w, self.cb_bits
        cb, idx = self.mem.cb, self.mem.idx
        m.submodules.table = table = Memory(shape=data.ArrayLayout(unsigned(self.table_bits), c_w),
                                            depth=self.max_table_rows, init=[])
        wport = table.write_port()
        # A synchronous read port (block RAM); its output register is the one-row prefetch buffer
        # of the lookup, so it reads only when that buffer is empty or being taken (en below).
        rport = table.read_port()

        desc = Signal(tmac_descriptor_layout(aw))
        pos_count, n_rows, blocks = desc.positions, desc.out_features, desc.blocks
        row_range = range(self.max_table_rows + self.max_positions + 1)
        tile_rows = range((1 << 16) + lanes)

        # Control.
        busy = self.busy
        m.d.comb += self.desc.ready.eq(~busy)
        start = self.desc.valid & ~busy
        with m.If(start):
            d = self.desc.payload
            m.d.sync += [desc.eq(d), self.done.eq(0), self.error.eq(0)]
            with m.If((d.positions == 0) | (d.positions > self.max_positions)):
                m.d.sync += [self.error.eq(1), self.done.eq(1)]
            with m.Elif(d.out_features == 0):
                m.d.sync += [self.error.eq(2), self.done.eq(1)]
            with m.Elif(d.tiles_per_block == 0):
                m.d.sync += [self.error.eq(3), self.done.eq(1)]
            with m.Elif((d.blocks == 0) | (d.blocks * d.positions > self.max_table_rows)):
                m.d.sync += [self.error.eq(4), self.done.eq(1)]
            with m.Elif(d.blocks * d.tiles_per_block * lanes < d.out_features):
                m.d.sync += [self.error.eq(5), self.done.eq(1)]
            with m.Else():
                m.d.sync += busy.eq(1)

        # Table build, requests: position p outer, block g inner, word g * P + p.
        q_p = Signal(16)
        q_g = Signal(16)
        q_off = Signal(row_range)
        m.d.comb += [cb.req.valid.eq(busy & (q_p < pos_count)),
                     cb.req.payload.eq(desc.cb_base + q_off)]
        with m.If(cb.req.valid & cb.req.ready):
            with m.If(q_g + 1 == blocks):
                m.d.sync += [q_g.eq(0), q_p.eq(q_p + 1), q_off.eq(q_p + 1)]
            with m.Else():
                m.d.sync += [q_g.eq(q_g + 1), q_off.eq(q_off + pos_count)]

        # Table build, responses: each word joined with activation p (taken with the last block's
        # word), c_w biased dot products written as table row g * P + p.
        k_p = Signal(16)
        k_g = Signal(16)
        k_off = Signal(row_range)
        built = Signal()
        building = busy & ~built
        block_last = k_g + 1 == blocks
        take = building & cb.resp.valid & self.x.valid
        m.d.comb += [cb.resp.ready.eq(building & self.x.valid),
                     self.x.ready.eq(building & cb.resp.valid & block_last),
                     wport.addr.eq(k_off), wport.en.eq(take)]
        x = self.x.payload
        codes = [cb.resp.payload[k * cb_bits:(k + 1) * cb_bits].as_signed() for k in range(c_w * v)]
        for w in range(c_w):
            dot = sum(x[j] * codes[w * v + j] for j in range(v))
            # Exact: the contract's operands keep the biased sum in 0 .. 2 * bias (code 6 below).
            m.d.comb += wport.data[w].eq(dot + self.bias)
        outside = Signal()
        m.d.comb += outside.eq(Cat(*(x[j] == -128 for j in range(v)),
                                   *(c == -(1 << (cb_bits - 1)) for c in codes)).any())
        with m.If(take):
            with m.If(outside):
                m.d.sync += self.error.eq(6)
            with m.If(block_last):
                m.d.sync += [k_g.eq(0), k_p.eq(k_p + 1), k_off.eq(k_p + 1)]
                with m.If(k_p + 1 == pos_count):
                    m.d.sync += built.eq(1)
            with m.Else():
                m.d.sync += [k_g.eq(k_g + 1), k_off.eq(k_off + pos_count)]

        # Lookup, index requests: word t * P + p in order, from the last codebook request on (so
        # any in-order memory shared with cb answers every codebook word first).
        i_p = Signal(16)
        i_row = Signal(tile_rows)
        i_addr = Signal(aw)
        m.d.comb += [idx.req.valid.eq(busy & (q_p == pos_count) & (i_row < n_rows)),
                     idx.req.payload.eq(i_addr)]
        with m.If(idx.req.valid & idx.req.ready):
            m.d.sync += i_addr.eq(i_addr + 1)
            with m.If(i_p + 1 == pos_count):
                m.d.sync += [i_p.eq(0), i_row.eq(i_row + lanes)]
            with m.Else():
                m.d.sync += i_p.eq(i_p + 1)

        # Lookup, table reads: row g * P + p of tile t into the read port's register once built.
        t_p = Signal(16)
        t_tile_in_block = Signal(16)
        t_base = Signal(row_range)
        t_addr = Signal(row_range)
        t_row = Signal(tile_rows)
        row_valid = Signal()
        rows = engine.rows
        feed = rows.valid & rows.ready
        m.d.comb += [rport.addr.eq(t_addr), rport.en.eq(busy & built & (~row_valid | feed))]
        with m.If(rport.en):
            m.d.sync += row_valid.eq(t_row < n_rows)
            with m.If(t_row < n_rows):
                with m.If(t_p + 1 == pos_count):
                    m.d.sync += [t_p.eq(0), t_row.eq(t_row + lanes)]
                    with m.If(t_tile_in_block + 1 == desc.tiles_per_block):
                        m.d.sync += [t_tile_in_block.eq(0), t_base.eq(t_base + pos_count),
                                     t_addr.eq(t_base + pos_count)]
                    with m.Else():
                        m.d.sync += [t_tile_in_block.eq(t_tile_in_block + 1), t_addr.eq(t_base)]
                with m.Else():
                    m.d.sync += [t_p.eq(t_p + 1), t_addr.eq(t_addr + 1)]

        # Lookup, join of the row with its indices into the engine, with the lane mask and end.
        c_p = Signal(16)
        c_row = Signal(tile_rows)
        remaining = Signal(tile_rows)
        m.d.comb += [
            remaining.eq(n_rows - c_row),
            rows.valid.eq(row_valid & idx.resp.valid),
            idx.resp.ready.eq(row_valid & rows.ready),
            rows.payload.row.eq(rport.data),
            rows.payload.widx.eq(idx.resp.payload),
            rows.payload.last.eq(c_p + 1 == pos_count),
        ]
        for lane in range(lanes):
            m.d.comb += rows.payload.mask[lane].eq(remaining > lane)
        with m.If(feed):
            with m.If(c_p + 1 == pos_count):
                m.d.sync += [c_p.eq(0), c_row.eq(c_row + lanes)]
            with m.Else():
                m.d.sync += c_p.eq(c_p + 1)

        # Results; the run ends with the last tile's transfer.
        out_row = Signal(tile_rows)
        wiring.connect(m, wiring.flipped(self.acc), engine.acc)
        with m.If(self.acc.valid & self.acc.ready):
            m.d.sync += out_row.eq(out_row + lanes)
            with m.If(out_row + lanes >= n_rows):
                m.d.sync += [busy.eq(0), self.done.eq(1)]

        # Every counter restarts with a descriptor.
        with m.If(start):
            m.d.sync += [q_p.eq(0), q_g.eq(0), q_off.eq(0), k_p.eq(0), k_g.eq(0), k_off.eq(0), built.eq(0),
                         i_p.eq(0), i_row.eq(0), i_addr.eq(self.desc.payload.idx_base), t_p.eq(0),
                         t_tile_in_block.eq(0), t_base.eq(0), t_addr.eq(0), t_row.eq(0), row_valid.eq(0),
                         c_p.eq(0), c_row.eq(0), out_row.eq(0)]
        return m
