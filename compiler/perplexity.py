"""Perplexity over non-overlapping windows of a token stream (WikiText-2 test, by convention)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PerplexityResult:
    nll: float          # mean negative log-likelihood per predicted token, in nats
    ppl: float          # exp(nll)
    n_tokens: int       # predicted tokens: (window - 1) per window
    n_windows: int
    window: int
    window_nll: tuple[float, ...]
    seconds: float

    def __str__(self) -> str:
        return (f"ppl {self.ppl:.3f} (mean NLL {self.nll:.4f} nats over {self.n_tokens} tokens, "
                f"{self.n_windows} windows of {self.window}, {self.seconds:.1f} s)")


def perplexity(model: Callable[[torch.Tensor], torch.Tensor], tokens, window: int = 512,
               n_windows: int | None = None, progress: bool = True, device: str = "cpu") -> PerplexityResult:
    """Perplexity of `model` (token ids (1, T) -> logits (1, T, vocab)) on the first `n_windows`
    non-overlapping windows of `window` tokens (all whole windows if None). Each window starts
    from an empty context, so its first token is not predicted. The tokens go to ``device``, where
    the model must be (:func:`lutforge.compiler.torch_reference.on_device`)."""
    from ..support.progress import progress as progress_bar

    tokens = torch.tensor(np.asarray(tokens), dtype=torch.int64).reshape(-1)
    available = tokens.numel() // window
    if window < 2:
        raise ValueError(f"window = {window} is too short; a window needs at least 2 tokens to "
                         f"predict one.")
    if n_windows is None:
        n_windows = available
    if n_windows < 1 or n_windows > available:
        raise ValueError(f"n_windows = {n_windows} is outside 1..{available}: {tokens.numel()} tokens "
                         f"hold {available} whole windows of {window}; ask for fewer windows or a "
                         f"shorter window.")
    start = time.perf_counter()
    sums = []
    with torch.inference_mode():
        for w in progress_bar(range(n_windows), desc=f"perplexity ({window}-token windows)",
                              disable=None if progress else True, leave=False):
            chunk = tokens[w * window:(w + 1) * window][None].to(device)
            logits = model(chunk)
            nll = F.cross_entropy(logits[0, :-1].float(), chunk[0, 1:], reduction="sum")
            sums.append(float(nll))
    n_tokens = n_windows * (window - 1)
    mean = math.fsum(sums) / n_tokens
    return PerplexityResult(mean, math.exp(mean), n_tokens, n_windows, window,
                            tuple(s / (window - 1) for s in sums), time.perf_counter() - start)
