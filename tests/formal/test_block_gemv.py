"""The block GEMV chunk datapath proofs: the registered fast proof passes, and references with a
wrong exponent or the wrong rounding fail with counterexamples the golden model confirms."""

import numpy as np
import pytest

from lutforge.formal.block_gemv import ChunkProductSpec
from lutforge.formal.engines import prove_equivalent
from lutforge.formal.results import FAIL, PASS
from lutforge.formal.suite import proofs
from lutforge.golden.block_gemv import BlockGemvFormat, block_gemv
from lutforge.hdl.block_gemv import ChunkProduct, ChunkTerms


def test_registered_chunk_proof_passes():
    proof = proofs()["blockgemv-chunk-mxint4-mxint8-c1"]
    assert proof.fast
    result = proof.run()
    assert result.status == PASS, str(result)


def test_a_reference_with_an_exponent_off_by_one_fails():
    result = prove_equivalent(ChunkProductSpec("mxint4", "mxint8", chunk=1, terms=True, exp_error=1),
                              ChunkTerms("mxint4", "mxint8", chunk=1), cache=False, timeout=600)
    assert result.status == FAIL
    cex = result.counterexample
    # The exponent (a 12-bit two's complement pattern) is compared, and it is off by exactly one.
    assert cex.gold["exp"] == (cex.gate["exp"] + 1) % 4096


@pytest.mark.slow
def test_a_truncating_reference_fails_and_the_golden_model_sides_with_the_core():
    result = prove_equivalent(ChunkProductSpec("mxint4", "mxint8", chunk=1, rounding="truncate"),
                              ChunkProduct("mxint4", "mxint8", chunk=1), cache=False, timeout=1200)
    assert result.status == FAIL
    inputs = result.counterexample.inputs[0]
    # A chunk of 1 inside a zero-padded 32-element chunk has the same exact value, so the same p_c.
    x = np.zeros((1, 32), np.uint8)
    w = np.zeros((1, 32), np.uint8)
    x[0, 0], scale_a = inputs["x"] & 0xFF, (inputs["x"] >> 8) & 0xFF
    w[0, 0] = inputs["w"]
    want = block_gemv(x, np.array([[scale_a]], np.uint8), w, np.array([[inputs["scale"]]], np.uint8),
                      BlockGemvFormat("mxint4", "mxint8"))
    assert result.counterexample.gate["p"] == int(want[0, 0]) != result.counterexample.gold["p"]
