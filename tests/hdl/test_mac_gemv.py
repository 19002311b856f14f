"""The int8 MAC-array GEMV baseline (the resource comparison in bench/lut_gemv.py) computes dot products."""

import numpy as np
import pytest
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


def run_tiles(dut, x, w, seed):
    """Feed ``x`` (tiles, positions, v) and ``w`` (tiles, positions, lanes * v) through ``dut`` with
    random gaps on the input and back-pressure on the output; the tiles' sums as they leave."""
    rng = np.random.default_rng(seed)
    tiles, positions = x.shape[:2]
    got = []

    async def feed(ctx):
        for t in range(tiles):
            for p in range(positions):
                while rng.random() < 0.3:
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick()
                ctx.set(dut.i.payload, {"x": [int(e) for e in x[t, p]], "w": [int(e) for e in w[t, p]],
                                        "last": int(p == positions - 1)})
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def drain(ctx):
        for _ in range(20 * tiles * positions):  # far more cycles than the tiles need
            ready = rng.random() < 0.6
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if ready and valid:
                got.append([payload[i] for i in range(dut.lanes)])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feed)
    sim.add_testbench(drain)
    sim.run()
    return np.array(got)


@pytest.mark.parametrize("stages, positions", [(0, 4), (1, 4), (3, 4), (3, 1)])  # last: every transfer ends a tile
def test_pipelined_int8_mac_gemv_equals_numpy_under_gaps_and_back_pressure(stages, positions):
    lanes, v, tiles = 3, 2, 5
    rng = np.random.default_rng(stages)
    x = rng.integers(-128, 128, (tiles, positions, v))
    w = rng.integers(-128, 128, (tiles, positions, lanes * v))
    want = np.einsum("tpv,tplv->tl", x, w.reshape(tiles, positions, lanes, v))
    dut = MacGemv(lanes, v, "int8", max_positions=positions, stages=stages)
    got = run_tiles(dut, x, w, seed=stages)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("stages", [0, 2])
def test_pipelined_bf16_mac_gemv_rounds_each_product_and_sum_in_order(stages):
    """Against golden.fp: each lane's sum is ((0 + x0·w0) + x1·w1) + ... rounded at every step."""
    from lutforge.golden.fp import add, mul

    lanes, v, positions, tiles = 2, 2, 3, 4
    rng = np.random.default_rng(10 + stages)
    values = rng.normal(0, 4, (2, tiles, positions, max(v, lanes * v))).astype(np.float32)
    x = (values[0, :, :, :v].view(np.uint32) >> 16).astype(np.uint16)  # bf16 codes: fp32's top half
    w = (values[1].view(np.uint32) >> 16).astype(np.uint16)[:, :, :lanes * v]
    want = np.zeros((tiles, lanes), np.uint64)
    for t in range(tiles):
        for lane in range(lanes):
            total = np.uint16(0)
            for p in range(positions):
                for j in range(v):
                    total = add(total, mul(x[t, p, j], w[t, p, lane * v + j], "bf16"), "bf16")
            want[t, lane] = total
    got = run_tiles(MacGemv(lanes, v, "bf16", stages=stages), x, w, seed=stages)
    assert np.array_equal(got, want)


def test_stages_are_checked():
    with pytest.raises(ValueError, match=r"^MAC GEMV stages -1 is not allowed; use 0 \(combinational\) or more\.$"):
        MacGemv(2, 2, "int8", stages=-1)
