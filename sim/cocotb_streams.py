"""``lib.stream`` drivers for cocotb 2.x test benches, with seeded stall injection.

Ports follow Amaranth's Verilog names: ``<name>__valid``, ``<name>__ready``, ``<name>__payload``.
"""

import random

from cocotb.triggers import ReadOnly, RisingEdge

from .interface import SimulationTimeout

__all__ = ["CocotbStreamSource", "CocotbStreamSink"]


class _Ports:
    def __init__(self, dut, name):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload", None)


class CocotbStreamSource:
    def __init__(self, dut, name: str, clock, *, stall: float = 0.0, seed: int = 0):
        self.ports, self.clock = _Ports(dut, name), clock
        self.stall, self.rng = stall, random.Random(seed)
        self.ports.valid.value = 0

    async def send(self, payloads):
        for payload in payloads:
            while self.rng.random() < self.stall:
                await RisingEdge(self.clock)
            self.ports.payload.value = int(payload)
            self.ports.valid.value = 1
            while True:
                await ReadOnly()
                accepted = bool(self.ports.ready.value)
                await RisingEdge(self.clock)
                if accepted:
                    break
            self.ports.valid.value = 0


class CocotbStreamSink:
    def __init__(self, dut, name: str, clock, *, stall: float = 0.0, seed: int = 1):
        self.ports, self.clock = _Ports(dut, name), clock
        self.stall, self.rng = stall, random.Random(seed)
        self.ports.ready.value = 0

    async def receive(self, count: int, on_receive=None, timeout: int = 1_000_000):
        received, cycle = [], 0
        while len(received) < count:
            ready = self.rng.random() >= self.stall
            self.ports.ready.value = int(ready)
            await ReadOnly()
            if ready and self.ports.valid.value:
                value = self.ports.payload.value.to_unsigned()
                received.append(value)
                if on_receive is not None:
                    on_receive(value, cycle)
            await RisingEdge(self.clock)
            cycle += 1
            if cycle > timeout:
                raise SimulationTimeout(
                    f"Stream sink got {len(received)} of {count} payloads in {timeout} cycles; "
                    f"the block stalls or produces too few outputs."
                )
        self.ports.ready.value = 0
        return received
