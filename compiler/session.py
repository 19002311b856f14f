"""The scoring session of the budgeted search (:mod:`lutforge.compiler.search`) and of
``bench/quant_pareto.py``: the model, its calibration and held-out inputs, and every score in the
hardware arithmetic (a layer's output error, a configuration's perplexity), with lowered layers on
the golden backend through the host driver. Kept apart from the search so that the scores' cache
keys (:data:`SCORING_SOURCES`) name the code that computes them and not the search around them.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..program.artifact import Program
from ..program.core import GemvCoreParams
from ..program.golden import GoldenBackend
from ..program.host import HostDriver
from ..support.errors import UsageError
from .layer_quant import quantize_method
from .lower import lower
from .lut_methods import LayerMethod, streamed_bits

__all__ = ["MethodConfig", "PerplexityResult", "Session", "load_method_config", "parse_method_config",
           "method_config", "SCORING_SOURCES", "SessionSpec", "worker_session"]


@dataclass(frozen=True)
class MethodConfig:
    name: str
    default: LayerMethod
    layers: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=lambda: {"windows": 4, "window": 512, "rows": 2048})
    model: str = "smollm2"
    evaluation: dict = field(default_factory=lambda: {"windows": 16, "window": 512})

    def method(self, layer: str) -> LayerMethod:
        return self.layers.get(layer, self.default)


@dataclass(frozen=True)
class PerplexityResult:
    """Perplexity of one configuration (``"fp32"`` for the unquantized model) on WikiText-2."""
    config: str
    perplexity: float
    nll: float
    bits_per_weight: float  # streamed bits per weight over the decoder linears
    windows: int
    window: int
    tokens: int
    data: str
    seconds: float

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def load_method_config(path) -> MethodConfig:
    from .config import load_config
    return method_config(load_config(path), str(path))


def parse_method_config(data: dict, name: str = "config") -> MethodConfig:
    from .config import parse_config
    return method_config(parse_config(data, name), name)


def method_config(cfg, name: str) -> MethodConfig:
    """What a layer-by-layer run needs of the configuration ``cfg`` (loaded from ``name``)."""
    if cfg.lut_methods is None:
        raise UsageError(f"The configuration {name} has no 'lut_methods' section; add one with 'default' "
                         f"and optional 'layers' to run it layer by layer.")
    return MethodConfig(cfg.name, cfg.lut_methods.default, dict(cfg.lut_methods.layers),
                        dataclasses.asdict(cfg.calibration), cfg.model, dataclasses.asdict(cfg.evaluation))


# The code that scores a layer (``Session.layer_error``: quantize, lower, the golden backend through
# the host driver) and a whole model (the loss probes' perplexity): with the fits' own versions,
# part of the sensitivity and loss-probe cache keys.
SCORING_SOURCES = ("lutforge.compiler.session", "lutforge.compiler.perplexity", "lutforge.compiler.torch_reference",
                   "lutforge.compiler.data", "lutforge.compiler.layer_quant", "lutforge.compiler.lower",
                   "lutforge.program.artifact", "lutforge.program.host", "lutforge.program.golden",
                   "lutforge.golden.block_gemv", "lutforge.golden.lut_gemv", "lutforge.golden.centroid_search",
                   "lutforge.golden.mx", "lutforge.golden.gemv_core")


class Session:
    """The model, its calibration inputs and the lowered layers of one run. Every score it gives
    (a layer's output error, a configuration's perplexity) is that of the hardware arithmetic: each
    quantized layer is lowered onto its core and run on the golden backend through the host driver,
    exactly as ``lutforge run`` runs a compiled Program.

    ``device`` is where the torch work runs: the calibration capture, the fits and the model's own
    operations in :meth:`perplexity`; the quantized layers run on the golden backend, on the host,
    wherever that is."""

    def __init__(self, calibration: dict | None = None, progress: bool = True, threads: int = 2,
                 core: GemvCoreParams | None = None, device: str = "cpu"):
        from .calibration import capture_calibration
        from .checkpoint import load_model

        torch.set_num_threads(threads)
        self.progress = progress
        self.device = device
        self.core = core or GemvCoreParams()
        self.ir, self.ref, self.tok = load_model(progress=progress)
        self.cal_params = calibration or {"windows": 4, "window": 512, "rows": 2048}
        c = self.cal_params
        self.calib = capture_calibration(self.ref, self.tok, n_windows=c["windows"], window=c["window"],
                                         rows=c["rows"], progress=progress, device=device)
        self.names = list(self.ref.linear_names)
        self.sizes = {n: tuple(self.ref.weight(n).shape) for n in self.names}
        self._lowered: dict = {}
        self._heldout: dict | None = None

    @property
    def heldout(self) -> dict[str, np.ndarray]:
        """Every layer's inputs on the WikiText-2 valid window that follows the calibration windows
        (one row per token): rows no fit has seen, on which candidates are scored. A GPTQ fit lowers
        the error on the rows it was fitted to far more than on others (docs/quantization.md), so an
        in-sample score would rank GPTQ-fitted candidates above what they give in the model."""
        if self._heldout is None:
            from .calibration import capture_calibration

            c = self.cal_params
            # The capture takes the first windows of valid; one more window than the calibration's,
            # every position of it, and only that last window kept.
            wider = capture_calibration(self.ref, self.tok, n_windows=c["windows"] + 1, window=c["window"],
                                        rows=(c["windows"] + 1) * c["window"], progress=self.progress,
                                        device=self.device)
            self._heldout = {n: np.ascontiguousarray(x[-c["window"]:]) for n, x in wider.inputs.items()}
        return self._heldout

    def weight(self, name: str) -> np.ndarray:
        return self.ref.weight(name).numpy()

    def lower(self, name: str, m: LayerMethod, core: GemvCoreParams | None = None):
        """Layer ``name`` quantized by ``m`` (fits from the cache) and lowered onto its core, with the
        lanes and sizes of ``core`` (default: the session's)."""
        core = core or self.core
        q = quantize_method(name, self.weight(name), self.calib.inputs[name], m, device=self.device)
        return lower(name, q, core.lanes, core.max_positions)

    @staticmethod
    def driver(layers: dict) -> HostDriver:
        """A host driver over the golden backend for the lowered ``layers`` (name -> layer)."""
        return HostDriver(Program(None, {}, layers), GoldenBackend())

    def bits(self, cfg: MethodConfig, only: list[str] | None = None) -> float:
        """Mean streamed bits per weight over the decoder linears (or the layers in ``only``)."""
        sizes = {l: self.sizes[l] for l in (only or self.names)}
        total = sum(n * k for n, k in sizes.values())
        return sum(streamed_bits(cfg.method(l), n, k) * n * k for l, (n, k) in sizes.items()) / total

    def lower_all(self, cfg: MethodConfig) -> dict:
        """The lowered layers of ``cfg`` (layers of kind ``fp32`` stay on the host, unquantized:
        the reference points of the benches)."""
        from tqdm import tqdm

        names = [n for n in self.names if cfg.method(n).kind != "fp32"]
        # Lowered layers of this configuration are kept for the next call; others are dropped to
        # bound memory.
        kept = {(n, cfg.method(n).key()): self._lowered.get((n, cfg.method(n).key())) for n in names}
        for (n, key), low in tqdm(kept.items(), desc=f"lower {cfg.name}", disable=not self.progress, leave=False):
            kept[n, key] = low or self.lower(n, cfg.method(n))
        self._lowered = kept
        return {n: low for (n, _), low in kept.items()}

    def perplexity(self, cfg: MethodConfig | None, windows: int, window: int = 512,
                   split: str = "test", device: str | None = None) -> PerplexityResult:
        """Perplexity of ``cfg`` (None: fp32) in the hardware arithmetic on the first ``windows``
        windows of WikiText-2 ``split`` (``"valid"`` only for calibration-side measurements such as
        the loss probes). On ``device`` (default: the session's) the model's own operations run
        there; the quantized layers run on the golden backend, on the host, either way."""
        from .data import wikitext2_tokens
        from .perplexity import perplexity
        from .torch_reference import on_device, routed

        ids, data = wikitext2_tokens(split, self.tok)
        device = device or self.device
        t0 = time.perf_counter()
        layers = {} if cfg is None else self.lower_all(cfg)
        with on_device(self.ref, device), routed(self.ref, self.driver(layers), list(layers)):
            r = perplexity(self.ref, ids, window=window, n_windows=windows, progress=self.progress, device=device)
        return PerplexityResult("fp32" if cfg is None else cfg.name, r.ppl, r.nll,
                                32.0 if cfg is None else self.bits(cfg), windows, window, r.n_tokens,
                                str(data.path), time.perf_counter() - t0)

    def layer_error(self, name: str, m: LayerMethod, rows: int = 512) -> float:
        """Relative output MSE ``||f(X) - X W^T||^2 / ||X W^T||^2`` of the lowered layer on the
        golden backend, on the first ``rows`` held-out rows (:attr:`heldout`)."""
        x = np.array(self.heldout[name][:rows], dtype=np.float32)
        ref = x.astype(np.float64) @ self.weight(name).astype(np.float64).T
        y = self.driver({name: self.lower(name, m)}).linear(name, x)
        return float(((y - ref) ** 2).sum() / (ref ** 2).sum())


@dataclass(frozen=True)
class SessionSpec:
    """What a worker process needs to build the same :class:`Session` (calibration, core, torch
    threads): the argument of fanned-out tasks that score layers or configurations."""
    calibration: tuple
    core: GemvCoreParams
    threads: int
    device: str = "cpu"

    @classmethod
    def of(cls, s: "Session") -> "SessionSpec":
        return cls(tuple(sorted(s.cal_params.items())), s.core, torch.get_num_threads(), s.device)


_WORKER_SESSIONS: dict = {}


def worker_session(spec: SessionSpec) -> Session:
    """The worker's session for ``spec``, built once per worker process (the model and its
    calibration: seconds to load, gigabytes to hold)."""
    if spec not in _WORKER_SESSIONS:
        _WORKER_SESSIONS.clear()
        _WORKER_SESSIONS[spec] = Session(dict(spec.calibration), progress=False, threads=spec.threads, core=spec.core,
                                         device=spec.device)
    return _WORKER_SESSIONS[spec]
