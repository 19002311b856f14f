"""GEMV core RTL (centroid search + LUT GEMV engine + control) == golden, bit-exact, on Verilator.

Random co-quantized layers over several shapes, K and N not multiples of v or of the lane count,
random stalls on every stream and on the memory, and a slow sweep over every listed configuration;
both table engines (``tables="rows"``, the multiplexers; ``"resident"``, block-RAM banks loaded once
a row block).
"""

import dataclasses

import numpy as np
import pytest
from control_trace import control_trace

from lutforge.golden.centroid_search import int8_operands
from lutforge.golden.gemv_core import core_images, gemv_core
from lutforge.golden.lut_layer import co_quantize
from lutforge.hdl.gemv_core import GemvCore
from lutforge.hdl.lut_gemv import LutGemvEngine, check_accumulator
from lutforge.sim.batch import BatchSim

MAX_POSITIONS = 64

# (v, C_a, C_w, metric, lanes, chains): the default suite covers every listed value of v, C_a and
# C_w once; the slow sweep covers every combination.
DEFAULT = [
    (2, 64, 16, "linf", 16, 4),
    (4, 48, 256, "l2", 8, 3),
    (2, 16, 256, "l2", 4, 2),
]
SWEEP = [(v, c_a, c_w, metric, 8, 4)
         for v in (2, 4) for c_a in (16, 48, 64) for c_w in (16, 256) for metric in ("linf", "l2")]

_SIMS: dict = {}


def _sim(config, tables="rows") -> tuple[GemvCore, BatchSim]:
    if (config, tables) not in _SIMS:
        v, c_a, c_w, metric, lanes, chains = config
        core = GemvCore(v, c_a, c_w, lanes=lanes, metric=metric, chains=chains, max_positions=MAX_POSITIONS,
                        tables=tables)
        _SIMS[config, tables] = core, BatchSim(core)
    return _SIMS[config, tables]


def _layer(rng, config, n, k, group_rows, duplicate=True):
    v, c_a, c_w, metric, lanes, _ = config
    weight = rng.standard_normal((n, k)).astype(np.float32)
    calib = rng.standard_normal((4 * c_a, k)).astype(np.float32)
    layer = co_quantize(weight, calib, v=v, c_a=c_a, c_w=c_w, group_rows=group_rows, granularity="layer",
                        metric=metric, seed=int(rng.integers(1 << 30)), iterations=2)
    p = layer.num_positions
    x = np.zeros(p * v, dtype=np.float32)
    x[:k] = rng.standard_normal(k).astype(np.float32)
    x_q, cb_q, _ = int8_operands(x.reshape(p, v), layer.act_codebooks)
    if duplicate:
        # Repeated centroids, one of them equal to the activation: ties that the lowest index must win.
        cb_q = cb_q.copy()
        cb_q[:, c_a - 1] = cb_q[:, 1]
        cb_q[: p // 2, 3] = x_q[: p // 2]
        cb_q[: p // 2, c_a - 2] = x_q[: p // 2]
    return layer, x_q, cb_q


def _unpack(words, lanes, width):
    mask = (1 << width) - 1
    return np.array([[(int(w) >> (width * i)) & mask for i in range(lanes)] for w in words], dtype=np.int64)


def _run(core, sim, runs, *, stall, seed, latency):
    """Several descriptors back to back; memory images placed one after another with real bases."""
    cb, tab, idx, xs, descs, expected = [], [], [], [], [], []
    for images, want in runs:
        d = dict(images.descriptor, cb_base=sum(map(len, cb)), tab_base=sum(map(len, tab)),
                 idx_base=sum(map(len, idx)))
        cb.append(images.cb)
        tab.append(images.tab)
        idx.append(images.idx)
        xs.append(images.x)
        descs.append(dataclasses.replace(images, descriptor=d).descriptor_word())
        expected.append(want)
    want = np.concatenate(expected)
    result = sim.run_streams(
        {"desc": np.array(descs, dtype=object), "x": np.concatenate(xs)}, {"acc": len(want)},
        memories={"mem__cb": np.concatenate(cb), "mem__tab": np.concatenate(tab), "mem__idx": np.concatenate(idx)},
        memory_latency=latency, seed=seed, input_stall=stall, output_stall=stall, max_cycles=2_000_000)
    got = _unpack(result.outputs["acc"], core.lanes, core.acc_width)
    for tile in np.flatnonzero(np.any(got != want, axis=1))[:1]:
        lane = int(np.flatnonzero(got[tile] != want[tile])[0])
        pytest.fail(f"tile {tile} lane {lane}: expected {want[tile, lane]} ({want[tile, lane]:#x}), "
                    f"got {got[tile, lane]} ({got[tile, lane]:#x}); seed {seed}, stall {stall}")
    assert result.final["done"] == 1 and result.final["error"] == 0 and result.final["busy"] == 0
    return result


def _check_config(config, shapes, seed, tables="rows"):
    core, sim = _sim(config, tables)
    lanes, metric = config[4], config[3]
    rng = np.random.default_rng(seed)
    runs = []
    for n, k, g in shapes:
        layer, x_q, cb_q = _layer(rng, config, n, k, g)
        runs.append((core_images(x_q, cb_q, layer, lanes), gemv_core(x_q, cb_q, layer, lanes, metric)))
    for stall, latency in ((0.0, 1), (0.3, 5)):
        _run(core, sim, runs, stall=stall, seed=seed, latency=latency)


@pytest.mark.parametrize("config", DEFAULT, ids=lambda c: "v{}-ca{}-cw{}-{}-L{}-ch{}".format(*c))
def test_core_matches_golden_with_stalls(config):
    lanes = config[4]
    # (N, K, G): exact tiles, N and K not multiples of the lane count or of v, several row blocks.
    shapes = [(2 * lanes, 4 * config[0], lanes), (5 * lanes + 3, 61, 2 * lanes), (lanes - 1, 7, lanes),
              (3 * lanes + 1, 2 * MAX_POSITIONS * config[0] // 2 - 1, lanes)]
    _check_config(config, shapes, seed=sum(config[:3]))


@pytest.mark.parametrize("config", [DEFAULT[0], DEFAULT[2]], ids=lambda c: "cw{2}-L{4}".format(*c))
def test_resident_tables_match_golden_with_stalls(config):
    lanes = config[4]
    # Row blocks of one, two and three tiles; a last block cut short by N; P at the build's limit.
    shapes = [(5 * lanes + 3, 61, 2 * lanes), (lanes - 1, 7, lanes), (7 * lanes + 2, 33, 3 * lanes),
              (3 * lanes + 1, 2 * MAX_POSITIONS * config[0] // 2 - 1, lanes)]
    _check_config(config, shapes, seed=sum(config[:3]) + 1, tables="resident")


def test_resident_tables_read_each_blocks_rows_once():
    config = DEFAULT[2]
    core, sim = _sim(config, "resident")
    lanes = config[4]
    rng = np.random.default_rng(3)
    n, k, g = 6 * lanes + 1, 23, 3 * lanes  # 7 tiles in blocks of 3: 3 blocks, the last of one tile
    layer, x_q, cb_q = _layer(rng, config, n, k, g)
    result = _run(core, sim, [(core_images(x_q, cb_q, layer, lanes), gemv_core(x_q, cb_q, layer, lanes, config[3]))],
                  stall=0.1, seed=2, latency=3)
    p = layer.num_positions
    assert len(result.outputs["mem__tab__req"]) == 3 * p
    assert len(result.outputs["mem__idx__req"]) == 7 * p


@pytest.mark.slow
@pytest.mark.parametrize("config", SWEEP, ids=lambda c: "v{}-ca{}-cw{}-{}".format(*c[:4]))
def test_core_matches_golden_every_configuration(config):
    lanes = config[4]
    shapes = [(3 * lanes + 5, 45, lanes), (lanes, config[0] * MAX_POSITIONS, 2 * lanes), (1, 3, lanes)]
    _check_config(config, shapes, seed=7)


def test_padding_lanes_read_zero_whatever_the_index_memory_holds():
    config = DEFAULT[0]
    core, sim = _sim(config)
    lanes = config[4]
    rng = np.random.default_rng(5)
    layer, x_q, cb_q = _layer(rng, config, 2 * lanes + 3, 9, lanes)
    images = core_images(x_q, cb_q, layer, lanes)
    want = gemv_core(x_q, cb_q, layer, lanes, config[3])
    assert want.shape == (3, lanes) and not np.any(want[2, 3:])
    # Fill the padding rows' index fields with the largest index: the core must ignore them.
    idx = images.idx.copy()
    p = layer.num_positions
    wbits = core.widx_bits
    for lane in range(3, lanes):
        bit = lane * wbits
        idx[2 * p:, bit // 32] |= np.uint32(((1 << wbits) - 1) << (bit % 32))
    padded = dataclasses.replace(images, idx=idx)
    result = _run(core, sim, [(padded, want)], stall=0.2, seed=1, latency=2)
    # Every real output row arrived; tables were read for each (tile, position), nothing dropped.
    assert len(result.outputs["acc"]) == 3
    assert len(result.outputs["mem__tab__req"]) == 3 * p


def test_a_descriptor_that_could_overflow_is_refused_at_run_time():
    core = GemvCore(2, 16, 16, lanes=4, chains=2, max_positions=MAX_POSITIONS)
    fields = {"out_features": 8, "tiles_per_block": 1, "cb_base": 0, "tab_base": 0, "idx_base": 0}
    seen = control_trace(core, [
        {**fields, "positions": MAX_POSITIONS + 1},
        {**fields, "positions": 0},
        {**fields, "positions": 4, "out_features": 0},
        {**fields, "positions": 4, "tiles_per_block": 0},
    ], core.mem.cb.req)
    # (busy, done, error, memory request, activation ready): refused, nothing touched.
    assert seen == [(0, 1, 1, 0, 0), (0, 1, 1, 0, 0), (0, 1, 2, 0, 0), (0, 1, 3, 0, 0)]


def test_an_accumulator_that_could_overflow_is_refused_at_elaboration():
    with pytest.raises(ValueError, match=r"An accumulator of 13 bits can overflow: 64 positions of 8-bit "
                                         r"entries sum to at most 64 \* 255 = 16320, which needs 14 bits; "
                                         r"use acc_width >= 14 or lower max_positions to 32\."):
        LutGemvEngine(16, 8, 4, max_positions=64, acc_width=13)
    with pytest.raises(ValueError, match=r"An accumulator of 11 bits can overflow: 288 positions of 4-bit "
                                         r"entries sum to at most 288 \* 15 = 4320, which needs 13 bits"):
        GemvCore(2, 64, 16, table_bits=4, max_positions=288, acc_width=11)
    # The derived width is exactly enough: 64 * 255 = 16320 < 2^14.
    assert check_accumulator(64, 8, None) == 14 and check_accumulator(65, 8, None) == 15
    assert check_accumulator(64, 8, 14) == 14


def test_bad_build_parameters_are_named():
    with pytest.raises(ValueError, match=r"5 chains of 3 PEs do not fit C_a=16 centroids; use chain_length=4"):
        GemvCore(2, 16, 16, chains=5, chain_length=3)
    with pytest.raises(ValueError, match=r"max_positions=70000 does not fit the 16-bit positions field"):
        GemvCore(max_positions=70000)
    with pytest.raises(ValueError, match=r"tables='banks' is no table engine of the GEMV core; use one of "
                                         r"'rows', 'resident'\."):
        GemvCore(tables="banks")
