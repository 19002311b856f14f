"""The budgeted search behind ``lutforge quantize``: per-layer sensitivity of every candidate,
loss probes, the Lagrangian choice under a streamed-bits budget, and the configuration file it
writes. Every score is the hardware arithmetic: lowered layers on the golden backend through the
host driver (:class:`lutforge.compiler.session.Session`).

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

:class:`~lutforge.compiler.session.MethodConfig` is what a run needs of it. ``bits_per_weight`` of a configuration is the
weight-count-weighted mean of :func:`lutforge.compiler.lut_methods.streamed_bits` over the 210
decoder linears (the embedding, the tied LM head and the norms are not counted; they are the same
for every method).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ..support.cache import content_key, read_cached, source_hash, write_cached
from ..support.checks import check_int
from ..support.errors import UsageError
from .lut_methods import MAX_TUNE_STEPS, LayerMethod, fit_cache_dir, fit_version, method_label, streamed_bits
from .session import SCORING_SOURCES, MethodConfig, Session, SessionSpec, worker_session

__all__ = ["search_budget", "write_method_config", "DominantLayer", "QuantizeReport", "minimum_budget",
           "SEARCH_CALIBRATION", "MAX_BUDGET", "quantize_search", "search_finetune"]


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
    quantized), the median of the probed factors for the others.

    A probe resolves an increase only above its noise, taken as the largest *decrease* any probe
    measured (one window of text: quantizing a layer moves the NLL by chance as much as that).
    An increase within the noise is counted as the noise, the most it can be, so that a layer the
    probe cannot resolve is not taken for free: on SmolLM2 a quarter of the probes fall below zero
    (down to -0.012 nats), and counting them as zero let the search put its coarsest candidate on
    61 layers whose errors then compound."""
    noise = max([0.0] + [-d for _, d in nll_increase.values()])
    alpha = {l: max(d, noise) / errors[l][c] for l, (c, d) in nll_increase.items() if errors[l][c] > 0}
    if not alpha:
        raise ValueError("No layer was probed with a finite, non-zero output error; probe at least one "
                         "layer with a candidate the sensitivity pass scored.")
    default = float(np.median(list(alpha.values())))
    return {l: alpha.get(l, default) for l in errors}


def probe_loss(s: "Session", errors: dict, menu: dict[str, LayerMethod], windows: int = 1,
               progress: bool = True, executor=None) -> dict[str, tuple[str, float]]:
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
    chosen = sorted(probes.items())
    if _fans_out(executor):
        spec = SessionSpec.of(s)
        nlls = executor.map(_probe, [(spec, l, menu[c], windows) for l, c in chosen],
                            labels=[f"loss probe of {l}" for l, _ in chosen], desc="loss probes")
    else:
        nlls = [_probe_nll(s, l, menu[c], windows) for l, c in tqdm(chosen, desc="loss probes", disable=not progress)]
    out = {l: (c, nll - base) for (l, c), nll in zip(chosen, nlls)}
    _write_json_entry(path, out)
    return out


def candidates(tune_steps: int = 0) -> dict[str, LayerMethod]:
    """The per-layer menu the search chooses from (labels -> methods); with ``tune_steps``, every LUT
    candidate's codebooks are tuned that many steps on its layer's output after the fit
    (:mod:`lutforge.compiler.layer_tune`), so the search scores, and the configuration compiles,
    the tuned fits."""
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
    if tune_steps:
        menu = [dataclasses.replace(m, tune_steps=tune_steps) if m.kind in ("lut", "tmac") else m for m in menu]
    return {method_label(m): m for m in menu}


def _scored(m: LayerMethod, bits: float, caps: dict[str, float], block: int, lut_every: int) -> bool:
    """Whether :func:`sensitivity` scores candidate ``m`` (streaming ``bits`` on a layer of decoder
    block ``block``; ``caps``: what MXINT4 and NVFP4 stream there)."""
    if m.kind == "tmac":
        return bits < caps["nvfp4"]
    return m.kind != "lut" or (bits < caps["mxint4"] and block % lut_every == 0)


def _layer_scores(s: "Session", name: str, menu: dict[str, LayerMethod], rows: int, lut_every: int):
    """One layer's row of :func:`sensitivity`: (errors, bits) by candidate label."""
    n, k = s.sizes[name]
    bits = {lab: streamed_bits(m, n, k) for lab, m in menu.items()}
    caps = {kind: streamed_bits(LayerMethod(kind=kind), n, k) for kind in ("mxint4", "nvfp4")}
    block = int(name.split(".")[1])
    errors = {lab: (s.layer_error(name, m, rows) if _scored(m, bits[lab], caps, block, lut_every) else float("inf"))
              for lab, m in menu.items()}
    return errors, bits


def _block_sensitivity(task) -> dict:
    spec, names, menu, rows, lut_every = task
    s = worker_session(spec)
    return {name: _layer_scores(s, name, menu, rows, lut_every) for name in names}


def _probe_nll(s: "Session", layer: str, method: LayerMethod, windows: int) -> float:
    """Valid NLL with only ``layer`` quantized (by ``method``), every other layer fp32."""
    cfg = MethodConfig(f"probe-{layer}", LayerMethod(kind="fp32"), {layer: method})
    return s.perplexity(cfg, windows, split="valid").nll


def _probe(task) -> float:
    spec, layer, method, windows = task
    return _probe_nll(worker_session(spec), layer, method, windows)


def _fans_out(executor) -> bool:
    """Whether ``executor`` runs tasks elsewhere than here (else the loops run in this session)."""
    from ..support.executor import LocalExecutor
    return executor is not None and not (isinstance(executor, LocalExecutor) and executor.workers == 1)


def sensitivity(s: "Session", menu: dict[str, LayerMethod], rows: int = 512,
                progress: bool = True, lut_every: int = 1, executor=None) -> tuple[dict, dict]:
    """Relative output MSE on held-out rows and streamed bits of every candidate on every layer
    (cached as JSON).

    A weight-only LUT candidate is scored on every layer where it streams fewer bits than NVFP4 (a
    fit takes seconds; where it streams more, NVFP4 or MXINT8 give less error for the bits on the
    layers measured). A co-quantized LUT candidate is scored only on layers where it streams fewer
    bits than MXINT4 (elsewhere it costs
    more bits and, on the layer measured in docs/quantization.md, has 6x MXINT4's relative output
    error, so the search would not choose it), in every decoder block by default (its GPTQ-VQ fit
    of activation and weight codebooks takes 1-15 s on 2 cores) or, for a quicker search, in every
    ``lut_every``-th block only; unscored entries are infinite."""
    from tqdm import tqdm

    key = content_key([[sorted(m.to_dict().items()), fit_version(m)] for m in menu.values()],
                      rows, s.calib.key, lut_every, source_hash(*SCORING_SOURCES))
    path = _cache_dir() / f"sensitivity-{key}.json"
    stored = _read_json_entry(path)
    if stored is not None:
        return stored["errors"], stored["bits"]
    errors, bits = {}, {}
    if _fans_out(executor):
        # One task per decoder block, each on a session of its own worker (same calibration, same
        # torch threads, so the same arithmetic as here).
        blocks: dict[str, list[str]] = {}
        for name in s.names:
            blocks.setdefault(name.split(".")[1], []).append(name)
        spec = SessionSpec.of(s)
        rows_of = executor.map(_block_sensitivity, [(spec, names, menu, rows, lut_every) for names in blocks.values()],
                               labels=[f"sensitivity of block {b}" for b in blocks], desc="sensitivity")
        for block_rows in rows_of:
            for name, (row_errors, row_bits) in block_rows.items():
                errors[name], bits[name] = row_errors, row_bits
    else:
        for name in tqdm(s.names, desc="sensitivity", disable=not progress):
            errors[name], bits[name] = _layer_scores(s, name, menu, rows, lut_every)
    _write_json_entry(path, {"errors": errors, "bits": bits})
    return errors, bits


# The calibration of ``lutforge quantize``: the rows it scores come from these.
SEARCH_CALIBRATION = {"windows": 4, "window": 512, "rows": 2048}
# The most a budget can ask: every layer in MXINT8, the costliest candidate.
MAX_BUDGET = 8.25


def minimum_budget(lut_every: int = 1, model: str = "smollm2") -> float:
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


def _blocks_scored(lut_every: int) -> str:
    return "every decoder block" if lut_every == 1 else f"every {lut_every}-th decoder block"


def search_finetune(steps: int):
    """The ``finetune`` section ``lutforge quantize --finetune STEPS`` writes: the shipped
    configuration's (its learning rates were chosen on held-out WikiText-2 valid) with ``steps``."""
    from .config import load_config, shipped_config_path

    ft = dataclasses.replace(load_config(shipped_config_path()).finetune, steps=steps)
    ft.validate()
    return ft


def quantize_search(budget: float, out_path, *, progress: bool = True, rows: int = 512,
                    lut_every: int = 1, finetune_steps: int | None = None, executor=None,
                    device: str = "cpu", threads: int = 2, tune_steps: int = 0) -> QuantizeReport:
    """``lutforge quantize``: per-layer sensitivity (relative output MSE of every candidate on
    held-out rows, weighted per layer by the model loss it costs: :func:`probe_loss`,
    :func:`loss_weights`), the budgeted search, and the chosen configuration written as YAML (with
    a ``finetune`` section of ``finetune_steps`` steps when given, so that ``run`` trains it). With
    ``tune_steps`` the LUT candidates are the tuned ones (:func:`candidates`).
    Calibration, fits and the probes' model operations run on ``device`` with ``threads`` torch
    threads, in every worker's session too (the same count everywhere, so that every executor gives
    the same sums). The arguments are checked before the model is loaded."""
    from .config import model_linears
    from .data import check_data

    check_int("rows", rows, 1, SEARCH_CALIBRATION["window"],
              fix="the search scores candidates on one held-out window of valid, one row per token")
    blocks = len({name.split(".")[1] for name in model_linears()})
    check_int("lut_every", lut_every, 1, blocks, fix=f"SmolLM2-135M has {blocks} decoder blocks")
    check_int("threads", threads, 1, 256, fix="give each session 1 or more torch threads")
    check_int("tune_steps", tune_steps, 0, MAX_TUNE_STEPS,
              fix="0 scores the fits as they are; each step runs a layer on its calibration rows")
    finetune = None if finetune_steps is None else search_finetune(finetune_steps)
    low = minimum_budget(lut_every)
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not low <= budget <= MAX_BUDGET:
        raise UsageError(f"Budget {budget!r} bits/weight is outside {low:.3f} to {MAX_BUDGET:g}: the cheapest "
                         f"candidates stream {low:.3f} bits/weight with co-quantized LUT candidates scored in "
                         f"{_blocks_scored(lut_every)} and MXINT8 everywhere streams {MAX_BUDGET:g}; choose a budget "
                         f"in that range.")
    check_data("valid")
    s = Session(SEARCH_CALIBRATION, progress=progress, device=device, threads=threads)
    menu = candidates(tune_steps)
    errors, bits = sensitivity(s, menu, rows, progress, lut_every, executor)
    # Output MSE alone ranks layers alike; weight each layer by its measured loss per unit MSE.
    probes = probe_loss(s, errors, menu, progress=progress, executor=executor)
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
