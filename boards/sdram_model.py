"""An SDR SDRAM chip in simulation, checking every rule of its data sheet that the controller must keep.

:class:`SdramModel` sits on the pins of :class:`lutforge.boards.sdram.SdramController` (the same
clock: a command is sampled at the edge that ends its cycle, a READ's word is on ``dq`` ``CL``
cycles later, as the data sheets define CAS latency) and holds the stored words. It checks the
rules from the chip's side, independently of how the controller counts: the power-up wait, the
initialisation sequence, the mode register, ACTIVE only to a closed bank and READ/WRITE only to
an open one, tRCD, tRP, tRAS, tRC, tRRD, tRFC, tWR and tMRD per bank, AUTO REFRESH only with every
bank closed, the refresh rate (64 ms over 8,192 rows, at most 8 refreshes postponed, as JEDEC
allows), and the data bus never driven by both sides.

The first broken rule is latched in ``violation`` (a :class:`Violation`) and from then on every
read returns :data:`POISON`, so a simulation that only compares data (the whole SoC in Verilator,
where the host sees nothing but bytes) fails too.

The words are held in an Amaranth memory (``storage="memory"``, for Amaranth's simulator) or in a
plain Verilog array (``storage="verilog"``, :func:`sdram_storage_verilog`, compiled beside the
design by Verilator): Amaranth writes a memory's initial contents out word by word, 16 million of
them for a whole chip.
"""

import enum

from amaranth import Array, Cat, ClockSignal, Const, Instance, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .sdram import Command, SdramChip, mode_register, sdram_pins_signature

__all__ = ["SdramModel", "Violation", "POISON", "sdram_storage_verilog"]

POISON = 0xDEAD  # every read's word once a rule was broken
POSTPONED_REFRESHES = 8  # JEDEC: a controller may fall this many refreshes behind, no more


class Violation(enum.IntEnum):
    NONE = 0
    POWER_UP = 1  # a command before init_us of NOPs
    UNINITIALISED = 2  # ACTIVE, READ or WRITE before PRECHARGE ALL, the refreshes and LOAD MODE
    MODE = 3  # a mode register other than burst length 1 and the chip's CAS latency
    ACTIVE_OPEN = 4  # ACTIVE to a bank whose row is open
    CLOSED_BANK = 5  # READ or WRITE to a bank with no open row
    T_RCD = 6
    T_RP = 7
    T_RAS = 8
    T_RC = 9
    T_RRD = 10
    T_RFC = 11
    T_WR = 12
    T_MRD = 13
    REFRESH_OPEN = 14  # AUTO REFRESH or LOAD MODE with a bank open
    REFRESH_LATE = 15  # more than 8 refreshes behind
    BUS = 16  # a WRITE while a read's word is still to come
    AUTO_PRECHARGE = 17  # READ or WRITE with A10 set: not modelled
    OUTSIDE = 18  # a word beyond the stored ones


def sdram_storage_verilog() -> str:
    """The Verilog array behind ``storage="verilog"``: no initial block, so a whole chip compiles."""
    return """module lutforge_sdram_storage #(parameter WORDS = 1, parameter AW = 1) (
  input clk, input [AW-1:0] raddr, output reg [15:0] rdata,
  input we, input [AW-1:0] waddr, input [15:0] wdata, input [1:0] wmask);
  reg [15:0] words [0:WORDS-1];
  always @(posedge clk) begin
    rdata <= words[raddr];
    if (we & wmask[0]) words[waddr][7:0] <= wdata[7:0];
    if (we & wmask[1]) words[waddr][15:8] <= wdata[15:8];
  end
endmodule
"""


class SdramModel(wiring.Component):
    """``chip`` at ``clk_freq``, storing its first ``stored_bytes`` (module docstring)."""

    def __init__(self, chip: SdramChip, clk_freq: float, stored_bytes: int, storage: str = "memory"):
        if storage not in ("memory", "verilog"):
            raise ValueError(f"Unknown SDRAM model storage {storage!r}; use memory or verilog.")
        self.chip, self.clk_freq, self.storage = chip, clk_freq, storage
        self.words = min(stored_bytes, chip.size) // 2
        super().__init__({"pins": In(sdram_pins_signature(chip)), "violation": Out(range(len(Violation)))})

    def elaborate(self, platform):
        m = Module()
        chip, pins = self.chip, self.pins
        t = chip.timing(self.clk_freq)
        cl, banks = chip.cas_latency, chip.banks

        active = pins.cs & pins.clk_en
        command = Signal(3)
        m.d.comb += command.eq(Mux(active, Cat(pins.ras, pins.cas, pins.we), 0))

        def is_(c):
            return command == Cat(*(Const(bit, 1) for bit in c))

        bank, addr = pins.ba, pins.a
        col, row = addr[:chip.col_bits], addr[:chip.row_bits]
        all_banks = addr[10]

        def counter(name, limit, since_reset=False):
            """Cycles since an event, saturating at ``limit`` (at reset: long ago, or none)."""
            s = Signal(range(limit + 1), name=name, init=0 if since_reset else limit)
            with m.If(s != limit):
                m.d.sync += s.eq(s + 1)
            return s

        longest = max(t.rc, t.ras, t.rcd)
        since_act = Array(counter(f"since_act_{b}", longest) for b in range(banks))
        since_pre = Array(counter(f"since_pre_{b}", t.rp) for b in range(banks))
        since_write = Array(counter(f"since_write_{b}", t.wr) for b in range(banks))
        since_any_act = counter("since_any_act", t.rrd)
        since_ref = counter("since_ref", t.rfc)
        since_mode = counter("since_mode", t.mrd)
        powered = counter("powered", t.init, since_reset=True)
        is_open = Signal(banks)
        open_row = Array(Signal(chip.row_bits, name=f"row_{b}") for b in range(banks))

        # Initialisation: 0 wants PRECHARGE ALL, 1 counts refreshes, 2 wants LOAD MODE, 3 runs.
        phase = Signal(2)
        refreshes = Signal(range(chip.init_refreshes + 1))
        # Refreshes owed: one more every tREFI, one less per AUTO REFRESH (at most 8 pulled in).
        debt = Signal(range(-POSTPONED_REFRESHES - 1, POSTPONED_REFRESHES + 2))
        tick = Signal(range(t.refi))
        owed = Signal.like(debt)
        m.d.comb += owed.eq(debt + (tick == t.refi - 1))
        with m.If(phase == 3):
            m.d.sync += tick.eq(Mux(tick == t.refi - 1, 0, tick + 1))

        # Reads in flight: stage k holds a read sampled k + 1 edges ago; the storage answers the
        # cycle after the address, and the word waits CL - 1 more cycles.
        reading = Signal(cl)
        word = Array(Signal(16, name=f"word_{k}") for k in range(cl - 1))
        raddr, rdata = Signal(range(self.words)), Signal(16)
        wen, wmask = Signal(), Signal(2)
        index = Cat(col, bank, open_row[bank])
        if self.storage == "memory":
            m.submodules.storage = storage = memory.Memory(shape=16, depth=self.words, init=[])
            rd, wr = storage.read_port(), storage.write_port(granularity=8)
            m.d.comb += [rd.addr.eq(raddr), rdata.eq(rd.data), wr.addr.eq(index), wr.data.eq(pins.dq_o),
                         wr.en.eq(Mux(wen, wmask, 0))]
        else:
            m.submodules.storage = Instance(
                "lutforge_sdram_storage", p_WORDS=self.words, p_AW=len(raddr), i_clk=ClockSignal("sync"),
                i_raddr=raddr, o_rdata=rdata, i_we=wen, i_waddr=index, i_wdata=pins.dq_o, i_wmask=wmask)
        m.d.comb += raddr.eq(index)
        m.d.sync += reading.eq(Cat(is_(Command.READ), reading[:-1]))
        chain = [rdata, *word]
        for k in range(cl - 1):
            m.d.sync += word[k].eq(chain[k])
        poisoned = self.violation != 0
        m.d.comb += pins.dq_i.eq(Mux(reading[cl - 1], Mux(poisoned, POISON, chain[cl - 1]), 0))

        # The rules, each (commands it applies to, condition, violation); the first broken is latched.
        pre, act, read, write = is_(Command.PRECHARGE), is_(Command.ACTIVE), is_(Command.READ), is_(Command.WRITE)
        refresh, mode, any_command = is_(Command.REFRESH), is_(Command.MODE), command != 0
        access, b_open = read | write, is_open.bit_select(bank, 1)
        closing = [all_banks | (bank == b) for b in range(banks)]  # banks a PRECHARGE closes
        rules = [
            (any_command, powered != t.init, Violation.POWER_UP),
            (any_command, since_ref != t.rfc, Violation.T_RFC),
            (any_command, since_mode != t.mrd, Violation.T_MRD),
            *((pre, closing[b] & is_open[b] & (since_act[b] < t.ras), Violation.T_RAS) for b in range(banks)),
            *((pre, closing[b] & is_open[b] & (since_write[b] < t.wr), Violation.T_WR) for b in range(banks)),
            (act | access, phase != 3, Violation.UNINITIALISED),
            (act, b_open, Violation.ACTIVE_OPEN),
            (act, since_pre[bank] < t.rp, Violation.T_RP),
            (act, since_act[bank] < t.rc, Violation.T_RC),
            (act, since_any_act < t.rrd, Violation.T_RRD),
            (access, ~b_open, Violation.CLOSED_BANK),
            (access, since_act[bank] < t.rcd, Violation.T_RCD),
            (access, all_banks, Violation.AUTO_PRECHARGE),
            (access, index >= self.words, Violation.OUTSIDE),
            (write, reading != 0, Violation.BUS),
            (refresh | mode, is_open != 0, Violation.REFRESH_OPEN),
            *((refresh | mode, since_pre[b] < t.rp, Violation.T_RP) for b in range(banks)),
            (refresh, phase == 0, Violation.UNINITIALISED),
            (mode, phase != 2, Violation.UNINITIALISED),
            (mode, addr != mode_register(chip), Violation.MODE),
            (phase == 3, debt > POSTPONED_REFRESHES, Violation.REFRESH_LATE),
        ]
        with m.If(~poisoned):
            for i, (applies, condition, violation) in enumerate(rules):
                with (m.If if i == 0 else m.Elif)(applies & condition):
                    m.d.sync += self.violation.eq(violation)

        # What the commands do.
        with m.If(pre):
            for b in range(banks):
                with m.If(closing[b]):
                    m.d.sync += [is_open[b].eq(0), since_pre[b].eq(1)]
            with m.If(all_banks & (phase == 0)):
                m.d.sync += phase.eq(1)
        with m.If(act):
            m.d.sync += [is_open.bit_select(bank, 1).eq(1), open_row[bank].eq(row), since_act[bank].eq(1),
                         since_any_act.eq(1)]
        with m.If(write):
            m.d.comb += [wen.eq(b_open & ~poisoned), wmask.eq(~pins.dqm)]
            m.d.sync += since_write[bank].eq(1)
        with m.If(refresh):
            m.d.sync += since_ref.eq(1)
            with m.If(phase == 1):
                m.d.sync += refreshes.eq(refreshes + 1)
                with m.If(refreshes == chip.init_refreshes - 1):
                    m.d.sync += phase.eq(2)
            with m.If(phase == 3):
                m.d.sync += debt.eq(Mux(owed == -POSTPONED_REFRESHES, owed, owed - 1))
        with m.Elif(phase == 3):
            m.d.sync += debt.eq(owed)
        with m.If(mode):
            m.d.sync += [phase.eq(3), since_mode.eq(1)]
        return m
