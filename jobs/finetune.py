"""The job behind ``lutforge finetune``: train a configuration's block-format layers for the
hardware arithmetic (the compile flow's ``finetune`` step, :mod:`lutforge.compiler.finetune`) and
compile the trained model into a Program."""

from __future__ import annotations

import json

from ..compiler.checkpoint import load_model, model_key
from ..compiler.config import Config, check_config_for
from ..compiler.data import check_data
from ..compiler.finetune import resolve_device
from ..compiler.steps import Build, compile_model
from ..support.errors import UsageError
from .results import FinetuneResult

__all__ = ["finetune_job"]


def finetune_job(cfg: Config, build_dir, *, device: str = "auto", progress: bool = True,
                 checkpoint: str | None = None) -> FinetuneResult:
    """Run (or resume) the ``finetune`` step of ``cfg`` on ``checkpoint`` (default: the bundled
    SmolLM2-135M) and compile the trained model under ``build_dir``."""
    if cfg.finetune is None:
        raise UsageError(f"The configuration {cfg.name} has no 'finetune' section, so there is nothing to train; "
                         f"add one (steps, lr, codebook_lr, window, holdout, eval_every, seed; see configs/smollm2-nvfp4-finetune.yaml).")
    device = resolve_device(device)
    check_config_for(cfg, model_key(checkpoint))
    check_data("valid")
    ir, ref, tok = load_model(checkpoint, progress=progress)
    build = Build(build_dir, cfg, progress, device=device)
    program = compile_model(build, ir, ref.linear_names, reference=ref, tokenizer=tok)
    report = json.loads(build.report_path("finetune").read_text())
    return FinetuneResult(cfg.name, device, report["steps"], report["best_step"],
                          report["initial_holdout_perplexity"], report["best_holdout_perplexity"],
                          report["tokens_seen"], report["train_seconds"], report["block_layers"],
                          report["lut_layers"], str(build.root / "finetune" / "loss.png"),
                          str(program.path))
