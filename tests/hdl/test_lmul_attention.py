"""The L-Mul attention-score unit against lutforge.golden.lmul_dot.lmul_attention_scores."""

import numpy as np
import pytest

from lutforge.blocks import get_block
from lutforge.blocks.lmul_attention import attention_beats
from lutforge.golden.convert import encode
from lutforge.golden.lmul_dot import lmul_attention_scores
from lutforge.hdl.lmul_attention import LMulAttention
from lutforge.sim.batch import BatchSim


def test_attention_scores_equal_golden_under_stalls():
    # Two lanes keep the Verilator build small; the power-of-two tree and fp32 widening are covered.
    fmt, dim, lanes, acc = "e4m3", 6, 2, "fp32"
    sim = BatchSim(LMulAttention(fmt, dim, lanes, acc))
    rng = np.random.default_rng(11)
    # Gaussian queries and keys as in attention, then raw random encodings (specials included).
    n, n_keys = 20, 9
    queries = encode(rng.standard_normal((n, dim)), fmt)
    keys = encode(rng.standard_normal((n, n_keys, dim)) * 4, fmt)
    want = np.concatenate([lmul_attention_scores(q, k, fmt, lanes=lanes, acc_format=acc)
                           for q, k in zip(queries, keys)]).astype(np.uint64)
    q_beats, k_beats = attention_beats(queries, keys, fmt, lanes)
    for stall in (0.0, 0.4):
        got = sim.run_streams({"q": q_beats, "k": k_beats}, {"s": n * n_keys}, seed=5,
                              input_stall=stall, output_stall=stall).outputs["s"].astype(np.uint64)
        bad = np.flatnonzero(got != want)
        assert len(bad) == 0, (f"{len(bad)} scores differ at stall {stall}; first score {bad[0]}: "
                               f"want {int(want[bad[0]]):#x} got {int(got[bad[0]]):#x}")

    block = get_block("lmul_attention")
    params = block.resolve({"format": fmt, "dim": str(dim), "lanes": str(lanes), "acc_format": acc, "keys": "5"})
    inputs = block.vectors(params, rng, 200)
    want = block.golden(params, inputs)["s"]
    got = sim.run_streams(inputs, {"s": len(want)}, seed=2, input_stall=0.2, output_stall=0.2).outputs["s"]
    assert np.array_equal(got.astype(np.uint64), want)


def test_head_dimension_must_split_into_lanes():
    with pytest.raises(ValueError, match=r"Attention head dimension 10 is not a positive multiple of lanes=4; "
                                         r"choose lanes dividing the head dimension\."):
        LMulAttention("e4m3", 10, 4)
