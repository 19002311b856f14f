"""The simulation transport: the board's SoC in Verilator behind a simulated UART.

``open_sim(config)`` returns the same :class:`lutforge.boards.protocol.UartTransport` a board
gets from :func:`lutforge.boards.serial_transport.open_serial`, only its byte link is
:class:`lutforge.boards.uart_sim.UartSim`; everything above the link — framing, CRC, retries, the
host driver — is the code that runs against hardware.
"""

from .protocol import UartTransport
from .soc import Soc, SocConfig, simulation_models

__all__ = ["open_sim"]


def open_sim(config: "SocConfig | None" = None, *, retries: int = 8, wrap=None) -> UartTransport:
    """``wrap(link)`` may wrap the simulated link (e.g. in a FaultyLink) before framing."""
    from .uart_sim import UartSim

    config = config or SocConfig.for_sim()
    link = UartSim(Soc(config), divisor=config.divisor, clk_freq=config.clk_freq,
                   latency_cycles=4 * config.idle_cycles, models=simulation_models(config))
    return UartTransport(wrap(link) if wrap else link, retries=retries)
