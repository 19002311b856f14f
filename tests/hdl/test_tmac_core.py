"""Weight-only LUT core RTL (table build + LUT GEMV engine + control) == golden.tmac.tmac_core,
bit-exact, on Verilator.

Layers from the VQ pipeline (vq_quantize + tmac_integer_layer) and from random integer codes,
K and N not multiples of v or of the lane count, several row blocks, several descriptors back to
back at real bases, random stalls and memory latencies; the extreme codes that reach the bias and
accumulator-width corners; padding lanes; every refusal code; the run-time code for operands
outside the table range; the cycle count; and a slow sweep over more configurations.
"""

import dataclasses

import numpy as np
import pytest
from control_trace import control_trace

from lutforge.blocks import get_block
from lutforge.blocks.selfcheck import self_check
from lutforge.golden.tmac import (
    TmacLayer,
    tmac_activations,
    tmac_core,
    tmac_core_images,
    tmac_integer_layer,
    vq_quantize,
)
from lutforge.hdl.lut_gemv import LutGemvEngine, check_accumulator
from lutforge.hdl.tmac_core import ERRORS, TmacCore
from lutforge.sim.batch import BatchSim
from lutforge.sim.rtl import elaborate

MAX_POSITIONS = 64
MAX_TABLE_ROWS = 256

# (v, C_w, cb_bits, lanes): every v but 8 and both codebook sizes of the suite, a narrow code.
DEFAULT = [(1, 16, 8, 16), (2, 16, 8, 8), (4, 256, 8, 4), (2, 16, 4, 8)]
# Every v with the narrowest and widest codes, C_w not a power of two, and the largest tables.
SWEEP = ([(v, c_w, cb_bits, 8) for v in (1, 2, 4, 8) for c_w in (3, 16) for cb_bits in (2, 16)]
         + [(8, 256, 16, 4), (1, 256, 2, 16), (4, 64, 5, 8)])

_SIMS: dict = {}


def _sim(config) -> tuple[TmacCore, BatchSim]:
    if config not in _SIMS:
        v, c_w, cb_bits, lanes = config
        core = TmacCore(v, c_w, cb_bits=cb_bits, lanes=lanes, max_positions=MAX_POSITIONS,
                        max_table_rows=MAX_TABLE_ROWS)
        _SIMS[config] = core, BatchSim(core)
    return _SIMS[config]


def _vq_layer(rng, config, n, k, g):
    """A layer through the float pipeline: VQ codebooks, integer codes, int8 activations."""
    v, c_w, cb_bits, _ = config
    weight = rng.standard_normal((n, k)).astype(np.float32)
    vq = vq_quantize(weight, v=v, c_w=c_w, group_rows=g, seed=int(rng.integers(1 << 30)), iterations=2)
    x_q, _ = tmac_activations(rng.standard_normal(k), v)
    return tmac_integer_layer(vq, cb_bits), x_q


def _int_layer(rng, config, n, k, g):
    """A layer of random codes over the whole contract range, and random int8 activations."""
    v, c_w, cb_bits, _ = config
    p, blocks, c_max = -(-k // v), -(-n // g), (1 << (cb_bits - 1)) - 1
    codes = rng.integers(-c_max, c_max + 1, (p, blocks, c_w, v)).astype(np.int16)
    layer = TmacLayer(k, n, v, c_w, g, cb_bits, codes, np.ones(blocks, np.float32),
                      rng.integers(0, c_w, (n, p)).astype(np.uint8))
    x = np.zeros(p * v, dtype=np.int8)
    x[:k] = rng.integers(-127, 128, k)
    return layer, x.reshape(p, v)


def _unpack(words, lanes, width):
    mask = (1 << width) - 1
    return np.array([[(int(w) >> (width * i)) & mask for i in range(lanes)] for w in words], dtype=np.int64)


def _run(core, sim, runs, *, stall, seed, latency, rng=None):
    """Descriptors back to back, memory images one after another with real bases (after a few
    unrelated words when ``rng`` is given); each run's tiles are compared unless its expected
    result is None. The final status is returned with the run."""
    width = {name: getattr(runs[0][0], name).shape[1] for name in ("cb", "idx")}
    junk = {name: [] if rng is None else [rng.integers(0, 1 << 32, (3, width[name]), dtype=np.uint32)]
            for name in ("cb", "idx")}
    cb, idx, xs, descs, expected = junk["cb"], junk["idx"], [], [], []
    for images, want in runs:
        d = dict(images.descriptor, cb_base=sum(map(len, cb)), idx_base=sum(map(len, idx)))
        cb.append(images.cb)
        idx.append(images.idx)
        xs.append(images.x)
        descs.append(dataclasses.replace(images, descriptor=d).descriptor_word())
        expected.append(np.full((-(-d["out_features"] // core.lanes), core.lanes), -1) if want is None else want)
    want = np.concatenate(expected)
    result = sim.run_streams(
        {"desc": np.array(descs, dtype=object), "x": np.concatenate(xs)}, {"acc": len(want)},
        memories={"mem__cb": np.concatenate(cb), "mem__idx": np.concatenate(idx)},
        memory_latency=latency, seed=seed, input_stall=stall, output_stall=stall, max_cycles=2_000_000)
    got = _unpack(result.outputs["acc"], core.lanes, core.acc_width)
    for tile in np.flatnonzero(np.any((got != want) & (want >= 0), axis=1))[:1]:
        lane = int(np.flatnonzero(got[tile] != want[tile])[0])
        pytest.fail(f"tile {tile} lane {lane}: expected {want[tile, lane]} ({want[tile, lane]:#x}), "
                    f"got {got[tile, lane]} ({got[tile, lane]:#x}); seed {seed}, stall {stall}")
    assert (result.final["done"], result.final["busy"]) == (1, 0)
    return result


def _check_config(config, runs, seed):
    core, sim = _sim(config)
    lanes = config[3]
    jobs = [(tmac_core_images(x_q, layer, lanes), tmac_core(x_q, layer, lanes)) for layer, x_q in runs]
    for stall, latency in ((0.0, 1), (0.3, 5)):
        result = _run(core, sim, jobs, stall=stall, seed=seed, latency=latency, rng=np.random.default_rng(seed))
        assert result.final["error"] == 0


@pytest.mark.parametrize("config", DEFAULT, ids=lambda c: "v{}-cw{}-cb{}-L{}".format(*c))
def test_core_matches_golden_with_stalls(config):
    v, lanes = config[0], config[3]
    rng = np.random.default_rng(sum(config))
    # (N, K, G): exact tiles; N and K not multiples of the lane count or of v; 1 to 4 row blocks,
    # the last run filling the table (4 blocks of 64 positions).
    shapes = [(2 * lanes, 4 * v, lanes), (5 * lanes + 3, 61, 2 * lanes), (lanes - 1, 7, lanes),
              (3 * lanes + 1, (MAX_POSITIONS - 1) * v + 1, lanes)]
    runs = [_vq_layer(rng, config, *shape) for shape in shapes[:3]] + [_int_layer(rng, config, *shape)
                                                                      for shape in shapes[1:]]
    assert max(layer.num_blocks * layer.num_positions for layer, _ in runs) == MAX_TABLE_ROWS
    _check_config(config, runs, seed=sum(config))


@pytest.mark.slow
@pytest.mark.parametrize("config", SWEEP, ids=lambda c: "v{}-cw{}-cb{}-L{}".format(*c))
def test_core_matches_golden_every_configuration(config):
    v, lanes = config[0], config[3]
    rng = np.random.default_rng(7)
    shapes = [(3 * lanes + 5, 45, lanes), (lanes, v * MAX_POSITIONS, 2 * lanes), (1, 3, lanes)]
    runs = [_vq_layer(rng, config, *shape) for shape in shapes] + [_int_layer(rng, config, *shape)
                                                                  for shape in shapes]
    _check_config(config, runs, seed=7)


def _extreme_layer(rng, config, x_value):
    """P = max_positions; block 0 all codes +c_max, block 1 all -c_max, block 2 random signs; the
    activations all ``x_value`` (or random signs of 127 when None)."""
    v, c_w, cb_bits, lanes = config
    layer, _ = _int_layer(rng, config, 3 * lanes - 1, MAX_POSITIONS * v, lanes)
    c_max = layer.c_max
    signs = np.stack([np.ones_like(layer.codes[:, 0]), -np.ones_like(layer.codes[:, 0]),
                      rng.choice(np.array([-1, 1], np.int16), layer.codes[:, 0].shape)], axis=1)
    layer = dataclasses.replace(layer, codes=(signs * c_max).astype(np.int16))
    if x_value is None:
        x_q = rng.choice(np.array([-127, 127], np.int8), (MAX_POSITIONS, v))
    else:
        x_q = np.full((MAX_POSITIONS, v), x_value, np.int8)
    return layer, x_q


@pytest.mark.parametrize("config", DEFAULT, ids=lambda c: "v{}-cw{}-cb{}-L{}".format(*c))
def test_extreme_codes_reach_the_bias_and_accumulator_corners(config):
    core, sim = _sim(config)
    lanes = config[3]
    rng = np.random.default_rng(3)
    runs = [_extreme_layer(rng, config, x) for x in (127, -127, None)]
    jobs = [(tmac_core_images(x_q, layer, lanes), tmac_core(x_q, layer, lanes)) for layer, x_q in runs]
    # Table entries at 2 * bias (x . code = +bias) and at 0 (= -bias), summed over the most positions
    # the build allows: the top accumulator bit is set.
    top = MAX_POSITIONS * 2 * core.bias
    assert top >> (core.acc_width - 1) == 1
    first, second = jobs[0][1].reshape(-1), jobs[1][1].reshape(-1)
    assert np.all(first[:lanes] == top) and np.all(first[lanes:2 * lanes] == 0)
    assert np.all(second[:lanes] == 0) and np.all(second[lanes:2 * lanes] == top)
    result = _run(core, sim, jobs, stall=0.2, seed=3, latency=3)
    assert result.final["error"] == 0


def test_padding_lanes_read_zero_whatever_the_index_memory_holds():
    config = DEFAULT[1]
    core, sim = _sim(config)
    lanes = config[3]
    rng = np.random.default_rng(5)
    layer, x_q = _int_layer(rng, config, 2 * lanes + 3, 9, lanes)
    images = tmac_core_images(x_q, layer, lanes)
    want = tmac_core(x_q, layer, lanes)
    assert want.shape == (3, lanes) and not np.any(want[2, 3:])
    # Fill the padding rows' index fields with the largest index: the core must ignore them.
    idx = images.idx.copy()
    p = layer.num_positions
    wbits = core.widx_bits
    for lane in range(3, lanes):
        bit = lane * wbits
        idx[2 * p:, bit // 32] |= np.uint32(((1 << wbits) - 1) << (bit % 32))
    assert not np.array_equal(idx, images.idx)
    result = _run(core, sim, [(dataclasses.replace(images, idx=idx), want)], stall=0.2, seed=1, latency=2)
    # Every tile arrived; each codebook word and each index word was read once, nothing more.
    assert len(result.outputs["acc"]) == 3
    assert len(result.outputs["mem__cb__req"]) == layer.num_blocks * p
    assert len(result.outputs["mem__idx__req"]) == 3 * p


def test_a_run_takes_blocks_times_p_plus_tiles_times_p_cycles_and_the_latency():
    config = DEFAULT[1]
    core, sim = _sim(config)
    lanes = config[3]
    layer, x_q = _int_layer(np.random.default_rng(2), config, 5 * lanes + 3, 61, 2 * lanes)
    p, tiles = layer.num_positions, -(-layer.out_features // lanes)
    job = (tmac_core_images(x_q, layer, lanes), tmac_core(x_q, layer, lanes))
    for latency in (1, 6):
        result = _run(core, sim, [job], stall=0.0, seed=0, latency=latency)
        # One table row per cycle in each phase; index requests overlap the end of the build, so
        # the memory latency is paid once, plus the descriptor, read-port and result registers.
        formula = layer.num_blocks * p + tiles * p
        assert formula + latency <= result.cycles <= formula + latency + 3


def test_operands_outside_the_table_range_are_reported_after_the_run():
    config = DEFAULT[1]
    core, sim = _sim(config)
    lanes = config[3]
    rng = np.random.default_rng(9)
    layer, x_q = _int_layer(rng, config, lanes + 2, 12, lanes)
    good = (tmac_core_images(x_q, layer, lanes), tmac_core(x_q, layer, lanes))
    # The golden images refuse both operands, so they are written into good images by hand: the
    # activation's payload byte, and code -2^(b-1) (only the top bit set) as entry 5 of B[1, 1].
    x_words = good[0].x.copy()
    x_words[3] = (int(x_words[3]) & ~(0xFF << 8)) | (0x80 << 8)
    cb = good[0].cb.copy()
    bit = (5 * layer.v) * layer.cb_bits + layer.cb_bits - 1
    word = layer.num_positions + 1
    for b in range(layer.cb_bits):
        pos = (5 * layer.v) * layer.cb_bits + b
        cb[word, pos // 32] &= ~np.uint32(1 << (pos % 32))
    cb[word, bit // 32] |= np.uint32(1 << (bit % 32))
    # The core's wrapped results are not the contract's: only that every tile arrives is checked.
    for bad in (dataclasses.replace(good[0], x=x_words), dataclasses.replace(good[0], cb=cb)):
        result = _run(core, sim, [(bad, None)], stall=0.2, seed=4, latency=2)
        assert len(result.outputs["acc"]) == len(good[1]) and result.final["error"] == 6
        # The next descriptor clears the code, and its run is exact.
        result = _run(core, sim, [(bad, None), good], stall=0.2, seed=4, latency=2)
        assert result.final["error"] == 0
    assert ERRORS[6] == "operand outside the table range"


def test_refused_descriptors_touch_nothing():
    core = TmacCore(2, 4, lanes=4, max_positions=64, max_table_rows=128)
    fields = {"positions": 64, "out_features": 8, "tiles_per_block": 1, "blocks": 2, "cb_base": 0, "idx_base": 0}
    seen = control_trace(core, [
        {**fields, "positions": 65},                 # 1: more positions than the accumulators allow
        {**fields, "positions": 0},                  # 1
        {**fields, "out_features": 0},               # 2
        {**fields, "tiles_per_block": 0},            # 3
        {**fields, "blocks": 0},                     # 4
        {**fields, "blocks": 3},                     # 4: 3 * 64 rows > 128
        {**fields, "out_features": 9},               # 5: 2 blocks of 1 tile of 4 lanes cover 8 rows
        fields,                                      # the limits themselves are accepted
    ], core.mem.cb.req)
    # (busy, done, error, codebook request, activation ready): refused, nothing touched; the last
    # run starts and requests its first codebook word.
    assert seen == [(0, 1, 1, 0, 0), (0, 1, 1, 0, 0), (0, 1, 2, 0, 0), (0, 1, 3, 0, 0), (0, 1, 4, 0, 0),
                    (0, 1, 4, 0, 0), (0, 1, 5, 0, 0), (1, 0, 0, 1, 0)]
    assert [ERRORS[code] for code in range(1, 6)] == [
        "positions out of range", "no output rows", "tiles_per_block is 0", "tables do not fit max_table_rows",
        "blocks do not cover out_features"]


def test_the_catalogue_self_check_refuses_every_bad_descriptor_and_stays_idle():
    # The parameters of DEFAULT[1], so the Verilator build is the one the tests above made.
    block = get_block("tmac_core")
    params = block.resolve({"v": "2", "c_w": "16", "cb_bits": "8", "lanes": "8",
                            "max_positions": str(MAX_POSITIONS), "max_table_rows": str(MAX_TABLE_ROWS)})
    result = self_check(block, params, "batch", count=4000, seed=2)
    assert result.passed, result.first_mismatch


def test_bad_build_parameters_are_named():
    with pytest.raises(ValueError, match=r"^Sub-vector length v=3 is not supported; use one of 1, 2, 4 or 8\.$"):
        TmacCore(3)
    with pytest.raises(ValueError, match=r"^C_w=257 is not an integer from 1 to 256; more centroids do not fit "
                                         r"an 8-bit index\.$"):
        TmacCore(2, 257)
    with pytest.raises(ValueError, match=r"^Weight codebook entries of 17 bits are not supported; use 2 to 16 "
                                         r"bits\.$"):
        TmacCore(cb_bits=17)
    with pytest.raises(ValueError, match=r"^lanes=0 is not an integer 1 or more; the engine computes 1 or more "
                                         r"output lanes\.$"):
        TmacCore(lanes=0)
    with pytest.raises(ValueError, match=r"^max_positions=70000 does not fit the 16-bit positions field; use "
                                         r"1 \.\. 65535\.$"):
        TmacCore(max_positions=70000)
    with pytest.raises(ValueError, match=r"^max_table_rows=32 is not allowed: one row block of max_positions=64 "
                                         r"positions needs 64 table rows, and no descriptor asks for more than "
                                         r"4294836225; use 64 \.\. 4294836225\.$"):
        TmacCore(max_positions=64, max_table_rows=32)
    with pytest.raises(ValueError, match=r"^addr_width=0 is not allowed; use 1 to 64 address bits\.$"):
        TmacCore(addr_width=0)
    # v = 2, 8-bit codes: entries up to 2 * 2 * 127 * 127 = 64516, 16 bits.
    with pytest.raises(ValueError, match=r"^An accumulator of 21 bits can overflow: 64 positions of 16-bit "
                                         r"entries sum to at most 64 \* 65535 = 4194240, which needs 22 bits; "
                                         r"use acc_width >= 22 or lower max_positions to 32\.$"):
        TmacCore(2, 16, max_positions=64, max_table_rows=64, acc_width=21)


def test_the_engine_takes_the_widest_biased_tables():
    # v = 8 and 16-bit codes: entries up to 2 * 8 * 127 * 32767 = 66580544 < 2^26, 26 bits.
    core = TmacCore(8, 4, cb_bits=16, lanes=2, max_positions=4, max_table_rows=4)
    assert (core.table_bits, core.acc_width) == (26, 28)
    text = elaborate(core).verilog
    assert "input [511:0] mem__cb__resp__payload;" in text and "output [55:0] acc__payload;" in text
    assert check_accumulator(1, 32, None) == 32
    with pytest.raises(ValueError, match=r"^Table entries of 33 bits are not supported; use 1 to 32 bits\.$"):
        LutGemvEngine(16, 33, 4)
