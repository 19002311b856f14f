"""Residual LUT layers against a plain-Python reference (nearest centroid by loops, integer sums)."""

import numpy as np
import pytest

from lutforge.golden.lut_layer import co_quantize
from lutforge.golden.lut_residual import residual_linear


def _reference(x, stages):
    out = []
    for row in x.tolist():
        y = [0.0] * stages[0].out_features
        for s in stages:
            v, p_count = s.v, s.num_positions
            padded = row + [0.0] * (p_count * v - len(row))
            for n in range(s.out_features):
                g = n // s.group_rows
                acc = 0
                for p in range(p_count):
                    sub = padded[p * v:(p + 1) * v]
                    best, best_d = 0, None
                    for i, c in enumerate(s.act_codebooks[p].tolist()):
                        d = sum((float(np.float32(a)) - b) ** 2 for a, b in zip(sub, c))
                        if best_d is None or d < best_d:
                            best, best_d = i, d
                    acc += int(s.table_codes[p, g, best, s.widx[n, p]])
                y[n] += float(s.scales[0, g]) * (acc - int(s.zero_points[0, g]) * p_count)
        out.append(y)
    return np.array(out)


def test_residual_linear_equals_plain_reference():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((12, 10)).astype(np.float32)
    cal = rng.standard_normal((80, 10)).astype(np.float32)
    kw = dict(v=2, c_a=8, c_w=4, group_rows=12, metric="l2", iterations=4,
              positions_per_group=5)
    first = co_quantize(w, cal, **kw)
    recon = first.weight_codebooks[np.arange(5)[None], (np.arange(12) // 12)[:, None], first.widx].reshape(12, 10)
    second = co_quantize(w - recon, cal, **kw)
    x = rng.standard_normal((3, 10)).astype(np.float32)
    got = residual_linear(x, [first, second])
    np.testing.assert_allclose(got, _reference(x, [first, second]), rtol=1e-12, atol=1e-12)
    # Two stages are closer to W x than the first alone.
    ref = x.astype(np.float64) @ w.T
    one = residual_linear(x, [first])
    assert np.linalg.norm(got - ref) < np.linalg.norm(one - ref)


def test_residual_stages_must_share_the_search():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 6)).astype(np.float32)
    a = co_quantize(w, rng.standard_normal((30, 6)).astype(np.float32), v=2, c_a=4, c_w=4, group_rows=4)
    b = co_quantize(w, rng.standard_normal((30, 6)).astype(np.float32), v=2, c_a=4, c_w=4, group_rows=4)
    with pytest.raises(ValueError, match="different activation codebooks"):
        residual_linear(np.zeros((1, 6), np.float32), [a, b])
    with pytest.raises(ValueError, match="at least one stage"):
        residual_linear(np.zeros((1, 6), np.float32), [])
