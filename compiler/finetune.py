"""The ``finetune`` step: quantization-aware training of a configuration's block-format layers
against the fp32 teacher, so that what compiles is a model trained for the hardware arithmetic.

**What trains.** Everything the configuration quantizes, starting from the current fits:

* block-format layers (MXINT8, MXINT4, MXFP4, NVFP4): the fp32 master weight. In the forward pass
  the layer sees what its core computes: activations quantized to the method's activation format
  and weights to its weight format (:func:`lutforge.compiler.fake_quant.fake_quantize`, equal bit
  for bit to ``golden.mx``), with straight-through gradients; only the fp32 accumulation order
  differs from the core's. The quantize step then rounds the trained weight by the method.
* LUT layers: the activation codebooks and the weight codebooks of every stage (LUT-LLM's
  conversion recipe: k-means/GPTQ-VQ initialisation, then back-propagation). The forward pass runs
  the core's centroid search (int8 activations against int8 centroids, the layer's Hadamard
  rotation first) and multiplies the selected activation centroids with the weight centroids the
  fixed indices select; the gradient reaches the selected centroids through that product and the
  layer's input straight through the search. The weight indices stay those of the fit. With
  integer tables the forward value is that of the tables rounded as the layer compiles (a scale
  and integer zero point per cell), the gradient that of the float product (straight through).
  The table and block scales follow from the trained codebooks and weights, as they do when the
  layer compiles.
* weight-only LUT layers (``tmac``): the weight codebooks. The forward pass sees what the core
  computes: each activation row's slice of each core run (``core.max_positions // NG`` positions,
  as the lowering cuts it) in int8 with its own scale and the codebooks in ``cb_bits``-bit
  codes with one scale per row block (:mod:`lutforge.golden.tmac`), both straight through, the
  fixed indices selecting the entries; only the float order of the sum differs from the core's.

**Loss and data.** KL divergence of the student's next-token distribution from the fp32
teacher's, mean over the positions of one window of ``window`` tokens of WikiText-2 *valid* per
Adam step (``lr``), plus, with ``block_mse`` > 0, that weight times the mean over decoder blocks of
the relative squared error of each block's output against the teacher's (the normalised output
the next block's first linear reads; the last block's is what the logits see). The last
``holdout`` windows of valid never train: every ``eval_every`` steps they give the held-out
perplexity, and the weights of the best held-out perplexity are the result
(early stopping). They are the last, not the first, because calibration and the search's held-out
rows take the first windows of valid: text a GPTQ fit has seen would flatter it. WikiText-2 test is
never read here.

**Outputs.** The trained weights (float32, trained layers only) are a content-addressed cache
entry keyed on the model, the ``lut_methods`` and ``finetune`` sections and the code and library
versions; a checkpoint next to it (weights, Adam state, history) is written every ``eval_every``
steps, so an interrupted run resumes where it stopped and only a finished run leaves the entry.
The compile flow quantizes the trained weights (:mod:`lutforge.compiler.steps`).
"""

from __future__ import annotations

import io
import json
import math
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..support.cache import atomic_write, cache_root, content_key, read_cached, source_hash, write_cached
from ..support.errors import UsageError
from ..support.toolchain import tool_versions
from .fake_quant import fake_quantize
from .lut_methods import BLOCK_KINDS
from .trainable import TrainableLut, TrainableTmac
from .torch_reference import device_key

__all__ = ["FinetunePoint", "FinetuneRun", "finetune", "finetune_key", "trained_weights", "resolve_device",
           "FINETUNE_SOURCES"]

# The code a trained result depends on: part of its cache key.
FINETUNE_SOURCES = ("lutforge.compiler.finetune", "lutforge.compiler.trainable", "lutforge.compiler.hadamard",
                    "lutforge.compiler.fake_quant", "lutforge.compiler.torch_reference",
                    "lutforge.compiler.data", "lutforge.compiler.lut_methods", "lutforge.golden.mx")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class FinetunePoint:
    step: int
    train_kl: float           # mean KL (nats per token) of the steps since the last point
    holdout_perplexity: float  # on the held-out valid windows, in the training arithmetic


@dataclass(frozen=True)
class FinetuneRun:
    """What one ``finetune`` step did (or found done)."""
    key: str
    device: str
    steps: int
    best_step: int
    best_holdout_perplexity: float
    initial_holdout_perplexity: float
    tokens_seen: int
    seconds: float               # training time, over all resumed runs
    block_layers: tuple[str, ...]  # weights trained
    lut_layers: tuple[str, ...]    # codebooks trained
    history: tuple[FinetunePoint, ...]
    from_cache: bool

    def to_json(self) -> dict:
        return asdict(self)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when PyTorch sees a GPU, else ``cpu``; ``cuda`` without one is refused."""
    if device not in DEVICES:
        raise UsageError(f"Device {device!r} is not one of {', '.join(DEVICES)}; choose one of them.")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but PyTorch sees no CUDA device "
                         f"(torch {torch.__version__}); use --device cpu or auto.")
    return device


def finetune_key(cfg, ir, device: str = "cpu") -> str:
    # core: its max_positions sets the weight-only layers' runs, so their activation scales. A run
    # on a GPU starts from that GPU's fits and rounds otherwise: its own entry (device_key).
    return content_key(ir.source_hash, cfg.hash("lut_methods", "finetune", "core"), source_hash(*FINETUNE_SOURCES),
                       tool_versions("torch", "numpy"), *device_key(device))


def _paths(key: str) -> tuple[Path, Path]:
    root = cache_root() / "finetune"
    return root / f"{key}.npz", root / f"{key}.ckpt"


def trained_weights(key: str) -> tuple[dict[str, np.ndarray], dict] | None:
    """The trained weights and the run's record of a finished run, or None."""
    stored = read_cached(_paths(key)[0])
    if stored is None:
        return None
    with np.load(io.BytesIO(stored)) as f:
        record = json.loads(str(f["__run__"]))
        return {k: f[k] for k in f.files if k != "__run__"}, record


def _windows(tokens: np.ndarray, window: int, holdout: int) -> tuple[np.ndarray, np.ndarray]:
    """(held-out windows, training windows) of ``window`` tokens: the last ``holdout`` whole windows
    of valid, where no calibration reaches (module docstring), and every window before them."""
    count = len(tokens) // window
    if count < holdout + 1:
        raise UsageError(f"WikiText-2 valid holds {count} windows of {window} tokens, fewer than the "
                         f"{holdout} held out plus one to train on; lower finetune.window or finetune.holdout.")
    w = torch.from_numpy(np.array(tokens[:count * window], dtype=np.int64)).reshape(count, window)
    return w[count - holdout:], w[:count - holdout]


class _Student:
    """The trained layers' parameters, and the model's linears routed through their training
    arithmetic (module docstring)."""

    def __init__(self, model, methods, calibration, device: str, max_positions: int):
        from .lut_methods import cached_fit

        self.model, self.methods = model, methods
        self.blocks: dict[str, torch.nn.Parameter] = {}
        self.luts: dict[str, TrainableLut | TrainableTmac] = {}
        for name in model.linear_names:
            m = methods.method(name)
            w = model.weight(name)
            if m.kind in BLOCK_KINDS:
                self.blocks[name] = torch.nn.Parameter(w.detach().clone().to(device))
            elif m.kind == "tmac":
                # The fits of the compile's quantize step (same device), whose weight indices the
                # trained codebooks keep.
                self.luts[name] = TrainableTmac(cached_fit(w.cpu().numpy(), calibration[name], m, device), device,
                                                 max_positions)
            else:
                self.luts[name] = TrainableLut(cached_fit(w.cpu().numpy(), calibration[name], m, device), device)

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(n for n in self.model.linear_names if n in self.blocks or n in self.luts)

    def named_params(self) -> dict[str, torch.nn.Parameter]:
        out = dict(self.blocks)
        for name, lut in self.luts.items():
            if isinstance(lut, TrainableLut):
                out[f"{name}#act"] = lut.act
            out.update({f"{name}#w{i}": w for i, w in enumerate(lut.weights)})
        return out

    def install(self) -> None:
        for name, p in self.blocks.items():
            m = self.methods.method(name)
            self.model.replace_linear(name, lambda x, p=p, m=m: F.linear(fake_quantize(x, m.act),
                                                                         fake_quantize(p, m.kind)))
        for name, lut in self.luts.items():
            self.model.replace_linear(name, lut)

    def remove(self) -> None:
        for name in self.model.linear_names:
            self.model.replace_linear(name, None)

    def weights(self) -> dict[str, np.ndarray]:
        """Every trained array: block layers' weights by layer name, LUT codebooks as
        ``NAME#act`` and ``NAME#w<stage>``."""
        return {n: p.detach().cpu().numpy().astype(np.float32) for n, p in self.named_params().items()}


@contextmanager
def _block_outputs(model, weight: float):
    """The decoder blocks' outputs of one forward pass, as the list the context yields (empty when
    ``weight`` is 0): each block's output as the next block's first linear reads it (normalised),
    gradients kept."""
    outputs: list[torch.Tensor] = []
    if not weight:
        yield outputs
        return
    firsts = {f"layers.{i}.attn.q" for i in range(1, model.config.n_layers)}
    with model.observe_linear_inputs(lambda name, x: outputs.append(x) if name in firsts else None):
        yield outputs


def _holdout_perplexity(model, student: _Student, windows: torch.Tensor) -> float:
    student.install()
    try:
        with torch.no_grad():
            nll = sum(float(F.cross_entropy(model(w[None])[0, :-1], w[1:], reduction="sum")) for w in windows)
    finally:
        student.remove()
    return math.exp(nll / (windows.shape[0] * (windows.shape[1] - 1)))


def finetune(cfg, ir, model, tokenizer, calibration: dict, *, device: str = "auto", progress: bool = True,
             stop_after: int | None = None) -> FinetuneRun:
    """Train ``cfg``'s block-format layers (module docstring) or return the finished run from the
    cache. ``model`` is the fp32 ReferenceModel (its linears are restored on return);
    ``calibration`` the layers' calibration inputs (the frozen LUT layers' fits need them).
    ``stop_after`` ends the run after that many steps of this call, leaving the checkpoint (a
    resumable interruption, for tests)."""
    from ..support.progress import progress as progress_bar
    from .data import wikitext2_tokens

    ft = cfg.finetune
    device = resolve_device(device)
    key = finetune_key(cfg, ir, device)
    done = trained_weights(key)
    if done is not None:
        return _run_from_record(done[1], from_cache=True)
    entry, ckpt = _paths(key)
    ids, _ = wikitext2_tokens("valid", tokenizer)
    holdout, train = _windows(np.asarray(ids), ft.window, ft.holdout)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(ft.seed))
    model.to_device(device)
    holdout, train = holdout.to(device), train.to(device)
    student = _Student(model, cfg.lut_methods, calibration, device, cfg.core.max_positions)
    opt = torch.optim.Adam([{"params": list(student.blocks.values()), "lr": ft.lr},
                            {"params": [p for lut in student.luts.values() for p in lut.params()],
                             "lr": ft.codebook_lr}])
    state = {"step": 0, "seconds": 0.0, "history": [], "best": None, "best_step": 0, "initial": None, "kl": []}
    saved = _load_checkpoint(ckpt, device)
    if saved is not None:
        for name, p in student.named_params().items():
            p.data.copy_(saved["params"][name])
        opt.load_state_dict(saved["opt"])
        state = saved["state"]
    if state["initial"] is None:
        state["initial"] = _holdout_perplexity(model, student, holdout)
        state["best"] = (state["initial"], student.weights())
    started = time.perf_counter()
    bar = progress_bar(total=ft.steps, initial=state["step"], desc="finetune",
                       disable=None if progress else True)
    try:
        ran = 0
        while state["step"] < ft.steps and (stop_after is None or ran < stop_after):
            w = train[order[state["step"] % len(train)]][None]
            with torch.no_grad(), _block_outputs(model, ft.block_mse) as teacher_blocks:
                teacher = F.log_softmax(model(w)[0].float(), -1)
            student.install()
            try:
                with _block_outputs(model, ft.block_mse) as student_blocks:
                    student_logp = F.log_softmax(model(w)[0].float(), -1)
                kl = F.kl_div(student_logp, teacher, log_target=True, reduction="batchmean")
                loss = kl
                if ft.block_mse:
                    loss = kl + ft.block_mse * torch.stack(
                        [((s - t) ** 2).sum() / (t ** 2).sum() for s, t in zip(student_blocks, teacher_blocks)]).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            finally:
                student.remove()
            state["kl"].append(kl.item())
            state["step"] += 1
            ran += 1
            bar.update(1)
            if state["step"] % ft.eval_every == 0 or state["step"] == ft.steps:
                ppl = _holdout_perplexity(model, student, holdout)
                state["history"].append([state["step"], float(np.mean(state["kl"])), ppl])
                state["kl"] = []
                if ppl < state["best"][0]:
                    state["best"], state["best_step"] = (ppl, student.weights()), state["step"]
                bar.set_postfix(kl=f"{state['history'][-1][1]:.4f}", holdout_ppl=f"{ppl:.2f}")
                _save_checkpoint(ckpt, student, opt, state, started)
                started = time.perf_counter()
    finally:
        bar.close()
        model.to_device("cpu")
    if state["step"] < ft.steps:
        _save_checkpoint(ckpt, student, opt, state, started)
        return _run(key, device, state, student, ft.window)
    state["seconds"] += time.perf_counter() - started
    run = _run(key, device, state, student, ft.window)
    weights = state["best"][1]
    buffer = io.BytesIO()
    np.savez(buffer, __run__=np.array(json.dumps(run.to_json())), **weights)
    write_cached(entry, buffer.getvalue())
    ckpt.unlink(missing_ok=True)
    return run


def _load_checkpoint(path: Path, device: str) -> dict | None:
    """The checkpoint at ``path``, or None when there is none or it cannot be read (then training
    starts over, saying so: it is only ever replaced whole, so damage came from outside)."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except Exception as error:  # any unreadable file: pickle, zip and torch errors alike
        print(f"lutforge: the fine-tuning checkpoint {path} cannot be read ({type(error).__name__}); "
              f"training starts over.", file=sys.stderr)
        path.unlink()
        return None


def _save_checkpoint(path: Path, student: _Student, opt, state: dict, started: float) -> None:
    state["seconds"] += time.perf_counter() - started
    buffer = io.BytesIO()
    torch.save({"params": {n: p.detach().cpu() for n, p in student.named_params().items()}, "opt": opt.state_dict(),
                "state": state}, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buffer.getvalue())


def _run(key: str, device: str, state: dict, student: _Student, window: int) -> FinetuneRun:
    return FinetuneRun(key, device, state["step"], state["best_step"], float(state["best"][0]),
                       float(state["initial"]), state["step"] * window, round(state["seconds"], 1),
                       tuple(student.blocks), tuple(student.luts),
                       tuple(FinetunePoint(int(s), float(k), float(p)) for s, k, p in state["history"]),
                       from_cache=False)


def _run_from_record(record: dict, *, from_cache: bool) -> FinetuneRun:
    record = dict(record, from_cache=from_cache, block_layers=tuple(record["block_layers"]),
                  lut_layers=tuple(record["lut_layers"]),
                  history=tuple(FinetunePoint(**p) for p in record["history"]))
    return FinetuneRun(**record)
