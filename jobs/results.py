"""The typed results of ``demo``, ``run`` and ``compile``: frozen, so their field names (and the
JSON keys ``to_json`` derives from them) are defined once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..compiler.evaluate import Mismatch

if TYPE_CHECKING:  # compiler.search imports torch, which reading a result does not need
    from ..compiler.search import PerplexityResult

__all__ = ["LayerCheck", "DemoSeconds", "DemoResult", "PerplexityRow", "RunResult", "MethodRunResult",
           "CompileResult", "BoardCheck"]


@dataclass(frozen=True)
class LayerCheck:
    """One layer of ``demo``: golden against PyTorch fp32, sim against golden, cycles against the model."""
    layer: str
    shape: tuple[int, int]  # (out_features, in_features)
    runs: int
    bit_exact: bool
    max_abs: float
    rel_rms: float
    cosine: float
    cycles: int
    model_cycles: int
    model_error: float  # (model - simulated) / simulated cycles

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "shape": list(self.shape)}


@dataclass(frozen=True)
class DemoSeconds:
    compile: float
    sim: float
    total: float


@dataclass(frozen=True)
class DemoResult:
    config: str
    config_hash: str
    layers: tuple[LayerCheck, ...]
    first_mismatch: Mismatch | None
    tokens_compared_with_pytorch: int
    tokens_simulated: int
    sim_build_seconds: float
    sim_build_cached: int
    seconds: DemoSeconds
    target: str
    projections: tuple[dict, ...]  # lutforge.compiler.perf.model_cost, per model and target
    program: str
    bits_per_weight: float

    @property
    def all_bit_exact(self) -> bool:
        return self.first_mismatch is None

    def to_json(self) -> dict:
        return {"config": self.config, "config_hash": self.config_hash,
                "layers": [r.to_json() for r in self.layers], "all_bit_exact": self.all_bit_exact,
                "first_mismatch": None if self.first_mismatch is None else vars(self.first_mismatch),
                "tokens_compared_with_pytorch": self.tokens_compared_with_pytorch,
                "tokens_simulated": self.tokens_simulated, "sim_build_seconds": self.sim_build_seconds,
                "sim_build_cached": self.sim_build_cached, "seconds": dataclasses.asdict(self.seconds),
                "target": self.target, "projections": list(self.projections), "program": self.program,
                "bits_per_weight": self.bits_per_weight}


@dataclass(frozen=True)
class PerplexityRow:
    """One configuration of ``run`` on the golden backend (``quantization`` is None for fp32)."""
    config: str
    perplexity: float
    nll: float
    bits_per_weight: float
    seconds: float
    quantization: dict | None = None

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        if self.quantization is None:
            del out["quantization"]
        return out


@dataclass(frozen=True)
class RunResult:
    """``run`` on the golden backend: perplexity of each configuration on the same tokens."""
    data: str
    data_sha256: str
    windows: int
    window: int
    rows: tuple[PerplexityRow, ...]

    @property
    def tokens(self) -> int:
        """Predicted tokens: each window predicts all its tokens but the first."""
        return self.windows * (self.window - 1)

    def to_json(self) -> dict:
        return {"data": self.data, "data_sha256": self.data_sha256, "windows": self.windows,
                "window": self.window, "tokens": self.tokens, "rows": [r.to_json() for r in self.rows]}


@dataclass(frozen=True)
class MethodRunResult:
    """``run`` with per-layer method configurations; the summary keys are those of the last row."""
    rows: tuple[PerplexityResult, ...]

    def to_json(self) -> dict:
        last = self.rows[-1]
        return {"perplexity": last.perplexity, "bits_per_weight": last.bits_per_weight,
                "config": last.config, "windows": last.windows, "rows": [r.to_json() for r in self.rows]}


@dataclass(frozen=True)
class CompileResult:
    config: str
    program: str  # the Program directory
    layers: tuple[str, ...]

    def to_json(self) -> dict:
        return {"config": self.config, "program": self.program, "layers": list(self.layers)}


@dataclass(frozen=True)
class BoardCheck:
    """``run --board``: a check layer on the board's core (or its simulation) against golden."""
    board: str
    port: str
    what: str  # the work done, in words
    mismatches: str  # empty when every result equals golden
    frames: int
    retries: int
    naks: int
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "passed": self.passed}
