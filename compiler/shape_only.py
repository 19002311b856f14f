"""Shape-only models (``--weights random``): a model's architecture with random weights, for
projections when the checkpoint is not at hand.

Everything the compiler derives from shapes is that of the real model: the Program's layout, its
memory images' sizes, the cores' cycles. Nothing derived from values is: perplexity, generated
text and the fits' errors of a shape-only Program are not quality figures, and every report of
one says so (:data:`NOT_QUALITY`).

The weights are drawn layer by layer when the compiler asks for them (a 1.7B-parameter model is
never held whole): linear weights N(0, 1/K) (the scale of a trained layer's output), norm gains
1. Calibration rows are N(0, 1), ``calibration.rows`` of them per layer input; a model with random
weights has no activations worth capturing. Both are seeded by the layer's name, so a repeated
compile is the same Program.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..support.cache import content_key
from .model import LinearLayer, LlamaConfig, expected_shapes, linear_shapes

__all__ = ["ShapeOnlyModel", "NOT_QUALITY"]

NOT_QUALITY = "shape only: random weights, not a quality figure"


def _rng(*parts) -> np.random.Generator:
    return np.random.default_rng(int(content_key(*parts)[:15], 16))


class _RandomWeights(Mapping):
    """The weights of a config's shapes, each drawn (float32) when it is read."""

    def __init__(self, config: LlamaConfig, seed: int):
        self._shapes = expected_shapes(config)
        self._seed = seed

    def __getitem__(self, name: str) -> np.ndarray:
        shape = self._shapes[name]
        if len(shape) == 1:
            return np.ones(shape, np.float32)
        rng = _rng("weight", name, self._seed)
        return (rng.standard_normal(shape, np.float32) / np.float32(np.sqrt(shape[1]))).astype(np.float32)

    def __iter__(self):
        return iter(self._shapes)

    def __len__(self) -> int:
        return len(self._shapes)


@dataclass
class ShapeOnlyModel:
    """A model's config with random weights: what the compile steps read of a ``ModelIR``
    (``config``, ``weights``, ``source``, ``source_hash``, ``linear_layers``), and random
    calibration rows in place of a capture."""
    config: LlamaConfig
    name: str
    seed: int = 0
    shape_only = True

    @property
    def source(self) -> str:
        return f"{self.name} ({NOT_QUALITY})"

    @property
    def source_hash(self) -> str:
        return content_key("shape-only", dataclasses.asdict(self.config), self.seed)

    @property
    def weights(self) -> Mapping:
        return _RandomWeights(self.config, self.seed)

    def linear_layers(self) -> list[LinearLayer]:
        return [LinearLayer(name, k, n) for name, (n, k) in linear_shapes(self.config).items()]

    def calibration_rows(self, layer: str, rows: int) -> np.ndarray:
        """``rows`` N(0, 1) input rows of ``layer`` (layers fed by the same activations share them)."""
        _, block, kind = layer.split(".", 2)
        source = {"attn.k": "attn.q", "attn.v": "attn.q", "mlp.up": "mlp.gate"}.get(kind, kind)
        k = expected_shapes(self.config)[layer][1]
        return _rng("calibration", block, source, self.seed).standard_normal((rows, k), np.float32)
