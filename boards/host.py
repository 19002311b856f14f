"""The one host driver: load memory, write registers, start, wait for done, read results.

It talks to any :class:`lutforge.boards.transport.Transport`, so the code that runs a layer on a
board over a serial port is the code CI runs against the board top in Verilator::

    from lutforge.boards.host import Accelerator
    from lutforge.boards.platforms import BOARDS
    from lutforge.boards.serial_transport import open_serial     # a board
    from lutforge.boards.sim_transport import open_sim           # or the same SoC in Verilator

    with open_sim(BOARDS["icebreaker"].soc_config()) as transport:   # or open_serial("/dev/ttyUSB1")
        acc = Accelerator(transport)
        acc.load_memory(0x000, a_bytes)
        acc.load_memory(0x100, b_bytes)
        cycles = acc.run([0x000, 0x100, 0x200, len(a_bytes)])    # ARG0.. then start, wait
        r = acc.read_results(0x200, len(a_bytes))

The compiler's :class:`lutforge.program.host.HostDriver` reaches boards through
:class:`lutforge.backends.board.BoardBackend`, which is built on this class; what the descriptor
words mean belongs to the core (``CORES`` and ``GemvShell`` in :mod:`lutforge.boards.soc`).
"""

import time

import numpy as np

from .protocol import Reg
from .transport import Transport
from ..support.errors import LutforgeError

__all__ = ["Accelerator", "AcceleratorError"]


class AcceleratorError(LutforgeError, RuntimeError):
    """The accelerator is not what the driver expects, or did not finish in time."""


class Accelerator:
    def __init__(self, transport: Transport):
        self.transport = transport
        ident = transport.read_reg(Reg.ID)
        if ident != Reg.ID_VALUE:
            raise AcceleratorError(
                f"The device answered ID {ident:#010x}, not lutforge's {Reg.ID_VALUE:#010x}; "
                f"the wrong bitstream is loaded or another device sits on this port."
            )
        self.mem_size = transport.read_reg(Reg.MEM_SIZE)
        self.core = transport.read_reg(Reg.CORE)

    def load_memory(self, addr: int, data) -> None:
        data = _as_bytes(data)
        self._check_range(addr, len(data))
        self.transport.write_mem(addr, data)

    def read_results(self, addr: int, n: int) -> bytes:
        self._check_range(addr, n)
        return self.transport.read_mem(addr, n)

    def write_registers(self, values: "dict[int, int]") -> None:
        for index, value in values.items():
            self.transport.write_reg(index, value)

    def write_args(self, args) -> None:
        if len(args) > Reg.ARGS:
            raise ValueError(f"The core takes at most {Reg.ARGS} descriptor words; got {len(args)}.")
        self.write_registers({Reg.ARG0 + i: int(v) for i, v in enumerate(args)})

    def start(self) -> None:
        self.transport.write_reg(Reg.CTRL, 1)

    def wait_done(self, timeout: float = 10.0, poll: float = 0.0) -> int:
        """Poll STATUS until the core is done; returns the clock cycles the run took."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.transport.read_reg(Reg.STATUS)
            if status & Reg.STATUS_DONE and not status & Reg.STATUS_BUSY:
                return self.transport.read_reg(Reg.CYCLES)
            if time.monotonic() > deadline:
                raise AcceleratorError(
                    f"The core was still busy after {timeout} s (STATUS {status:#x}); raise the "
                    f"timeout for large layers or check that the descriptor is valid."
                )
            if poll:
                time.sleep(poll)

    def run(self, args, timeout: float = 10.0) -> int:
        self.write_args(args)
        self.start()
        return self.wait_done(timeout)

    def _check_range(self, addr: int, n: int) -> None:
        if addr < 0 or addr + n > self.mem_size:
            raise ValueError(
                f"Bytes {addr:#x}..{addr + n:#x} fall outside the device's {self.mem_size}-byte memory; "
                f"place the data below {self.mem_size:#x}."
            )


def _as_bytes(data) -> bytes:
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ValueError(
                f"Memory images are bytes; got an array of {data.dtype}: pack it with .astype('<u2').view(np.uint8) "
                f"or similar so the byte order is explicit."
            )
        return data.tobytes()
    return bytes(data)
