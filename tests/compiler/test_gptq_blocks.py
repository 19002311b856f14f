"""GPTQ rounding in block formats: a valid tensor of the format, nearest rounding (golden.mx)
when the Hessian gives no column any influence on another, lower output error than nearest
rounding on correlated activations, and the method option that selects it."""

import numpy as np
import pytest

from lutforge.compiler.gptq_blocks import gptq_blocks
from lutforge.compiler.lut_methods import fit_layer, method_label, parse_method
from lutforge.golden import mx


def _correlated(rng, n, k):
    mix = np.eye(k) + 0.5 * rng.standard_normal((k, k)) / np.sqrt(k)
    return (rng.standard_normal((n, k)) @ mix).astype(np.float32)


@pytest.mark.parametrize("fmt", ["mxint4", "nvfp4", "mxint8"])
def test_uncorrelated_columns_give_nearest_rounding(fmt):
    # Orthogonal calibration columns of equal norm: H is a multiple of I, so no error moves and
    # GPTQ must choose exactly what golden.mx.quantize chooses.
    rng = np.random.default_rng(3)
    k = 64
    x = (np.linalg.qr(rng.standard_normal((256, k)))[0] * 16).astype(np.float32)
    w = rng.standard_normal((24, k)).astype(np.float32)
    got = gptq_blocks(w, x, fmt)
    want = mx.quantize(w, fmt)
    assert np.array_equal(got.scales, want.scales)
    assert np.array_equal(got.elements, want.elements)
    assert got.tensor_scale == want.tensor_scale


@pytest.mark.parametrize("fmt", ["mxint4", "nvfp4"])
def test_gptq_lowers_the_output_error_of_nearest_rounding(fmt):
    rng = np.random.default_rng(4)
    w = rng.standard_normal((48, 128)).astype(np.float32)
    x = _correlated(rng, 1024, 128)
    ref = x.astype(np.float64) @ w.T.astype(np.float64)

    def error(blocks):
        y = x.astype(np.float64) @ mx.dequantize(blocks, fmt).T
        return float(((y - ref) ** 2).sum() / (ref ** 2).sum())
    nearest, gptq = error(mx.quantize(w, fmt)), error(gptq_blocks(w, x, fmt))
    assert gptq < 0.9 * nearest


def test_gptq_blocks_errors():
    with pytest.raises(ValueError, match=r"GPTQ in mxint4 needs the 40 input features to be a multiple of the "
                                         r"block size 32; pad the layer or keep it in a format with a dividing block\."):
        gptq_blocks(np.zeros((2, 40), np.float32), np.zeros((4, 40), np.float32), "mxint4")
    with pytest.raises(ValueError, match=r"The calibration activations have 16 features but the layer has 32 "
                                         r"inputs; capture the inputs of this layer\."):
        gptq_blocks(np.zeros((2, 32), np.float32), np.zeros((4, 16), np.float32), "mxint4")


def test_gptq_is_a_method_option_of_block_formats_only():
    m = parse_method({"kind": "nvfp4", "fit": "gptq"})
    assert method_label(m) == "nvfp4 gptq" and m.to_dict() == {"kind": "nvfp4", "fit": "gptq"}
    assert m.key() != parse_method("nvfp4").key()
    with pytest.raises(ValueError, match=r"method.fit = 'gptq' is not allowed; use nothing: bf16 weights are "
                                         r"not rounded to a grid\."):
        parse_method({"kind": "bf16", "fit": "gptq"})
    with pytest.raises(ValueError, match=r"method.fit = 'act' is not allowed; use gptq \(error-compensated "
                                         r"rounding\) or leave it out"):
        parse_method({"kind": "mxint4", "fit": "act"})
    rng = np.random.default_rng(5)
    w, x = rng.standard_normal((8, 64)).astype(np.float32), _correlated(rng, 256, 64)
    fitted = fit_layer(w, x, m)
    assert np.array_equal(fitted.weight_q.numpy(), mx.dequantize(gptq_blocks(w, x, "nvfp4"), "nvfp4").astype(np.float32))
