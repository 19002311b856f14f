"""Whole-GEMV proof of the LUT GEMV engine against a plain multiply-accumulate reference.

:class:`GemvProof` is a self-checking harness: it holds one GEMV's operands, drives the engine
(:class:`lutforge.hdl.lut_gemv.LutGemvEngine`) through every position of every tile, collects every
output tile, and once the last one has arrived compares each lane with :func:`mac_reference`, a
loop over tiles, lanes and positions that reads the table entry at the lane's weight index and
adds it. Its one output ``ok`` is 1 unless the GEMV went wrong; :class:`Holds` has the same ports
with ``ok`` tied to 1, so ``prove_equivalent(Holds(h.signature), h, gate_latency=h.deadline)`` proves
that ``ok`` is 1 on every cycle from ``h.deadline`` on (the verdict is final by then, see below).

Operands: ``table`` (position p, activation centroid a, weight centroid w: an unsigned
``table_bits`` code), ``act`` (the activation index of each position, which picks the table row
the caller fetches), ``widx`` (tile t, position p, lane i: the weight index of row ``t L + i``)
and ``mask`` (tile t, position p: one bit per lane; a clear bit is a padding lane, which adds
nothing). All are free inputs sampled on the first cycle after reset and held from then on, so the
proof covers every GEMV of the configuration. Two more free inputs choose the timing: ``gap`` keeps
a row back for a cycle and ``hold`` keeps the output stream from being taken, each costing one of
``stalls`` cycles of budget, so every pattern of at most ``stalls`` stall cycles is covered.

Why a bounded proof is complete here: with at most ``stalls`` stall cycles the GEMV finishes by
cycle ``deadline = tiles * positions + 1 + stalls`` (one row per cycle, one cycle to pass the last
tile on, one per stall), and ``ok`` falls if it has not finished by then, so a harness that never
finishes, or drives nothing, fails instead of passing vacuously. After the last tile nothing the
check reads can change (operands held, results kept, no row left to send), and ``ok`` falls on any
further output, so ``ok`` at the deadline is the verdict on the whole GEMV. Bounded model checking
to ``deadline + 2`` cycles (SymbiYosys's depth for that latency) therefore covers every run, and
since any ``deadline + 1`` consecutive cycles that satisfy ``ok`` end in a finished, frozen state,
k-induction at that depth closes the proof for every cycle after too.
"""

from amaranth import Const, Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..hdl.lut_gemv import LutGemvEngine

__all__ = ["GemvProof", "Holds", "mac_reference", "harness_signature", "completion_deadline"]


def _bits(count: int) -> int:
    return max(1, (count - 1).bit_length())


def mac_reference(table, act, widx, mask, *, tiles: int, lanes: int, positions: int) -> list[list]:
    """Accumulator ``[t][i]`` of lane i of tile t: ``sum_p mask * table[p][act[p]][widx[t][p][i]]``."""
    result = []
    for t in range(tiles):
        lane_sums = []
        for i in range(lanes):
            acc = Const(0, 1)
            for p in range(positions):
                weight_code = table[p][act[p]][widx[t][p][i]]
                acc = acc + weight_code * mask[t][p][i]
            lane_sums.append(acc)
        result.append(lane_sums)
    return result


def completion_deadline(*, tiles: int, positions: int, stalls: int) -> int:
    """The cycle by which a :class:`GemvProof` of this shape has its verdict (module docstring)."""
    return tiles * positions + 1 + stalls


def harness_signature(*, c_w: int, table_bits: int, lanes: int, positions: int, tiles: int,
                      c_a: int = 2) -> wiring.Signature:
    """The ports of a :class:`GemvProof` of this shape (operands, timing choices, ``ok``)."""
    return wiring.Signature({
        "table": In(data.ArrayLayout(data.ArrayLayout(data.ArrayLayout(unsigned(table_bits), c_w), c_a), positions)),
        "act": In(data.ArrayLayout(unsigned(_bits(c_a)), positions)),
        "widx": In(data.ArrayLayout(data.ArrayLayout(data.ArrayLayout(unsigned(_bits(c_w)), lanes), positions),
                                    tiles)),
        "mask": In(data.ArrayLayout(data.ArrayLayout(unsigned(lanes), positions), tiles)),
        "gap": In(1),
        "hold": In(1),
        "ok": Out(1),
    })


class Holds(wiring.Component):
    """The property side of a self-checking harness: the harness's ports, ``ok`` tied to 1."""

    def __init__(self, signature: wiring.Signature):
        super().__init__(signature)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.ok.eq(1)
        return m


class GemvProof(wiring.Component):
    """One whole GEMV of ``tiles`` tiles of ``lanes`` lanes over ``positions`` positions, checked.

    ``engine`` builds the engine under proof from this shape (default: :class:`LutGemvEngine` with
    ``max_positions = positions``); ``reference`` computes the expected accumulators (default:
    :func:`mac_reference`). Tests pass faulty ones of either to show the proof can fail.
    """

    def __init__(self, *, c_w: int = 4, table_bits: int = 4, lanes: int = 2, positions: int = 3, tiles: int = 2,
                 c_a: int = 2, stalls: int = 2, engine=None, reference=mac_reference):
        for name, value, low in (("lanes", lanes, 1), ("positions", positions, 1), ("tiles", tiles, 1),
                                 ("c_a", c_a, 1), ("stalls", stalls, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                self._MustUse__silence = True  # a rejected component is not an unused one
                raise ValueError(f"{name}={value!r} is not allowed in a GEMV proof; use an integer of at least {low}.")
        self.c_w, self.table_bits, self.lanes = c_w, table_bits, lanes
        self.positions, self.tiles, self.c_a, self.stalls = positions, tiles, c_a, stalls
        self.engine = (engine or LutGemvEngine)(c_w, table_bits, lanes, max_positions=positions)
        self.reference = reference
        self.deadline = completion_deadline(tiles=tiles, positions=positions, stalls=stalls)
        super().__init__(harness_signature(c_w=c_w, table_bits=table_bits, lanes=lanes, positions=positions,
                                           tiles=tiles, c_a=c_a))

    def _held(self, m, first, port, name):
        """``port`` on the first cycle, and the value it had then on every later cycle."""
        held = Signal.like(port, name=f"{name}_held")
        now = Signal.like(port, name=name)
        with m.If(first):
            m.d.comb += now.eq(port)
        with m.Else():
            m.d.comb += now.eq(held)
        m.d.sync += held.eq(now)
        return now

    def _operands_and_stalls(self, m):
        """The cycle counter, the held operands, and the stall choices this cycle may use."""
        cycle = Signal(range(self.deadline + 1))
        with m.If(cycle < self.deadline):
            m.d.sync += cycle.eq(cycle + 1)
        first = cycle == 0
        table = self._held(m, first, self.table, "table")
        act = self._held(m, first, self.act, "act")
        widx = self._held(m, first, self.widx, "widx")
        mask = self._held(m, first, self.mask, "mask")

        # The stall budget: each cycle that uses `gap` or `hold` spends one. Counters here compare
        # with `<` and `>=`, so that k-induction, which starts from any state, finds none that wraps.
        spent = Signal(range(self.stalls + 1))
        can_stall = spent < self.stalls
        use_gap = Signal()
        use_hold = Signal()
        m.d.comb += [use_gap.eq(self.gap & can_stall), use_hold.eq(self.hold & can_stall)]
        with m.If(use_gap | use_hold):
            m.d.sync += spent.eq(spent + 1)
        return cycle, (table, act, widx, mask), use_gap, use_hold

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        rows = engine.rows
        cycle, (table, act, widx, mask), use_gap, use_hold = self._operands_and_stalls(m)

        # The row stream: each position's table row beside the tile's indices and mask.
        p = self._tile_stream(m, rows, Const(1), use_gap, widx, mask)
        m.d.comb += rows.payload.row.eq(table[p][act[p]])

        m.d.comb += self.ok.eq(self._verdict(m, cycle, use_hold, table, act, widx, mask))
        return m

    def _tile_stream(self, m, port, start, use_gap, widx, mask):
        """Drive ``port`` with tile t, position p (``widx``, ``mask``, ``last``) from the cycle ``start``
        holds, until every tile is sent; one once offered stays offered until taken. Returns the
        position, for the payload fields that differ between engines."""
        t = Signal(range(self.tiles + 1))
        p = Signal(range(self.positions))
        offered = Signal()
        sent_all = t >= self.tiles
        last = p >= self.positions - 1
        m.d.comb += [
            port.valid.eq(start & ~sent_all & (offered | ~use_gap)),
            port.payload.widx.eq(widx[t][p]),
            port.payload.mask.eq(mask[t][p]),
            port.payload.last.eq(last),
        ]
        m.d.sync += offered.eq(port.valid & ~port.ready)
        with m.If(port.valid & port.ready):
            with m.If(last):
                m.d.sync += [p.eq(0), t.eq(t + 1)]
            with m.Else():
                m.d.sync += p.eq(p + 1)
        return p

    def _verdict(self, m, cycle, use_hold, table, act, widx, mask):
        """Collect the engine's output tiles and say whether the GEMV is right so far: 0 once it is
        late, wrong, or says more than the tiles asked for (module docstring)."""
        acc = self.engine.acc
        # The output stream: tile after tile into `results`, until every tile has come.
        results = Signal(data.ArrayLayout(data.ArrayLayout(unsigned(self.engine.acc_width), self.lanes), self.tiles))
        received = Signal(range(self.tiles + 1))
        done = received >= self.tiles
        m.d.comb += acc.ready.eq(~use_hold)
        with m.If(acc.valid & acc.ready & ~done):
            m.d.sync += received.eq(received + 1)
            for tile in range(self.tiles):
                with m.If(received == tile):
                    m.d.sync += results[tile].eq(acc.payload)

        expected = self.reference(table, act, widx, mask, tiles=self.tiles, lanes=self.lanes,
                                  positions=self.positions)
        agree = Const(1)
        for tile in range(self.tiles):
            for lane in range(self.lanes):
                agree = agree & (results[tile][lane] == expected[tile][lane])
        late = (cycle >= self.deadline) & ~done
        wrong = done & ~agree
        extra = done & acc.valid
        return ~(late | wrong | extra)
