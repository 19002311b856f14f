"""The SoC wrapper: a UART host link with the framed protocol, memory, registers and one core.

``Soc(config)`` has three ports — ``rx``, ``tx`` (the UART pins) and ``busy`` (for an LED) — and
works in the ``sync`` domain, so the same component runs on every board (:mod:`.platforms` wraps
it with the board's pins) and in Verilator (:mod:`lutforge.boards.uart_sim`).

Inside:

* ``UartRx``/``UartTx`` — 8N1 at ``clk_freq / divisor`` baud;
* ``HostLink`` — the device side of :mod:`lutforge.boards.protocol`: parses request frames,
  checks CRC-16, holds write payloads in a frame buffer until the CRC matched, answers with
  OK/NAK frames, skips repeated writes (same sequence number) and drops frames cut short by
  ``idle_cycles`` of silence;
* memory — ``mem_size`` bytes behind one port of ``port_bytes``-byte words (:mod:`.memory_port`:
  a read or write a cycle, taken when the memory is ready, a read's word back when it says so),
  shared by the link and the core (the core owns it while busy; the link answers BUSY then; the
  link and the L-Mul core move single bytes through :class:`.memory_port.ByteView`): block RAM (``memory: bram``),
  the UP5K's single-port RAM (``memory: spram``, :mod:`.spram`) or an SDR SDRAM chip through
  :class:`.sdram.SdramController` (``memory: sdram``, the ``sdram`` port then leads to its pins);
* registers — :class:`lutforge.boards.protocol.Reg`;
* the core — selected by ``config.core`` from :data:`CORES`.
"""

from dataclasses import dataclass, replace

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from ..golden.lmul import LMulPolicy
from ..hdl.lmul import LMulMultiplier
from ..program.core import GemvCoreParams
from ..support.checks import check_int
from ..support.errors import UsageError
from .protocol import MAX_PAYLOAD, REQUEST_SYNC, RESPONSE_SYNC, Command, Reg, Status
from .memory_port import PORT_WIDTHS, BlockRamMemory, ByteView, memory_signature
from .sdram import IS42S16160, SdramChip, SdramController, port_timing, sdram_pins_signature
from .sdram_model import sdram_storage_verilog
from .spram import SPRAM_BYTES, SPRAM_SIZES, SpramMemory, spram_model_verilog

__all__ = ["SocConfig", "BOARD_GEMV", "Soc", "UartRx", "UartTx", "HostLink", "LMulVectorCore", "GemvShell", "CORES",
           "MEMORIES", "simulation_models"]

# Core identifiers read back through Reg.CORE, and what their descriptor words mean.
CORES = {
    "lmul-vector": (1, "r[i] = lmul_e4m3(a[i], b[i]) for i < count; ARG0 a, ARG1 b, ARG2 r, ARG3 count (byte addresses)"),
    "gemv": (2, "one LUT-GEMV core run; see GemvShell for the descriptor words"),
}


# The GEMV core a board's SoC carries unless its preset says otherwise: small enough for an ECP5-25F.
# Resident tables: a board's byte port makes table rows dear, so the compiler chooses them for
# every board target (tests/boards/test_program_layer.py holds the two equal).
BOARD_GEMV = GemvCoreParams(c_a=16, lanes=4, chains=2, max_positions=64, tables="resident")


# The SoC memories: block RAM that synthesis infers, the UP5K's single-port RAM blocks, or an SDR
# SDRAM chip behind the SoC's own controller.
MEMORIES = ("bram", "spram", "sdram")


# Limits of the SoC settings (``bitstream --config``), each named in its error. The UART runs at
# ``clk_freq / divisor`` baud: below 1200 baud two byte times exceed the longest idle timeout.
MIN_BAUD = 1200
# The largest on-chip memory: more than the block RAM of any supported FPGA (each board has its own
# limit, :mod:`.platforms`), and a simulation of it still starts in seconds. An SDRAM is as large as
# its chip.
MAX_MEM_SIZE = 1 << 20
# The host waits 100 ms for an answer (:class:`lutforge.boards.serial_transport.SerialLink`): the
# device must have given up on a cut frame well before, so a retry never meets a half-parsed one.
MAX_IDLE_SECONDS = 0.05


@dataclass(frozen=True)
class SocConfig:
    """Everything that sizes the SoC. ``idle_cycles`` must stay below the host's response margin
    (``ByteLink.latency``) so a retry never meets a half-parsed frame, and above two byte times so
    the gap between two bytes of one frame never cuts it."""

    clk_freq: float
    baud: int
    mem_size: int
    idle_cycles: int
    core: str = "lmul-vector"
    gemv: GemvCoreParams = BOARD_GEMV
    # "bram" (inferred block RAM), "spram" (iCE40 UP5K SB_SPRAM256KA blocks) or "sdram" (``sdram_chip``)
    memory: str = "bram"
    sdram_chip: SdramChip = IS42S16160
    # Bytes the memory port moves a request: 2 reads the SDRAM's and SPRAM's 16-bit words whole.
    port_bytes: int = 1

    def __post_init__(self):
        if isinstance(self.clk_freq, bool) or not isinstance(self.clk_freq, (int, float)) or not self.clk_freq > 0:
            raise UsageError(f"SoC clk_freq={self.clk_freq!r} is not a clock frequency; give a number of Hz above 0.")
        check_int("SoC baud", self.baud, MIN_BAUD, fix="the UART runs at a standard rate such as 115200")
        if self.memory not in MEMORIES:
            raise UsageError(f"Unknown SoC memory {self.memory!r}; use one of {', '.join(MEMORIES)}.")
        mem = self.mem_size
        largest = self.sdram_chip.size if self.memory == "sdram" else MAX_MEM_SIZE
        if (isinstance(mem, bool) or not isinstance(mem, int) or not MAX_PAYLOAD <= mem <= largest
                or mem & (mem - 1)):
            raise UsageError(
                f"SoC mem_size {mem!r} must be a power of two of at least {MAX_PAYLOAD} bytes and at most "
                f"{largest} with memory: {self.memory}; pick one such as 4096."
            )
        if self.memory == "sdram" and self.clk_freq > self.sdram_chip.max_clk_mhz * 1e6:
            raise UsageError(
                f"The SoC clock {self.clk_freq / 1e6:g} MHz is above the {self.sdram_chip.name}'s "
                f"{self.sdram_chip.max_clk_mhz:g} MHz at CAS latency {self.sdram_chip.cas_latency}; clock the SoC "
                f"at {self.sdram_chip.max_clk_mhz:g} MHz or less.")
        if self.divisor < 4:
            raise UsageError(
                f"Baud rate {self.baud} is too fast for a {self.clk_freq / 1e6:g} MHz clock: the UART "
                f"needs at least 4 clock cycles per bit; use {int(self.clk_freq // 4)} baud or less."
            )
        error = abs(self.clk_freq / self.divisor - self.baud) / self.baud
        if error > 0.02:
            raise UsageError(
                f"Baud rate {self.baud} is {error:.1%} off at {self.clk_freq / 1e6:g} MHz (divisor "
                f"{self.divisor}); UARTs tolerate about 2%: pick a baud rate closer to a divisor of the clock."
            )
        check_int("SoC idle_cycles", self.idle_cycles, 20 * self.divisor, int(self.clk_freq * MAX_IDLE_SECONDS),
                  fix=f"at {self.baud} baud and {self.clk_freq / 1e6:g} MHz the device must wait two byte times "
                      f"and give up within {MAX_IDLE_SECONDS * 1e3:g} ms")
        if self.memory == "spram" and mem not in SPRAM_SIZES:
            raise UsageError(
                f"SoC mem_size {mem} cannot be built from the UP5K's SPRAM (four blocks of {SPRAM_BYTES} "
                f"bytes); with memory: spram use {', '.join(map(str, SPRAM_SIZES))}.")
        if not isinstance(self.core, str) or self.core not in CORES:
            raise UsageError(f"Unknown core {self.core!r}; the SoC supports {', '.join(CORES)}.")
        if not isinstance(self.gemv, GemvCoreParams):
            raise TypeError(f"SocConfig.gemv is a GemvCoreParams, not {type(self.gemv).__name__}.")
        if isinstance(self.port_bytes, bool) or self.port_bytes not in PORT_WIDTHS:
            raise UsageError(f"SoC port_bytes {self.port_bytes!r} is not a memory port width; use one of "
                             f"{', '.join(map(str, PORT_WIDTHS))} (bytes a request moves).")
        odd = {k: n for k, n in self.gemv.strides.items() if n % self.port_bytes}
        if self.core == "gemv" and odd:
            raise UsageError(
                f"The GEMV core's {', '.join(f'{k} words of {n} bytes' for k, n in odd.items())} do not start "
                f"on the {self.port_bytes}-byte words of the memory port; use port_bytes: 1 or an even v.")

    @property
    def divisor(self) -> int:
        return round(self.clk_freq / self.baud)

    @classmethod
    def for_sim(cls, **changes) -> "SocConfig":
        """A configuration that simulates fast: 8 clock cycles per UART bit."""
        return replace(cls(clk_freq=8e6, baud=1_000_000, mem_size=4096, idle_cycles=1500), **changes)


def crc16_update(m, crc, byte):
    """One byte of CRC-16/CCITT-FALSE, as :func:`lutforge.boards.protocol.crc16` computes it."""
    value = crc ^ Cat(Const(0, 8), byte)
    for _ in range(8):
        # A signal per step: each step reads its input twice, and expressions are not shared.
        step = Signal(16)
        shifted = Cat(Const(0, 1), value[:15])
        m.d.comb += step.eq(Mux(value[15], shifted ^ 0x1021, shifted))
        value = step
    return value


class UartRx(wiring.Component):
    """8N1 receiver; ``valid`` strobes for one cycle with ``data``. A byte with a bad stop bit is
    dropped (the frame's CRC then fails or the idle timeout ends it)."""

    rx: In(1, init=1)
    data: Out(8)
    valid: Out(1)

    def __init__(self, divisor: int):
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        meta = Signal(2, init=0b11)
        m.d.sync += meta.eq(Cat(self.rx, meta[0]))
        line = meta[1]
        timer = Signal(range(div))
        bits = Signal(range(8))
        shreg = Signal(8)
        m.d.sync += self.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.next = "IDLE"  # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(div - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shreg.eq(Cat(shreg[1:], line)), timer.eq(div - 1), bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    with m.If(line):
                        m.d.sync += [self.data.eq(shreg), self.valid.eq(1)]
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """8N1 transmitter taking bytes from a stream."""

    tx: Out(1, init=1)
    i: In(stream.Signature(8))

    def __init__(self, divisor: int):
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        timer = Signal(range(div))
        left = Signal(range(10))
        shreg = Signal(9)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += [self.tx.eq(0), shreg.eq(Cat(self.i.payload, Const(1, 1))),
                                 left.eq(9), timer.eq(div - 1)]
                    m.next = "SEND"
            with m.State("SEND"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(left == 0):
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [self.tx.eq(shreg[0]), shreg.eq(shreg >> 1), left.eq(left - 1),
                                 timer.eq(div - 1)]
        return m


def _mem_port_signature(mem_size: int, width: int = 1):
    return memory_signature(mem_size, width).flip()


def _reg_port_signature():
    return wiring.Signature({
        "addr": Out(range(Reg.COUNT)), "wdata": Out(32), "we": Out(1), "rdata": In(32),
    })


class HostLink(wiring.Component):
    """The device side of the framed protocol (see :mod:`lutforge.boards.protocol`)."""

    def __init__(self, mem_size: int, idle_cycles: int):
        self.mem_size = mem_size
        self.idle_cycles = idle_cycles
        super().__init__({
            "rx_data": In(8), "rx_valid": In(1),
            "tx": Out(stream.Signature(8)),
            "mem": Out(_mem_port_signature(mem_size)),
            "mem_busy": In(1),
            "reg": Out(_reg_port_signature()),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.buffer = buffer = memory.Memory(shape=8, depth=MAX_PAYLOAD, init=[])
        buf_w = buffer.write_port()
        buf_r = buffer.read_port()

        byte, got = self.rx_data, self.rx_valid
        seq, cmd = Signal(8), Signal(8)
        addr = Signal(32)
        length = Signal(16)
        count = Signal(16)
        crc, rx_crc = Signal(16, init=0xFFFF), Signal(16)
        word = Signal(32)
        fetched = Signal(8)  # the memory byte being sent
        status = Signal(8)
        answer_len = Signal(range(MAX_PAYLOAD + 1))
        last_seq, have_last = Signal(8), Signal(1)
        idle = Signal(range(self.idle_cycles + 1))

        crc_next, tx_crc_next = Signal(16), Signal(16)
        m.d.comb += [crc_next.eq(crc16_update(m, crc, byte)),
                     tx_crc_next.eq(crc16_update(m, crc, self.tx.payload))]
        is_write = (cmd == Command.WRITE_MEM) | (cmd == Command.WRITE_REG)
        new_length = Cat(length[8:], byte)
        mem_end = Signal(33)
        m.d.comb += [
            mem_end.eq(addr + length),
            buf_r.addr.eq(count),
            self.mem.addr.eq(addr + count),
            self.mem.wdata.eq(buf_r.data),
            self.mem.wmask.eq(1),
            self.reg.addr.eq(addr),
            self.reg.wdata.eq(word),
        ]

        def listen(m):
            """In every state inside a frame: count idle cycles, drop the frame when they run out."""
            with m.If(got):
                m.d.sync += idle.eq(0)
            with m.Elif(idle == self.idle_cycles):
                m.d.sync += idle.eq(0)
                m.next = "SYNC"
            with m.Else():
                m.d.sync += idle.eq(idle + 1)

        def answer(m, code, n=0):
            m.d.sync += [status.eq(code), answer_len.eq(n), count.eq(0)]
            m.next = "T_SYNC"

        def send(m, value, then, add_crc=True):
            m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(value)]
            with m.If(self.tx.ready):
                if add_crc:
                    m.d.sync += crc.eq(tx_crc_next)
                m.next = then

        with m.FSM():
            with m.State("SYNC"):
                m.d.sync += [idle.eq(0), count.eq(0)]
                with m.If(got & (byte == REQUEST_SYNC)):
                    m.d.sync += crc.eq(0xFFFF)
                    m.next = "SEQ"
            with m.State("SEQ"):
                listen(m)
                with m.If(got):
                    m.d.sync += [seq.eq(byte), crc.eq(crc_next)]
                    m.next = "CMD"
            with m.State("CMD"):
                listen(m)
                with m.If(got):
                    m.d.sync += [cmd.eq(byte), crc.eq(crc_next)]
                    m.next = "ADDR"
            with m.State("ADDR"):
                listen(m)
                with m.If(got):
                    m.d.sync += [addr.eq(Cat(addr[8:], byte)), crc.eq(crc_next), count.eq(count + 1)]
                    with m.If(count == 3):
                        m.d.sync += count.eq(0)
                        m.next = "LEN"
            with m.State("LEN"):
                listen(m)
                with m.If(got):
                    m.d.sync += [length.eq(new_length), crc.eq(crc_next), count.eq(count + 1)]
                    with m.If(count == 1):
                        m.d.sync += count.eq(0)
                        with m.If(is_write & (new_length != 0)):
                            m.next = "PAYLOAD"
                        with m.Else():
                            m.next = "CRC"
            with m.State("PAYLOAD"):
                listen(m)
                with m.If(got):
                    m.d.comb += [buf_w.addr.eq(count), buf_w.data.eq(byte),
                                 buf_w.en.eq(count < MAX_PAYLOAD)]
                    m.d.sync += [word.eq(Cat(word[8:], byte)), crc.eq(crc_next), count.eq(count + 1)]
                    with m.If(count == length - 1):
                        m.d.sync += count.eq(0)
                        m.next = "CRC"
            with m.State("CRC"):
                listen(m)
                with m.If(got):
                    m.d.sync += [rx_crc.eq(Cat(rx_crc[8:], byte)), count.eq(count + 1)]
                    with m.If(count == 1):
                        m.d.sync += count.eq(0)
                        m.next = "CHECK"
            with m.State("CHECK"):
                mem_cmd = (cmd == Command.WRITE_MEM) | (cmd == Command.READ_MEM)
                reg_cmd = (cmd == Command.WRITE_REG) | (cmd == Command.READ_REG)
                with m.If(rx_crc != crc):
                    answer(m, Status.CRC_ERROR)
                with m.Elif(is_write & have_last & (seq == last_seq)):
                    answer(m, Status.OK)
                with m.Elif(mem_cmd & ((length > MAX_PAYLOAD) | (mem_end > self.mem_size))):
                    answer(m, Status.BAD_RANGE)
                with m.Elif(mem_cmd & self.mem_busy):
                    answer(m, Status.BUSY)
                with m.Elif((cmd == Command.WRITE_MEM) & (length == 0)):
                    m.d.sync += [last_seq.eq(seq), have_last.eq(1)]
                    answer(m, Status.OK)
                with m.Elif(cmd == Command.WRITE_MEM):
                    m.next = "COPY_READ"
                with m.Elif(cmd == Command.READ_MEM):
                    answer(m, Status.OK, length)
                with m.Elif(reg_cmd & ((addr >= Reg.COUNT) | (length != Mux(is_write, 4, 0)))):
                    answer(m, Status.BAD_RANGE)
                with m.Elif(cmd == Command.WRITE_REG):
                    m.d.comb += self.reg.we.eq(1)
                    m.d.sync += [last_seq.eq(seq), have_last.eq(1)]
                    answer(m, Status.OK)
                with m.Elif(cmd == Command.READ_REG):
                    m.d.sync += word.eq(self.reg.rdata)
                    answer(m, Status.OK, 4)
                with m.Else():
                    answer(m, Status.BAD_COMMAND)
            with m.State("COPY_READ"):
                m.next = "COPY_WRITE"  # the buffer's read port answers one cycle later
            with m.State("COPY_WRITE"):
                m.d.comb += self.mem.we.eq(1)
                with m.If(self.mem.ready):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == length - 1):
                        m.d.sync += [last_seq.eq(seq), have_last.eq(1)]
                        answer(m, Status.OK)
                    with m.Else():
                        m.next = "COPY_READ"

            with m.State("T_SYNC"):
                m.d.sync += crc.eq(0xFFFF)
                send(m, RESPONSE_SYNC, "T_SEQ", add_crc=False)
            with m.State("T_SEQ"):
                send(m, seq, "T_STATUS")
            with m.State("T_STATUS"):
                send(m, status, "T_LEN0")
            with m.State("T_LEN0"):
                send(m, answer_len[:8], "T_LEN1")
            with m.State("T_LEN1"):
                send(m, answer_len >> 8, "T_FETCH")
                with m.If(self.tx.ready & (answer_len == 0)):
                    m.next = "T_CRC0"
            with m.State("T_FETCH"):
                with m.If(cmd == Command.READ_REG):
                    m.next = "T_PAYLOAD"
                with m.Else():
                    m.d.comb += self.mem.re.eq(1)
                    with m.If(self.mem.ready):
                        m.next = "T_ARRIVE"
            with m.State("T_ARRIVE"):
                with m.If(self.mem.rvalid):
                    m.d.sync += fetched.eq(self.mem.rdata)
                    m.next = "T_PAYLOAD"
            with m.State("T_PAYLOAD"):
                value = Mux(cmd == Command.READ_REG, word.word_select(count[:2], 8), fetched)
                send(m, value, "T_FETCH")
                with m.If(self.tx.ready):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == answer_len - 1):
                        m.next = "T_CRC0"
            with m.State("T_CRC0"):
                send(m, crc[:8], "T_CRC1", add_crc=False)
            with m.State("T_CRC1"):
                send(m, crc[8:], "SYNC", add_crc=False)
        return m


class LMulVectorCore(wiring.Component):
    """``r[i] = lmul(a[i], b[i])`` in e4m3 over the shared memory, five cycles per element on a memory that
    answers the next cycle (a read and its byte, twice, then the write).

    The stand-in behind the SoC's generic register/memory interface until the LUT-GEMV core lands;
    descriptor: ARG0 a, ARG1 b, ARG2 r (byte addresses), ARG3 count. A descriptor reaching past
    the memory sets the error flag and runs nothing.
    """

    def __init__(self, mem_size: int):
        self.mem_size = mem_size
        super().__init__({
            "start": In(1),
            "args": In(data.ArrayLayout(32, Reg.ARGS)),
            "busy": Out(1), "done": Out(1), "error": Out(1),
            "mem": Out(_mem_port_signature(mem_size)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.lmul = lmul = LMulMultiplier("e4m3", LMulPolicy())
        a_base, b_base, r_base, n = (self.args[k] for k in range(4))
        i = Signal(32)
        a_val, b_val = Signal(8), Signal(8)
        m.d.comb += [lmul.a.eq(a_val), lmul.b.eq(b_val), self.mem.wdata.eq(lmul.r), self.mem.wmask.eq(1)]
        m.d.sync += self.done.eq(0)
        out_of_range = ((a_base + n > self.mem_size) | (b_base + n > self.mem_size)
                        | (r_base + n > self.mem_size))
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [i.eq(0), self.error.eq(out_of_range)]
                    with m.If(out_of_range | (n == 0)):
                        m.d.sync += self.done.eq(1)
                    with m.Else():
                        m.next = "READ_A"
            for name, base, value, then in (("A", a_base, a_val, "READ_B"), ("B", b_base, b_val, "WRITE")):
                with m.State(f"READ_{name}"):
                    m.d.comb += [self.busy.eq(1), self.mem.addr.eq(base + i), self.mem.re.eq(1)]
                    with m.If(self.mem.ready):
                        m.next = f"LATCH_{name}"
                with m.State(f"LATCH_{name}"):
                    m.d.comb += self.busy.eq(1)
                    with m.If(self.mem.rvalid):
                        m.d.sync += value.eq(self.mem.rdata)
                        m.next = then
            with m.State("WRITE"):
                m.d.comb += [self.busy.eq(1), self.mem.addr.eq(r_base + i), self.mem.we.eq(1)]
                with m.If(self.mem.ready):
                    m.d.sync += i.eq(i + 1)
                with m.If(self.mem.ready & (i == n - 1)):
                    m.d.sync += self.done.eq(1)
                    m.next = "IDLE"
                with m.Elif(self.mem.ready):
                    m.next = "READ_A"
        return m


class GemvShell(wiring.Component):
    """The LUT-GEMV core (:class:`lutforge.hdl.gemv_core.GemvCore`) on the SoC's memory port of
    ``width``-byte words (:mod:`.memory_port`).

    The core's three read channels (cb, tab, idx), its activation stream ``x`` and its result
    stream ``acc`` are served from the shared memory by one sequencer that streams: a request
    every cycle the memory takes one, port word after port word and channel after channel, while
    earlier words are still arriving (1 cycle later on chip, CL + 2 through the SDRAM controller;
    in order, so a small queue says whose word each answer belongs to). Only the port words that
    hold bytes the core uses are read (``GemvCoreParams.word_bytes``). A channel asks for a word only while it has
    room for it: the index channel holds ``index_words``, the others one each (a slot the word is
    assembled in). A result tile is written between two words. Descriptor words (registers ARG0..):

    ====  ==========================================================================
    ARG0  positions P (bits 0..15) | out_features N (bits 16..31)
    ARG1  tiles_per_block (G / lanes)
    ARG2  byte address of cb word 0   (each cb word takes ``strides["cb"]`` bytes)
    ARG3  byte address of tab word 0  (``strides["tab"]`` bytes per word)
    ARG4  byte address of idx word 0  (``strides["idx"]`` bytes per word; only the
          ``word_bytes["idx"]`` that hold indices are read, the rest is padding)
    ARG5  byte address of the activations: P sub-vectors of v int8
    ARG6  byte address of the results: ceil(N / lanes) tiles x lanes x 4 bytes, each lane's
          accumulator as an unsigned little-endian 32-bit word
    ====  ==========================================================================

    ``error`` is set when the core refused the descriptor, a byte address fell outside the memory
    or an address does not start a port word (nothing is wrapped silently: such a run is flagged
    and its results are not to be used).
    """

    def __init__(self, mem_size: int, params: GemvCoreParams, width: int = 1, read_latency: int = 1):
        from ..hdl.gemv_core import GemvCore

        odd = {k: n for k, n in params.strides.items() if n % width}
        if odd:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"GEMV words of {odd} bytes do not start on {width}-byte port words; use width 1.")
        self.mem_size, self.params, self.width = mem_size, params, width
        # Index words in flight or waiting: one a cycle needs a word per cycle of the memory's
        # latency and two more (answer, then the core takes it); a power of two, four at least.
        self.index_words = max(4, 1 << (read_latency + 1).bit_length())
        self.core = GemvCore(**params.hdl_kwargs(), addr_width=16)
        if self.core.acc_width > 32:
            raise ValueError(
                f"GEMV accumulators of {self.core.acc_width} bits do not fit the SoC's 32-bit result "
                f"words; lower max_positions or table_bits."
            )
        super().__init__({
            "start": In(1),
            "args": In(data.ArrayLayout(32, Reg.ARGS)),
            "busy": Out(1), "done": Out(1), "error": Out(1),
            "mem": Out(_mem_port_signature(mem_size, width)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.gemv = core = self.core
        p, width = self.params, self.width
        strides, used = p.strides, p.word_bytes  # a word's padding bytes are never read
        beats = {k: -(-n // width) for k, n in used.items()}  # port words a channel's word takes
        tile_beats = 4 * p.lanes // width
        lanes = p.lanes
        args = self.args
        names = ("tab", "idx", "cb", "x")  # service order: table rows first keep the engine fed
        channels = {"cb": core.mem.cb, "tab": core.mem.tab, "idx": core.mem.idx}
        index_of = {k: i for i, k in enumerate(names)}

        # Responses. A channel owns the words it asked for until the core takes them: the index
        # channel ``index_words`` (its short words stream back to back through the memory's
        # latency, and are ready while a result tile is written); the others one, assembled in
        # their slot (their registers are what fills an UP5K).
        credits = {"tab": 1, "idx": self.index_words, "cb": 1, "x": 1}
        inflight = {k: Signal(range(credits[k] + 1), name=f"{k}_inflight") for k in names}
        asm = {k: Signal(8 * width * beats[k], name=f"{k}_asm") for k in names}
        word_of = {k: asm[k][:8 * used[k]] for k in names}
        slot_valid = {k: Signal(name=f"{k}_valid") for k in names if k != "idx"}
        m.submodules.idx_words = idx_words = SyncFIFO(width=8 * used["idx"], depth=credits["idx"])
        owned = {k: inflight[k] + slot_valid[k] for k in slot_valid}
        owned["idx"] = inflight["idx"] + idx_words.level
        for k, ch in channels.items():
            if k == "idx":
                m.d.comb += [ch.resp.valid.eq(idx_words.r_rdy), ch.resp.payload.eq(idx_words.r_data),
                             idx_words.r_en.eq(ch.resp.ready)]
            else:
                m.d.comb += [ch.resp.valid.eq(slot_valid[k]), ch.resp.payload.eq(word_of[k])]
                with m.If(ch.resp.valid & ch.resp.ready):
                    m.d.sync += slot_valid[k].eq(0)
        m.d.comb += [core.x.valid.eq(slot_valid["x"]), core.x.payload.eq(word_of["x"])]
        with m.If(core.x.valid & core.x.ready):
            m.d.sync += slot_valid["x"].eq(0)

        positions, out_features = args[0][:16], args[0][16:32]
        desc_pending, running, fault = Signal(), Signal(), Signal()
        x_count = Signal(16)
        acc_ptr = Signal(32)
        m.d.comb += [
            core.desc.valid.eq(desc_pending),
            core.desc.payload.positions.eq(positions),
            core.desc.payload.out_features.eq(out_features),
            core.desc.payload.tiles_per_block.eq(args[1][:16]),
        ]
        with m.If(core.desc.valid & core.desc.ready):
            m.d.sync += desc_pending.eq(0)

        # The words whose port words are still to come, in the order their addresses went out (the
        # memory answers in order): the receiving side assembles the head word. An answer with
        # none pending is one to the host link, which shares the port between runs.
        m.submodules.pending = pending = SyncFIFO(width=2, depth=sum(credits.values()))
        received = Signal(range(max(beats.values()) + 1))
        completed = {k: Signal(name=f"{k}_completed") for k in names}
        with m.If(self.mem.rvalid & pending.r_rdy):
            with m.Switch(pending.r_data):
                for k in names:
                    with m.Case(index_of[k]):
                        word = Cat(asm[k][8 * width:], self.mem.rdata)
                        m.d.sync += asm[k].eq(word)
                        with m.If(received == beats[k] - 1):
                            m.d.comb += [completed[k].eq(1), pending.r_en.eq(1)]
                            m.d.sync += received.eq(0)
                            if k == "idx":
                                m.d.comb += [idx_words.w_en.eq(1), idx_words.w_data.eq(word[:8 * used[k]])]
                            else:
                                m.d.sync += slot_valid[k].eq(1)
                        with m.Else():
                            m.d.sync += received.eq(received + 1)

        # Addresses: a word's port words one a cycle, the next word's right after, on any channel with
        # a credit left; a result tile goes out between two words (reads still in flight keep
        # arriving while it is written: the memory answers reads in order, writes not at all).
        issuing = Signal()
        job = Signal(range(len(names)))
        job_addr = Signal(33)
        count = Signal(range(max(max(beats.values()), tile_beats) + 1))
        acc_shift = Signal(32 * lanes)
        idle = Signal()
        m.d.comb += [self.mem.addr.eq(job_addr + count * width), self.mem.wmask.eq((1 << width) - 1)]
        last_address = Signal()
        issued = {k: Signal(name=f"{k}_issued") for k in names}

        with m.FSM():
            with m.State("READ"):
                m.d.comb += self.mem.re.eq(issuing)
                with m.Switch(job):
                    for k in names:
                        with m.Case(index_of[k]):
                            m.d.comb += last_address.eq(issuing & self.mem.ready & (count == beats[k] - 1))
                with m.If(self.mem.re & self.mem.ready):
                    m.d.sync += count.eq(count + 1)
                with m.If(last_address):
                    m.d.sync += issuing.eq(0)
                free = ~issuing | last_address
                m.d.comb += idle.eq(~issuing & (pending.level == 0))
                acc = core.acc
                with m.If(acc.valid):
                    # No new word until the tile is out, so that results are never starved.
                    with m.If(free):
                        m.d.comb += acc.ready.eq(1)
                        m.d.sync += [acc_shift.eq(Cat(*(Cat(acc.payload[i], Const(0, 32 - core.acc_width))
                                                        for i in range(lanes)))),
                                     job_addr.eq(acc_ptr), count.eq(0), acc_ptr.eq(acc_ptr + 4 * lanes)]
                        with m.If(acc_ptr + 4 * lanes > self.mem_size):
                            m.d.sync += fault.eq(1)
                        m.next = "WRITE"
                with m.Elif(free & pending.w_rdy):
                    base = {"cb": args[2], "tab": args[3], "idx": args[4]}
                    first = True
                    for k in names:
                        left = owned[k] < credits[k]
                        if k == "x":
                            want = running & (x_count < positions) & left
                            addr = args[5] + x_count * strides["x"]
                        else:
                            want = channels[k].req.valid & left
                            addr = base[k] + channels[k].req.payload * strides[k]
                        with (m.If if first else m.Elif)(want):
                            if k == "x":
                                m.d.sync += x_count.eq(x_count + 1)
                            else:
                                m.d.comb += channels[k].req.ready.eq(1)
                            m.d.comb += [issued[k].eq(1), pending.w_en.eq(1), pending.w_data.eq(index_of[k])]
                            m.d.sync += [job.eq(index_of[k]), job_addr.eq(addr), count.eq(0), issuing.eq(1)]
                            with m.If(addr + strides[k] > self.mem_size):
                                m.d.sync += fault.eq(1)
                        first = False
            with m.State("WRITE"):
                m.d.comb += [self.mem.we.eq(1), self.mem.wdata.eq(acc_shift[:8 * width])]
                with m.If(self.mem.ready):
                    m.d.sync += [acc_shift.eq(acc_shift >> 8 * width), count.eq(count + 1)]
                    with m.If(count == tile_beats - 1):
                        m.next = "READ"
        for k in names:
            m.d.sync += inflight[k].eq(inflight[k] + issued[k] - completed[k])

        busy = desc_pending | core.busy | ~idle
        m.d.comb += self.busy.eq(running)
        m.d.sync += self.done.eq(0)
        # Every region starts on a port word (the host lays them out 4-byte aligned).
        misaligned = Cat(args[i][:(width - 1).bit_length()] for i in range(2, 7)).any()
        with m.If(self.start & ~running):
            m.d.sync += [desc_pending.eq(1), running.eq(1), fault.eq(misaligned), x_count.eq(0),
                         acc_ptr.eq(args[6])]
        with m.Elif(running & ~busy & core.done):
            m.d.sync += [running.eq(0), self.done.eq(1)]
        m.d.comb += self.error.eq(fault | (core.error != 0))
        return m


def simulation_models(config: SocConfig) -> str:
    """Verilog of the primitives the SoC (and, with SDRAM, the chip's model) instantiates, for a
    simulator to compile beside it."""
    return {"spram": spram_model_verilog, "sdram": sdram_storage_verilog}.get(config.memory, str)()


class Soc(wiring.Component):
    """Ports: ``rx``, ``tx``, ``busy`` and, with ``memory: sdram``, ``sdram`` (the chip's pins)."""

    def __init__(self, config: SocConfig):
        self.config = config
        ports = {"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1)}
        if config.memory == "sdram":
            ports["sdram"] = Out(sdram_pins_signature(config.sdram_chip))
        super().__init__(ports)

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        m.submodules.uart_rx = uart_rx = UartRx(cfg.divisor)
        m.submodules.uart_tx = uart_tx = UartTx(cfg.divisor)
        m.submodules.link = link = HostLink(cfg.mem_size, cfg.idle_cycles)
        width = cfg.port_bytes
        if cfg.core == "gemv":
            latency = port_timing(cfg.sdram_chip, cfg.clk_freq).read_latency if cfg.memory == "sdram" else 1
            m.submodules.core = core = GemvShell(cfg.mem_size, cfg.gemv, width, latency)
        else:
            m.submodules.core = core = LMulVectorCore(cfg.mem_size)
        if cfg.memory == "sdram":
            m.submodules.sdram = sdram = SdramController(cfg.sdram_chip, cfg.clk_freq, cfg.mem_size, width)
            wiring.connect(m, sdram.pins, wiring.flipped(self.sdram))
            mem = sdram.port
        else:
            m.submodules.mem = mem = (SpramMemory(cfg.mem_size, width) if cfg.memory == "spram"
                                      else BlockRamMemory(cfg.mem_size, width))

        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx),
                     link.rx_data.eq(uart_rx.data), link.rx_valid.eq(uart_rx.valid)]
        wiring.connect(m, link.tx, uart_tx.i)

        # The core owns the memory while it runs; the link answers BUSY then. Requesters of single
        # bytes reach a wider port through a view.
        requesters = {"core": core.mem, "link": link.mem}
        for name, port in requesters.items():
            if len(port.rdata) < 8 * width:
                m.submodules[f"{name}_bytes"] = view = ByteView(cfg.mem_size, width)
                wiring.connect(m, port, view.byte)
                requesters[name] = view.wide
        for requester, owns in ((requesters["core"], core.busy), (requesters["link"], ~core.busy)):
            with m.If(owns):
                m.d.comb += [mem.addr.eq(requester.addr), mem.wdata.eq(requester.wdata),
                             mem.wmask.eq(requester.wmask), mem.we.eq(requester.we), mem.re.eq(requester.re)]
            m.d.comb += [requester.ready.eq(mem.ready & owns), requester.rdata.eq(mem.rdata),
                         requester.rvalid.eq(mem.rvalid)]
        m.d.comb += [link.mem_busy.eq(core.busy), self.busy.eq(core.busy)]

        args = Signal(data.ArrayLayout(32, Reg.ARGS))
        done, cycles = Signal(1), Signal(32)
        m.d.comb += core.args.eq(args)
        with m.If(core.busy):
            m.d.sync += cycles.eq(cycles + 1)
        with m.If(core.done):
            m.d.sync += done.eq(1)

        reg = link.reg
        with m.If(reg.we):
            with m.If((reg.addr == Reg.CTRL) & reg.wdata[0] & ~core.busy):
                m.d.comb += core.start.eq(1)
                m.d.sync += [done.eq(0), cycles.eq(0)]
            for k in range(Reg.ARGS):
                with m.If(reg.addr == Reg.ARG0 + k):
                    m.d.sync += args[k].eq(reg.wdata)
        with m.Switch(reg.addr):
            with m.Case(Reg.ID):
                m.d.comb += reg.rdata.eq(Reg.ID_VALUE)
            with m.Case(Reg.STATUS):
                m.d.comb += reg.rdata.eq(Cat(core.busy, done, core.error))
            with m.Case(Reg.CYCLES):
                m.d.comb += reg.rdata.eq(cycles)
            with m.Case(Reg.MEM_SIZE):
                m.d.comb += reg.rdata.eq(cfg.mem_size)
            with m.Case(Reg.CORE):
                m.d.comb += reg.rdata.eq(CORES[cfg.core][0])
            for k in range(Reg.ARGS):
                with m.Case(Reg.ARG0 + k):
                    m.d.comb += reg.rdata.eq(args[k])
        return m
