"""The decoder units' cycle model against the cycles their RTL takes in Verilator (no stalls),
for the parameters the units' own tests build (so the builds are shared)."""

import numpy as np
import pytest

from lutforge.blocks import get_block
from lutforge.compiler.perf_units import (attention_cycles, elementwise_cycles, kv_writer_cycles, rmsnorm_cycles,
                                          softmax_cycles)
from lutforge.sim.batch import BatchSim


def _simulated(name, given, count=1, memory_latency=1):
    block = get_block(name)
    params = block.resolve(given)
    unit = block.build(params)
    inputs = block.vectors(params, np.random.default_rng(0), count)
    want = block.golden(params, inputs)
    memories = {m: inputs.pop(m) for m in block.memories}
    run = BatchSim(unit).run_streams(inputs, {k: len(v) for k, v in want.items()}, memories=memories,
                                     memory_latency=memory_latency)
    for k, v in want.items():
        assert np.array_equal(run.outputs[k], v), k
    return unit, inputs, run.cycles


def _close(model, simulated):
    assert abs(model - simulated) <= 0.05 * simulated, (model, simulated)
    assert model == simulated


@pytest.mark.parametrize("count", [64, 384])
def test_rmsnorm_and_softmax_rows(count):
    _, inputs, cycles = _simulated("rmsnorm", {"format": "fp32", "k": "64"}, count)
    _close(rmsnorm_cycles(len(inputs["i"]) // 64, 64), cycles)
    _, inputs, cycles = _simulated("softmax", {"format": "fp32", "n": "48"}, count)
    _close(softmax_cycles(len(inputs["i"]) // 48, 48), cycles)


@pytest.mark.parametrize("name,given", [("silu", {"format": "bf16"}), ("rope", {"format": "bf16", "latency": "1"})])
def test_elementwise_streams_take_one_element_per_cycle(name, given):
    for count in (100, 1000):
        unit, inputs, cycles = _simulated(name, given, count)
        _close(elementwise_cycles(len(inputs["i"]), unit.latency), cycles)


@pytest.mark.parametrize("latency", [1, 4, 12])
def test_attention_queries_with_a_memory_of_any_latency(latency):
    given = {"format": "bf16", "acc": "fp32", "d": "16", "max_keys": "12", "queries": "4"}
    _, inputs, cycles = _simulated("attention", given, memory_latency=latency)
    # The vectors' prefill: queries over 9, 10, 11 and 12 keys, and one refused descriptor (1 cycle).
    _close(attention_cycles([9, 10, 11, 12], 16, latency) + 1, cycles)


def test_attention_with_lanes():
    given = {"format": "e5m2", "acc": "e5m2", "d": "8", "max_keys": "10", "queries": "3", "lanes": "4", "mul": "lmul"}
    _, inputs, cycles = _simulated("attention", given, memory_latency=3)
    _close(attention_cycles([8, 9, 10], 8, 3, lanes=4) + 1, cycles)


@pytest.mark.parametrize("params", [{"format": "bf16", "d": "8", "lanes": "2", "tokens": "9"}])
def test_kv_cache_writer_takes_d_plus_two_cycles_per_token(params):
    # The vectors put a refused descriptor (1 cycle) after the first token.
    _, inputs, cycles = _simulated("kv_cache_writer", params)
    tokens = len(inputs["v"]) // int(params["d"])
    _close(kv_writer_cycles(tokens, int(params["d"])) + 1, cycles)
