"""Plain PyTorch fp32 Llama (or Qwen3, with its QK-norm), built from a `ModelIR`: the float reference every quantized or
hardware path is compared with.

Every decoder linear layer goes through one call site, so a layer can be replaced by any callable
(a quantized GEMV, the golden model, the simulator) with `replace_linear`, and the inputs of any
layer can be recorded with `capture_inputs` for calibration. Attention (scores, softmax, weighted
values) goes through one call site too, replaced in every block with `replace_attention` (another
number format or multiplier: `compiler/attention_numerics.py`). RoPE follows Hugging Face Llama's
half-split ("NeoX") convention, which is the layout the frontends deliver q/k weights in.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .model import ModelIR

LinearFn = Callable[[torch.Tensor], torch.Tensor]
"""A replacement for a linear layer: takes x of shape (..., in_features) (fp32) and returns
y of shape (..., out_features). The layer's fp32 weight is `model.weight(name)`."""

AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""A replacement for attention: takes q (batch, heads, t, head_dim) after RoPE, k and v (batch,
heads, s, head_dim) with the key/value heads repeated for their query heads, and the additive mask
(t, s); returns (batch, heads, t, head_dim)."""


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """fp32 scaled dot-product attention, the reference's."""
    return torch.softmax((q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5 + mask, dim=-1) @ v


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float,
                 freq_factors: tuple | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).float()
                                / head_dim))
    if freq_factors is not None:  # Llama 3's scaled RoPE: frequency i divided by its factor
        inv_freq = inv_freq / torch.tensor(freq_factors, dtype=torch.float32, device=positions.device)
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: (batch, heads, seq, head_dim); pairs are (j, j + head_dim/2), not adjacent elements.
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class KVCache:
    """Keys and values (after RoPE) of the tokens a model has seen, per decoder block, for
    token-by-token decoding: :meth:`ReferenceModel.forward` with a cache runs only the new tokens
    through the linears, at positions after the cached ones."""

    def __init__(self):
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}
        self.length = 0


class ReferenceModel(torch.nn.Module):
    def __init__(self, ir: ModelIR):
        super().__init__()
        self.ir = ir
        self.config = ir.config
        # Read-only arrays (memory-mapped files) are copied: torch cannot wrap them safely.
        self._w: dict[str, torch.Tensor] = {
            name: torch.from_numpy(w) if w.flags.writeable else torch.tensor(w)
            for name, w in ir.weights.items()}
        self.linear_names: list[str] = [layer.name for layer in ir.linear_layers()]
        self._overrides: dict[str, LinearFn] = {}
        self._attention: AttentionFn = attention
        self._observers: list[Callable[[str, torch.Tensor], None]] = []

    def weight(self, name: str) -> torch.Tensor:
        """The fp32 weight of `name`."""
        return self._w[name]

    def to_device(self, device: str) -> None:
        """Keep every weight on ``device`` (``"cpu"``, ``"cuda"``); inputs must be there too."""
        self._w = {name: w.to(device) for name, w in self._w.items()}

    # -- hooks --------------------------------------------------------------------------------

    def replace_linear(self, name: str, fn: LinearFn | None) -> None:
        """Run `fn(x)` instead of `x @ W.T` for linear layer `name`; `None` restores the fp32 layer."""
        if name not in self.linear_names:
            raise KeyError(f"{name!r} is not a linear layer of this model; valid names look like "
                           f"{self.linear_names[0]!r} ... {self.linear_names[-1]!r}.")
        if fn is None:
            self._overrides.pop(name, None)
        else:
            self._overrides[name] = fn

    def replace_attention(self, fn: AttentionFn | None) -> None:
        """Run `fn(q, k, v, mask)` as every block's attention; `None` restores fp32 attention."""
        self._attention = attention if fn is None else fn

    @property
    def overrides(self) -> dict[str, LinearFn]:
        return dict(self._overrides)

    @contextmanager
    def observe_linear_inputs(self, fn: Callable[[str, torch.Tensor], None]) -> Iterator[None]:
        """Call `fn(name, x)` with every linear layer's input (shape (batch, seq, in_features))
        while the context is open."""
        self._observers.append(fn)
        try:
            yield
        finally:
            self._observers.remove(fn)

    @contextmanager
    def capture_inputs(self, names: Iterable[str] | None = None) -> Iterator[dict[str, list[torch.Tensor]]]:
        """Record the inputs of the named linear layers (default: all) as (tokens, in_features)
        fp32 tensors, one list entry per forward call."""
        wanted = set(self.linear_names if names is None else names)
        unknown = wanted - set(self.linear_names)
        if unknown:
            raise KeyError(f"{sorted(unknown)[:4]} are not linear layers of this model.")
        captured: dict[str, list[torch.Tensor]] = {n: [] for n in self.linear_names if n in wanted}

        def record(name: str, x: torch.Tensor) -> None:
            if name in captured:
                captured[name].append(x.detach().reshape(-1, x.shape[-1]).clone())

        with self.observe_linear_inputs(record):
            yield captured

    def linear(self, name: str, x: torch.Tensor) -> torch.Tensor:
        for obs in self._observers:
            obs(name, x)
        fn = self._overrides.get(name)
        if fn is None:
            return F.linear(x, self._w[name])
        y = fn(x)
        want = (*x.shape[:-1], self._w[name].shape[0])
        if tuple(y.shape) != want:
            raise ValueError(f"The replacement for {name!r} returned shape {tuple(y.shape)} for an "
                             f"input of shape {tuple(x.shape)}; it must return {want}.")
        return y

    # -- forward ------------------------------------------------------------------------------

    def forward(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Logits (batch, seq, vocab) for token ids (batch, seq) or (seq,), positions from 0, or
        from ``cache.length`` with a cache (which then takes the new tokens' keys and values)."""
        if tokens.dim() == 1:
            tokens = tokens[None]
        cfg = self.config
        b, t = tokens.shape
        start = cache.length if cache is not None else 0
        if start + t > cfg.context_length:
            raise ValueError(f"The sequence has {start + t} tokens, more than the model's context length "
                             f"{cfg.context_length}; split it into windows.")
        hd, nh, nkv = cfg.head_dim, cfg.n_heads, cfg.n_kv_heads
        cos, sin = rope_cos_sin(torch.arange(start, start + t, device=tokens.device), hd, cfg.rope_theta,
                                cfg.rope_freq_factors)
        # Query i (position start + i) sees keys 0 .. start + i.
        mask = torch.full((t, start + t), float("-inf"), device=tokens.device).triu(start + 1)
        h = F.embedding(tokens, self._w["embed"])
        for i in range(cfg.n_layers):
            p = f"layers.{i}."
            x = rms_norm(h, self._w[p + "attn_norm"], cfg.rms_eps)
            q = self.linear(p + "attn.q", x).view(b, t, nh, hd)
            k = self.linear(p + "attn.k", x).view(b, t, nkv, hd)
            if cfg.qk_norm:  # Qwen3: every head of q and k normalised before RoPE
                q = rms_norm(q, self._w[p + "attn.q_norm"], cfg.rms_eps)
                k = rms_norm(k, self._w[p + "attn.k_norm"], cfg.rms_eps)
            q, k = q.transpose(1, 2), k.transpose(1, 2)
            v = self.linear(p + "attn.v", x).view(b, t, nkv, hd).transpose(1, 2)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            if cache is not None:
                if start:
                    k, v = torch.cat([cache.keys[i], k], dim=2), torch.cat([cache.values[i], v], dim=2)
                cache.keys[i], cache.values[i] = k, v
            # Query head j reads key/value head j // (nh / nkv), as in Hugging Face's repeat_kv.
            k = k.repeat_interleave(nh // nkv, dim=1)
            v = v.repeat_interleave(nh // nkv, dim=1)
            attn = self._attention(q, k, v, mask)
            h = h + self.linear(p + "attn.o", attn.transpose(1, 2).reshape(b, t, nh * hd))
            x = rms_norm(h, self._w[p + "mlp_norm"], cfg.rms_eps)
            gated = F.silu(self.linear(p + "mlp.gate", x)) * self.linear(p + "mlp.up", x)
            h = h + self.linear(p + "mlp.down", gated)
        if cache is not None:
            cache.length = start + t
        h = rms_norm(h, self._w["norm"], cfg.rms_eps)
        return F.linear(h, self._w["embed" if cfg.tied_embeddings else "lm_head"])


def numpy_linear(fn: Callable[[np.ndarray], np.ndarray]) -> LinearFn:
    """Adapt a NumPy GEMV/GEMM `fn(x2d) -> y2d` (rows are tokens) to a `replace_linear` callable."""
    def run(x: torch.Tensor) -> torch.Tensor:
        # The layer runs on the host whatever device the rest of the model is on.
        x2 = x.detach().reshape(-1, x.shape[-1]).cpu().numpy()
        y2 = np.asarray(fn(x2), dtype=np.float32)
        return torch.from_numpy(y2).reshape(*x.shape[:-1], y2.shape[-1]).to(x.device)
    return run


def device_key(device: str) -> list[str]:
    """What a cache key holds of the device its entry was computed on: nothing for the CPU (so the
    CPU's keys are those of runs that named no device), else the kind of device, not its index (two
    GPUs of one kind compute alike). A GPU's float arithmetic differs from the CPU's in the last
    bits, so what it computes (calibration inputs, fits) is cached apart."""
    kind = torch.device(device).type
    return [] if kind == "cpu" else [kind]


@contextmanager
def on_device(model: "ReferenceModel", device: str):
    """``model``'s weights on ``device`` while the context is open, on the CPU again after it (where
    calibration, fits and lowering read them)."""
    model.to_device(device)
    try:
        yield model
    finally:
        model.to_device("cpu")


@contextmanager
def routed(model: "ReferenceModel", driver, names=None):
    """The named linear layers of ``model`` (default: all in the driver's Program) run through
    ``driver`` (a :class:`lutforge.program.host.HostDriver`) while the context is open, and in
    fp32 again after it, whatever happened inside."""
    names = list(names or driver.program.layers)
    for name in names:
        model.replace_linear(name, numpy_linear(lambda x, n=name: driver.linear(n, x)))
    try:
        yield driver
    finally:
        for name in names:
            model.replace_linear(name, None)
