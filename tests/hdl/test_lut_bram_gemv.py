"""Block-RAM LUT GEMV engine == the golden LUT GEMV, bit-exact, in Amaranth's simulator: tables of
a co-quantized layer loaded into the banks, then every tile of the layer's rows, with random
gaps on both input streams and random back-pressure on the output."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lutforge.golden.centroid_search import int8_operands, search
from lutforge.golden.lut_gemv import lut_gemv
from lutforge.golden.lut_layer import co_quantize
from lutforge.hdl.lut_bram_gemv import MAX_TABLE_ENTRIES, LutBramGemvEngine


def _case(seed, n, k, v, c_a, c_w, table_bits):
    """A layer in one row block, an input's activation indices, and the golden accumulators."""
    rng = np.random.default_rng(seed)
    layer = co_quantize(rng.standard_normal((n, k)).astype(np.float32), rng.standard_normal((4 * c_a, k)).astype(np.float32),
                        v=v, c_a=c_a, c_w=c_w, group_rows=n, table_bits=table_bits, granularity="layer",
                        metric="l2", seed=seed, iterations=2)
    p = layer.num_positions
    x = np.zeros(p * v, dtype=np.float32)
    x[:k] = rng.standard_normal(k)
    x_q, cb_q, _ = int8_operands(x.reshape(p, v), layer.act_codebooks)
    a = np.array([search(x_q[i], cb_q[i], "l2") for i in range(p)], dtype=np.int64)
    return layer, a, lut_gemv(a, layer)[:, 0]


def _run(engine, layer, a, seed):
    """The engine's tile sums (tile t: rows t*L ..) after loading block 0's tables."""
    rng = np.random.default_rng(seed)
    lanes, n, p = engine.lanes, layer.out_features, layer.num_positions
    codes = layer.table_codes[:, 0]  # (P, C_a, C_w)
    widx = layer.widx.astype(np.int64)
    tiles = -(-n // lanes)
    got = []

    async def produce(ctx):
        for addr, code in enumerate(codes.reshape(-1)):
            if rng.random() < 0.2:
                await ctx.tick()
            ctx.set(engine.load.valid, 1)
            ctx.set(engine.load.payload, engine.load_layout.const({"addr": addr, "code": int(code)}))
            await ctx.tick().until(engine.load.ready)
            ctx.set(engine.load.valid, 0)
        for t in range(tiles):
            rows = range(t * lanes, (t + 1) * lanes)
            for pos in range(p):
                while rng.random() < 0.25:
                    await ctx.tick()
                payload = {"a": int(a[pos]), "widx": [int(widx[r, pos]) if r < n else 0 for r in rows],
                           "mask": sum(1 << i for i, r in enumerate(rows) if r < n), "last": int(pos == p - 1)}
                ctx.set(engine.lookups.valid, 1)
                ctx.set(engine.lookups.payload, engine.lookup_layout.const(payload))
                await ctx.tick().until(engine.lookups.ready)
                ctx.set(engine.lookups.valid, 0)

    async def consume(ctx):
        while len(got) < tiles:
            ready = int(rng.random() < 0.4)
            ctx.set(engine.acc.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(engine.acc.valid, engine.acc.payload)
            if valid and ready:
                got.append([int(payload[i]) for i in range(lanes)])

    sim = Simulator(engine)
    sim.add_clock(1e-6)
    sim.add_testbench(produce)
    sim.add_testbench(consume)
    sim.run_until(1e-6 * (codes.size * 2 + tiles * p * 8 + 200))
    return np.array(got, dtype=np.int64)


@pytest.mark.parametrize("shape", [
    # (n, k, v, C_a, C_w, table bits, lanes): a partial last tile, K not a multiple of v, 1 lane.
    (10, 13, 2, 16, 16, 8, 4),
    (7, 12, 4, 8, 4, 4, 3),
    (5, 9, 2, 4, 16, 8, 1),
    # One position per tile: a tile ends every cycle, so ends meet a full, stalled output buffer.
    (9, 2, 2, 4, 4, 4, 2),
    # Centroid counts that are not powers of two: the addresses are computed, not wired.
    (6, 10, 2, 12, 6, 8, 2),
])
def test_every_tile_equals_the_golden_lut_gemv(shape):
    n, k, v, c_a, c_w, bits, lanes = shape
    layer, a, want = _case(sum(shape), n, k, v, c_a, c_w, bits)
    engine = LutBramGemvEngine(c_a, c_w, bits, lanes, positions=layer.num_positions)
    got = _run(engine, layer, a, seed=n)
    tiles = -(-n // lanes)
    expected = np.zeros(tiles * lanes, dtype=np.int64)
    expected[:n] = want  # padding lanes read out as 0
    assert got.shape == (tiles, lanes)
    assert np.array_equal(got.reshape(-1), expected)


def test_tables_past_a_bank_are_refused_with_the_limit_and_the_fix():
    with pytest.raises(ValueError, match=rf"^Tables of 20000 positions x 16 x 16 entries = 5120000 entries per bank exceed "
                                         rf"the {MAX_TABLE_ENTRIES} a bank may hold; lower positions to 16384 or "
                                         rf"fewer, and run longer inputs as several tiles\.$"):
        LutBramGemvEngine(16, 16, 8, 4, positions=20000)
