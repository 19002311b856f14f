"""Supported boards: their amaranth-boards platform, how the SoC is sized on each, and the top
module that ties the SoC to the board's UART pins.

==============  ==============  ======  =======  ===========  =================================
name            FPGA            clock   memory   core         UART
==============  ==============  ======  =======  ===========  =================================
icebreaker      iCE40UP5K       12 MHz  128 KiB  gemv (*)     FTDI channel B (on-board USB)
ulx3s-85f       ECP5 LFE5U-85F  25 MHz  32 MiB   gemv         FTDI (on-board USB, "US1")
orangecrab-25f  ECP5 LFE5U-25F  48 MHz  16 KiB   gemv         feather header: io0 = RX, io1 = TX
                                                              (a 3.3 V USB-UART adapter; the USB
                                                              port is the FPGA's own)
==============  ==============  ======  =======  ===========  =================================

Memory is the UP5K's four SPRAM blocks on the iCEBreaker (:mod:`.spram`), the ULX3S's SDR SDRAM
through the SoC's controller (:mod:`.sdram`; ``memory: bram`` with ``mem_size: 32768`` gives the
block-RAM SoC instead) and block RAM (EBR) on the OrangeCrab, whose DDR3 is not used yet.
(*) The default GEMV sizes need about 7,100 of the UP5K's 5,280 logic cells; the iCEBreaker gets
C_a = 8, 2 lanes, 1 search chain, 32 positions per run (about 4,900 cells).
"""

from dataclasses import dataclass, replace

from amaranth import Elaboratable, Module
from amaranth.build import Attrs, ResourceError
from amaranth.lib import io
from amaranth_boards.resources import UARTResource

from ..program.core import GemvCoreParams
from ..support.errors import UsageError
from .soc import BOARD_GEMV, Soc, SocConfig
from .sdram import IS42S16160, SdramChip
from .spram import SPRAM_BYTES

__all__ = ["Board", "BOARDS", "get_board", "BoardTop"]


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    family: str  # "ice40" or "ecp5"
    platform_path: str  # module:class in amaranth_boards
    mem_size: int
    core: str
    # Bytes of byte-wide block RAM on the FPGA: the SoC memory (a power of two) must fit below it.
    # An iCE40 EBR holds 512 bytes, an ECP5 EBR 2 KiB (2048 x 9 bits).
    block_ram: int
    # Logic of the FPGA (its data sheet): LUT4s, multipliers (iCE40 SB_MAC16, ECP5 18x18) and block
    # RAMs (iCE40 4 Kbit EBR, ECP5 18 Kbit EBR), what a design must fit (``lutforge explore``).
    lut4: int
    dsp: int
    ebr: int
    gemv: GemvCoreParams = BOARD_GEMV  # the GEMV core's sizes, when core is "gemv"
    memory: str = "bram"  # the SoC memory: "bram", "spram" on an iCE40 UP5K, "sdram" beside the FPGA
    spram: int = 0  # bytes of single-port RAM (SB_SPRAM256KA) on the FPGA
    sdram_chip: "SdramChip | None" = None  # the SDR SDRAM on the board, if any
    # Bytes the SoC's memory port moves a request: the SDRAM's and SPRAM's 16-bit words, and block
    # RAM as wide, so that the GEMV core's index words come one a cycle.
    port_bytes: int = 2

    def platform(self):
        module, cls = self.platform_path.split(":")
        platform = getattr(__import__(f"amaranth_boards.{module}", fromlist=[cls]), cls)()
        if self.name.startswith("orangecrab"):
            platform.add_resources([UARTResource(0, rx="0", tx="1", conn=("io", 0),
                                                 attrs=Attrs(IO_TYPE="LVCMOS33", PULLMODE="UP"))])
        return platform

    def soc_config(self, **changes) -> SocConfig:
        clk_freq = self.platform().default_clk_frequency
        # idle: 10 ms, longer than any gap a USB-UART leaves in a frame
        if changes.get("memory", self.memory) == "sdram":
            if self.sdram_chip is None:
                raise UsageError(f"The {self.name} has no SDR SDRAM the SoC can use; use memory: bram.")
            changes = {"sdram_chip": self.sdram_chip, **changes}
        config = SocConfig(clk_freq=clk_freq, baud=115200, mem_size=self.mem_size, core=self.core,
                           gemv=self.gemv, memory=self.memory, port_bytes=self.port_bytes,
                           idle_cycles=int(clk_freq // 100))
        config = replace(config, **changes)
        if config.memory == "spram" and not self.spram:
            raise UsageError(f"The {self.name} has no SPRAM (single-port RAM blocks are an iCE40 UP5K's); use "
                             f"memory: bram.")
        if config.memory == "bram" and config.mem_size > self.block_ram:
            largest = 1 << (self.block_ram.bit_length() - 1)
            raise UsageError(
                f"SoC mem_size {config.mem_size} does not fit the {self.name}'s block RAM ({self.block_ram} bytes "
                f"on its FPGA); use {largest} or less.")
        return config


BOARDS = {b.name: b for b in (
    Board("icebreaker", "1BitSquared iCEBreaker (iCE40UP5K-SG48)", "ice40",
          # A smaller GEMV core: the default sizes need about 7,100 logic cells, the UP5K has 5,280.
          "icebreaker:ICEBreakerPlatform", mem_size=4 * SPRAM_BYTES, core="gemv",
          gemv=GemvCoreParams(c_a=8, lanes=2, chains=1, max_positions=32, tables="resident"),
          block_ram=30 * 512, lut4=5280, dsp=8, ebr=30, memory="spram", spram=4 * SPRAM_BYTES),
    Board("ulx3s-85f", "Radiona ULX3S with LFE5U-85F", "ecp5",
          "ulx3s:ULX3S_85F_Platform", mem_size=IS42S16160.size, core="gemv", block_ram=208 * 2048,
          lut4=83640, dsp=156, ebr=208, memory="sdram", sdram_chip=IS42S16160),
    Board("orangecrab-25f", "OrangeCrab r0.2 with LFE5U-25F", "ecp5",
          "orangecrab_r0_2:OrangeCrabR0_2_25FPlatform", mem_size=16384, core="gemv", block_ram=56 * 2048,
          lut4=24288, dsp=28, ebr=56),
)}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise UsageError(f"Unknown board {name!r}; supported boards are {', '.join(BOARDS)}.") from None


class BoardTop(Elaboratable):
    """The SoC on a board: UART pins to the host link, the first LED (if any) shows ``busy``."""

    def __init__(self, config: SocConfig):
        self.config = config

    def elaborate(self, platform):
        m = Module()
        m.submodules.soc = soc = Soc(self.config)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buffer = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buffer = tx = io.Buffer("o", uart.tx)
        m.d.comb += [soc.rx.eq(rx.i), tx.o.eq(soc.tx)]
        if self.config.memory == "sdram":
            self._connect_sdram(m, soc.sdram, platform.request("sdram", 0, dir="-"))
        try:
            led = platform.request("led", 0, dir="-")
        except ResourceError:
            pass  # boards with only an RGB LED go without the busy light
        else:
            m.submodules.led_buffer = light = io.Buffer("o", led)
            m.d.comb += light.o.eq(soc.busy)
        return m

    @staticmethod
    def _connect_sdram(m, soc_pins, pins):
        """The controller's pins (already registered) to the chip; the chip's clock is the SoC's,
        through a DDR output so it leaves the FPGA like the data. The controller and the chip model
        assume what this gives at the SoC's 25 MHz: a command driven in one cycle is sampled at the
        edge that ends it (40 ns less the output delay of setup), and a read's word is taken CAS
        latency edges later, inside the chip's output hold (2.7 ns on the IS42S16160). Not yet
        tried on a board."""
        m.submodules.sdram_clk = clk = io.DDRBuffer("o", pins.clk)
        m.d.comb += [clk.o[0].eq(1), clk.o[1].eq(0)]
        for name in ("clk_en", "cs", "we", "ras", "cas", "ba", "a", "dqm"):
            m.submodules[f"sdram_{name}"] = out = io.Buffer("o", getattr(pins, name))
            m.d.comb += out.o.eq(getattr(soc_pins, name))
        m.submodules.sdram_dq = dq = io.Buffer("io", pins.dq)
        m.d.comb += [dq.o.eq(soc_pins.dq_o), dq.oe.eq(soc_pins.dq_oe), soc_pins.dq_i.eq(dq.i)]
