"""The compile flow as named, restartable steps: ``import -> calibrate -> [finetune] -> quantize -> emit``.

Each step writes its intermediate under ``<build>/<step>/`` and a JSON report
``<build>/reports/<step>.json`` holding the hash of its inputs, the SHA-256 of every output file
and what it measured. A step whose report names the same input hash and whose outputs still
match their hashes is skipped (its outputs are loaded instead), so an interrupted or repeated
compile restarts where it stopped.

* ``import``   — the model (GGUF) and its content hash; report only.
* ``calibrate``— inputs of every selected linear layer on WikiText-2 valid
                 (:func:`lutforge.compiler.calibration.capture_calibration`); ``calibrate/calibration.npz``.
* ``finetune`` — only with a ``finetune`` section: quantization-aware training of the block-format
                 layers (:mod:`lutforge.compiler.finetune`; trained weights in the cache under
                 ``finetune/``, resumable); ``finetune/history.json`` and ``finetune/loss.png``. The
                 quantize step then quantizes the trained weights.
* ``quantize`` — every layer by its method (:mod:`lutforge.compiler.layer_quant`): with a
                 ``lut_methods`` section the layer's method (a LUT fit or a block format, from the
                 fit caches), else LUT-LLM co-quantization with the ``quantization`` section
                 (:func:`lutforge.golden.lut_layer.co_quantize`) with content-hashed caches under
                 ``$LUTFORGE_CACHE``: ``kmeans/`` (codebooks and indices, shared by table variants)
                 and ``codebooks/`` (whole layers) (key: weight bytes, calibration bytes, the
                 quantization section, the golden sources; file entries checked against their
                 SHA-256 when read, see :func:`lutforge.support.cache.read_cached`);
                 ``quantize/<layer>.npz``.
* ``emit``     — lowering onto the layer's core (:func:`lutforge.compiler.lower.lower`: LUT
                 layers onto the LUT core, block layers onto the block core) and the Program
                 directory ``program/``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..golden.lut_layer import LutLayer, co_quantize
from ..program.artifact import Program, read_program, write_program
from ..support.cache import atomic_write, cache_root, content_key, read_cached, sha256_hex, source_hash, write_cached
from ..support.errors import UsageError
from ..support.toolchain import tool_versions
from .config import Config
from .layer_quant import LutStages, from_bytes, layer_bytes, layer_from_bytes, npz_bytes, quantize_method, to_bytes
from .lower import lower

__all__ = ["STEPS", "Build", "quantize_layer", "layer_cache_key", "layer_bytes", "layer_from_bytes",
           "compile_model"]

STEPS = ("import", "calibrate", "finetune", "quantize", "emit")
KMEANS_KEYS = ("v", "c_a", "c_w", "group_rows", "iterations", "seed")
# The code that co-quantizes a layer and the libraries it runs on: part of every codebook, k-means
# and quantize-step key, so editing that code recomputes what it computed.
CO_QUANTIZE_SOURCES = ("lutforge.golden.lut_layer", "lutforge.golden.codebooks", "lutforge.golden.lut_tables",
                       "lutforge.golden.centroid_search")
# The code that quantizes a layer by its lut_methods method (the fits have their own cache keys).
METHOD_SOURCES = ("lutforge.compiler.layer_quant", "lutforge.compiler.lut_methods", "lutforge.compiler.gptq_blocks",
                  "lutforge.golden.mx")
CO_QUANTIZE_LIBRARIES = ("numpy", "ml-dtypes")


def co_quantize_version() -> str:
    """The source hash of :data:`CO_QUANTIZE_SOURCES` and the versions of :data:`CO_QUANTIZE_LIBRARIES`."""
    return content_key(source_hash(*CO_QUANTIZE_SOURCES), tool_versions(*CO_QUANTIZE_LIBRARIES))


def layer_cache_key(weight: np.ndarray, calibration: np.ndarray, quant: dict) -> str:
    return content_key(np.asarray(weight, dtype=np.float32), np.asarray(calibration, dtype=np.float32),
                       quant, co_quantize_version())


def quantize_layer(weight: np.ndarray, calibration: np.ndarray, quant, *, cache: bool = True,
                   progress: bool = False) -> tuple[LutLayer, bool]:
    """Co-quantize one layer with the ``quantization`` section ``quant``; (layer, from_cache)."""
    q = dataclasses.asdict(quant)
    key = layer_cache_key(weight, calibration, q)
    path = cache_root() / "codebooks" / f"{key}.npz"
    stored = read_cached(path) if cache else None
    if stored is not None:
        return layer_from_bytes(stored), True
    # The k-means result depends on fewer keys than the layer: table variants share it.
    km_key = layer_cache_key(weight, calibration, {k: q[k] for k in KMEANS_KEYS})
    km_path = cache_root() / "kmeans" / f"{km_key}.npz"
    codebooks = None
    stored = read_cached(km_path) if cache else None
    if stored is not None:
        with np.load(io.BytesIO(stored)) as f:
            codebooks = (f["act_codebooks"], f["weight_codebooks"], f["widx"])
    p_count = -(-weight.shape[1] // quant.v)
    ppg = (quant.positions_per_run or p_count) if quant.granularity == "block" else 1
    layer = co_quantize(weight, calibration, v=quant.v, c_a=quant.c_a, c_w=quant.c_w,
                        group_rows=quant.group_rows, table_bits=quant.table_bits,
                        granularity=quant.granularity, rounding=quant.rounding, head_rows=quant.head_rows,
                        positions_per_group=ppg, scheme=quant.scheme, seed=quant.seed,
                        iterations=quant.iterations, progress=progress, codebooks=codebooks)
    if cache and codebooks is None:
        write_cached(km_path, npz_bytes(act_codebooks=layer.act_codebooks, weight_codebooks=layer.weight_codebooks,
                                   widx=layer.widx))
    if cache:
        write_cached(path, layer_bytes(layer))
    return layer, False


@dataclass
class Build:
    """A build directory and its step reports."""
    root: Path
    config: Config
    progress: bool = True
    log: list[str] = field(default_factory=list)
    # Where the torch work of the steps runs (calibration, fine-tuning, fits): cpu, cuda or auto
    # (lutforge.compiler.finetune.resolve_device). What a GPU computes is cached apart (device_key).
    device: str = "cpu"

    def __post_init__(self):
        self.root = Path(self.root)
        (self.root / "reports").mkdir(parents=True, exist_ok=True)

    def report_path(self, step: str) -> Path:
        return self.root / "reports" / f"{step}.json"

    def cached(self, step: str, inputs: str) -> dict | None:
        """The report of ``step`` when it ran on ``inputs`` and its outputs are as it recorded them;
        else None, and the step runs again (saying why, when its report or outputs were damaged)."""
        path = self.report_path(step)
        if not path.is_file():
            return None
        try:
            report = json.loads(path.read_text())
        except ValueError:
            report = None
        if not isinstance(report, dict) or not isinstance(report.get("outputs"), dict):
            return self._rerun(step, f"its report {path} is not a valid report")
        if report.get("inputs") != inputs:
            return None
        for rel, sha in report["outputs"].items():
            f = self.root / rel
            if not f.is_file():
                return self._rerun(step, f"its output {f} is missing")
            if sha256_hex(f.read_bytes()) != sha:
                return self._rerun(step, f"its output {f} does not match the SHA-256 in {path}")
        return report

    def _rerun(self, step: str, problem: str) -> None:
        print(f"lutforge: rerunning step {step} of the build {self.root}: {problem}.", file=sys.stderr)
        return None

    def finish(self, step: str, inputs: str, outputs: list[Path], started: float, **info) -> dict:
        report = {"step": step, "inputs": inputs, "seconds": round(time.perf_counter() - started, 3),
                  "outputs": {str(p.relative_to(self.root)): sha256_hex(p.read_bytes()) for p in outputs}, **info}
        atomic_write(self.report_path(step), (json.dumps(report, indent=2, default=str) + "\n").encode())
        return report

    def say(self, text: str) -> None:
        self.log.append(text)
        if self.progress:
            print(text, flush=True)


def compile_model(build: Build, ir, layers: list[str], *, reference, tokenizer) -> Program:
    """Run the four steps for ``layers`` of the model ``ir``; return the Program (``<build>/program``).

    ``reference`` / ``tokenizer``: the model's ReferenceModel and tokenizer
    (:func:`lutforge.compiler.checkpoint.load_model`), used when calibration or fine-tuning runs;
    None for a shape-only model (:mod:`lutforge.compiler.shape_only`), which calibrates on random rows.
    """
    from ..support.progress import progress as progress_bar

    from .finetune import resolve_device
    from .torch_reference import device_key

    cfg = build.config
    if cfg.finetune is not None and ir.shape_only:
        raise UsageError(f"The configuration {cfg.name} has a finetune section, and the model has random weights "
                         f"(--weights random), which training would not make a model of; remove the section or "
                         f"compile a checkpoint.")
    device = resolve_device(build.device)
    t0 = time.perf_counter()
    inputs = sha256_hex(json.dumps([ir.source_hash, layers]).encode())[:16]
    build.finish("import", inputs, [], t0, source=ir.source, source_hash=ir.source_hash,
                 layers=layers, model=dataclasses.asdict(ir.config))

    # calibrate
    t0 = time.perf_counter()
    from .calibration import calibration_version

    cal_inputs = sha256_hex(json.dumps([inputs, dataclasses.asdict(cfg.calibration), calibration_version(),
                                        *device_key(device)], sort_keys=True).encode())[:16]
    cal_path = build.root / "calibrate" / "calibration.npz"
    calib = None
    if ir.shape_only:
        # Random weights have no activations worth capturing (lutforge.compiler.shape_only).
        calib = {n: ir.calibration_rows(n, cfg.calibration.rows) for n in layers}
        build.finish("calibrate", cal_inputs, [], t0, random_rows=cfg.calibration.rows)
        build.say(f"calibrate: {len(layers)} layers, {cfg.calibration.rows} random rows each (shape only)")
    elif build.cached("calibrate", cal_inputs) is None:
        from .calibration import capture_calibration

        c = cfg.calibration
        cs = capture_calibration(reference, tokenizer, n_windows=c.windows, window=c.window, rows=c.rows,
                                 layers=layers, progress=build.progress, device=device)
        owners = {n: cs.inputs[n] for n in layers if cs.shared.get(n, n) == n}
        atomic_write(cal_path, npz_bytes(__shared__=np.array(json.dumps(cs.shared)), **owners))
        build.finish("calibrate", cal_inputs, [cal_path], t0, key=cs.key, from_cache=cs.from_cache,
                     rows=c.rows, params=cs.params)
        build.say(f"calibrate: {len(layers)} layers, {c.rows} rows each "
                  f"({'cached' if cs.from_cache else f'{time.perf_counter() - t0:.1f} s'})")
    else:
        build.say("calibrate: up to date")

    def calibration() -> dict:
        nonlocal calib
        if calib is None:
            with np.load(cal_path) as f:
                shared = json.loads(str(f["__shared__"]))
                owned = {k: f[k] for k in f.files if k != "__shared__"}
            calib = {n: owned[shared.get(n, n)] for n in layers}
        return calib

    trained, ft_key = {}, None
    if cfg.finetune is not None:
        trained, ft_key = _finetune_step(build, ir, layers, calibration, reference, tokenizer, device)

    # quantize
    t0 = time.perf_counter()
    methods = cfg.lut_methods
    q_inputs = sha256_hex(json.dumps([cal_inputs, cfg.hash("quantization", "lut_methods"), co_quantize_version(),
                                      source_hash(*METHOD_SOURCES), ft_key]).encode())[:16]
    q_dir = build.root / "quantize"
    report = build.cached("quantize", q_inputs)
    if report is None:
        q_dir.mkdir(parents=True, exist_ok=True)
        per_layer, outputs = {}, []
        for name in progress_bar(layers, desc="quantize", disable=None if build.progress else True, leave=False):
            t1 = time.perf_counter()
            if methods is not None:
                layer, hit = quantize_method(name, trained.get(name, ir.weights[name]), calibration()[name],
                                             methods.method(name), codebooks=trained_codebooks(trained, name),
                                             device=device), None
            else:
                lut, hit = quantize_layer(ir.weights[name], calibration()[name], cfg.quantization)
                layer = LutStages((lut,))
            out = q_dir / f"{name}.npz"
            atomic_write(out, to_bytes(layer))
            outputs.append(out)
            per_layer[name] = {"kind": layer.kind, "from_cache": hit, "seconds": round(time.perf_counter() - t1, 3)}
        report = build.finish("quantize", q_inputs, outputs, t0, layers=per_layer)
        kinds = {}
        for v in per_layer.values():
            kinds[v["kind"]] = kinds.get(v["kind"], 0) + 1
        build.say(f"quantize: {len(layers)} layers ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}) in "
                  f"{time.perf_counter() - t0:.1f} s")
    else:
        build.say("quantize: up to date")

    # emit
    t0 = time.perf_counter()
    # The target is an input: the table engine the LUT core is built with is chosen for it.
    e_inputs = sha256_hex(json.dumps([report["outputs"], cfg.hash("core", "target")]).encode())[:16]
    p_dir = build.root / "program"
    report = build.cached("emit", e_inputs)
    if report is not None:
        build.say("emit: up to date")
        return read_program(p_dir)
    if p_dir.exists():
        shutil.rmtree(p_dir)
    lowered = [lower(n, from_bytes((q_dir / f"{n}.npz").read_bytes()), cfg.core.lanes, cfg.core.max_positions)
               for n in progress_bar(layers, desc="emit", disable=None if build.progress else True, leave=False)]
    program = write_program(p_dir, lowered, config=cfg.to_dict(),
                            source={"model": ir.source, "sha256": ir.source_hash,
                                    "weights": "random" if ir.shape_only else "checkpoint"})
    outputs = [p_dir / "manifest.yaml"] + sorted((p_dir / "layers").rglob("*.bin"))
    choice = cfg.table_choice
    build.finish("emit", e_inputs, outputs, t0, layers={lay.name: lay.kind for lay in lowered},
                 tables=choice.tables, table_seconds=choice.seconds)
    build.say(f"emit: Program with {len(lowered)} layers in {p_dir}; the LUT core's {choice} on target "
              f"{cfg.target.preset}")
    return program


def _finetune_step(build: Build, ir, layers: list[str], calibration, reference, tokenizer, device: str):
    """The ``finetune`` step: the trained arrays (:meth:`lutforge.compiler.finetune._Student.weights`;
    training them unless the cache has them) and their cache key; the report, history and loss plot under ``<build>/finetune``."""
    from .finetune import finetune, finetune_key, trained_weights

    every = [layer.name for layer in ir.linear_layers()]
    if sorted(layers) != sorted(every):
        raise UsageError(f"The configuration {build.config.name} fine-tunes the whole model, so it compiles every "
                         f"decoder linear; {len(layers)} of {len(every)} were selected: drop --layer, or remove "
                         f"the 'finetune' section.")
    t0 = time.perf_counter()
    key = finetune_key(build.config, ir, device)
    done = trained_weights(key)
    if done is None:
        finetune(build.config, ir, reference, tokenizer, calibration(), device=device, progress=build.progress)
        done = trained_weights(key)
    trained, record = done
    report = build.cached("finetune", key)
    if report is None:
        out = build.root / "finetune"
        out.mkdir(parents=True, exist_ok=True)
        history = out / "history.json"
        atomic_write(history, (json.dumps(record, indent=2) + "\n").encode())
        png = _plot_finetune(out / "loss.png", record)
        build.finish("finetune", key, [history, png], t0, steps=record["steps"], best_step=record["best_step"],
                     initial_holdout_perplexity=record["initial_holdout_perplexity"],
                     best_holdout_perplexity=record["best_holdout_perplexity"], tokens_seen=record["tokens_seen"],
                     train_seconds=record["seconds"], block_layers=len(record["block_layers"]),
                     lut_layers=len(record["lut_layers"]))
    build.say(f"finetune: {len(record['block_layers'])} block-format and {len(record['lut_layers'])} LUT layers "
              f"trained, {record['steps']} steps, held-out perplexity "
              f"{record['initial_holdout_perplexity']:.3f} -> {record['best_holdout_perplexity']:.3f} "
              f"(step {record['best_step']})")
    return trained, key


def trained_codebooks(trained: dict, name: str) -> tuple | None:
    """The trained (activation codebooks, [weight codebooks per stage]) of LUT layer ``name`` in the
    finetune step's arrays (activation codebooks None for a weight-only LUT layer), or None."""
    stages = sorted(k for k in trained if k.startswith(f"{name}#w"))
    if not stages:
        return None
    return trained.get(f"{name}#act"), [trained[k] for k in stages]


def _plot_finetune(path: Path, record: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [p["step"] for p in record["history"]]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax1.plot(steps, [p["train_kl"] for p in record["history"]], marker="o", color="tab:red")
    ax1.set_xlabel("step")
    ax1.set_ylabel("KL to the fp32 teacher (nats/token)")
    ax2.plot([0] + steps, [record["initial_holdout_perplexity"]] + [p["holdout_perplexity"] for p in record["history"]],
             marker="o", color="tab:blue")
    ax2.axvline(record["best_step"], color="k", lw=0.8, ls=":")
    ax2.set_xlabel("step")
    ax2.set_ylabel("held-out perplexity (WikiText-2 valid)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.suptitle("finetune: quantization-aware training for the hardware arithmetic")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
