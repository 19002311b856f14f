"""The int8 MAC-array GEMV baseline (the resource comparison in bench/lut_gemv.py) computes dot products."""

import numpy as np
from amaranth.sim import Simulator

from lutforge.hdl.mac_gemv import MacGemv


def test_int8_mac_gemv_equals_numpy_dot_products():
    lanes, v, positions, tiles = 3, 2, 5, 4
    dut = MacGemv(lanes, v, "int8", max_positions=positions)
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (tiles, positions, v))
    w = rng.integers(-128, 128, (tiles, positions, lanes, v))
    x[0], w[0] = -128, -128  # the largest products
    want = np.einsum("tpv,tplv->tl", x, w)
    got = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for t in range(tiles):
            for p in range(positions):
                ctx.set(dut.i.payload, {"x": list(x[t, p]), "w": list(w[t, p].reshape(-1)),
                                        "last": int(p == positions - 1)})
                ctx.set(dut.i.valid, 1)
                await ctx.tick()
                if ctx.get(dut.o.valid):
                    got.append([ctx.get(dut.o.payload[i]) for i in range(lanes)])
        ctx.set(dut.i.valid, 0)
        await ctx.tick()
        if ctx.get(dut.o.valid):
            got.append([ctx.get(dut.o.payload[i]) for i in range(lanes)])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert np.array_equal(np.array(got), want)
