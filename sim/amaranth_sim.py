"""Running a block's vectors under Amaranth's own simulator."""

import numpy as np
from amaranth.lib import wiring
from amaranth.sim import Simulator

__all__ = ["run_vectors_amaranth"]


def _ports(component):
    """(name, direction, value) for each signature member, named as in the Verilog ("a__b")."""
    for path, member, value in component.signature.flatten(component):
        # Drive and read the raw bits, so layouts behave like the flat Verilog ports.
        raw = value.as_value() if hasattr(value, "as_value") else value
        yield "__".join(map(str, path)), member.flow, raw


def run_vectors_amaranth(component, inputs: dict[str, np.ndarray], latency: int = 0,
                         vcd: "str | None" = None) -> dict[str, np.ndarray]:
    """Apply one vector per cycle under Amaranth's simulator; outputs aligned to their inputs.

    Same contract as :meth:`lutforge.sim.batch.BatchSim.run_vectors`, so the two can be compared.
    """
    ports = list(_ports(component))
    ins = {name: value for name, flow, value in ports if flow == wiring.In}
    outs = {name: value for name, flow, value in ports if flow == wiring.Out}
    if set(inputs) != set(ins):
        raise ValueError(
            f"The component takes inputs {', '.join(sorted(ins))}; got {', '.join(sorted(inputs))}."
        )
    arrays = {name: np.asarray(values).tolist() for name, values in inputs.items()}
    n = len(next(iter(arrays.values()))) if arrays else 0
    results = {name: [] for name in outs}
    sim = Simulator(component)
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
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return {name: np.array(values, dtype=np.uint64) for name, values in results.items()}


def run_streams_amaranth(component, sources: dict[str, np.ndarray], expect: dict[str, int], *,
                         seed: int = 0, stall: float = 0.0) -> dict[str, np.ndarray]:
    """Drive every ``lib.stream`` of ``component`` under Amaranth's simulator, with seeded stalls.

    Same contract as :meth:`lutforge.sim.batch.BatchSim.run_streams`: payloads per input stream in,
    the payloads each output stream delivered out.
    """
    from .streams import StreamSink, StreamSource

    results = {}
    sim = Simulator(component)
    sim.add_clock(1e-6)
    for index, (name, payloads) in enumerate(sources.items()):
        source = StreamSource(getattr(component, name), stall=stall, seed=seed + 2 * index)
        values = [int(p) for p in np.asarray(payloads).tolist()]

        async def send(ctx, source=source, values=values):
            await source.send(ctx, values)

        sim.add_testbench(send, background=True)
    for index, (name, count) in enumerate(expect.items()):
        sink = StreamSink(getattr(component, name), stall=stall, seed=seed + 2 * index + 1)

        async def receive(ctx, sink=sink, name=name, count=count):
            results[name] = await sink.receive(ctx, count)

        sim.add_testbench(receive)
    sim.run()
    return {name: np.array(values, dtype=object if any(v >> 64 for v in values) else np.uint64)
            for name, values in results.items()}
