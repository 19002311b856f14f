"""MX/NV block dot-product unit == ``golden.mx.dot`` (single-level scaling), with stream stalls."""

import functools

import numpy as np
import pytest

from lutforge.blocks.mx_dot import golden_dots, pack_block_pairs, random_vectors, unpack_block_pairs
from lutforge.hdl.mx_dot import MXDotProduct
from lutforge.sim.batch import BatchSim
from lutforge.sim.compare import assert_outputs_equal


@functools.cache
def _sim(fmt):
    return BatchSim(MXDotProduct(fmt, max_levels=6))


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "mxfp4", "nvfp4",
                                 pytest.param("mxfp8_e5m2", marks=pytest.mark.slow),
                                 pytest.param("mxfp6_e3m2", marks=pytest.mark.slow)])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_block_dot_equals_golden(fmt, stall):
    vectors = random_vectors(fmt, np.random.default_rng(7), 40)
    payloads = pack_block_pairs(fmt, vectors)
    assert len(unpack_block_pairs(fmt, payloads)) == len(vectors)
    expected = golden_dots(fmt, vectors)
    result = _sim(fmt).run_streams({"i": payloads}, {"o": len(vectors)}, seed=3,
                                   input_stall=stall, output_stall=stall)
    got = np.asarray(result.outputs["o"], dtype=np.uint64)
    assert_outputs_equal(f"{fmt} block dot (stall {stall})", {"vector": np.arange(len(vectors))},
                         expected, got)


def test_refusals_name_the_fix():
    with pytest.raises(ValueError, match="integer elements.*takes FP"):
        MXDotProduct("mxint8")
    with pytest.raises(ValueError, match="max_levels=0 is out of range"):
        MXDotProduct("mxfp4", max_levels=0)
