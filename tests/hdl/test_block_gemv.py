"""Block-format GEMV core RTL == golden.block_gemv, bit-exact, on Verilator.

Every element pair of every build (exhaustive: every weight code against every activation code,
each product alone in its output), random and corner operands (extreme and NaN scales, N not a
multiple of the lane count, several runs back to back), random stalls on every stream and memory
latencies above 1; the control interface (refused descriptors) in the Amaranth simulator.
"""

import dataclasses

import numpy as np
import pytest
from control_trace import control_trace

from lutforge.golden.block_gemv import BlockGemvFormat, block_gemv, core_images, tile_outputs, x_payloads
from lutforge.golden import mx
from lutforge.hdl.block_gemv import BlockGemvCore
from lutforge.sim.batch import BatchSim

MAX_CHUNKS = 16

# (weight, act, lanes): every weight format with MXINT8 activations, two with MXFP8 E4M3.
BUILDS = [("mxint8", "mxint8", 2), ("mxint4", "mxint8", 4), ("mxfp4", "mxint8", 3), ("nvfp4", "mxint8", 4),
          ("nvfp4", "mxfp8_e4m3", 2), ("mxint4", "mxfp8_e4m3", 3)]
IDS = ["{}-{}-L{}".format(*b) for b in BUILDS]
_SIMS: dict = {}


def _sim(build) -> tuple[BlockGemvCore, BatchSim]:
    if build not in _SIMS:
        core = BlockGemvCore(build[0], build[1], lanes=build[2], max_chunks=MAX_CHUNKS)
        _SIMS[build] = core, BatchSim(core)
    return _SIMS[build]


def _unpack(words, lanes):
    return np.array([[(int(w) >> (32 * i)) & 0xFFFFFFFF for i in range(lanes)] for w in words], np.uint32)


def _run(core, sim, runs, *, stall, seed, latency):
    """Runs (images, x payloads, expected tiles) back to back, images one after another in memory."""
    ws, ss, xs, descs, expected = [], [], [], [], []
    for images, x, want in runs:
        d = dict(images.descriptor, w_base=sum(map(len, ws)), s_base=sum(map(len, ss)) + 3)
        ws.append(images.w)
        ss.append(images.s)
        xs += x
        descs.append(dataclasses.replace(images, descriptor=d).descriptor_word())
        expected.append(want)
    want = np.concatenate(expected)
    s_image = np.concatenate([np.full((3, ss[0].shape[1]), 0xFFFFFFFF, np.uint32), *ss])
    result = sim.run_streams(
        {"desc": np.array(descs, dtype=object), "x": np.array(xs, dtype=object)}, {"acc": len(want)},
        memories={"mem__w": np.concatenate(ws), "mem__s": s_image}, memory_latency=latency, seed=seed,
        input_stall=stall, output_stall=stall, max_cycles=5_000_000)
    got = _unpack(result.outputs["acc"], core.lanes)
    for tile in np.flatnonzero(np.any(got != want, axis=1))[:1]:
        lane = int(np.flatnonzero(got[tile] != want[tile])[0])
        pytest.fail(f"tile {tile} lane {lane}: expected {want[tile, lane]:#010x}, got {got[tile, lane]:#010x}; "
                    f"seed {seed}, stall {stall}, latency {latency}")
    assert result.final["done"] == 1 and result.final["error"] == 0 and result.final["busy"] == 0
    return result


def _one_run(fmt, lanes, x, xs, w, ws):
    """One run per activation vector (row of x)."""
    images = core_images(w, ws, fmt, lanes)
    acc = block_gemv(x, xs, w, ws, fmt)
    return [(images, x_payloads(x[t], xs[t], fmt), tile_outputs(acc[t], lanes)) for t in range(len(x))]


def _unit_scale(fmt, shape):
    return np.full(shape, 0x38 if fmt.weight_scale == "e4m3" else 127, np.uint8)  # 1.0 either way


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_every_element_pair_alone(build):
    """Row (w, j) holds weight code w at chunk position j only; each run puts C activation codes at the
    C positions, so every output is one product ia * iw, rounded: every code pair appears alone."""
    core, sim = _sim(build)
    fmt = BlockGemvFormat(build[0], build[1])
    c_size, k = fmt.chunk, fmt.k_multiple
    w_codes = 1 << fmt.weight_bits
    w = np.zeros((w_codes * c_size, k), np.uint8)
    for code in range(w_codes):
        for j in range(c_size):
            w[code * c_size + j, j] = code
    ws = _unit_scale(fmt, (len(w), k // fmt.weight_block))
    # A NaN activation code makes its whole chunk NaN, so each one gets a run of its own.
    nans = [c for c in range(256) if fmt.act == "mxfp8_e4m3" and c & 0x7F == 0x7F]
    normal = [c for c in range(256) if c not in nans]
    groups = [normal[i:i + c_size] for i in range(0, len(normal), c_size)] + [[c] for c in nans]
    x = np.zeros((len(groups), k), np.uint8)
    for r, group in enumerate(groups):
        x[r, :len(group)] = group
    # Activation scales 2^0, 2^-120 and 2^100 in turn: normal, subnormal and large products.
    xs = np.array([[[127, 7, 227][r % 3]] * (k // 32) for r in range(len(groups))], np.uint8)
    runs = _one_run(fmt, build[2], x, xs, w, ws)
    # One weight image serves every run.
    runs = [(runs[0][0], px, want) for _, px, want in runs]
    _run(core, sim, runs, stall=0.2, seed=5, latency=2)


def _random_case(rng, fmt, t, n, chunks, extreme):
    k = chunks * fmt.chunk
    x = rng.integers(0, 256, (t, k)).astype(np.uint8)
    if fmt.act == "mxfp8_e4m3":
        x = np.where((x & 0x7F) == 0x7F, x ^ 1, x).astype(np.uint8)
    w = rng.integers(0, 1 << fmt.weight_bits, (n, k)).astype(np.uint8)
    lo, hi = (0, 256) if extreme else (110, 145)
    xs = rng.integers(lo, hi, (t, k // fmt.act_block)).astype(np.uint8)
    if fmt.weight_scale == "e8m0":
        ws = rng.integers(lo, hi, (n, k // fmt.weight_block)).astype(np.uint8)
    else:
        ws = rng.integers(0, 256 if extreme else 0x7F, (n, k // fmt.weight_block)).astype(np.uint8)
    if extreme:
        x[0, : fmt.chunk] = 0  # a zero chunk
        w[0] = 0
        xs[-1, -1] = 0xFF  # a NaN scale
    return x, xs, w, ws


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_random_runs_back_to_back_with_stalls(build):
    core, sim = _sim(build)
    fmt = BlockGemvFormat(build[0], build[1])
    lanes = build[2]
    rng = np.random.default_rng(sum(map(ord, "".join(map(str, build)))))
    step = fmt.k_multiple // fmt.chunk
    runs = []
    # (T vectors, N, chunks, extreme scales): N below, at and past multiples of L, 1 .. max_chunks chunks.
    for t, n, chunks, extreme in ((2, 2 * lanes, step, False), (1, 3 * lanes + 1, MAX_CHUNKS, False),
                                  (3, lanes - 1 or 1, 2 * step, True), (2, 5 * lanes + 2, 4 * step, True),
                                  (1, 1, MAX_CHUNKS, True)):
        runs += _one_run(fmt, lanes, *_random_case(rng, fmt, t, n, chunks, extreme))
    got = np.concatenate([want for _, _, want in runs])
    assert np.any(got == 0x7FC00000) and np.any((got & 0x7FFFFFFF) == 0x7F800000)
    for stall, latency in ((0.0, 1), (0.3, 5), (0.6, 3)):
        _run(core, sim, runs, stall=stall, seed=int(latency), latency=latency)


def test_quantized_floats_through_the_core():
    build = BUILDS[3]
    core, sim = _sim(build)
    fmt = BlockGemvFormat(build[0], build[1])
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 8 * 32)).astype(np.float32)
    w = rng.standard_normal((11, 8 * 32)).astype(np.float32)
    qx, qw = mx.quantize(x, fmt.act), mx.quantize(w, fmt.weight)
    runs = _one_run(fmt, build[2], qx.elements, qx.scales, qw.elements, qw.scales)
    _run(core, sim, runs, stall=0.1, seed=9, latency=4)


def test_refused_descriptors_touch_nothing():
    core = BlockGemvCore("mxint4", "mxint8", lanes=1, max_chunks=4)
    fields = {"out_features": 3, "w_base": 0, "s_base": 0}
    seen = control_trace(core, [{**fields, "chunks": 5}, {**fields, "chunks": 0},
                           {**fields, "chunks": 2, "out_features": 0}, {**fields, "chunks": 2}],
                         core.mem.w.req)
    assert seen == [(0, 1, 1, 0, 0), (0, 1, 1, 0, 0), (0, 1, 2, 0, 0), (1, 0, 0, 1, 1)]


def test_bad_build_parameters_are_named():
    with pytest.raises(ValueError, match=r"max_chunks=0 does not fit the 16-bit chunks field; use 1 \.\. 65535\."):
        BlockGemvCore(max_chunks=0)
    with pytest.raises(ValueError, match=r"max_chunks=65536 does not fit the 16-bit chunks field"):
        BlockGemvCore(max_chunks=65536)
    with pytest.raises(ValueError, match=r"Weight format 'mxfp6_e3m2' is not supported by the block GEMV core"):
        BlockGemvCore("mxfp6_e3m2", "mxint8")
    with pytest.raises(ValueError, match=r"lanes=0 is not allowed; use 1 to 64 lanes\."):
        BlockGemvCore(lanes=0)


@pytest.mark.parametrize("build", [BUILDS[1], BUILDS[4]], ids=[IDS[1], IDS[4]])
def test_performance_model_matches_simulated_cycles(build):
    from lutforge.compiler.perf import block_run_cycles

    core, sim = _sim(build)
    fmt = BlockGemvFormat(build[0], build[1])
    rng = np.random.default_rng(4)
    step = fmt.k_multiple // fmt.chunk
    for chunks, n, latency in ((step, 1, 1), (4 * step, 3 * core.lanes + 1, 5), (MAX_CHUNKS, 10 * core.lanes, 16)):
        runs = _one_run(fmt, core.lanes, *_random_case(rng, fmt, 1, n, chunks, False))
        result = _run(core, sim, runs, stall=0.0, seed=0, latency=latency)
        model = block_run_cycles(chunks, n, core.lanes, latency)
        assert abs(model - result.cycles) <= 0.05 * result.cycles, (chunks, n, latency, model, result.cycles)
