"""The model a command works on: the bundled SmolLM2-135M, or a Llama / Qwen3 checkpoint a user
names with ``--model PATH``, loaded with its own tokenizer.

A checkpoint is one of

* a GGUF file (``*.gguf``): weights, config and tokenizer all in the file;
* a safetensors file (``*.safetensors``) with ``config.json`` and ``tokenizer.json`` beside it;
* a Hugging Face-style directory holding ``config.json``, ``tokenizer.json`` and the
  ``*.safetensors`` shards.

A named architecture (``configs/models/NAME.json``, e.g. ``qwen3-1.7b``) is a config without
weights: with ``weights="random"`` (``--weights random``) it, or any checkpoint's config, becomes a
shape-only model (:mod:`lutforge.compiler.shape_only`) for projections.

:func:`model_config` reads only the config (no weights), so a command can check layer names and
options against the model before it spends the seconds to minutes of loading it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..support.cache import content_key, file_sha256
from ..support.errors import MissingFileError, UsageError
from .model import LlamaConfig

__all__ = ["BUNDLED", "WEIGHTS", "ModelSource", "model_source", "model_config", "model_key", "load_model",
           "architectures", "check_weights"]

BUNDLED = "smollm2"
WEIGHTS = ("checkpoint", "random")


def architectures() -> dict[str, Path]:
    """The named architectures that ship: name -> its config.json."""
    from ..support.paths import REPO_ROOT
    return {p.stem: p for p in sorted((REPO_ROOT / "configs" / "models").glob("*.json"))}


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``kind`` is ``bundled``, ``gguf``, ``safetensors`` (one file),
    ``directory`` or ``architecture`` (a named config without weights); ``path`` is the file or
    directory (None for the bundled model)."""
    kind: str
    path: Path | None

    @property
    def name(self) -> str:
        if self.kind == "architecture":
            return self.path.stem
        return "SmolLM2-135M" if self.path is None else self.path.name

    @property
    def hf_config(self) -> Path:
        if self.kind == "architecture":
            return self.path
        return (self.path if self.kind == "directory" else self.path.parent) / "config.json"

    @property
    def tokenizer(self) -> Path:
        return (self.path if self.kind == "directory" else self.path.parent) / "tokenizer.json"


def model_source(model: str | Path | None) -> ModelSource:
    """Classify ``--model``: None or ``smollm2`` (the bundled model), a checkpoint path, or the name
    of a shipped architecture (:func:`architectures`) that is not a path; a path that is missing or
    of no known kind is a one-line error."""
    if model is None or str(model) == BUNDLED:
        return ModelSource("bundled", None)
    path = Path(model).expanduser().resolve()
    named = architectures()
    if not path.exists() and str(model) in named:
        return ModelSource("architecture", named[str(model)])
    if not path.exists():
        raise MissingFileError(f"The model {model} does not exist; give a GGUF file, a safetensors file or a "
                               f"model directory, {BUNDLED!r} for the bundled SmolLM2-135M, or a named "
                               f"architecture with --weights random ({', '.join(named)}).")
    if path.is_dir():
        source = ModelSource("directory", path)
        if not any(path.glob("*.safetensors")):
            raise MissingFileError(f"The model directory {model} holds no *.safetensors files; give a directory "
                                   f"with config.json, tokenizer.json and the weights, or a GGUF file.")
    elif path.suffix == ".gguf":
        return ModelSource("gguf", path)
    elif path.suffix == ".safetensors":
        source = ModelSource("safetensors", path)
    else:
        raise UsageError(f"The model {model} is neither a .gguf nor a .safetensors file nor a directory; give "
                         f"one of those (or {BUNDLED!r} for the bundled SmolLM2-135M).")
    for needed in (source.hf_config, source.tokenizer):
        if not needed.is_file():
            raise MissingFileError(f"The model {model} has no {needed.name} beside its weights ({needed}); copy the "
                                   f"checkpoint's {needed.name} there.")
    return source


def _named(source: ModelSource, error: ValueError) -> UsageError:
    """A frontend's complaint about a checkpoint, with the checkpoint named (the frontends' own
    messages name the tensor or key, not the file)."""
    return UsageError(f"The model {source.path} cannot be used: {error}")


def model_config(model: str | Path | None) -> LlamaConfig:
    """The config of ``model`` without its weights (the GGUF header or ``config.json``)."""
    from .gguf_frontend import open_gguf, read_config, smollm2_path
    from .model import config_from_hf

    source = model_source(model)
    try:
        if source.kind in ("bundled", "gguf"):
            return read_config(open_gguf(source.path or smollm2_path()))
        # A checkpoint's config.json, or a named architecture's.
        try:
            hf = json.loads(source.hf_config.read_text())
        except json.JSONDecodeError as error:
            raise UsageError(f"{source.hf_config} is not valid JSON ({error}); replace it with the model's "
                             f"config.json.") from None
        return config_from_hf(hf)
    except UsageError:
        raise
    except KeyError as error:
        raise UsageError(f"{source.hf_config} has no key {error}, which every Llama or Qwen3 config.json has; "
                         f"use the checkpoint's own config.json.") from None
    except ValueError as error:
        raise _named(source, error) from None


def model_key(model: str | Path | None):
    """What :func:`~lutforge.compiler.config.model_linears` and ``check_layers`` take for ``model``:
    the bundled model's name (its shapes are known without opening it), else the checkpoint's config."""
    return BUNDLED if model_source(model).kind == "bundled" else model_config(model)


def check_weights(model: str | Path | None, weights: str) -> None:
    """Refuse a named architecture without ``weights="random"`` (it has no weights to load)."""
    if weights not in WEIGHTS:
        raise UsageError(f"weights = {weights!r} is not one of {', '.join(WEIGHTS)}; use 'checkpoint' or 'random'.")
    if weights == "checkpoint" and model_source(model).kind == "architecture":
        raise UsageError(f"{model} is a named architecture ({model_source(model).path.name}) without weights; give a "
                         f"checkpoint, or compile its shapes only with `lutforge compile` or `lutforge estimate` and "
                         f"--weights random (not a quality figure).")


def load_model(model: str | Path | None = None, *, progress: bool = True, weights: str = "checkpoint"):
    """(ModelIR, ReferenceModel, tokenizer) of ``model`` (None: the bundled SmolLM2-135M); with
    ``weights="random"``, (ShapeOnlyModel, None, None): its config with random weights."""
    from .data import GGUFTokenizer, HFTokenizer
    from .gguf_frontend import load_gguf, smollm2_path
    from .model import from_safetensors
    from .shape_only import ShapeOnlyModel
    from .torch_reference import ReferenceModel

    check_weights(model, weights)
    source = model_source(model)
    config = model_config(model)  # a bad config is refused before the weights are read
    if weights == "random":
        return ShapeOnlyModel(config, source.name), None, None
    try:
        if source.kind in ("bundled", "gguf"):
            ir = load_gguf(source.path, progress=progress)
            tok = GGUFTokenizer(source.path or smollm2_path())
        else:
            ir = from_safetensors(source.path)
            tok = HFTokenizer(source.tokenizer)
            # Calibration tokenizes with it: another tokenizer.json is another calibration set.
            ir.source_hash = content_key(ir.source_hash, file_sha256(source.tokenizer))
    except UsageError:
        raise
    except ValueError as error:
        raise _named(source, error) from None
    if tok.vocab_size > ir.config.vocab_size:
        raise UsageError(f"The tokenizer of {source.name} has {tok.vocab_size} tokens, more than the model's "
                         f"vocab_size = {ir.config.vocab_size}; use the checkpoint's own tokenizer.")
    return ir, ReferenceModel(ir), tok
