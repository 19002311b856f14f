"""Reciprocal, rsqrt and exp RTL against golden.fp_funcs, and the SiLU stream unit against
golden.silu: every bf16 and fp16 encoding (one Verilator
build per format holds its variants), every e5m2 encoding, random plus corner fp32 encodings, and a
pipelined form through the block self-check."""

import functools

import numpy as np
import pytest

from lutforge.blocks import get_block
from lutforge.blocks.selfcheck import self_check
from lutforge.golden import fp_funcs
from lutforge.golden.formats import get
from lutforge.hdl.fp_funcs import FPExp, FPReciprocal, FPRsqrt
from lutforge.sim.batch import BatchSim
from lutforge.sim.compare import assert_outputs_equal
from lutforge.sim.variants import Variants

UNITS = {"reciprocal": (FPReciprocal, fp_funcs.reciprocal), "rsqrt": (FPRsqrt, fp_funcs.rsqrt)}
SIXTEEN = [(fmt, unit, seed) for fmt in ("bf16", "fp16") for unit in UNITS for seed in (7, 4)]
# make test keeps one of each kind (bf16 exhaustive per function unit, each stream unit with stalls,
# RoPE pipelined); the rest (fp16, e5m2, fp32: a Verilator build of a minute each on 2 cores) run with
# make test-slow.
slow = pytest.mark.slow


@functools.cache
def _sixteen_bit_run(fmt):
    a = np.arange(1 << 16, dtype=np.uint64)
    variants = {f"{unit}_{seed}": UNITS[unit][0](fmt, seed_bits=seed) for f, unit, seed in SIXTEEN if f == fmt}
    return a, BatchSim(Variants(variants)).run_vectors({"a": a}).outputs


@pytest.mark.parametrize("fmt,unit,seed", [pytest.param(*case, marks=[slow] if case[0] == "fp16" else [])
                                           for case in SIXTEEN], ids=[f"{u}-{f}-seed{s}" for f, u, s in SIXTEEN])
def test_every_16_bit_encoding_equals_golden(fmt, unit, seed):
    a, outputs = _sixteen_bit_run(fmt)
    expected = UNITS[unit][1](a.astype(get(fmt).dtype), fmt, seed_bits=seed)
    assert_outputs_equal(f"{unit} {fmt}", {"a": a}, expected, outputs[f"{unit}_{seed}_r"])


@pytest.mark.parametrize("name,fmt,count", [pytest.param("fp_reciprocal", "e5m2", None, marks=slow),
                                            pytest.param("fp_rsqrt", "e5m2", None, marks=slow),
                                            pytest.param("fp_reciprocal", "fp32", 20_000, marks=slow),
                                            pytest.param("fp_rsqrt", "fp32", 20_000, marks=slow)])
def test_block_self_check(name, fmt, count):
    block = get_block(name)
    result = self_check(block, block.resolve({"format": fmt}), "batch", count=count)
    assert result.passed, result.first_mismatch
    assert result.exhaustive == (count is None)


@pytest.mark.parametrize("name,per_step", [pytest.param("fp_reciprocal", 2, marks=slow),
                                           pytest.param("fp_rsqrt", 3, marks=slow)])
def test_pipelined_units_keep_one_result_per_cycle(name, per_step):
    """latency=2 per FMA: 2 (reciprocal) or 3 (rsqrt) pipelined operations per Newton step, each
    operand's sign, exponent and class delayed alongside."""
    block = get_block(name)
    params = block.resolve({"format": "fp16", "latency": "2"})
    assert block.latency(params) == per_step * 2 * 2  # two Newton steps in fp16
    result = self_check(block, params, "batch", count=3000)
    assert result.passed, result.first_mismatch


def test_a_step_count_outside_the_range_is_refused():
    with pytest.raises(ValueError, match=r"FP reciprocal iterations=5 is outside 0 to 4; give 0 to 4, or a larger "
                                         r"seed table"):
        FPReciprocal("fp32", iterations=5)


@pytest.mark.parametrize("fmt", ["bf16", pytest.param("fp16", marks=slow)])
def test_exp_equals_golden_on_every_16_bit_encoding(fmt):
    a = np.arange(1 << 16, dtype=np.uint64)
    got = BatchSim(FPExp(fmt)).run_vectors({"a": a}).outputs["r"]
    assert_outputs_equal(f"exp {fmt}", {"a": a}, fp_funcs.exp(a.astype(get(fmt).dtype), fmt), got)


@pytest.mark.parametrize("fmt,latency,count", [pytest.param("fp32", 0, 20_000, marks=slow),
                                               pytest.param("fp16", 1, 5_000, marks=slow)])
def test_exp_self_check(fmt, latency, count):
    block = get_block("fp_exp")
    result = self_check(block, block.resolve({"format": fmt, "latency": str(latency)}), "batch", count=count)
    assert result.passed, result.first_mismatch


@pytest.mark.parametrize("params,count", [({"format": "bf16"}, None),
                                          pytest.param({"format": "fp32", "latency": "1"}, 5_000, marks=slow)])
def test_silu_stream_equals_golden_with_stalls(params, count):
    """Every bf16 encoding through the stream with random stalls on both sides (the FIFO holds
    what is in flight while o stalls)."""
    block = get_block("silu")
    result = self_check(block, block.resolve(params), "batch", count=count)
    assert result.passed, result.first_mismatch
    assert result.exhaustive == (count is None)


@pytest.mark.parametrize("params,count", [({"format": "fp32", "k": "64", "rows": "6"}, 384),
                                          ({"format": "e5m2", "k": "2"}, None),
                                          pytest.param({"format": "fp32", "k": "576", "rows": "4"}, 2304, marks=slow),
                                          pytest.param({"format": "bf16", "k": "64", "rows": "8"}, 512, marks=slow)])
def test_rmsnorm_stream_equals_golden_with_stalls(params, count):
    """Whole rows through the norm unit with random stalls on both sides: the FMA chain's order,
    the rsqrt and both products bit for bit; every row of two e5m2 elements."""
    block = get_block("rmsnorm")
    result = self_check(block, block.resolve(params), "batch", count=count)
    assert result.passed, result.first_mismatch
    assert result.vectors == (count or 2 * 256 ** 2)
    assert result.exhaustive == (count is None)


def test_rmsnorm_refuses_gains_of_another_length():
    from lutforge.hdl.rmsnorm import RMSNorm
    with pytest.raises(ValueError, match=r"RMSNorm gains have shape \(3,\), the rows have 4 elements"):
        RMSNorm("fp32", 4, np.zeros(3, np.uint32), eps=1e-5)


@pytest.mark.parametrize("params,count", [({"format": "fp32", "n": "48", "rows": "8"}, 384),
                                          pytest.param({"format": "e5m2", "n": "2"}, None, marks=slow),
                                          pytest.param({"format": "bf16", "n": "16", "rows": "16"}, 256, marks=slow)])
def test_softmax_stream_equals_golden_with_stalls(params, count):
    """Rows with causal -Inf masks through the softmax unit with random stalls, after the
    comparator's corners (-0 against +0, NaN before the maximum, ties, a row of -Inf): the first
    maximum, exp, the sum in index order, the reciprocal and the products bit for bit; every row of
    two e5m2 scores."""
    block = get_block("softmax")
    result = self_check(block, block.resolve(params), "batch", count=count)
    assert result.passed, result.first_mismatch
    assert result.vectors == (count or 2 * 256 ** 2)
    assert result.exhaustive == (count is None)


@pytest.mark.parametrize("params,count", [({"format": "bf16", "latency": "1"}, 4096),
                                          pytest.param({"format": "fp32"}, 4096, marks=slow)])
def test_rope_stream_equals_golden_with_stalls(params, count):
    """Pairs at random positions up to 8191 with their float64-derived table entries, through the
    pipelined rotation with random stalls."""
    block = get_block("rope")
    result = self_check(block, block.resolve(params), "batch", count=count)
    assert result.passed, result.first_mismatch


@pytest.mark.parametrize("params", [{"format": "bf16", "acc": "fp32", "d": "16", "max_keys": "12", "queries": "4"},
                                    # acc == data format, so the adder tree's order shows in the outputs.
                                    {"format": "e5m2", "acc": "e5m2", "d": "8", "max_keys": "10", "queries": "3",
                                     "lanes": "4", "mul": "lmul"},
                                    pytest.param({"format": "e5m2", "acc": "bf16", "d": "8", "max_keys": "10",
                                                  "queries": "3", "mul": "lmul"}, marks=slow),
                                    pytest.param({"format": "bf16", "acc": "bf16", "d": "8", "max_keys": "7",
                                                  "queries": "3", "lanes": "2"}, marks=slow),
                                    pytest.param({"format": "bf16", "acc": "fp32", "d": "16", "max_keys": "12",
                                                  "queries": "4", "mul": "lmul"}, marks=slow),
                                    pytest.param({"format": "fp32", "acc": "fp32", "d": "8", "max_keys": "20",
                                                  "queries": "6"}, marks=slow)])
def test_attention_decode_equals_golden_with_stalls(params):
    """A KV cache filled through its stream while queries wait for their keys; each query's
    outputs against golden.attention (prefill as decode steps) with random stalls, with exact
    products and with L-Mul (the probabilities rounded into the data format first), one product
    per beat or several (the adder tree; the last A·V beat's keys past n give +0)."""
    block = get_block("attention")
    result = self_check(block, block.resolve(params), "batch", count=1)
    assert result.passed, result.first_mismatch


@pytest.mark.parametrize("kwargs,message", [
    (dict(offset=3), r"An L-Mul offset \(3\) was given for exact products; give mul='lmul' or leave the offset out\."),
    (dict(mul="lmul", offset=1 << 15), r"L-Mul offset 32768 does not fit the 15-bit magnitude of bf16; use 0\.\.32767\."),
    (dict(mul="fma"), r"Attention multiplier 'fma' is not one of exact, lmul; choose one of them\."),
    (dict(lanes=3), r"The head dimension 4 is not a multiple of lanes=3; choose lanes dividing 4\."),
])
def test_attention_decode_refuses_bad_multipliers(kwargs, message):
    from lutforge.golden.attention import attention
    from lutforge.hdl.attention import AttentionDecode
    with pytest.raises(ValueError, match=message):
        AttentionDecode("bf16", 4, 4, acc="fp32", **kwargs)
    if "offset" in kwargs and "mul" not in kwargs:
        with pytest.raises(ValueError, match=message):
            attention(np.zeros((1, 4), np.uint16), np.zeros((1, 4), np.uint16), np.zeros((1, 4), np.uint16), "bf16",
                      acc="fp32", **kwargs)


def test_attention_reads_its_cache_from_memory_with_latency_and_refuses_bad_queries():
    """Queries over a cache at nonzero bases with a slow memory (4 cycles) and stalls: outputs
    equal golden, each query reads exactly its keys' and values' words (a refused descriptor
    none), and the status ends done without error."""
    from control_trace import control_trace
    from lutforge.hdl.attention import AttentionDecode
    from lutforge.sim.batch import BatchSim

    block = get_block("attention")
    params = block.resolve({"format": "bf16", "acc": "fp32", "d": "16", "max_keys": "12", "queries": "4"})
    unit = block.build(params)
    inputs = block.vectors(params, np.random.default_rng(3), 1)
    want = block.golden(params, inputs)["o"]
    memories = {name: inputs.pop(name) for name in block.memories}
    run = BatchSim(unit).run_streams(inputs, {"o": len(want)}, memories=memories, memory_latency=4, seed=2,
                                     input_stall=0.3, output_stall=0.3)
    assert np.array_equal(run.outputs["o"], want)
    words = sum(range(9, 13)) * 16  # four queries over 9 to 12 keys of 16 elements
    assert len(run.outputs["mem__k__req"]) == words and len(run.outputs["mem__v__req"]) == words
    assert run.final["done"] == 1 and run.final["error"] == 0 and run.final["busy"] == 0

    unit = AttentionDecode("bf16", 4, 6, acc="fp32")
    seen = control_trace(unit, [{"keys": 7, "k_base": 0, "v_base": 0}, {"keys": 0, "k_base": 0, "v_base": 0}],
                         unit.mem.k.req, unit.q)
    assert seen == [(0, 1, 1, 0, 0), (0, 1, 1, 0, 0)]


@pytest.mark.parametrize("params,count", [({"format": "e5m2", "op": "mul"}, None),
                                          pytest.param({"format": "e5m2", "op": "add"}, None, marks=slow),
                                          pytest.param({"format": "fp32", "op": "add", "latency": "2"}, 20_000,
                                                       marks=slow)])
def test_elementwise_pair_stream_equals_golden_with_stalls(params, count):
    """The decoder block's add/mul unit (residual adds, norm gains, SiLU(gate)·up): every pair of
    e5m2 encodings through the stream with random stalls; fp32 random plus every pair of corners."""
    block = get_block("fp_stream")
    result = self_check(block, block.resolve(params), "batch", count=count)
    assert result.passed, result.first_mismatch
    assert result.exhaustive == (count is None)
