"""The transport abstraction every host-side program talks to, and the byte links beneath it.

Two layers, so that there is exactly one driver (:mod:`lutforge.boards.host`):

* :class:`Transport` — what a driver needs from an accelerator: byte-addressed memory
  (``write_mem``/``read_mem``) and 32-bit registers (``write_reg``/``read_reg``). The framed UART
  protocol (:class:`lutforge.boards.protocol.UartTransport`) implements it; so can any future
  link (PCIe, JTAG) without touching the driver.
* :class:`ByteLink` — a raw byte pipe with timeouts under the framed protocol: a serial port
  (:class:`lutforge.boards.serial_transport.SerialLink`) or the board top running in Verilator
  with a simulated UART (:class:`lutforge.boards.uart_sim.UartSim`).

:class:`FaultyLink` wraps any link and corrupts chosen bytes, which is how tests prove that
corrupted frames are detected, NAKed and retried with nothing lost.
"""

import time
from abc import ABC, abstractmethod

__all__ = ["Transport", "ByteLink", "FaultyLink"]


class Transport(ABC):
    """Memory and register access to one accelerator. Addresses are in bytes (memory) or register
    indices (registers); register values are unsigned 32-bit integers."""

    @abstractmethod
    def write_mem(self, addr: int, data: bytes) -> None: ...

    @abstractmethod
    def read_mem(self, addr: int, n: int) -> bytes: ...

    @abstractmethod
    def write_reg(self, index: int, value: int) -> None: ...

    @abstractmethod
    def read_reg(self, index: int) -> int: ...

    def close(self) -> None:
        """Release the link; the default has nothing to release."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ByteLink(ABC):
    """A byte pipe to the device.

    ``byte_time`` is the seconds one byte takes on the wire and ``latency`` the extra seconds a
    response may be late (USB scheduling, the device's own work); the protocol derives its
    response timeouts from the two, so they must be at least as long as the device's idle timeout.
    Timeouts count in the link's own clock, :meth:`now`: wall time for a serial port, simulated
    time for a simulator (which may run slower or faster than real time).
    """

    byte_time: float
    latency: float

    def now(self) -> float:
        """Seconds on the link's clock."""
        return time.monotonic()

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def read(self, n: int, timeout: float) -> bytes:
        """Up to ``n`` bytes; fewer (possibly none) only when ``timeout`` seconds pass first."""

    @abstractmethod
    def discard_input(self) -> None:
        """Drop bytes received but not yet read (stale answers before a retry)."""

    def close(self) -> None:
        """Release the link; the default has nothing to release."""


class FaultyLink(ByteLink):
    """Corrupts bytes passing through ``link``: XORs ``mask`` into the byte at each position of
    ``tx_faults`` (offsets in the stream written to the device) and ``rx_faults`` (offsets in the
    stream read from it), counting from 0 over the link's lifetime. ``drop_rx`` drops whole bytes."""

    def __init__(self, link: ByteLink, *, tx_faults=(), rx_faults=(), drop_rx=(), mask: int = 0x10):
        if not 1 <= mask <= 0xFF:
            raise ValueError(f"FaultyLink mask {mask:#x} flips no bit of a byte; use 0x01..0xff.")
        self.link = link
        self.tx_faults, self.rx_faults, self.drop_rx = set(tx_faults), set(rx_faults), set(drop_rx)
        self.mask = mask
        self.tx_count = self.rx_count = 0
        self.injected = 0
        self.byte_time, self.latency = link.byte_time, link.latency

    def write(self, data: bytes) -> None:
        out = bytearray(data)
        for i in range(len(out)):
            if self.tx_count + i in self.tx_faults:
                out[i] ^= self.mask
                self.injected += 1
        self.tx_count += len(out)
        self.link.write(bytes(out))

    def read(self, n: int, timeout: float) -> bytes:
        data = self.link.read(n, timeout)
        out = bytearray()
        for byte in data:
            position = self.rx_count
            self.rx_count += 1
            if position in self.drop_rx:
                self.injected += 1
                continue
            if position in self.rx_faults:
                byte ^= self.mask
                self.injected += 1
            out.append(byte)
        if data and len(out) < n:
            # Keep the ByteLink contract: an empty answer means the timeout passed.
            out += self.read(n - len(out), timeout)
        return bytes(out)

    def discard_input(self) -> None:
        self.link.discard_input()

    def now(self) -> float:
        return self.link.now()

    def close(self) -> None:
        self.link.close()
