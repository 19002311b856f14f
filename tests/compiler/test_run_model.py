"""Whole-model runs on the golden backend (slow) and the performance model's projections."""

import math

import numpy as np
import pytest

from lutforge.compiler.config import parse_config
from lutforge.program.core import GemvCoreParams
from lutforge.compiler.perf import MODEL_SHAPES, TARGETS, LayerShape, layer_cost, model_cost


def test_projection_is_the_sum_of_layer_costs_and_names_its_bound():
    cfg = parse_config({})
    v80 = TARGETS["v80"]
    p = model_cost("Qwen3-1.7B", cfg.core_params, v80, group_rows=cfg.quantization.group_rows)
    n_layers, block = MODEL_SHAPES["Qwen3-1.7B"]
    core = GemvCoreParams(v=2, c_a=64, c_w=16, table_bits=8, lanes=v80.lanes, chains=4)
    cycles = n_layers * sum(layer_cost(LayerShape(n, k, o), core,
                                       memory_latency=v80.memory_latency, clock_mhz=v80.clock_mhz,
                                       bandwidth_gbs=v80.bandwidth_gbs).cycles for n, k, o in block)
    assert p["cycles_per_token"] == cycles
    # Compute bound at 1024 lanes: N K / (v L) cycles per token at 250 MHz plus a per-run start-up
    # (centroid pipeline and two 64-cycle HBM round trips), about 4 % here.
    assert p["bound"] == ["compute"]
    assert math.isclose(p["tokens_per_s"], 250e6 / (p["weights"] / 2 / 1024), rel_tol=0.05)
    assert p["published"]["seconds_128_prefill_256_decode"] == 1.410
    # The OrangeCrab SoC as built (block RAM behind a byte-wide port) is memory bound.
    assert model_cost("SmolLM2-135M", cfg.core_params, TARGETS["orangecrab-25f"],
                      group_rows=cfg.quantization.group_rows)["bound"] == ["memory"]


@pytest.mark.slow
def test_whole_model_perplexity_on_the_golden_backend(tmp_path):
    from lutforge.jobs.run import run_model

    cfg = parse_config({"name": "slow-default"})
    results = run_model([cfg], tmp_path, windows=1, window=128, progress=False)
    fp32, lut = results.rows
    assert fp32.config == "fp32" and 5 < fp32.perplexity < 100
    assert np.isfinite(lut.perplexity) and lut.perplexity > fp32.perplexity
    assert results.tokens == 127 and results.to_json()["rows"][1]["perplexity"] == lut.perplexity
    assert "quantization" not in results.to_json()["rows"][0]
    assert (tmp_path / "perplexity.md").is_file() and (tmp_path / "perplexity.png").is_file()


@pytest.mark.slow
def test_whole_model_perplexity_on_verilator_equals_golden_to_the_last_bit(tmp_path):
    # `run --backend sim`: every decoder linear on the RTL; the same accumulators give the same logits,
    # so the NLL is equal as a float, not merely close.
    from lutforge.jobs.run import run_model

    cfg = parse_config({"name": "sim-vs-golden", "lut_methods": {"default": "mxint8"}})
    golden = run_model([cfg], tmp_path / "g", windows=1, window=4, progress=False, fp32=False)
    sim = run_model([cfg], tmp_path / "s", windows=1, window=4, progress=False, fp32=False, backend="sim")
    assert (golden.backend, sim.backend) == ("golden", "sim") and sim.to_json()["backend"] == "sim"
    assert sim.rows[0].nll == golden.rows[0].nll and np.isfinite(sim.rows[0].nll)
    assert "sim backend" in (tmp_path / "s" / "perplexity.md").read_text()
