"""MX/NV block dot-product unit == ``golden.mx.dot`` (single-level scaling), with stream stalls."""

import functools

import numpy as np
import pytest

from lutforge.golden import mx
from lutforge.hdl.mx_dot import MXDotProduct
from lutforge.sim.batch import BatchSim
from lutforge.sim.compare import assert_outputs_equal


@functools.cache
def _sim(fmt):
    return BatchSim(MXDotProduct(fmt, max_levels=6))


def _vectors(fmt, rng, count):
    """(list of Blocks, one per vector) : quantized Gaussian data and raw random encodings with
    arbitrary scales (overflow, underflow, NaN scales, Inf/NaN elements where the format has them)."""
    bf = mx.get_block_format(fmt)
    out = []
    for v in range(count):
        n_blocks = int(rng.integers(1, 12))
        if v % 2 == 0:
            x = rng.standard_normal((2, n_blocks * bf.block)) * np.exp2(rng.integers(-20, 20))
            kwargs = {"tensor_scale": None} if bf.scale == "e4m3" else {}
            q = mx.quantize(x.astype(np.float32), bf, **kwargs)
            blocks = [mx.Blocks(q.elements[k], q.scales[k], None) for k in range(2)]
        else:
            w = bf.elem_fmt.width
            blocks = [mx.Blocks(rng.integers(0, 1 << w, n_blocks * bf.block).astype(np.uint8),
                                rng.integers(0, 256, n_blocks).astype(np.uint8), None) for _ in range(2)]
        out.append(blocks)
    return out


def _payloads(fmt, vectors):
    bf = mx.get_block_format(fmt)
    w, block = bf.elem_fmt.width, bf.block
    payloads = []
    for a, b in vectors:
        n = len(a.scales)
        for k in range(n):
            pa = sum(int(e) << (i * w) for i, e in enumerate(a.elements[k * block:(k + 1) * block]))
            pb = sum(int(e) << (i * w) for i, e in enumerate(b.elements[k * block:(k + 1) * block]))
            base = 2 * w * block
            payloads.append(pa | (pb << (w * block)) | (int(a.scales[k]) << base)
                            | (int(b.scales[k]) << (base + 8)) | (int(k == n - 1) << (base + 16)))
    return np.array(payloads, dtype=object)


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp4", "nvfp4"])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_block_dot_equals_golden(fmt, stall):
    rng = np.random.default_rng(7)
    vectors = _vectors(fmt, rng, 40)
    expected = np.array([np.asarray(mx.dot(a, b, fmt)).view(np.uint32) for a, b in vectors], np.uint64)
    result = _sim(fmt).run_streams({"i": _payloads(fmt, vectors)}, {"o": len(vectors)}, seed=3,
                                   input_stall=stall, output_stall=stall)
    got = np.asarray(result.outputs["o"], dtype=np.uint64)
    assert_outputs_equal(f"{fmt} block dot (stall {stall})", {"vector": np.arange(len(vectors))},
                         expected, got)


def test_integer_elements_are_refused():
    with pytest.raises(ValueError, match="integer elements.*takes FP"):
        MXDotProduct("mxint8")
