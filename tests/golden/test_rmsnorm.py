"""golden.rmsnorm against float64 within its derived bound (SmolLM2's hidden size, Qwen3's
QK-norm head size), against PyTorch's fp32 rms_norm, and its refusals."""

import numpy as np
import pytest
import torch

from lutforge.golden.convert import decode, encode
from lutforge.golden.rmsnorm import rmsnorm, rmsnorm_bound


def rows(k, n, seed, fmt):
    rng = np.random.default_rng(seed)
    # Rows whose scales span 1e-3 to 1e3, as residual streams do across layers (fp16: 0.1 to 10, so
    # that the sum of squares stays below its 65504).
    spread = 2.3 if fmt == "fp16" else 7
    x = encode(rng.normal(size=(n, k)) * np.exp(rng.uniform(-spread, spread, size=(n, 1))), fmt)
    w = encode(rng.normal(1.0, 0.3, size=k), fmt)
    return x, w


@pytest.mark.parametrize("fmt,k", [("fp32", 576), ("fp32", 1536), ("bf16", 64), ("fp16", 64), ("fp32", 64)])
def test_within_the_derived_bound_of_float64(fmt, k):
    x, w = rows(k, 16, k, fmt)
    xd, wd = decode(x, fmt), decode(w, fmt)
    eps = 1e-5
    exact = xd * wd / np.sqrt(np.mean(xd * xd, axis=-1, keepdims=True) + eps)
    got = decode(rmsnorm(x, w, fmt, eps=eps), fmt)
    nz = exact != 0
    assert np.max(np.abs(got[nz] - exact[nz]) / np.abs(exact[nz])) <= rmsnorm_bound(fmt, k)
    np.testing.assert_array_equal(got[~nz], 0.0)


def test_fp32_agrees_with_pytorch_within_both_bounds():
    """PyTorch's fp32 rms_norm (any summation order) is within K·u + 4u of exact, ours within our bound."""
    k, fmt = 576, "fp32"
    x, w = rows(k, 32, 7, fmt)
    ours = decode(rmsnorm(x, w, fmt, eps=1e-5), fmt)
    theirs = torch.nn.functional.rms_norm(torch.from_numpy(x.view(np.float32).copy()), (k,),
                                          torch.from_numpy(w.view(np.float32).copy()), eps=1e-5).double().numpy()
    u = 2.0 ** -24
    assert np.all(np.abs(ours - theirs) <= (rmsnorm_bound(fmt, k) + (k + 4) * u) * np.abs(theirs) * 1.001)


def test_the_sum_of_squares_runs_in_index_order():
    """An order-sensitive row: the big square first absorbs the small ones; a different order would not."""
    fmt = "fp32"
    x = encode(np.array([[2.0 ** 12] + [1.0] * 63]), fmt)
    w = encode(np.ones(64), fmt)
    # Sequential: 2^24 + 1 + 1 ... each 1 is lost (ties to even), so ss = 2^24 and the mean 2^18.
    got = decode(rmsnorm(x, w, fmt, eps=0.0), fmt)
    assert got[0, 1] == pytest.approx(2.0 ** -9, rel=2 ** -22)
    assert got[0, 1] != pytest.approx(1 / np.sqrt((2.0 ** 24 + 63) / 64), rel=2 ** -24)


def test_a_bf16_norm_over_a_long_row_has_no_bound_and_says_what_to_do():
    with pytest.raises(ValueError, match=r"RMSNorm in bf16 over rows of 576 elements has no useful bound .* run "
                                         r"the norm unit in a wider format such as fp32"):
        rmsnorm_bound("bf16", 576)


@pytest.mark.parametrize("eps", [-1e-5, 1.0, "1e-5", True])
def test_a_bad_eps_is_refused(eps):
    x, w = rows(8, 1, 0, "fp32")
    with pytest.raises(ValueError, match=r"RMSNorm eps=.* is outside \[0, 1\); use the model's value"):
        rmsnorm(x, w, "fp32", eps=eps)


def test_a_weight_of_the_wrong_length_is_refused():
    x, w = rows(8, 1, 0, "fp32")
    with pytest.raises(ValueError, match=r"RMSNorm weight has shape \(7,\), the rows have 8 elements"):
        rmsnorm(x, w[:7], "fp32", eps=1e-5)
