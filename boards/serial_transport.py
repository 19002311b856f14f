"""The serial transport: the framed protocol over a real UART (pyserial)."""

import time

from .protocol import LinkError, UartTransport
from .transport import ByteLink

__all__ = ["SerialLink", "open_serial"]


class SerialLink(ByteLink):
    """A serial port as a :class:`ByteLink` (8N1, no flow control)."""

    def __init__(self, port: str, baud: int = 115200, *, latency: float = 0.1):
        import serial

        try:
            self.port = serial.Serial(port, baud, timeout=0, write_timeout=5)
        except serial.SerialException as error:
            raise LinkError(
                f"Cannot open serial port {port!r} ({error}); check the board is plugged in, the "
                f"device name (e.g. /dev/ttyUSB1 for the iCEBreaker's second FTDI channel) and that "
                f"you may use it (the dialout group on Linux)."
            ) from None
        self.byte_time = 10 / baud
        # Must exceed the device's idle timeout (10 ms on the boards of lutforge.boards.platforms).
        self.latency = latency

    def write(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def read(self, n: int, timeout: float) -> bytes:
        self.port.timeout = max(timeout, 0.0)
        return self.port.read(n)

    def discard_input(self) -> None:
        # Let any answer still on the wire arrive before dropping it.
        time.sleep(self.byte_time * 4)
        self.port.reset_input_buffer()

    def close(self) -> None:
        self.port.close()


def open_serial(port: str, baud: int = 115200, *, retries: int = 8) -> UartTransport:
    return UartTransport(SerialLink(port, baud), retries=retries)
