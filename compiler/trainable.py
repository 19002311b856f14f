"""Fitted LUT layers as trainable functions: the training arithmetic of the ``finetune`` step
(:mod:`lutforge.compiler.finetune`) and of a fit's own codebook tuning
(:mod:`lutforge.compiler.layer_tune`).

* :class:`TrainableLut` (co-quantized LUT layers): the forward pass runs the core's centroid search
  (int8 activations against int8 centroids, the layer's Hadamard rotation first) and multiplies the
  selected activation centroids with the weight centroids the fixed indices select; the gradient
  reaches the selected centroids through that product and the layer's input straight through the
  search. The weight indices stay those of the fit. With integer tables (``table_bits`` 4 or 8) the
  forward value is that of the tables rounded as the layer compiles (a scale and integer zero point
  per cell, :meth:`FittedLayer.lut_output`), so the loss sees the table rounding the core computes;
  the gradient is the float product's (straight through the rounding).
* :class:`TrainableTmac` (weight-only LUT layers): the forward pass sees what the core computes:
  each activation row's slice of each core run in int8 with its own scale, and the codebooks in
  ``cb_bits``-bit codes with one scale per row block (:mod:`lutforge.golden.tmac`), both straight
  through, the fixed indices selecting the entries; only the float order of the sum differs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .hadamard import hadamard_t

__all__ = ["TrainableLut", "TrainableTmac"]


class TrainableLut:
    """A fitted LUT layer whose activation and weight codebooks are parameters (module docstring)."""

    def __init__(self, fitted, device: str):
        self.fitted = fitted
        self.act = torch.nn.Parameter(fitted.act_codebooks.detach().float().clone().to(device))
        self.weights = [torch.nn.Parameter(cb.detach().float().clone().to(device)) for cb in fitted.weight_codebooks]
        self.widx = [w.to(device) for w in fitted.widx]
        self._tables_version = None  # the parameters' versions the fitted layer's rounded tables are of

    def params(self) -> list:
        return [self.act, *self.weights]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m, shape = self.fitted.method, x.shape
        x2 = x.reshape(-1, shape[-1])
        with torch.no_grad():
            self.fitted.act_codebooks = self.act.detach().cpu()
            a = self.fitted.act_indices(x2.detach().cpu()).to(x.device)  # (T, P), the core's search
        xr = hadamard_t(x2, m.hadamard) if m.hadamard else x2
        p_count, v = self.act.shape[0], m.v
        xr = F.pad(xr, (0, p_count * v - xr.shape[-1]))
        chosen = self.act[torch.arange(p_count, device=x.device)[None], a]  # (T, P, v), grads to the centroids
        xq = (chosen + (xr - xr.detach()).reshape(chosen.shape)).reshape(x2.shape[0], -1)
        n = self.widx[0].shape[0]
        blocks = torch.arange(n, device=x.device) // (m.group_rows or n)
        y = 0
        for cb, widx in zip(self.weights, self.widx):
            w = cb[torch.arange(p_count, device=x.device)[None], blocks[:, None], widx]  # (N, P, v)
            y = y + xq @ w.reshape(n, -1).T
        if m.table_bits:
            with torch.no_grad():
                rounded = self._rounded_output(a)
            y = y + (rounded - y).detach()
        return y.reshape(*shape[:-1], n)

    def _rounded_output(self, a: torch.Tensor) -> torch.Tensor:
        """The layer's output with its tables rounded as it compiles; the tables are rebuilt only
        after an optimizer step has changed the codebooks (tensor versions)."""
        version = tuple(p._version for p in self.params())
        if version != self._tables_version:
            self.fitted.act_codebooks = self.act.detach().cpu()
            self.fitted.weight_codebooks = [w.detach().cpu() for w in self.weights]
            self.fitted.tables_q = None
            self._tables_version = version
        return self.fitted.lut_output(a.cpu()).to(a.device)

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        out = {f"{name}#act": self.act.detach().cpu().numpy()}
        out.update({f"{name}#w{i}": w.detach().cpu().numpy() for i, w in enumerate(self.weights)})
        return out


class TrainableTmac:
    """A fitted weight-only LUT layer whose weight codebooks are parameters (module docstring)."""

    def __init__(self, fitted, device: str, max_positions: int):
        self.fitted = fitted
        self.weights = [torch.nn.Parameter(fitted.weight_codebooks[0].detach().float().clone().to(device))]
        self.widx = fitted.widx[0].to(device)
        p_count, blocks = self.weights[0].shape[:2]
        # The lowering's runs (compiler.lower.lower_tmac_layer), each with its own activation scale.
        per_run = max_positions // blocks
        self.runs = [(p0, min(p_count, p0 + per_run)) for p0 in range(0, p_count, per_run)]

    def params(self) -> list:
        return self.weights

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m, shape = self.fitted.method, x.shape
        x2 = x.reshape(-1, shape[-1])
        xr = hadamard_t(x2, m.hadamard) if m.hadamard else x2
        cb = self.weights[0]
        p_count, v = cb.shape[0], m.v
        xr = F.pad(xr, (0, p_count * v - xr.shape[-1]))
        # golden.tmac.tmac_activations per run and tmac_integer_layer, straight through.
        scales = []
        for p0, p1 in self.runs:
            peak = xr.detach()[:, p0 * v:p1 * v].abs().amax(dim=-1, keepdim=True)
            scales.append(torch.where(peak > 0, peak / 127.0, torch.ones_like(peak)).expand(-1, (p1 - p0) * v))
        s_x = torch.cat(scales, dim=-1)
        xq = xr + (torch.clamp(torch.round(xr.detach() / s_x), -127, 127) * s_x - xr.detach())
        c_max = (1 << (m.cb_bits - 1)) - 1
        peak_w = cb.detach().abs().amax(dim=(0, 2, 3))
        s_w = torch.where(peak_w > 0, peak_w / c_max, torch.ones_like(peak_w))[None, :, None, None]
        cbq = cb + (torch.clamp(torch.round(cb.detach() / s_w), -c_max, c_max) * s_w - cb.detach())
        n = self.widx.shape[0]
        blocks = torch.arange(n, device=x.device) // (m.group_rows or n)
        w = cbq[torch.arange(p_count, device=x.device)[None], blocks[:, None], self.widx]  # (N, P, v)
        return (xq @ w.reshape(n, -1).T).reshape(*shape[:-1], n)
