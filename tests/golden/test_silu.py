"""golden.silu: every bf16 and fp16 encoding against float64 within its derived bound, fp32
against PyTorch's silu."""

import numpy as np
import pytest
import torch

from lutforge.golden.convert import decode, encode
from lutforge.golden.formats import get
from lutforge.golden.silu import silu, silu_bound


@pytest.mark.parametrize("fmt", ["bf16", "fp16"])
def test_every_encoding_is_within_the_bound_or_the_stated_underflow(fmt):
    f = get(fmt)
    a = np.arange(1 << 16, dtype=np.uint64).astype(f.dtype)
    x = decode(a, f)
    got = decode(silu(a, f), f)
    with np.errstate(all="ignore"):
        exact = x / (1 + np.exp(-x))
        e = np.exp(-x)
        tiny = 2.0 ** f.emin
        max_finite = decode(np.array(f.max_finite, f.dtype), f)
        bound = silu_bound(x, f)
        normal = (np.isfinite(x) & (e >= tiny) & (e <= max_finite / 2) & (np.abs(exact) >= tiny) & (x != 0)
                  & np.isfinite(bound))
        ratio = np.abs(got[normal] - exact[normal]) / np.abs(exact[normal]) / bound[normal]
        assert np.max(ratio) <= 1
        # The bound covers at least every |x| from 2^-10 to half of exp's reach.
        assert np.all(normal[np.isfinite(x) & (np.abs(x) >= 2 ** -10) & (np.abs(x) <= 0.5 * np.log(max_finite))])
        # Elsewhere (exp(-x) out of reach or near overflow, tiny results) the module's statement:
        # within 2.5 |x| e^-|x|, plus u of the result and half a subnormal step.
        rest = np.isfinite(x) & ~normal
        allowed = (2.5 * np.abs(x[rest]) * np.exp(-np.abs(x[rest])) + 2.0 ** -(f.man_bits + 1) * np.abs(exact[rest])
                   + 2.0 ** (f.emin - f.man_bits - 1))
    assert np.all(np.abs(got[rest] - exact[rest]) <= allowed)
    assert np.isnan(got[f.is_nan(a)]).all()


def test_fp32_agrees_with_pytorch_within_both_bounds():
    rng = np.random.default_rng(5)
    x = encode(rng.normal(size=20000) * 6, "fp32")
    xd = decode(x, "fp32")
    ours = decode(silu(x, "fp32"), "fp32")
    theirs = torch.nn.functional.silu(torch.from_numpy(x.view(np.float32).copy())).double().numpy()
    # PyTorch: exp, add, divide, multiply: 4 ulps relative at most.
    assert np.all(np.abs(ours - theirs) <= (silu_bound(xd, "fp32") + 4 * 2.0 ** -24) * np.abs(theirs) * 1.001)
