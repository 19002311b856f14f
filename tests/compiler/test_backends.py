"""One driver, two backends: the GEMV core in Verilator equals the golden backend bit-exact, the
compare names the first injected mismatch, the performance model matches simulated cycles, and
the demo path runs end to end on one real layer."""

import dataclasses
import json

import numpy as np
import pytest

from lutforge.compiler.config import parse_config
from lutforge.backends import get_backend
from lutforge.program.host import HostDriver
from lutforge.compiler.evaluate import first_mismatch
from lutforge.compiler.perf import LayerShape, layer_cost, run_cycles, run_requests, search_latency
from lutforge.compiler.lower import lower_layer
from lutforge.program.artifact import write_program
from lutforge.program.core import GemvCoreParams
from lutforge.golden.lut_layer import co_quantize

# A small core (quick Verilator build), shared by every test here and cached across runs.
CORE = GemvCoreParams(chains=4, max_positions=64)
LANES, C_A = 8, 16

_BACKENDS = {}


def sim_backend(latency=4, tables="rows"):
    if (latency, tables) not in _BACKENDS:
        core = dataclasses.replace(CORE, tables=tables)
        _BACKENDS[latency, tables] = get_backend("sim", core=core, memory_latency=latency)
    return _BACKENDS[latency, tables]


def lowered(rng, n, k, ppg=None, v=2, name="l"):
    w = rng.standard_normal((n, k)).astype(np.float32)
    cal = rng.standard_normal((64, k)).astype(np.float32)
    p = -(-k // v)
    layer = co_quantize(w, cal, v=v, c_a=C_A, c_w=16, group_rows=16, positions_per_group=ppg or p,
                        iterations=2)
    return lower_layer(name, layer, LANES, CORE.max_positions)


def test_sim_equals_golden_bit_exact_with_k_tiles(tmp_path):
    rng = np.random.default_rng(10)
    layers = [lowered(rng, 37, 61, ppg=8, name="a"), lowered(rng, 16, 9, name="b"),
              lowered(rng, 5, 128, name="c")]
    program = write_program(tmp_path, layers, config={}, source={})
    golden, sim = HostDriver(program, get_backend("golden")), HostDriver(program, sim_backend())
    for low in layers:
        x = rng.standard_normal((3, low.in_features)).astype(np.float32) * 2
        np.testing.assert_array_equal(sim.linear(low.name, x), golden.linear(low.name, x))
        assert np.array_equal(sim.results[low.name].acc, golden.results[low.name].acc)
        assert sim.results[low.name].acc.shape == (3, len(low.runs), low.tiles * LANES)


def test_compare_names_the_injected_mismatch(tmp_path):
    rng = np.random.default_rng(11)
    layers = [lowered(rng, 20, 30, name="first"), lowered(rng, 24, 40, name="second")]
    program = write_program(tmp_path, layers, config={}, source={})
    golden, sim = HostDriver(program, get_backend("golden")), HostDriver(program, sim_backend())
    expected, actual = {}, {}
    for low in layers:
        x_q = golden.quantize(low.name, rng.standard_normal((2, low.in_features)))
        expected[low.name] = golden.run_int(low.name, x_q).acc
        actual[low.name] = sim.run_int(low.name, x_q).acc
    assert first_mismatch(expected, actual) is None
    # Corrupt one table word of the second layer in the simulated memory: the sim must differ,
    # and the report must name layer, token, row, expected and actual value.
    bad = layers[1]
    tab = bad.tab.copy()
    tab[:, 0] ^= np.uint32(0xFF)
    corrupted = type(bad)(**{**bad.__dict__, "tab": tab})
    actual["second"] = sim_backend().run_layer(corrupted, golden.quantize("second", np.ones((2, 40)))).acc
    expected["second"] = golden.run_int("second", golden.quantize("second", np.ones((2, 40)))).acc
    m = first_mismatch(expected, actual, ["first", "second"])
    assert m is not None and m.layer == "second"
    assert m.expected == expected["second"][m.token, m.run, m.element] != m.actual
    assert m.actual == actual["second"][m.token, m.run, m.element]
    assert str(m).startswith(f"first mismatch in layer second: token {m.token}, run {m.run}, output row "
                             f"{m.element}: expected {m.expected} ({m.expected:#x}), got {m.actual}")


@pytest.mark.parametrize("latency, tables", [(1, "rows"), (4, "rows"), (9, "rows"), (1, "resident"),
                                             (9, "resident")])
def test_performance_model_matches_simulated_cycles_and_memory_reads(latency, tables):
    rng = np.random.default_rng(12 + latency)
    # Row blocks of 16 rows, two tiles of 8: the resident tables load 1 to 8 blocks a run.
    for n, k, ppg in [(8, 4, None), (37, 61, 8), (64, 120, None), (3, 127, 20)]:
        low = lowered(rng, n, k, ppg)
        sim = sim_backend(latency, tables).run_layer(low, np.zeros((2, low.positions, 2), np.int8))
        core = dataclasses.replace(CORE, c_a=C_A, lanes=LANES, tables=tables)
        model = 2 * layer_cost(LayerShape("l", k, n), core, memory_latency=latency, clock_mhz=1.0,
                               bandwidth_gbs=np.inf, positions_per_run=ppg or 0, group_rows=16).cycles
        # The model's stated tolerance is 5 %; on these shapes it is exact.
        assert abs(model - sim.cycles) <= 0.05 * sim.cycles, (n, k, ppg, model, sim.cycles)
        assert model == sim.cycles
        # Bytes: the words the core asked the memory for are the model's, run by run.
        p = low.positions
        starts = range(0, p, ppg or p)
        want = {key: 2 * sum(run_requests(min(ppg or p, p - p0), n, LANES, tables=tables, tiles_per_block=2)[key]
                             for p0 in starts)
                for key in ("cb", "tab", "idx")}
        assert sim.requests == want
    assert run_cycles(10, 16, lanes=8, c_a=C_A, chains=4, memory_latency=latency) == 20 + \
        search_latency(C_A, 4) + 3 + 2 * latency
    # Resident tables: two blocks of one tile, each loading 10 rows of 16 entries first.
    assert run_cycles(10, 16, lanes=8, c_a=C_A, chains=4, memory_latency=latency, tables="resident", c_w=16,
                      tiles_per_block=1) == 2 * (10 * 16 + 1) + 20 + search_latency(C_A, 4) + 4 + 2 * latency


def test_demo_path_end_to_end_on_one_layer(tmp_path, smollm2_ir, smollm2_ref, tokenizer):
    from lutforge.jobs.demo import demo

    cfg = parse_config({"name": "e2e", "quantization": {"c_a": C_A, "positions_per_run": 64,
                                                         "iterations": 2},
                        "core": {"lanes": LANES, "chains": CORE.chains, "max_positions": CORE.max_positions},
                        "calibration": {"rows": 64, "window": 64}})
    run = dict(layers=["layers.0.attn.k"], tokens=8, sim_tokens=2, windows=1, window=16, progress=False,
               model=(smollm2_ir, smollm2_ref, tokenizer))
    results = demo(cfg, tmp_path / "build", **run)
    data = json.loads(json.dumps(results.to_json()))
    (row,) = data["layers"]
    assert row["bit_exact"] and data["all_bit_exact"] and data["first_mismatch"] is None
    assert row["kind"] == "lut" and row["shape"] == [192, 576] and data["layer_kinds"] == {"lut": 1}
    assert 0.5 < row["cosine"] <= 1.0 and 0 < row["rel_rms"] < 1 and row["max_abs"] > 0
    # One decoded token is one run per K tile of 64 positions (288 positions: 5 runs).
    assert row["cycles"] > 0 and abs(row["model_error"]) <= 0.05
    g = data["generation"]
    assert len(g["tokens"]) == 2 and g["tokens"] == g["golden_tokens"] and g["sim_sha256"] == g["golden_sha256"]
    assert g["text"] == tokenizer.decode(g["tokens"]) and len(g["pytorch_tokens"]) == 2
    fp32, quant = data["perplexity"]
    assert fp32["config"] == "fp32" and quant["config"] == "e2e" and 1 < fp32["perplexity"] < 1e4
    assert (tmp_path / "build" / "report.md").read_text().startswith("# lutforge demo")
    assert (tmp_path / "build" / "layer_error.png").stat().st_size > 1000
    steps = [json.loads((tmp_path / "build" / "reports" / f"{s}.json").read_text())
             for s in ("import", "calibrate", "quantize", "emit")]
    assert all(s["outputs"] or s["step"] == "import" for s in steps)
    # A second run restarts nothing: every step is up to date.
    again = demo(cfg, tmp_path / "build", **run)
    assert again.layers[0].cycles == row["cycles"] and again.generation.tokens == results.generation.tokens
