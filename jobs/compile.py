"""The job behind ``lutforge compile``: SmolLM2's linear layers into a Program directory."""

from __future__ import annotations

from ..compiler.bundled import load_model
from ..compiler.config import Config
from ..compiler.steps import Build, compile_model
from .results import CompileResult

__all__ = ["compile_job"]


def compile_job(cfg: Config, build_dir, layers: list[str] | None = None, progress: bool = True) -> CompileResult:
    """Compile ``layers`` (default: every linear layer) under ``build_dir``."""
    ir, ref, tok = load_model(progress)
    program = compile_model(Build(build_dir, cfg, progress), ir, layers or ref.linear_names, reference=ref,
                            tokenizer=tok)
    return CompileResult(cfg.name, str(program.path), tuple(program.layers))
