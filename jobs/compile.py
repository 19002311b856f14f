"""The job behind ``lutforge compile``: SmolLM2's linear layers into a Program directory."""

from __future__ import annotations

from ..compiler.bundled import load_model
from ..compiler.config import Config, check_layers
from ..compiler.data import check_data
from ..compiler.steps import Build, compile_model
from .results import CompileResult

__all__ = ["compile_job"]


def compile_job(cfg: Config, build_dir, layers: list[str] | None = None, progress: bool = True) -> CompileResult:
    """Compile ``layers`` (default: every linear layer) under ``build_dir``; the layer names and
    the calibration data are checked before the model is loaded."""
    if layers is not None:
        check_layers(layers, cfg.model)
    check_data("valid")
    ir, ref, tok = load_model(progress)
    program = compile_model(Build(build_dir, cfg, progress), ir, ref.linear_names if layers is None else layers,
                            reference=ref,
                            tokenizer=tok)
    return CompileResult(cfg.name, str(program.path), tuple(program.layers))
