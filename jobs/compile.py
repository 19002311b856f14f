"""The job behind ``lutforge compile``: a model's linear layers into a Program directory."""

from __future__ import annotations

from ..compiler.checkpoint import check_weights, load_model, model_key
from ..compiler.config import Config, check_config_for, check_layers
from ..compiler.data import check_data
from ..compiler.steps import Build, compile_model
from .results import CompileResult

__all__ = ["compile_job"]


def compile_job(cfg: Config, build_dir, layers: list[str] | None = None, progress: bool = True,
                checkpoint: str | None = None, weights: str = "checkpoint") -> CompileResult:
    """Compile ``layers`` (default: every linear layer) of ``checkpoint`` (default: the bundled
    SmolLM2-135M; :mod:`lutforge.compiler.checkpoint`; with ``weights="random"`` its shapes only)
    under ``build_dir``; the layer names, the configuration's and the calibration data are checked
    before the model is loaded."""
    check_weights(checkpoint, weights)
    layers_of = model_key(checkpoint)
    if layers is not None:
        check_layers(layers, layers_of)
    check_config_for(cfg, layers_of)
    if weights == "checkpoint":
        check_data("valid")
    ir, ref, tok = load_model(checkpoint, progress=progress, weights=weights)
    names = [layer.name for layer in ir.linear_layers()]
    program = compile_model(Build(build_dir, cfg, progress), ir, names if layers is None else layers,
                            reference=ref,
                            tokenizer=tok)
    return CompileResult(cfg.name, str(program.path), tuple(program.layers), weights)
