"""Whole-model fidelity of per-layer methods (:mod:`lutforge.compiler.lut_methods`): method
configurations, quantizing and lowering every decoder linear (fits cached), perplexity on
WikiText-2 test, and the budgeted search behind ``lutforge quantize``. Every score is the hardware
arithmetic: lowered layers on the golden backend through the host driver (:class:`Session`).

A method configuration is a configuration file (the one schema of :mod:`lutforge.compiler.config`)
with a ``lut_methods`` section::

    name: smollm2-lut
    model: smollm2
    calibration: {windows: 4, window: 512, rows: 2048}     # WikiText-2 *valid* only
    evaluation: {windows: 16, window: 512}                 # WikiText-2 test
    lut_methods:
      default: {kind: lut, v: 2, c_a: 256, c_w: 16, fit: gptq, hadamard: 64}
      layers:                                             # per-layer overrides
        layers.0.mlp.down: mxint8

:class:`MethodConfig` is what a run needs of it. ``bits_per_weight`` of a configuration is the
weight-count-weighted mean of :func:`lutforge.compiler.lut_methods.streamed_bits` over the 210
decoder linears (the embedding, the tied LM head and the norms are not counted; they are the same
for every method).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from ..program.artifact import Program
from ..program.core import GemvCoreParams
from ..program.golden import GoldenBackend
from ..program.host import HostDriver
from ..support.cache import content_key, read_cached, source_hash, write_cached
from ..support.checks import check_int
from ..support.errors import UsageError
from .layer_quant import quantize_method
from .lower import lower
from .lut_methods import LayerMethod, fit_cache_dir, fit_version, method_label, streamed_bits

__all__ = ["MethodConfig", "load_method_config", "method_config", "Session", "search_budget",
           "write_method_config", "PerplexityResult", "DominantLayer", "QuantizeReport", "minimum_budget",
           "SEARCH_CALIBRATION", "MAX_BUDGET"]


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


@dataclass(frozen=True)
class DominantLayer:
    """A layer whose chosen method costs the most estimated loss."""
    layer: str
    method: str
    rel_mse: float
    est_nll_increase: float


@dataclass(frozen=True)
class QuantizeReport:
    """``lutforge quantize``: the per-layer scores the search saw and the choice it made."""
    budget: float
    bits_per_weight: float
    choice: dict  # layer -> candidate label
    errors: dict  # layer -> candidate -> relative output MSE
    bits: dict  # layer -> candidate -> streamed bits per weight
    loss_probes: dict  # layer -> (candidate, NLL increase)
    loss_weights: dict  # layer -> NLL increase per unit relative MSE
    dominant_layers: tuple[DominantLayer, ...]  # the ten largest, largest first

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


def write_method_config(path, cfg: MethodConfig, comment: str = "", finetune=None) -> None:
    """``cfg`` as a configuration file, with ``finetune`` (a FinetuneConfig) as its training section."""
    data = {"name": cfg.name, "model": cfg.model, "calibration": cfg.calibration, "evaluation": cfg.evaluation,
            "lut_methods": {"default": cfg.default.to_dict(),
                            "layers": {n: m.to_dict() for n, m in sorted(cfg.layers.items())}}}
    if finetune is not None:
        data["finetune"] = dataclasses.asdict(finetune)
    text = "".join(f"# {line}\n" for line in comment.splitlines()) + yaml.safe_dump(data, sort_keys=False)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)


def _cache_dir() -> Path:
    return fit_cache_dir()

def _read_json_entry(path: Path):
    """The JSON value of the file entry at ``path``, or None when absent or damaged (then recomputed)."""
    stored = read_cached(path)
    return None if stored is None else json.loads(stored)


def _write_json_entry(path: Path, value) -> None:
    write_cached(path, json.dumps(value).encode())


# The code that scores a layer (``Session.layer_error``: quantize, lower, the golden backend through
# the host driver) and a whole model (the loss probes' perplexity): with the fits' own versions,
# part of the sensitivity and loss-probe cache keys.
SCORING_SOURCES = ("lutforge.compiler.search", "lutforge.compiler.perplexity", "lutforge.compiler.torch_reference",
                   "lutforge.compiler.data", "lutforge.compiler.layer_quant", "lutforge.compiler.lower",
                   "lutforge.program.artifact", "lutforge.program.host", "lutforge.program.golden",
                   "lutforge.golden.block_gemv", "lutforge.golden.lut_gemv", "lutforge.golden.centroid_search",
                   "lutforge.golden.mx", "lutforge.golden.gemv_core")


class Session:
    """The model, its calibration inputs and the lowered layers of one run. Every score it gives
    (a layer's output error, a configuration's perplexity) is that of the hardware arithmetic: each
    quantized layer is lowered onto its core and run on the golden backend through the host driver,
    exactly as ``lutforge run`` runs a compiled Program."""

    def __init__(self, calibration: dict | None = None, progress: bool = True, threads: int = 2,
                 core: GemvCoreParams | None = None):
        from .calibration import capture_calibration
        from .bundled import load_model

        torch.set_num_threads(threads)
        self.progress = progress
        self.core = core or GemvCoreParams()
        self.ir, self.ref, self.tok = load_model(progress)
        self.cal_params = calibration or {"windows": 4, "window": 512, "rows": 2048}
        c = self.cal_params
        self.calib = capture_calibration(self.ref, self.tok, n_windows=c["windows"], window=c["window"],
                                         rows=c["rows"], progress=progress)
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
                                        rows=(c["windows"] + 1) * c["window"], progress=self.progress)
            self._heldout = {n: np.ascontiguousarray(x[-c["window"]:]) for n, x in wider.inputs.items()}
        return self._heldout

    def weight(self, name: str) -> np.ndarray:
        return self.ref.weight(name).numpy()

    def lower(self, name: str, m: LayerMethod):
        """Layer ``name`` quantized by ``m`` (fits from the cache) and lowered onto its core."""
        q = quantize_method(name, self.weight(name), self.calib.inputs[name], m)
        return lower(name, q, self.core.lanes, self.core.max_positions)

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
                   split: str = "test") -> PerplexityResult:
        """Perplexity of ``cfg`` (None: fp32) in the hardware arithmetic on the first ``windows``
        windows of WikiText-2 ``split`` (``"valid"`` only for calibration-side measurements such as
        the loss probes)."""
        from .data import wikitext2_tokens
        from .perplexity import perplexity
        from .torch_reference import routed

        ids, data = wikitext2_tokens(split, self.tok)
        t0 = time.perf_counter()
        layers = {} if cfg is None else self.lower_all(cfg)
        with routed(self.ref, self.driver(layers), list(layers)):
            r = perplexity(self.ref, ids, window=window, n_windows=windows, progress=self.progress)
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


def search_budget(errors: dict[str, dict[str, float]], bits: dict[str, dict[str, float]],
                  sizes: dict[str, tuple[int, int]], budget: float) -> dict[str, str]:
    """Choose one candidate per layer minimising the summed relative output MSE subject to
    the weight-count-weighted mean streamed bits <= ``budget``.

    Lagrangian relaxation: for a multiplier lam each layer independently takes
    ``argmin err + lam * bits * numel / total``; lam is bisected to the smallest value that meets
    the budget; the budget left over is then spent greedily (largest error drop per extra bit). Raises when even the cheapest candidate of every layer exceeds the budget."""
    total = sum(n * k for n, k in sizes.values())

    def pick(lam: float) -> dict[str, str]:
        return {l: min(errors[l], key=lambda c: errors[l][c] + lam * bits[l][c] * sizes[l][0] * sizes[l][1] / total)
                for l in errors}

    def mean_bits(choice) -> float:
        return sum(bits[l][c] * sizes[l][0] * sizes[l][1] for l, c in choice.items()) / total

    # Only scored candidates (finite error) can be chosen; the others do not bound the budget.
    cheapest = {l: min((c for c in bits[l] if np.isfinite(errors[l][c])), key=bits[l].get) for l in errors}
    if mean_bits(cheapest) > budget + 1e-12:
        raise UsageError(f"Budget {budget} bits/weight is below the cheapest candidates' "
                         f"{mean_bits(cheapest):.3f} bits/weight; raise the budget or add cheaper methods.")
    lo, hi = 0.0, 1.0
    while mean_bits(pick(hi)) > budget:
        hi *= 4
    for _ in range(60):
        mid = (lo + hi) / 2
        if mean_bits(pick(mid)) > budget:
            lo = mid
        else:
            hi = mid
    choice = pick(hi)
    # Greedy fill of the budget the relaxation leaves: best error drop per extra bit that fits.
    while True:
        spare = budget - mean_bits(choice)
        best = None
        for l, c in choice.items():
            numel = sizes[l][0] * sizes[l][1]
            for c2 in errors[l]:
                extra = (bits[l][c2] - bits[l][c]) * numel / total
                gain = errors[l][c] - errors[l][c2]
                if gain > 0 and extra <= spare + 1e-12:
                    rate = gain / max(extra, 1e-30)
                    if best is None or rate > best[0]:
                        best = (rate, l, c2)
        if best is None:
            return choice
        choice[best[1]] = best[2]


def loss_weights(errors: dict[str, dict[str, float]], nll_increase: dict[str, tuple[str, float]]) -> dict[str, float]:
    """Per-layer factor turning relative output MSE into model loss: ``alpha_l = dNLL / MSE`` for
    each probed layer (``nll_increase[l] = (candidate, dNLL)`` measured with only layer ``l``
    quantized), the median of the probed factors for the others. Negative increases (noise on a
    harmless layer) count as zero."""
    alpha = {l: max(d, 0.0) / errors[l][c] for l, (c, d) in nll_increase.items() if errors[l][c] > 0}
    if not alpha:
        raise ValueError("No layer was probed with a finite, non-zero output error; probe at least one "
                         "layer with a candidate the sensitivity pass scored.")
    default = float(np.median(list(alpha.values())))
    return {l: alpha.get(l, default) for l in errors}


def probe_loss(s: "Session", errors: dict, menu: dict[str, LayerMethod], windows: int = 1,
               progress: bool = True) -> dict[str, tuple[str, float]]:
    """Model-level sensitivity: the NLL increase on WikiText-2 *valid* when only one layer takes
    its cheapest scored LUT candidate (co-quantized or weight-only; every other layer fp32), for
    every layer where one was scored. Cached as JSON next to the sensitivity table."""
    from tqdm import tqdm

    probes = {}
    for l in errors:
        scored = [c for c, m in menu.items() if m.kind in ("lut", "tmac") and np.isfinite(errors[l][c])]
        if scored:
            probes[l] = min(scored, key=lambda c: streamed_bits(menu[c], *s.sizes[l]))
    methods = {c: [menu[c].to_dict(), fit_version(menu[c])] for c in set(probes.values())}
    key = content_key(sorted(probes.items()), methods, s.calib.key, windows, source_hash(*SCORING_SOURCES))
    path = _cache_dir() / f"loss-probes-{key}.json"
    stored = _read_json_entry(path)
    if stored is not None:
        return {l: tuple(v) for l, v in stored.items()}
    base = s.perplexity(None, windows, split="valid").nll
    out = {}
    for l, c in tqdm(sorted(probes.items()), desc="loss probes", disable=not progress):
        cfg = MethodConfig(f"probe-{l}", LayerMethod(kind="fp32"), {l: menu[c]})
        out[l] = (c, s.perplexity(cfg, windows, split="valid").nll - base)
    _write_json_entry(path, out)
    return out


def candidates() -> dict[str, LayerMethod]:
    """The per-layer menu the search chooses from (labels -> methods)."""
    # GPTQ-rounded block formats are not offered: they cut the layer output error 1.5-6x on held-out
    # calibration rows, yet raise MXINT4's whole-model perplexity (docs/quantization.md), so an
    # output-error search would choose them everywhere and be misled.
    # Only kinds a core runs are offered (bf16 has none), so every chosen configuration compiles.
    menu = [LayerMethod(kind="mxint8"), LayerMethod(kind="mxint4"),
            LayerMethod(kind="nvfp4"),
            LayerMethod(v=4, c_a=64, c_w=16, table_bits=4, fit="gptq", hadamard=64),
            LayerMethod(v=2, c_a=64, c_w=16, table_bits=4, fit="gptq", hadamard=64),
            # Weight-only LUT layers: per-column 16-entry codebooks (4.08-4.67 bits, near NVFP4's
            # held-out layer error on most layers, docs/quantization.md), and 2-vectors with 16 or 64
            # entries (2.1-2.7 and 3.3-3.9 bits: the 64-entry one has MXINT4's error on the MLP's
            # gate and up projections at 3.33 bits).
            LayerMethod(kind="tmac", v=1, c_w=16, fit="gptq", hadamard=64),
            LayerMethod(kind="tmac", v=2, c_w=16, fit="gptq", hadamard=64),
            LayerMethod(kind="tmac", v=2, c_w=64, fit="gptq", hadamard=64)]
    return {method_label(m): m for m in menu}


def _scored(m: LayerMethod, bits: float, caps: dict[str, float], block: int, lut_every: int) -> bool:
    """Whether :func:`sensitivity` scores candidate ``m`` (streaming ``bits`` on a layer of decoder
    block ``block``; ``caps``: what MXINT4 and NVFP4 stream there)."""
    if m.kind == "tmac":
        return bits < caps["nvfp4"]
    return m.kind != "lut" or (bits < caps["mxint4"] and block % lut_every == 0)


def sensitivity(s: "Session", menu: dict[str, LayerMethod], rows: int = 512,
                progress: bool = True, lut_every: int = 4) -> tuple[dict, dict]:
    """Relative output MSE on held-out rows and streamed bits of every candidate on every layer
    (cached as JSON).

    A weight-only LUT candidate is scored on every layer where it streams fewer bits than NVFP4 (a
    fit takes seconds; where it streams more, NVFP4 or MXINT8 give less error for the bits on the
    layers measured). A co-quantized LUT candidate is scored only on layers where it streams fewer
    bits than MXINT4 (elsewhere it costs
    more bits and, on the layer measured in docs/quantization.md, has 6x MXINT4's relative output
    error, so the search would not choose it) and, because its GPTQ-VQ fit of activation and weight
    codebooks takes about a minute on a shared 2-core machine, only in every ``lut_every``-th
    decoder block; unscored entries are infinite."""
    from tqdm import tqdm

    key = content_key([[sorted(m.to_dict().items()), fit_version(m)] for m in menu.values()],
                      rows, s.calib.key, lut_every, source_hash(*SCORING_SOURCES))
    path = _cache_dir() / f"sensitivity-{key}.json"
    stored = _read_json_entry(path)
    if stored is not None:
        return stored["errors"], stored["bits"]
    errors, bits = {}, {}
    for name in tqdm(s.names, desc="sensitivity", disable=not progress):
        n, k = s.sizes[name]
        bits[name] = {lab: streamed_bits(m, n, k) for lab, m in menu.items()}
        caps = {kind: streamed_bits(LayerMethod(kind=kind), n, k) for kind in ("mxint4", "nvfp4")}
        block = int(name.split(".")[1])
        errors[name] = {lab: (s.layer_error(name, m, rows) if _scored(m, bits[name][lab], caps, block, lut_every)
                              else float("inf")) for lab, m in menu.items()}
    _write_json_entry(path, {"errors": errors, "bits": bits})
    return errors, bits


# The calibration of ``lutforge quantize``: the rows it scores come from these.
SEARCH_CALIBRATION = {"windows": 4, "window": 512, "rows": 2048}
# The most a budget can ask: every layer in MXINT8, the costliest candidate.
MAX_BUDGET = 8.25


def minimum_budget(lut_every: int = 4, model: str = "smollm2") -> float:
    """The smallest budget :func:`quantize_search` can meet, known before any work: the mean
    streamed bits when every layer takes its cheapest candidate that :func:`sensitivity` scores
    (the rule of :func:`_scored`: co-quantized LUT candidates only in every ``lut_every``-th
    block)."""
    from .config import model_linears

    sizes = model_linears(model)
    menu = candidates()
    total = sum(n * k for n, k in sizes.values())
    cheapest = 0.0
    for name, (n, k) in sizes.items():
        caps = {kind: streamed_bits(LayerMethod(kind=kind), n, k) for kind in ("mxint4", "nvfp4")}
        scored = [m for m in menu.values()
                  if _scored(m, streamed_bits(m, n, k), caps, int(name.split(".")[1]), lut_every)]
        cheapest += min(streamed_bits(m, n, k) for m in scored) * n * k
    return cheapest / total


def search_finetune(steps: int):
    """The ``finetune`` section ``lutforge quantize --finetune STEPS`` writes: the hyper-parameters
    the shipped configurations train with (learning rates chosen on held-out WikiText-2 valid)."""
    from .config import FinetuneConfig

    ft = FinetuneConfig(steps=steps, lr=2e-5, codebook_lr=1e-4, window=256, holdout=4, eval_every=25)
    ft.validate()
    return ft


def quantize_search(budget: float, out_path, *, progress: bool = True, rows: int = 512,
                    lut_every: int = 4, finetune_steps: int | None = None) -> QuantizeReport:
    """``lutforge quantize``: per-layer sensitivity (relative output MSE of every candidate on
    held-out rows, weighted per layer by the model loss it costs: :func:`probe_loss`,
    :func:`loss_weights`), the budgeted search, and the chosen configuration written as YAML (with
    a ``finetune`` section of ``finetune_steps`` steps when given, so that ``run`` trains it).
    The arguments are checked before the model is loaded."""
    from .config import model_linears
    from .data import check_data

    check_int("rows", rows, 1, SEARCH_CALIBRATION["window"],
              fix="the search scores candidates on one held-out window of valid, one row per token")
    blocks = len({name.split(".")[1] for name in model_linears()})
    check_int("lut_every", lut_every, 1, blocks, fix=f"SmolLM2-135M has {blocks} decoder blocks")
    finetune = None if finetune_steps is None else search_finetune(finetune_steps)
    low = minimum_budget(lut_every)
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not low <= budget <= MAX_BUDGET:
        raise UsageError(f"Budget {budget!r} bits/weight is outside {low:.3f} to {MAX_BUDGET:g}: the cheapest "
                         f"candidates stream {low:.3f} bits/weight with a co-quantized LUT candidate scored in every "
                         f"{lut_every}-th block and MXINT8 everywhere streams {MAX_BUDGET:g}; choose a budget "
                         f"in that range.")
    check_data("valid")
    s = Session(SEARCH_CALIBRATION, progress=progress)
    menu = candidates()
    errors, bits = sensitivity(s, menu, rows, progress, lut_every)
    # Output MSE alone ranks layers alike; weight each layer by its measured loss per unit MSE.
    probes = probe_loss(s, errors, menu, progress=progress)
    alpha = loss_weights(errors, probes)
    weighted = {l: {c: alpha[l] * e for c, e in row.items()} for l, row in errors.items()}
    choice = search_budget(weighted, bits, s.sizes, budget)
    cfg = MethodConfig(Path(out_path).stem, menu["mxint8"],
                       {l: menu[c] for l, c in choice.items()}, s.cal_params)
    ranked = sorted(choice, key=lambda l: -weighted[l][choice[l]])
    report = QuantizeReport(budget, s.bits(cfg), choice, errors, bits, probes, alpha,
                            tuple(DominantLayer(l, choice[l], errors[l][choice[l]], weighted[l][choice[l]])
                                  for l in ranked[:10]))
    counts = {}
    for c in choice.values():
        counts[c] = counts.get(c, 0) + 1
    comment = (f"lutforge quantize --budget {budget}: {report.bits_per_weight:.3f} streamed bits/weight; "
               f"methods: {counts}\nlayers that dominate the estimated loss: "
               + ", ".join(f"{d.layer} (estimated NLL +{d.est_nll_increase:.3g}, relative output MSE "
                           f"{d.rel_mse:.2e})" for d in report.dominant_layers[:5]))
    write_method_config(out_path, cfg, comment, finetune)
    return report
