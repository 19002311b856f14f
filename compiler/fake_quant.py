"""Block-format fake quantization in PyTorch for training: the values ``golden.mx.dequantize(
golden.mx.quantize(x, fmt))`` gives, computed on tensors (any device) with a straight-through
gradient.

The golden quantizer is the definition; this is a second implementation of the same rules because
the golden one (NumPy, per call) costs seconds per training step over SmolLM2's 210 weight
matrices. ``tests/compiler/test_finetune.py`` checks the two equal bit for bit on every format the
block core takes, ties and saturation included. The rules (``golden/mx.py``):

* MX (E8M0 scale, 32-element blocks): ``e = floor(log2 amax)``, scale ``2^s`` with
  ``s = clip(e - emax_element, -127, 127)``; INT elements ``clip(rint(v 2^-s 2^f), ±int_max) 2^-f``,
  FP elements the nearest (ties to even) element value, saturating.
* NVFP4 (E4M3 scale, 16-element blocks, fp32 tensor scale ``ts = amax_tensor / (448 · 6)``):
  ``s8 = e4m3(clip(amax_block / 6 / ts, 2^-6, 448))``, elements ``e2m1(clip(x (1/ts) / s8, ±6))``,
  value ``element · s8 · ts``. All of it in float32, as the golden model.

Every rounding is round-half-to-even (``torch.round``), as NumPy's ``rint``.
"""

from __future__ import annotations

import torch

from ..golden.mx import get_block_format

__all__ = ["fake_quantize", "quantize_values"]


def _e2m1(d: torch.Tensor) -> torch.Tensor:
    """Nearest E2M1 value (ties to even mantissa), |d| <= 6: the grid is 0.5 apart below 2, 1 apart
    in [2, 4) and 2 apart in [4, 6], so each binade is an integer rounding at its own spacing."""
    a = d.abs()
    r = torch.where(a < 2, torch.round(a * 2) / 2, torch.where(a < 4, torch.round(a), torch.round(a / 2) * 2))
    return torch.copysign(torch.clamp(r, max=6.0), d)


def _e4m3(d: torch.Tensor) -> torch.Tensor:
    """Nearest E4M3 (fn) value, saturating at ±448."""
    return torch.clamp(d, -448.0, 448.0).to(torch.float8_e4m3fn).to(d.dtype)


def _mx(blocks: torch.Tensor, bf) -> torch.Tensor:
    # float32 throughout: scaling by 2^-s is exact (inputs are float32, scaled values stay normal or
    # round to element 0 far from any grid boundary), and scaling back is one correct rounding, as
    # the golden model's float64 product cast to float32. Powers of two are per-block factors.
    v = blocks.float()
    amax = v.abs().amax(-1, keepdim=True)
    _, e = torch.frexp(torch.where(amax == 0, torch.ones_like(amax), amax))
    s = torch.clamp(e - 1 - bf.elem_emax, -127, 127).float()
    s = torch.where(amax == 0, torch.full_like(s, -127.0), s)
    scaled = v * torch.exp2(-s)
    if bf.int_bits:
        f = float(2 ** bf.int_frac_bits)
        elems = torch.clamp(torch.round(scaled * f), -bf.int_max, bf.int_max) / f + 0.0  # codes have no -0
    elif bf.element == "e2m1":
        elems = _e2m1(torch.clamp(scaled, -6.0, 6.0))
    elif bf.element == "e4m3":
        elems = _e4m3(scaled)
    else:
        raise ValueError(f"Fake quantization of {bf.name} is not implemented; use one of the block core's "
                         f"formats (mxint8, mxint4, mxfp4, nvfp4, mxfp8_e4m3).")
    return elems * torch.exp2(s)


def _nvfp4(blocks: torch.Tensor) -> torch.Tensor:
    x = blocks.float()
    t_amax = x.abs().amax()
    ts = t_amax / torch.tensor(448.0 * 6.0) if t_amax > 0 else torch.tensor(1.0)
    bs = x.abs().amax(-1, keepdim=True) / torch.tensor(6.0)
    s8 = _e4m3(torch.clamp(bs / ts, 2.0**-6, 448.0))
    r = (torch.tensor(1.0) / ts) / s8
    d = torch.clamp(x * r, -6.0, 6.0)
    # element * s8 is exact in float32 (3 + 4 significant bits); times ts, one correct rounding, as
    # the golden model's float64 product cast to float32.
    return _e2m1(d) * s8 * ts


def quantize_values(x: torch.Tensor, fmt: str) -> torch.Tensor:
    """``x`` (..., K) quantized along its last axis to ``fmt`` and back, float32; K is padded with
    zeros to whole blocks (as the compiler pads weights and the host pads activations)."""
    bf = get_block_format(fmt)
    k = x.shape[-1]
    pad = -k % bf.block
    xp = torch.nn.functional.pad(x.detach().float(), (0, pad)) if pad else x.detach().float()
    blocks = xp.reshape(*xp.shape[:-1], -1, bf.block)
    if bf.scale == "e8m0":
        out = _mx(blocks, bf)
    elif bf.name == "nvfp4":
        out = _nvfp4(blocks.reshape(-1, bf.block))
    else:
        raise ValueError(f"Fake quantization of {fmt} is not implemented; use mxint8, mxint4, mxfp4 or nvfp4.")
    return out.float().reshape(xp.shape)[..., :k]


def fake_quantize(x: torch.Tensor, fmt: str) -> torch.Tensor:
    """:func:`quantize_values` in the forward pass, the identity in the backward pass (the
    straight-through estimator)."""
    return x + (quantize_values(x, fmt) - x).detach()
