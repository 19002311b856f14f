"""GEMV core: centroid search + LUT GEMV engine + control + an external-memory port.

This is the unit the compiler targets. One run computes, for one co-quantized layer with one
position group (Q = 1; a layer with Q > 1 position groups is run once per group, with its own
bases and the activations of that group's positions),

    a[p]   = argmin_i dist(x_p, A[p][i])            (int8 operands, metric of the build)
    acc[n] = sum_p T[p, n // G, a[p], widx[n, p]]    (unsigned table codes, exact)

bit-exact with :func:`lutforge.golden.gemv_core.gemv_core`, which also builds the memory images
and the descriptor described here (:func:`lutforge.golden.gemv_core.core_images`).

Build parameters: ``v``, ``c_a``, ``c_w``, ``table_bits`` (b), ``lanes`` (L), ``metric``,
``chains`` / ``chain_length`` (centroid unit), ``max_positions`` (P limit; sizes the activation
index buffer and the accumulators, W = ceil(log2(max_positions * (2^b - 1) + 1)) bits),
``addr_width`` (memory addresses, default 32).

Descriptor (stream ``desc``; one transfer starts a run; fields LSB first):

    bits   0..15   positions        P = ceil(K / v), 1 .. max_positions
    bits  16..31   out_features     N, >= 1
    bits  32..47   tiles_per_block  G / L (G, the weight-codebook row block, must be a multiple of L)
    bits  48..     cb_base, tab_base, idx_base: addr_width bits each, word addresses

Memory port ``mem``: three read channels ``mem.cb``, ``mem.tab``, ``mem.idx``. Each has a request
stream ``req`` (payload: word address, addr_width bits) and a response stream ``resp`` (payload:
one word); responses come back in request order, any latency, any number outstanding (the core
issues a request whenever ``req.ready`` and takes a response whenever it can use it). Words:

* ``cb`` word ``cb_base + p`` (c_a * v * 8 bits): the int8 activation codebook of position p,
  centroid i element j at bits ``8 (i v + j)``, two's complement.
* ``tab`` word ``tab_base + (g * P + p) * c_a + a`` (c_w * b bits): table row ``T[p, g, a, :]``,
  code w at bits ``w b .. w b + b - 1``. Blocks g are outermost, so block g starts at
  ``tab_base + g * P * c_a``.
* ``idx`` word ``idx_base + t * P + p`` (L * ceil(log2 c_w) bits): the weight indices of tile t
  (rows ``t L .. t L + L - 1``) at position p, row ``t L + i`` at bits ``i wb .. i wb + wb - 1``
  (for wb = 4 this is the two-per-byte packing, low nibble first). Rows past N are padding: write
  0 there; the core ignores them.

Activations (stream ``x``): P transfers in position order, each v int8 (element j at bits 8j..),
the input zero-padded to P * v features.

Results (stream ``acc``): ceil(N / L) transfers, tile t = rows ``t L ..``; lane i at bits
``i W .. i W + W - 1``, an unsigned accumulator. Padding lanes (row >= N) are 0.
The host dequantizes: ``y[n] = scale[g] * (acc[n] - zp[g] * P)``.

Control/status outputs: ``busy`` (a run is in progress; ``desc`` is not accepted), ``done`` (the
last run finished or was refused; cleared by the next descriptor), ``error`` (why the last
descriptor was refused, 0 = none): 1 = positions is 0 or above max_positions (the accumulators
could overflow), 2 = out_features is 0, 3 = tiles_per_block is 0. A refused run touches neither
the memory nor the streams; while idle the core takes nothing from ``x`` or the memory answers.

Throughput: after a start-up of about the memory latency plus the centroid pipeline, one table
row per cycle, so a run takes about ``ceil(N / L) * P`` cycles with an always-ready memory; the
first tile overlaps the centroid search.

Table engines (build parameter ``tables``, the same memory images and results for both):

* ``"rows"``: the multiplexer engine (:class:`lutforge.hdl.lut_gemv.LutGemvEngine`). Every tile
  reads, per position, the table row ``T[p, g, a[p], :]`` and every lane selects its entry with a
  ``C_w``:1 multiplexer: ``ceil(N / L) * P`` table words a run, no block RAM.
* ``"resident"``: the block-RAM engine (:class:`lutforge.hdl.lut_bram_gemv.LutBramGemvEngine`).
  At the start of each row block the core reads the block's P selected rows once and writes their
  entries into every lane's bank (``C_w`` cycles a row, one entry a cycle); the block's tiles then
  read only index words, and a lookup is a block-RAM read. ``ceil(N / G) * P`` table words a run
  (``G / L`` times fewer) and ``ceil(N / G) * P * C_w`` cycles of loading, for ``L`` banks of
  ``max_positions * C_w`` entries. It wins where table words are dear (a narrow memory port) and
  row blocks hold many tiles; :func:`lutforge.compiler.perf.choose_tables` picks per target.
"""

from typing import NamedTuple

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.gemv_core import TABLE_ENGINES, descriptor_fields
from .centroid_search import CentroidSearch
from .lut_bram_gemv import LutBramGemvEngine
from .lut_gemv import LutGemvEngine

__all__ = ["GemvCore", "MemoryReadSignature", "descriptor_layout", "ERRORS"]

ERRORS = {1: "positions out of range", 2: "no output rows", 3: "tiles_per_block is 0"}


class _Run(NamedTuple):
    """What the table-engine halves of :meth:`GemvCore.elaborate` share with its control."""
    busy: Signal
    start: Signal          # a descriptor is taken: every counter restarts
    desc: Signal           # the run's descriptor
    block_stride: Signal   # P * c_a table words a row block
    abuf: object           # read port of the activation indices a[p] (combinational)
    written: Signal        # a[p] known for p < written


def MemoryReadSignature(addr_width: int, data_width: int) -> wiring.Signature:
    return wiring.Signature({
        "req": Out(stream.Signature(unsigned(addr_width))),
        "resp": In(stream.Signature(unsigned(data_width))),
    })


def descriptor_layout(addr_width: int = 32) -> data.StructLayout:
    return data.StructLayout({name: unsigned(width) for name, width in descriptor_fields(addr_width)})


class GemvCore(wiring.Component):
    """One co-quantized GEMV run per descriptor: centroid search, table lookups and accumulation.

    Computes ``acc[n] = sum_p T[p, n // G, a[p], widx[n, p]]`` with ``a[p]`` the nearest int8
    activation centroid of position p, reading codebooks, table rows and weight indices from
    memory; the host applies the scale and zero point. Equals
    :func:`lutforge.golden.gemv_core.gemv_core`, whose :func:`~lutforge.golden.gemv_core.core_images`
    lays out the memory words.

    Ports: ``desc`` (in, the run descriptor), ``x`` (in, P transfers of v int8 activations),
    ``mem.cb`` / ``mem.tab`` / ``mem.idx`` (read channels, each a ``req`` address stream out and an
    in-order ``resp`` word stream in), ``acc`` (out, ceil(N / L) tiles of L unsigned W-bit sums),
    ``busy``, ``done`` and ``error`` (status, see :data:`ERRORS`).

    Parameters: ``v``, ``c_a``, ``c_w``, ``metric``, ``chains``, ``chain_length`` (as
    :class:`~lutforge.hdl.centroid_search.CentroidSearch`); ``table_bits``, ``lanes``,
    ``max_positions``, ``acc_width`` (as :class:`~lutforge.hdl.lut_gemv.LutGemvEngine`);
    ``addr_width`` (word addresses); ``tables`` (``"rows"`` or ``"resident"``, the table engine:
    module docstring).

    Throughput: one table row per cycle once the memory answers every cycle, about
    ``ceil(N / L) * P`` cycles a run after a start-up of the memory latency plus the centroid
    pipeline (the first tile overlaps the search). The module docstring gives the bit layouts.
    """

    def __init__(self, v: int = 2, c_a: int = 64, c_w: int = 16, *, table_bits: int = 8, lanes: int = 16,
                 metric: str = "linf", chains: int = 4, chain_length: "int | None" = None,
                 max_positions: int = 4096, acc_width: "int | None" = None, addr_width: int = 32,
                 tables: str = "rows"):
        try:
            if (isinstance(max_positions, bool) or not isinstance(max_positions, int)
                    or not 1 <= max_positions < 1 << 16):
                raise ValueError(
                    f"max_positions={max_positions!r} does not fit the 16-bit positions field; use 1 .. 65535."
                )
            if isinstance(addr_width, bool) or not isinstance(addr_width, int) or not 1 <= addr_width <= 64:
                raise ValueError(f"addr_width={addr_width!r} is not allowed; use 1 to 64 address bits.")
            if tables not in TABLE_ENGINES:
                raise ValueError(f"tables={tables!r} is no table engine of the GEMV core; use one of "
                                 f"{', '.join(map(repr, TABLE_ENGINES))}.")
            if tables == "rows":
                self.engine = LutGemvEngine(c_w, table_bits, lanes, max_positions=max_positions, acc_width=acc_width)
            else:
                # The banks hold one selected row per position (the activation index is chosen
                # before the load), so the engine sees a single activation centroid.
                self.engine = LutBramGemvEngine(1, c_w, table_bits, lanes, positions=max_positions,
                                                acc_width=acc_width)            # Their logic is added flat into the core (add_to), so they are never elaborated themselves.
            self.engine._MustUse__silence = True
            self.search = CentroidSearch(v, c_a, metric=metric, chains=chains, chain_length=chain_length)
            self.search._MustUse__silence = True
        except ValueError:
            self._MustUse__silence = True  # a rejected component is not an unused one
            raise
        self.v, self.c_a, self.c_w, self.table_bits, self.lanes = v, c_a, c_w, table_bits, lanes
        self.metric, self.max_positions, self.addr_width = metric, max_positions, addr_width
        self.tables = tables
        self.acc_width = self.engine.acc_width
        self.widx_bits = self.engine.widx_bits
        self.cb_width = c_a * v * 8
        self.tab_width = c_w * table_bits
        self.idx_width = lanes * self.widx_bits
        super().__init__({
            "desc": In(stream.Signature(descriptor_layout(addr_width))),
            "x": In(stream.Signature(data.ArrayLayout(signed(8), v))),
            "acc": Out(stream.Signature(data.ArrayLayout(unsigned(self.acc_width), lanes))),
            "mem": Out(wiring.Signature({
                "cb": Out(MemoryReadSignature(addr_width, self.cb_width)),
                "tab": Out(MemoryReadSignature(addr_width, self.tab_width)),
                "idx": Out(MemoryReadSignature(addr_width, self.idx_width)),
            })),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(2),
        })

    def elaborate(self, platform):
        m = Module()
        search, engine = self.search, self.engine
        search.add_to(m)
        if self.tables == "rows":
            engine.add_to(m)
        else:
            m.submodules.engine = engine  # its banks are memories, not flat logic
        aw, lanes, c_a = self.addr_width, self.lanes, self.c_a
        cb = self.mem.cb
        abits = self.search.index_bits
        m.submodules.abuf = abuf = Memory(shape=unsigned(abits), depth=self.max_positions, init=[])
        wport = abuf.write_port()
        rport = abuf.read_port(domain="comb")

        desc = Signal(descriptor_layout(aw))
        pos_count = desc.positions
        n_rows = desc.out_features
        block_stride = Signal(aw)  # P * c_a table rows per block

        # Control.
        busy = self.busy
        m.d.comb += self.desc.ready.eq(~busy)
        with m.If(self.desc.valid & ~busy):
            d = self.desc.payload
            m.d.sync += [desc.eq(d), self.done.eq(0), self.error.eq(0),
                         block_stride.eq(d.positions * c_a)]
            with m.If((d.positions == 0) | (d.positions > self.max_positions)):
                m.d.sync += [self.error.eq(1), self.done.eq(1)]
            with m.Elif(d.out_features == 0):
                m.d.sync += [self.error.eq(2), self.done.eq(1)]
            with m.Elif(d.tiles_per_block == 0):
                m.d.sync += [self.error.eq(3), self.done.eq(1)]
            with m.Else():
                m.d.sync += busy.eq(1)
        start = self.desc.valid & ~busy

        # Centroid phase: codebook requests, join with the activations, indices into the buffer.
        cb_p = Signal(16)
        written = Signal(17)
        m.d.comb += [cb.req.valid.eq(busy & (cb_p < pos_count)),
                     cb.req.payload.eq(desc.cb_base + cb_p)]
        with m.If(cb.req.valid & cb.req.ready):
            m.d.sync += cb_p.eq(cb_p + 1)
        m.d.comb += [
            search.i.valid.eq(busy & self.x.valid & cb.resp.valid),
            search.i.payload.x.eq(self.x.payload),
            search.i.payload.codebook.eq(cb.resp.payload),
            self.x.ready.eq(busy & cb.resp.valid & search.i.ready),
            cb.resp.ready.eq(busy & self.x.valid & search.i.ready),
            search.o.ready.eq(1),
            wport.addr.eq(written),
            wport.data.eq(search.o.payload),
            wport.en.eq(search.o.valid),
        ]
        with m.If(search.o.valid):
            m.d.sync += written.eq(written + 1)

        run = _Run(busy, start, desc, block_stride, rport, written)
        (self._rows if self.tables == "rows" else self._resident)(m, run)

        # Results; the run ends with the last tile's transfer.
        out_row = Signal(17)
        wiring.connect(m, wiring.flipped(self.acc), engine.acc)
        with m.If(self.acc.valid & self.acc.ready):
            m.d.sync += out_row.eq(out_row + lanes)
            with m.If(out_row + lanes >= n_rows):
                m.d.sync += [busy.eq(0), self.done.eq(1)]

        # Every counter restarts with a descriptor.
        with m.If(start):
            m.d.sync += [cb_p.eq(0), written.eq(0), out_row.eq(0)]
        return m

    def _rows(self, m, run: _Run):
        """The multiplexer engine: each (tile, position) reads its table row and index word."""
        lanes, c_a = self.lanes, self.c_a
        tab, idx, desc, busy = self.mem.tab, self.mem.idx, run.desc, run.busy
        pos_count, n_rows = desc.positions, desc.out_features
        # Requests: tile by tile, position by position, as soon as a[p] is known.
        r_p, r_row, r_tile_in_block, r_block_base, r_pos_off, r_idx = self._request_place()
        tab_sent = Signal()
        idx_sent = Signal()
        active = busy & (r_row < n_rows) & (r_p < run.written)
        m.d.comb += [
            run.abuf.addr.eq(r_p),
            tab.req.valid.eq(active & ~tab_sent),
            tab.req.payload.eq(desc.tab_base + r_block_base + r_pos_off + run.abuf.data),
            idx.req.valid.eq(active & ~idx_sent),
            idx.req.payload.eq(desc.idx_base + r_idx),
        ]
        tab_now = tab_sent | (tab.req.valid & tab.req.ready)
        idx_now = idx_sent | (idx.req.valid & idx.req.ready)
        with m.If(active & tab_now & idx_now):
            m.d.sync += [tab_sent.eq(0), idx_sent.eq(0), r_idx.eq(r_idx + 1)]
            with m.If(r_p + 1 == pos_count):
                m.d.sync += [r_p.eq(0), r_pos_off.eq(0), r_row.eq(r_row + lanes)]
                with m.If(r_tile_in_block + 1 == desc.tiles_per_block):
                    m.d.sync += [r_tile_in_block.eq(0), r_block_base.eq(r_block_base + run.block_stride)]
                with m.Else():
                    m.d.sync += r_tile_in_block.eq(r_tile_in_block + 1)
            with m.Else():
                m.d.sync += [r_p.eq(r_p + 1), r_pos_off.eq(r_pos_off + c_a)]
        with m.Else():
            m.d.sync += [tab_sent.eq(tab_now), idx_sent.eq(idx_now)]

        # Responses: join row and indices into the engine, with the tile's lane mask and end.
        c_p = Signal(16)
        c_row = Signal(17)
        rows = self.engine.rows
        m.d.comb += [
            rows.valid.eq(busy & tab.resp.valid & idx.resp.valid),
            tab.resp.ready.eq(busy & idx.resp.valid & rows.ready),
            idx.resp.ready.eq(busy & tab.resp.valid & rows.ready),
            rows.payload.row.eq(tab.resp.payload),
            rows.payload.widx.eq(idx.resp.payload),
            rows.payload.last.eq(c_p + 1 == pos_count),
            rows.payload.mask.eq(self._lane_mask(m, n_rows - c_row)),
        ]
        self._next_position(m, rows.valid & rows.ready, c_p, c_row, pos_count)

        with m.If(run.start):
            m.d.sync += [r_p.eq(0), r_row.eq(0), r_tile_in_block.eq(0), r_block_base.eq(0), r_pos_off.eq(0),
                         r_idx.eq(0), tab_sent.eq(0), idx_sent.eq(0), c_p.eq(0), c_row.eq(0)]

    def _resident(self, m, run: _Run):
        """The block-RAM engine: per row block, its P selected rows into the banks, then its tiles'
        index words alone."""
        lanes, c_a, c_w, b = self.lanes, self.c_a, self.c_w, self.table_bits
        tab, idx, desc, busy = self.mem.tab, self.mem.idx, run.desc, run.busy
        pos_count, n_rows, per_block = desc.positions, desc.out_features, desc.tiles_per_block
        # Requests: a block's P table rows (as soon as a[p] is known), then its tiles' index words.
        r_loading = Signal()
        r_p, r_row, r_tile_in_block, r_block_base, r_pos_off, r_idx = self._request_place()
        more = busy & (r_row < n_rows)
        m.d.comb += [
            run.abuf.addr.eq(r_p),
            tab.req.valid.eq(more & r_loading & (r_p < run.written)),
            tab.req.payload.eq(desc.tab_base + r_block_base + r_pos_off + run.abuf.data),
            idx.req.valid.eq(more & ~r_loading),
            idx.req.payload.eq(desc.idx_base + r_idx),
        ]
        r_last = r_p + 1 == pos_count
        with m.If(tab.req.valid & tab.req.ready):
            with m.If(r_last):
                m.d.sync += [r_p.eq(0), r_pos_off.eq(0), r_loading.eq(0)]
            with m.Else():
                m.d.sync += [r_p.eq(r_p + 1), r_pos_off.eq(r_pos_off + c_a)]
        with m.If(idx.req.valid & idx.req.ready):
            m.d.sync += r_idx.eq(r_idx + 1)
            with m.If(r_last):
                m.d.sync += [r_p.eq(0), r_row.eq(r_row + lanes)]
                with m.If(r_tile_in_block + 1 == per_block):
                    m.d.sync += [r_tile_in_block.eq(0), r_block_base.eq(r_block_base + run.block_stride),
                                 r_loading.eq(1)]
                with m.Else():
                    m.d.sync += r_tile_in_block.eq(r_tile_in_block + 1)
            with m.Else():
                m.d.sync += r_p.eq(r_p + 1)

        # Loading: each row taken is written into the banks one entry a cycle (entry w of position
        # p at p * C_w + w). The block's lookups start the cycle after its last entry is written
        # (a bank's read does not see a write of the same cycle), and the next block's rows are
        # taken only after its last lookup read the banks.
        c_loading = Signal()
        c_p = Signal(16)
        held = Signal(c_w * b)
        held_valid = Signal()
        entry = Signal(range(c_w))
        load = self.engine.load
        load_addr = Signal.like(load.payload.addr)
        m.d.comb += [load.valid.eq(held_valid), load.payload.addr.eq(load_addr),
                     load.payload.code.eq(held.word_select(entry, b))]
        wrote = load.valid & load.ready
        emptied = wrote & (entry == c_w - 1)
        m.d.comb += tab.resp.ready.eq(busy & c_loading & (~held_valid | emptied))
        with m.If(wrote):
            m.d.sync += [load_addr.eq(load_addr + 1), entry.eq(Mux(entry == c_w - 1, 0, entry + 1))]
            with m.If(emptied):
                m.d.sync += held_valid.eq(0)
        with m.If(tab.resp.valid & tab.resp.ready):
            m.d.sync += [held.eq(tab.resp.payload), held_valid.eq(1)]
            with m.If(c_p + 1 == pos_count):
                m.d.sync += [c_p.eq(0), c_loading.eq(0)]
            with m.Else():
                m.d.sync += c_p.eq(c_p + 1)

        # Lookups: one index word per (tile, position) once the block's tables are in.
        c_row = Signal(17)
        c_tile_in_block = Signal(16)
        look = self.engine.lookups
        looking = busy & ~c_loading & ~held_valid
        m.d.comb += [
            look.valid.eq(looking & idx.resp.valid),
            idx.resp.ready.eq(looking & look.ready),
            look.payload.a.eq(0),
            look.payload.widx.eq(idx.resp.payload),
            look.payload.last.eq(c_p + 1 == pos_count),
            look.payload.mask.eq(self._lane_mask(m, n_rows - c_row)),
        ]
        self._next_position(m, look.valid & look.ready, c_p, c_row, pos_count)
        with m.If(look.valid & look.ready & (c_p + 1 == pos_count)):
            with m.If(c_tile_in_block + 1 == per_block):
                m.d.sync += [c_tile_in_block.eq(0), c_loading.eq(1), load_addr.eq(0)]
            with m.Else():
                m.d.sync += c_tile_in_block.eq(c_tile_in_block + 1)

        with m.If(run.start):
            m.d.sync += [r_loading.eq(1), r_p.eq(0), r_row.eq(0), r_tile_in_block.eq(0), r_block_base.eq(0),
                         r_pos_off.eq(0), r_idx.eq(0), c_loading.eq(1), c_p.eq(0), held_valid.eq(0),
                         entry.eq(0), load_addr.eq(0), c_row.eq(0), c_tile_in_block.eq(0)]

    def _request_place(self) -> tuple:
        """The requests' place in the run: position, first row of the tile, tile within its row
        block, the block's and the position's table-word offsets, the index word."""
        aw = self.addr_width
        return (Signal(16, name="r_p"), Signal(17, name="r_row"), Signal(16, name="r_tile_in_block"),
                Signal(aw, name="r_block_base"), Signal(aw, name="r_pos_off"), Signal(aw, name="r_idx"))

    def _next_position(self, m, take, c_p, c_row, pos_count):
        """The responses' place in the run: ``take`` moves it a position on, past a tile's last
        position to the next tile."""
        with m.If(take):
            with m.If(c_p + 1 == pos_count):
                m.d.sync += [c_p.eq(0), c_row.eq(c_row + self.lanes)]
            with m.Else():
                m.d.sync += c_p.eq(c_p + 1)

    def _lane_mask(self, m, remaining):
        """Lanes whose row exists: lane i of a tile with ``remaining`` rows left is row ``i`` of them."""
        mask = Signal(self.lanes)
        left = Signal(17)
        m.d.comb += left.eq(remaining)
        for lane in range(self.lanes):
            m.d.comb += mask[lane].eq(left > lane)
        return mask
