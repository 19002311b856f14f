"""The typed results of ``demo``, ``run`` and ``compile``: frozen, so their field names (and the
JSON keys ``to_json`` derives from them) are defined once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..compiler.evaluate import Mismatch

__all__ = ["LayerCheck", "DemoSeconds", "DemoGeneration", "DemoResult", "PerplexityRow", "RunResult", "GenerateResult",
           "CompileResult", "BoardCheck", "EstimateResult"]


@dataclass(frozen=True)
class LayerCheck:
    """One layer of ``demo``: golden against PyTorch fp32, sim against golden, cycles against the model."""
    layer: str
    kind: str               # the core it runs on: "lut" or "block"
    shape: tuple[int, int]  # (out_features, in_features)
    bit_exact: bool         # sim == golden in every accumulator of every generated token
    max_abs: float
    rel_rms: float
    cosine: float
    cycles: int             # simulated cycles of one decoded token
    model_cycles: int
    model_error: float      # (model - simulated) / simulated cycles

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "shape": list(self.shape)}


@dataclass(frozen=True)
class DemoSeconds:
    compile: float
    sim: float
    total: float


@dataclass(frozen=True)
class DemoGeneration:
    """``demo``'s greedy generation: Verilator's tokens, golden's and PyTorch fp32's."""
    prompt: str
    prompt_tokens: tuple[int, ...]
    tokens: tuple[int, ...]          # Verilator's
    text: str
    golden_tokens: tuple[int, ...]
    pytorch_tokens: tuple[int, ...]
    pytorch_text: str
    agreement: int                   # leading tokens shared with PyTorch fp32
    sim_sha256: str                  # every accumulator of every call, Verilator
    golden_sha256: str               # the same on the golden backend
    cycles: int                      # simulated core cycles of the whole generation


@dataclass(frozen=True)
class DemoResult:
    config: str
    config_hash: str
    layer_kinds: dict  # core kind -> compiled layers
    layers: tuple[LayerCheck, ...]
    first_mismatch: Mismatch | None
    tokens_compared_with_pytorch: int
    generation: DemoGeneration
    perplexity: tuple["PerplexityRow", ...]
    windows: int
    window: int
    sim_build_seconds: float
    sim_build_cached: int
    seconds: DemoSeconds
    target: str
    projections: tuple[dict, ...]  # lutforge.compiler.perf.program_cost, per target
    program: str
    bits_per_weight: float

    @property
    def all_bit_exact(self) -> bool:
        return self.first_mismatch is None and self.generation.tokens == self.generation.golden_tokens

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out.update(layers=[r.to_json() for r in self.layers], all_bit_exact=self.all_bit_exact,
                   first_mismatch=None if self.first_mismatch is None else vars(self.first_mismatch),
                   generation=dataclasses.asdict(self.generation), perplexity=[r.to_json() for r in self.perplexity],
                   seconds=dataclasses.asdict(self.seconds), projections=list(self.projections))
        return out


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
    """``run``: perplexity of each configuration on the same tokens, on one backend."""
    data: str
    data_sha256: str
    windows: int
    window: int
    rows: tuple[PerplexityRow, ...]
    backend: str = "golden"  # the configurations' backend ("golden" or "sim"); fp32 runs in PyTorch
    device: str = "cpu"  # where PyTorch ran the model's own operations
    model: str = "SmolLM2-135M"  # the bundled model, or the checkpoint's path

    @property
    def tokens(self) -> int:
        """Predicted tokens: each window predicts all its tokens but the first."""
        return self.windows * (self.window - 1)

    def to_json(self) -> dict:
        """The rows, and at the top the last row's perplexity, bits and name (the one asked about
        when a single configuration ran)."""
        last = self.rows[-1]
        return {"perplexity": last.perplexity, "bits_per_weight": last.bits_per_weight, "config": last.config,
                "data": self.data, "data_sha256": self.data_sha256, "windows": self.windows,
                "window": self.window, "tokens": self.tokens, "backend": self.backend,
                "device": self.device, "rows": [r.to_json() for r in self.rows]}


@dataclass(frozen=True)
class GenerateResult:
    """``generate``: greedy tokens from one backend and from PyTorch fp32 for the same prompt."""
    backend: str
    prompt: str
    prompt_tokens: tuple[int, ...]
    tokens: tuple[int, ...]
    text: str
    pytorch_tokens: tuple[int, ...]
    pytorch_text: str
    layers_on_hardware: int
    layer_kinds: dict        # kind -> layers ("lut", "block")
    blocks: str              # "host": only the linears on hardware; "hardware": whole decoder blocks
    accumulators_sha256: str
    seconds: float           # the backend's generation, prefill included
    pytorch_seconds: float
    cycles: int | None       # simulated cycles of every core and unit call (sim only)
    unit_cycles: int | None  # the decoder units' part of them (sim, blocks: hardware)
    unit_model_cycles: int | None  # the performance model's count of those (blocks: hardware)
    program: str

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        for key in ("prompt_tokens", "tokens", "pytorch_tokens"):
            out[key] = list(out[key])
        return out


@dataclass(frozen=True)
class CompileResult:
    config: str
    program: str  # the Program directory
    layers: tuple[str, ...]
    weights: str = "checkpoint"  # "random": a shape-only Program (lutforge.compiler.shape_only)

    def to_json(self) -> dict:
        return {"config": self.config, "program": self.program, "layers": list(self.layers), "weights": self.weights}


@dataclass(frozen=True)
class FinetuneResult:
    """``lutforge finetune``: the training run (held-out perplexity in the training arithmetic, on
    WikiText-2 valid) and the Program compiled from the trained weights."""
    config: str
    device: str
    steps: int
    best_step: int
    initial_holdout_perplexity: float
    best_holdout_perplexity: float
    tokens_seen: int
    train_seconds: float
    block_layers: int  # layers whose weights trained
    lut_layers: int    # layers whose codebooks trained
    loss_plot: str
    program: str

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class BoardCheck:
    """``run --board``: a check layer, or a Program's layer, on the board's core (or its simulation)
    against golden."""
    board: str
    port: str
    what: str  # the work done, in words
    mismatches: str  # empty when every result equals golden
    frames: int
    retries: int
    naks: int
    seconds: float
    core_cycles: int  # the device's cycles from each run's start to its done, summed (not the UART's)

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class EstimateResult:
    """``estimate``: the whole token of a compiled model on a target (lutforge.compiler.estimate)."""
    model: str
    weights: str                 # "random": a shape-only Program, not a quality figure
    config: str
    target: str
    lanes: int
    clock_mhz: float
    bandwidth_gbs: float
    host_bandwidth_gbs: float    # assumed, for the operations left on the host
    blocks: str                  # where the non-linear operations run: "hardware" (units) or "host"
    prompt: int
    new: int
    ms_per_token_decode: float   # mean over the decode passes of the generation
    ms_per_token_decode_at_context: dict  # cached tokens -> ms
    prefill_s: float
    latency_s: float             # prefill and decode of the generation
    bound: str
    units: dict                  # unit -> where, bound, ms_per_token, cycles_per_token (mean decoded token)
    lm_head_on_core_ms: float    # the LM head on the core with the default method (not compiled there)
    artifact_latency_s: float | None
    h200_linears_ms: float
    program: str
    note: str                    # what the figures are not (shape only), or ""

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), f"prefill_{self.prompt}_decode_{self.new}_s": self.latency_s,
                "ms_per_token_decode_at_context": {str(c): ms for c, ms in self.ms_per_token_decode_at_context.items()}}
