"""The ``amaranth`` harness: a component under Amaranth's own Python simulator, no build at all."""

import tempfile
from pathlib import Path

import numpy as np
from amaranth.lib import stream, wiring
from amaranth.sim import Simulator

from ..support.errors import UsageError
from .interface import Harness, HarnessRun, as_array
from .streams import StreamSink, StreamSource

__all__ = ["AmaranthSim"]


def _ports(component):
    """(name, direction, value) for each signature member, named as in the Verilog ("a__b")."""
    for path, member, value in component.signature.flatten(component):
        # Drive and read the raw bits, so layouts behave like the flat Verilog ports.
        raw = value.as_value() if hasattr(value, "as_value") else value
        yield "__".join(map(str, path)), member.flow, raw


class AmaranthSim(Harness):
    """``component`` under Amaranth's simulator; ``waves="vcd"`` makes each run write a VCD file
    to :attr:`waves_path` (in a fresh temporary folder, kept for the reader)."""

    name = "amaranth"
    default_vectors = 20_000
    waves_formats = ("vcd",)

    def __init__(self, component, *, waves: "str | None" = None):
        if waves not in (None, *self.waves_formats):
            raise UsageError(f"The amaranth harness writes waves='vcd' only, not waves={waves!r}.")
        self.component = component
        self.top = type(component).__name__
        if waves:
            self.waves_path = Path(tempfile.mkdtemp(prefix="lutforge-waves-")) / f"{self.top}.vcd"

    def _simulate(self, sim: Simulator) -> None:
        if self.waves_path:
            with sim.write_vcd(str(self.waves_path)):
                sim.run()
        else:
            sim.run()

    def run_vectors(self, inputs: dict[str, np.ndarray], latency: int = 0) -> HarnessRun:
        ports = list(_ports(self.component))
        ins = {name: value for name, flow, value in ports if flow == wiring.In}
        outs = {name: value for name, flow, value in ports if flow == wiring.Out}
        # Whether the component has a clock is only known once elaborated; the simulator says so.
        n = self._vector_count(self.top, inputs, list(ins), latency, clocked=None)
        arrays = {name: np.asarray(values).tolist() for name, values in inputs.items()}
        results = {name: [] for name in outs}
        sim = Simulator(self.component)
        clocked = latency > 0
        if clocked:
            sim.add_clock(1e-6)

        async def bench(ctx):
            for t in range(n + latency):
                for name, value in ins.items():
                    ctx.set(value, arrays[name][t] if t < n else 0)
                if clocked:
                    await ctx.delay(0)
                if t >= latency:
                    for name, value in outs.items():
                        results[name].append(ctx.get(value))
                if clocked:
                    await ctx.tick()
                else:
                    await ctx.delay(1e-9)

        sim.add_testbench(bench)
        self._simulate(sim)
        return self._run({name: as_array(values) for name, values in results.items()})

    def run_streams(self, inputs: dict[str, np.ndarray], expect: dict[str, int], *,
                    constants: "dict[str, int] | None" = None, seed: int = 0,
                    input_stall: float = 0.0, output_stall: float = 0.0,
                    max_cycles: int = 10_000_000, memories: "dict[str, np.ndarray] | None" = None,
                    memory_latency: int = 1) -> HarnessRun:
        """Drive every ``lib.stream`` member of the component (those at the top of its signature);
        input stream ``i`` stalls with seed ``seed + 2 i``, output stream ``j`` with ``seed + 2 j + 1``."""
        constants = dict(constants or {})
        members = self.component.signature.members
        streams = {name: member.flow for name, member in members.items()
                   if member.is_signature and isinstance(member.signature, stream.Signature)}
        self._check_streams(
            self.top, inputs, expect, constants, memories, (input_stall, output_stall),
            sources=[name for name, flow in streams.items() if flow == wiring.In],
            sinks=[name for name, flow in streams.items() if flow == wiring.Out],
            constant_ports=[name for name, member in members.items() if member.is_port and member.flow == wiring.In])
        results = {}
        sim = Simulator(self.component)
        sim.add_clock(1e-6)

        async def hold(ctx):
            for name, value in constants.items():
                ctx.set(getattr(self.component, name), value)

        sim.add_testbench(hold)
        for index, (name, payloads) in enumerate(inputs.items()):
            source = StreamSource(getattr(self.component, name), stall=input_stall, seed=seed + 2 * index)
            values = [int(p) for p in np.asarray(payloads).tolist()]

            async def send(ctx, source=source, values=values):
                await source.send(ctx, values)

            sim.add_testbench(send, background=True)
        for index, (name, count) in enumerate(expect.items()):
            sink = StreamSink(getattr(self.component, name), stall=output_stall, seed=seed + 2 * index + 1)

            async def receive(ctx, sink=sink, name=name, count=count):
                results[name] = await sink.receive(ctx, count, timeout=max_cycles)

            sim.add_testbench(receive)
        self._simulate(sim)
        return self._run({name: as_array(values) for name, values in results.items()})
