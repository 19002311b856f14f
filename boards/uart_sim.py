"""A board top in Verilator behind a simulated UART, seen from Python as a byte link.

``UartSim(component, divisor, clk_freq)`` Verilates ``component`` (ports ``rx``/``tx`` in the
``sync`` domain, e.g. :class:`lutforge.boards.soc.Soc`) with ``uart_driver.cpp`` — once, into the
content-hashed cache — and runs it as a child process. The design sees real 8N1 waveforms at
``divisor`` clock cycles per bit; Python writes and reads bytes. Simulated time advances only
while Python waits in :meth:`read`, and :meth:`now` reports it, so the protocol's timeouts are
counted in simulated cycles and do not depend on how fast the host machine is.
"""

import importlib.resources
import subprocess

from .transport import ByteLink
from ..sim.rtl import elaborate
from ..sim.verilator_build import build_executable

__all__ = ["UartSim"]


class UartSim(ByteLink):
    def __init__(self, component, *, divisor: int, clk_freq: float, latency_cycles: int, models: str = ""):
        """``latency_cycles`` is the slack the host allows beyond a frame's wire time; it must be
        longer than the design's idle timeout. ``models`` is the Verilog of primitives the design
        instantiates (:func:`lutforge.boards.soc.simulation_models`), compiled beside it."""
        design = elaborate(component, "top")
        missing = {"rx", "tx", "clk", "rst"} - {p.name for p in design.ports}
        if missing:
            raise ValueError(
                f"UartSim drives ports rx, tx, clk and rst; the design lacks {', '.join(sorted(missing))}: "
                f"give it `rx: In(1)`, `tx: Out(1)` and logic in the sync domain."
            )
        driver = importlib.resources.files(__package__).joinpath("uart_driver.cpp").read_text()
        self.executable, self.cached, self.build_seconds = build_executable(
            "uart_sim", "top", design.verilog + models, {"uart_driver.cpp": driver})
        self.divisor = divisor
        self.clk_freq = clk_freq
        self.byte_time = 10 * divisor / clk_freq
        self.latency = latency_cycles / clk_freq
        self.cycle = 0
        self._process = subprocess.Popen(
            [str(self.executable), str(divisor)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, bufsize=1)

    def _ask(self, line: str) -> str:
        if self._process.poll() is not None:
            raise RuntimeError(
                f"The UART simulation exited with status {self._process.returncode}; "
                f"run {self.executable} {self.divisor} by hand to see why."
            )
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline()
        if not answer:
            raise RuntimeError(f"The UART simulation stopped answering after {line[:20]!r}.")
        return answer.strip()

    def now(self) -> float:
        return self.cycle / self.clk_freq

    def write(self, data: bytes) -> None:
        if data:
            self._ask("W " + bytes(data).hex())

    def read(self, n: int, timeout: float) -> bytes:
        cycles = max(1, int(timeout * self.clk_freq))
        _, payload, cycle = self._ask(f"R {n} {cycles}").split()
        self.cycle = int(cycle)
        return b"" if payload == "-" else bytes.fromhex(payload)

    def discard_input(self) -> None:
        self._ask("X")

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.write("Q\n")
            self._process.stdin.close()
            self._process.wait()
            self._process.stdout.close()
