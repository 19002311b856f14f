"""The simulation transport: the board's SoC in Verilator behind a simulated UART.

``open_sim(config)`` returns the same :class:`lutforge.boards.protocol.UartTransport` a board
gets from :func:`lutforge.boards.serial_transport.open_serial`, only its byte link is
:class:`lutforge.boards.uart_sim.UartSim`; everything above the link — framing, CRC, retries, the
host driver — is the code that runs against hardware.
"""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .protocol import UartTransport
from .sdram_model import SdramModel
from .soc import Soc, SocConfig, simulation_models

__all__ = ["open_sim", "SimulatedBoard"]


class SimulatedBoard(wiring.Component):
    """The SoC with what the board puts beside it: with ``memory: sdram`` the chip's model on its
    pins (:class:`.sdram_model.SdramModel`, the whole chip stored; a broken timing rule poisons
    every later read, so the host sees it)."""

    rx: In(1, init=1)
    tx: Out(1, init=1)
    busy: Out(1)

    def __init__(self, config: SocConfig):
        self.config = config
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        m.submodules.soc = soc = Soc(cfg)
        m.d.comb += [soc.rx.eq(self.rx), self.tx.eq(soc.tx), self.busy.eq(soc.busy)]
        if cfg.memory == "sdram":
            m.submodules.chip = chip = SdramModel(cfg.sdram_chip, cfg.clk_freq, cfg.sdram_chip.size,
                                                  storage="verilog")
            wiring.connect(m, soc.sdram, chip.pins)
        return m


def open_sim(config: "SocConfig | None" = None, *, retries: int = 8, wrap=None) -> UartTransport:
    """``wrap(link)`` may wrap the simulated link (e.g. in a FaultyLink) before framing."""
    from .uart_sim import UartSim

    config = config or SocConfig.for_sim()
    link = UartSim(SimulatedBoard(config), divisor=config.divisor, clk_freq=config.clk_freq,
                   latency_cycles=4 * config.idle_cycles, models=simulation_models(config))
    return UartTransport(wrap(link) if wrap else link, retries=retries)
