"""golden.rope against float64 within its derived absolute bound, against a PyTorch rotation
with the same tables, and its refusals."""

import numpy as np
import pytest
import torch

from lutforge.golden.convert import decode, encode
from lutforge.golden.rope import rope, rope_angles, rope_bound, rope_tables


def rotate(x, theta):
    """Llama's rotate-half rotation in float64 (the reference)."""
    h = x.shape[-1] // 2
    c, s = np.cos(theta), np.sin(theta)
    return np.concatenate([x[..., :h] * c - x[..., h:] * s, x[..., h:] * c + x[..., :h] * s], axis=-1)


@pytest.mark.parametrize("fmt,dim,base", [("fp32", 64, 10000.0), ("bf16", 64, 10000.0), ("fp16", 128, 1e6)])
def test_within_the_derived_bound_of_float64(fmt, dim, base):
    rng = np.random.default_rng(dim)
    positions = np.concatenate([np.arange(8), [511, 2047, 8191]])
    x = encode(rng.normal(size=(3, len(positions), dim)) * 4, fmt)
    xd = decode(x, fmt)
    cos, sin = rope_tables(positions, dim, base, fmt)
    theta = rope_angles(positions, dim, base)
    got = decode(rope(x, cos, sin, fmt), fmt)
    assert np.all(np.abs(got - rotate(xd, theta)) <= rope_bound(xd, theta, fmt))


def test_the_angles_are_llamas():
    """theta = position * base^(-2i/D), the inverse frequencies of Hugging Face's Llama."""
    theta = rope_angles(np.array([3]), 8, 10000.0)
    np.testing.assert_allclose(theta[0], 3 * 10000.0 ** (-np.array([0, 2, 4, 6]) / 8), rtol=1e-15)


def test_fp32_agrees_with_a_pytorch_rotation_on_the_same_tables():
    rng = np.random.default_rng(1)
    dim, positions = 64, np.arange(32)
    x = encode(rng.normal(size=(2, 32, dim)), "fp32")
    cos, sin = rope_tables(positions, dim, 10000.0, "fp32")
    ours = decode(rope(x, cos, sin, "fp32"), "fp32")
    t = lambda a: torch.from_numpy(a.view(np.float32).copy())
    xt, c, s = t(x), t(cos), t(sin)
    h = dim // 2
    theirs = torch.cat([xt[..., :h] * c - xt[..., h:] * s, xt[..., h:] * c + xt[..., :h] * s], -1).double().numpy()
    # PyTorch rounds both products and the sum (3 roundings); ours one product and one FMA.
    xd = decode(x, "fp32")
    u = 2.0 ** -24
    mag = np.concatenate([np.abs(xd[..., :h]) + np.abs(xd[..., h:])] * 2, axis=-1)
    assert np.all(np.abs(ours - theirs) <= 4 * u * mag + u * np.abs(theirs))


@pytest.mark.parametrize("dim", [0, 7, 2.0])
def test_an_odd_head_dimension_is_refused(dim):
    with pytest.raises(ValueError, match=r"RoPE head dimension .* is not an even number of at least 2"):
        rope_angles(np.arange(4), dim, 10000.0)


def test_tables_for_other_positions_are_refused():
    x = encode(np.zeros((4, 8)), "fp32")
    cos, sin = rope_tables(np.arange(3), 8, 10000.0, "fp32")
    with pytest.raises(ValueError, match=r"RoPE tables of shape \(3, 4\) and \(3, 4\) do not match inputs of shape "
                                         r"\(4, 8\); build them with rope_tables\(positions, 8, base, fmt\)"):
        rope(x, cos, sin, "fp32")
