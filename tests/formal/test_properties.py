"""Bounded property proofs (prove_properties): a design holding its own assertions and covers, as
the attention unit's check does; a wrong assertion fails, an unreachable cover is no pass."""

import pytest
from amaranth import Module, Signal
from amaranth.hdl import Assert, Cover
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lutforge.formal.engines import prove_properties
from lutforge.formal.results import FAIL, INCONCLUSIVE, PASS


class Counter(wiring.Component):
    """Counts enabled cycles up to ``top`` and holds; asserts ``count <= limit``, covers ``count == goal``."""

    def __init__(self, top: int, limit: int, goal: int):
        self.top, self.limit, self.goal = top, limit, goal
        super().__init__({"en": In(1), "count": Out(8)})

    def elaborate(self, platform):
        m = Module()
        count = Signal(8)
        with m.If(self.en & (count < self.top)):
            m.d.sync += count.eq(count + 1)
        m.d.comb += [self.count.eq(count), Assert(count <= self.limit), Cover(count == self.goal)]
        return m


@pytest.mark.parametrize("limit,goal,status,detail", [
    (5, 5, PASS, "bounded: every assertion holds on every input sequence of 8 cycles from reset"),
    (4, 3, FAIL, "an assertion fails within 8 cycles"),
    (5, 9, INCONCLUSIVE, "a cover is not reached within 8 cycles, so the checks say nothing")])
def test_property_proof_passes_fails_or_says_it_proved_nothing(limit, goal, status, detail):
    result = prove_properties(Counter(5, limit, goal), name="counter", depth=8, timeout=120, cache=False)
    assert result.status == status, str(result)
    assert result.detail.startswith(detail)


def test_attention_spec_equals_golden_attention():
    """The attention proof's spec against golden.attention (a query over its first n keys) on random
    values and random encodings (NaN, Inf, zeros of both signs, subnormals)."""
    import numpy as np
    from amaranth.sim import Simulator
    from lutforge.formal.attention_check import AttentionSpec
    from lutforge.golden.attention import attention
    from lutforge.golden.convert import encode
    d, keys, rng = 2, 2, np.random.default_rng(5)
    spec = AttentionSpec("e5m2", d, keys)
    cases = []
    for t in range(150):
        shapes = ((d,), (keys, d), (keys, d))
        q, k, v = ((rng.integers(0, 256, s) if t % 3 == 0 else encode(rng.normal(size=s) * 2, "e5m2")).astype(np.uint8)
                   for s in shapes)
        n = int(rng.integers(1, keys + 1))
        cases.append((n, q, k, v, [int(x) for x in attention(q[None], k[:n], v[:n], "e5m2")[0]]))
    mismatches = []

    async def bench(ctx):
        for n, q, k, v, want in cases:
            ctx.set(spec.n, n)
            for i in range(d):
                ctx.set(spec.q[i], int(q[i]))
                for j in range(keys):
                    ctx.set(spec.k[j][i], int(k[j, i]))
                    ctx.set(spec.v[j][i], int(v[j, i]))
            got = [ctx.get(spec.o[i]) for i in range(d)]
            if got != want:
                mismatches.append((n, q, k, v, got, want))

    sim = Simulator(spec)
    sim.add_testbench(bench)
    sim.run()
    assert not mismatches, mismatches[:3]
