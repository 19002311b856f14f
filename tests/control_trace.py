"""The control interface of a core with a ``desc`` stream, run in Amaranth's simulator: what the
refused-descriptor tests of every core read."""

from amaranth.sim import Simulator


def control_trace(core, descriptors, request, data=None) -> list[tuple[int, int, int, int, int]]:
    """(busy, done, error, ``request.valid``, ``data.ready``) after each descriptor of
    ``descriptors`` is offered for one cycle; ``request`` is one of the core's memory request
    streams, ``data`` its data input stream (default ``core.x``)."""
    data = core.x if data is None else data
    seen = []

    async def bench(ctx):
        for d in descriptors:
            ctx.set(core.desc.payload, d)
            ctx.set(core.desc.valid, 1)
            await ctx.tick()
            ctx.set(core.desc.valid, 0)
            await ctx.tick()
            seen.append((ctx.get(core.busy), ctx.get(core.done), ctx.get(core.error), ctx.get(request.valid),
                         ctx.get(data.ready)))

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen
