"""``amaranth.lib.stream`` drivers for Amaranth testbenches, with seeded stall injection.

A source keeps ``valid`` up until the transfer happens (the stream rules); stalls only decide when
it raises ``valid`` and when the sink raises ``ready``.
"""

import random

from .interface import SimulationTimeout

__all__ = ["StreamSource", "StreamSink"]


def _raw(value):
    return value.as_value() if hasattr(value, "as_value") else value


class StreamSource:
    """Sends payloads into ``stream`` (the DUT's input), idling with probability ``stall``."""

    def __init__(self, stream, *, stall: float = 0.0, seed: int = 0):
        self.stream, self.stall, self.rng = stream, stall, random.Random(seed)

    async def send(self, ctx, payloads, on_send=None):
        for index, payload in enumerate(payloads):
            while self.rng.random() < self.stall:
                await ctx.tick()
            ctx.set(_raw(self.stream.payload), int(payload))
            ctx.set(self.stream.valid, 1)
            await ctx.tick().until(self.stream.ready)
            if on_send is not None:
                on_send(index, payload)
            ctx.set(self.stream.valid, 0)


class StreamSink:
    """Takes ``count`` payloads from ``stream`` (the DUT's output), refusing with probability ``stall``."""

    def __init__(self, stream, *, stall: float = 0.0, seed: int = 1):
        self.stream, self.stall, self.rng = stream, stall, random.Random(seed)

    async def receive(self, ctx, count: int, on_receive=None, timeout: int = 1_000_000):
        received, cycle = [], 0
        while len(received) < count:
            ready = self.rng.random() >= self.stall
            ctx.set(self.stream.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(self.stream.valid, _raw(self.stream.payload))
            cycle += 1
            if ready and valid:
                received.append(int(payload))
                if on_receive is not None:
                    on_receive(int(payload), cycle)
            if cycle > timeout:
                raise SimulationTimeout(
                    f"Stream sink got {len(received)} of {count} payloads in {timeout} cycles; "
                    f"the block stalls or produces too few outputs."
                )
        ctx.set(self.stream.ready, 0)
        return received
