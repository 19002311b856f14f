"""The cost of a layer method on its core (``compiler.perf.method_layer_cost``) and of a token
(``method_token_cost``): each kind is priced by its own core's cost model, and a token is the sum
of the model's linears."""

import dataclasses

import pytest

from lutforge.compiler.lut_methods import LayerMethod
from lutforge.compiler.perf import (TARGETS, LayerShape, block_layer_cost, choose_tables, layer_cost,
                                    method_layer_cost, method_token_cost, model_cost, tmac_layer_cost)
from lutforge.golden.block_gemv import BlockGemvFormat
from lutforge.program.core import GemvCoreParams

SHAPE = LayerShape("l", 576, 192)
V80 = TARGETS["v80"]
CLOCK = dict(memory_latency=V80.memory_latency, clock_mhz=V80.clock_mhz, bandwidth_gbs=V80.bandwidth_gbs)


def test_lut_layer_is_the_lut_core_and_residual_is_two_runs():
    m = LayerMethod(kind="lut", v=2, c_a=64, c_w=16, table_bits=4)
    core = GemvCoreParams(v=2, c_a=64, c_w=16, table_bits=4, lanes=8, chains=2)
    one = layer_cost(SHAPE, core, **CLOCK)
    assert method_layer_cost(m, SHAPE, V80, lanes=8, chains=2) == one
    two = method_layer_cost(dataclasses.replace(m, residual=True), SHAPE, V80, lanes=8, chains=2)
    assert (two.cycles, two.bytes) == (2 * one.cycles, 2 * one.bytes)


def test_block_and_weight_only_layers_are_their_cores():
    nv = LayerMethod(kind="nvfp4", act="mxint8")
    assert method_layer_cost(nv, SHAPE, V80, lanes=4) == block_layer_cost(
        SHAPE, BlockGemvFormat("nvfp4", "mxint8"), lanes=4, **CLOCK)
    tm = LayerMethod(kind="tmac", v=2, c_w=16, cb_bits=8)
    assert method_layer_cost(tm, SHAPE, V80, lanes=16) == tmac_layer_cost(
        SHAPE, v=2, c_w=16, cb_bits=8, group_rows=0, lanes=16, **CLOCK)


def test_a_kind_no_core_runs_is_refused():
    with pytest.raises(ValueError, match="Layer kind 'bf16' runs on no core"):
        method_layer_cost(LayerMethod(kind="bf16"), SHAPE, V80, lanes=4)


@pytest.mark.parametrize("target", ["ulx3s-85f", "v80"])
def test_a_token_is_the_model_cost_of_its_linears(target):
    """Against the older whole-model LUT cost (``model_cost``), written apart from it."""
    t = TARGETS[target]
    m = LayerMethod(kind="lut", v=2, c_a=64, c_w=16, table_bits=8)
    core = GemvCoreParams(v=2, c_a=64, c_w=16, table_bits=8, lanes=t.lanes, chains=4)
    want = model_cost("SmolLM2-135M", core, t, group_rows=512)
    got = method_token_cost(m, "SmolLM2-135M", t, tables="rows")  # model_cost's engine
    assert got.cycles == want["cycles_per_token"] and got.bytes == want["bytes_per_token"]
    assert got.tokens_per_s == pytest.approx(want["tokens_per_s"], rel=1e-12)
    halved = method_token_cost(m, "SmolLM2-135M", t, lanes=t.lanes // 2, tables="rows")
    assert halved.lanes == t.lanes // 2 and halved.cycles > got.cycles


def test_a_token_prices_each_layer_by_its_own_method():
    lut = LayerMethod(kind="lut", v=2, c_a=64, c_w=16, table_bits=8)
    nv = LayerMethod(kind="nvfp4", act="mxint8")
    t = TARGETS["ulx3s-85f"]
    mixed = method_token_cost(lambda name: nv if name == "layers.7.mlp.down" else lut, "SmolLM2-135M", t,
                              tables="resident")
    down = LayerShape("layers.7.mlp.down", 1536, 576)
    want = (method_token_cost(lut, "SmolLM2-135M", t, tables="resident").cycles
            - method_layer_cost(lut, down, t, lanes=t.lanes, tables="resident").cycles
            + method_layer_cost(nv, down, t, lanes=t.lanes).cycles)
    assert mixed.cycles == want


@pytest.mark.parametrize("target, faster", [("icebreaker", "resident"), ("ulx3s-85f", "resident"),
                                            ("orangecrab-25f", "resident"), ("v80", "rows")])
def test_a_token_is_priced_on_the_faster_table_engine_of_the_target(target, faster):
    """A board's byte port makes table words dear (resident tables read each row once a block);
    the V80's HBM makes the resident tables' loading the dearer part."""
    m = LayerMethod(kind="lut", v=2, c_a=16, c_w=16, group_rows=192)
    on = {engine: method_token_cost(m, "SmolLM2-135M", TARGETS[target], tables=engine) for engine in ("rows", "resident")}
    slower = "rows" if faster == "resident" else "resident"
    assert on[faster].seconds < on[slower].seconds and on[faster].tables == faster
    assert method_token_cost(m, "SmolLM2-135M", TARGETS[target]) == on[faster]


def test_choose_tables_takes_the_lower_time_and_the_first_engine_on_a_tie():
    assert choose_tables({"rows": 2.0, "resident": 1.0}.get).tables == "resident"
    assert choose_tables({"rows": 1.0, "resident": 1.5}.get).tables == "rows"
    tie = choose_tables({"rows": 1.0, "resident": 1.0}.get)
    assert tie.tables == "rows" and tie.seconds == {"rows": 1.0, "resident": 1.0}
    assert str(tie) == "table engine rows (one token's LUT layers: rows 1000.000 ms, resident 1000.000 ms)"
