"""A fit's own codebook tuning: ``tune_steps`` Adam steps on one layer's output, after the fit.

LUT-NN and AQLM find that codebooks learned by back-propagation keep far more accuracy than
k-means or GPTQ-VQ codebooks alone. End-to-end training (:mod:`lutforge.compiler.finetune`) does
that for a whole configuration, but costs an hour per configuration; the budget search
(:mod:`lutforge.compiler.search`) has to compare hundreds of candidates per layer. This is the
quick form AQLM applies layer by layer before its end-to-end step: the activation and weight
codebooks of one fitted layer trained, in the ``finetune`` step's arithmetic
(:mod:`lutforge.compiler.trainable`), to reproduce the layer's fp32 output ``X W^T`` on its own
calibration rows. Relative output MSE, full batch, the weight indices kept; each codebook's step
size is ``tune_lr`` times its mean magnitude (activation and weight codebooks differ by orders of
magnitude), and the codebooks of the lowest loss seen are the result. The tuned fit is what the
search scores (on held-out rows, in the hardware arithmetic) and what compiles.
"""

from __future__ import annotations

import numpy as np
import torch

from .trainable import TrainableLut, TrainableTmac

__all__ = ["tune_fitted", "TUNE_SOURCES"]

# The code a tuned fit depends on besides the fit's own (part of its cache key).
TUNE_SOURCES = ("lutforge.compiler.layer_tune", "lutforge.compiler.trainable")


def tune_fitted(fitted, weight: np.ndarray, calibration: np.ndarray, device: str = "cpu"):
    """``fitted`` (a LUT or weight-only LUT fit of ``weight`` on ``calibration``) with its codebooks
    tuned for ``fitted.method.tune_steps`` steps (module docstring); returned on the CPU."""
    m = fitted.method
    x = torch.from_numpy(np.array(calibration, dtype=np.float32)).to(device)
    w = torch.from_numpy(np.array(weight, dtype=np.float32)).to(device)
    target = x @ w.T
    norm = float((target.double() ** 2).sum())
    if m.kind == "tmac":
        # One core run per row: the fit does not know the core's positions per run.
        layer = TrainableTmac(fitted, device, max_positions=1 << 30)
    else:
        layer = TrainableLut(fitted, device)
    params = layer.params()
    opt = torch.optim.Adam([{"params": [p], "lr": m.tune_lr * float(p.detach().abs().mean()) or m.tune_lr}
                            for p in params])

    def loss() -> torch.Tensor:
        return ((layer(x) - target) ** 2).sum() / norm

    best = (float("inf"), None)
    for _ in range(m.tune_steps):
        value = loss()
        if value.item() < best[0]:
            best = (value.item(), [p.detach().clone() for p in params])
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
    with torch.no_grad():
        final = loss().item()
    kept = [p.detach() for p in params] if final < best[0] else best[1]
    if m.kind == "tmac":
        fitted.weight_codebooks = [kept[0].float().cpu()]
    else:
        fitted.act_codebooks = kept[0].float().cpu()
        fitted.weight_codebooks = [cb.float().cpu() for cb in kept[1:]]
        fitted.tables_q = None
    return fitted
