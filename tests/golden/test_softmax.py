"""golden.softmax against float64 within its derived bound, against PyTorch's fp32 softmax, and
the rules of masked rows."""

import numpy as np
import pytest
import torch

from lutforge.golden.convert import decode, encode
from lutforge.golden.softmax import softmax, softmax_bound


@pytest.mark.parametrize("fmt,n,scale", [("fp32", 512, 4.0), ("fp32", 16, 20.0), ("bf16", 64, 3.0),
                                         ("fp16", 64, 2.0)])
def test_within_the_derived_bound_of_float64(fmt, n, scale):
    rng = np.random.default_rng(n)
    s = encode(rng.normal(size=(8, n)) * scale, fmt)
    sd = decode(s, fmt)
    exact = np.exp(sd - sd.max(-1, keepdims=True))
    exact /= exact.sum(-1, keepdims=True)
    got = decode(softmax(s, fmt), fmt)
    ratio = np.abs(got - exact) / exact / softmax_bound(sd, fmt)
    assert np.max(ratio) <= 1


def test_fp32_agrees_with_pytorch_within_both_bounds():
    rng = np.random.default_rng(3)
    s = encode(rng.normal(size=(16, 256)) * 3, "fp32")
    sd = decode(s, "fp32")
    ours = decode(softmax(s, "fp32"), "fp32")
    theirs = torch.softmax(torch.from_numpy(s.view(np.float32).copy()), -1).double().numpy()
    # PyTorch: one exp (1 ulp), a sum of n terms and a division: (n + 3) u relative.
    u = 2.0 ** -24
    assert np.all(np.abs(ours - theirs) <= (softmax_bound(sd, "fp32") + (256 + 3) * u) * theirs * 1.001)


def test_masked_positions_are_exact_zeros_and_an_all_masked_row_is_nan():
    s = encode(np.array([[0.5, -np.inf, 1.5, -np.inf], [-np.inf] * 4]), "fp32")
    got = decode(softmax(s, "fp32"), "fp32")
    assert got[0, 1] == 0 and got[0, 3] == 0
    assert got[0, 0] + got[0, 2] == pytest.approx(1, abs=2 ** -21)
    assert np.all(np.isnan(got[1]))


def test_a_single_visible_score_gets_probability_exactly_one():
    s = encode(np.array([[-np.inf, 37.25, -np.inf]]), "bf16")
    assert decode(softmax(s, "bf16"), "bf16").tolist() == [[0.0, 1.0, 0.0]]
