"""The one-product form of the weight-only core's accumulators (what the golden backend runs)
against the table form that defines them: equal bit for bit, corners included."""

import numpy as np
import pytest

from lutforge.golden.tmac import TmacLayer, tmac_core_accumulators, tmac_dense_accumulators


@pytest.mark.parametrize("shape", [(40, 13, 2, 16, 8, 8), (24, 30, 1, 16, 24, 16), (16, 33, 4, 256, 8, 5),
                                   (8, 9, 8, 3, 4, 2)])
def test_the_product_form_equals_the_tables(shape):
    n, k, v, c_w, g, bits = shape
    rng = np.random.default_rng(sum(shape))
    p, blocks, c_max = -(-k // v), -(-n // g), (1 << (bits - 1)) - 1
    codes = rng.integers(-c_max, c_max + 1, (p, blocks, c_w, v)).astype(np.int16)
    codes[0], codes[-1] = c_max, -c_max  # the largest products of both signs
    layer = TmacLayer(k, n, v, c_w, g, bits, codes, np.ones(blocks, np.float32),
                      rng.integers(0, c_w, (n, p)).astype(np.uint8))
    x = rng.integers(-127, 128, (6, p, v)).astype(np.int8)
    x[0], x[1], x[2] = 127, -127, 0
    want = tmac_core_accumulators(x, layer)
    assert want.min() >= 0 and want[2].tolist() == [layer.bias * p] * n  # a zero row reads the bias
    assert np.array_equal(tmac_dense_accumulators(x, layer), want)


def test_a_layer_past_float64_exactness_is_refused():
    # 2^32 features of 127 * 32767: above 2^53. Only the shapes matter before the check.
    layer = TmacLayer(1 << 32, 1, 1, 2, 1, 16, np.zeros((1, 1, 2, 1), np.int16), np.ones(1, np.float32),
                      np.zeros((1, 1), np.uint8))
    with pytest.raises(ValueError, match=r"^4294967296 features of int8 times 16-bit codes can exceed 2\^53, where "
                                         r"float64 sums stop being exact; use tmac_core_accumulators\.$"):
        tmac_dense_accumulators(np.broadcast_to(np.int8(0), (1 << 32, 1)), layer)
