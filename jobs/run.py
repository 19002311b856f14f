"""The job behind ``lutforge run``: whole-model perplexity of the hardware arithmetic.

:func:`run_model` compiles every linear layer for each configuration (a ``quantization`` section
or per-layer ``lut_methods``, one compile path), runs the whole model with all of them on the
golden backend (equal bit for bit to the RTL; non-linear operations on the host, or on the decoder
units for a configuration with ``blocks: hardware``, each window from an empty KV cache) and reports
perplexity on a fixed slice of WikiText-2 test next to fp32, in ``perplexity.md`` and
``perplexity.png``. ``backend="sim"`` runs the same Program on the RTL in Verilator instead: the
same perplexity to the last bit (every accumulator is equal), slowly, so for short slices.
"""

from __future__ import annotations

from pathlib import Path

from ..compiler.torch_reference import on_device, routed
from ..program.decoder import DecoderRunner
from ..program.host import HostDriver
from ..compiler.checkpoint import load_model, model_key, model_source
from ..compiler.config import Config, EvaluationConfig, check_config_for
from ..compiler.data import check_data
from ..compiler.evaluate import markdown_table
from ..compiler.layer_quant import config_streamed_bits
from ..compiler.steps import Build, compile_model
from ..support.checks import check_choice
from ..support.errors import UsageError
from .generate import GENERATE_BACKENDS, make_backend
from .results import PerplexityRow, RunResult

__all__ = ["run_model"]


def run_model(configs: list[Config], build_root, *, windows: int | None = None, window: int | None = None,
              progress: bool = True, fp32: bool = True, backend: str = "golden", device: str = "cpu",
              checkpoint: str | None = None) -> RunResult:
    """Whole-model perplexity on ``backend`` (golden or sim) for each config, and for fp32, of
    ``checkpoint`` (default: the bundled SmolLM2-135M); the torch work on ``device``: each config's
    compile steps (calibration, fine-tuning, fits) and the model's own operations (all of fp32's,
    the non-linear ones of a config)."""
    from ..compiler.data import wikitext2_tokens
    from ..compiler.perplexity import perplexity

    check_choice("backend", backend, GENERATE_BACKENDS)
    windows, window = _slice(configs, [c.evaluation for c in configs], windows, window)
    for cfg in configs:
        if cfg.blocks == "hardware" and device != "cpu":
            raise UsageError(f"Configuration {cfg.name!r} runs whole decoder blocks on the units (blocks: hardware), "
                             f"which leaves nothing of it for --device {device}; use --device cpu.")
        if cfg.blocks == "hardware" and window > cfg.decoder.max_keys:
            raise UsageError(f"Configuration {cfg.name!r} runs whole decoder blocks, whose attention unit sees at most "
                             f"decoder.max_keys = {cfg.decoder.max_keys} tokens, and the windows have {window}; pass "
                             f"--window {cfg.decoder.max_keys} or less, or raise decoder.max_keys.")
    layers_of = model_key(checkpoint)
    for cfg in configs:
        check_config_for(cfg, layers_of)
    check_data("valid", "test")
    ir, ref, tok = load_model(checkpoint, progress=progress)
    ids, data = wikitext2_tokens("test", tok)
    rows = []
    if fp32:
        with on_device(ref, device):
            r = perplexity(ref, ids, window=window, n_windows=windows, progress=progress, device=device)
        rows.append(PerplexityRow("fp32", r.ppl, r.nll, 32.0, r.seconds))
    for cfg in configs:
        program = compile_model(Build(Path(build_root) / cfg.name, cfg, progress, device=device), ir, ref.linear_names,
                                reference=ref, tokenizer=tok)
        driver = HostDriver(program, make_backend(backend, cfg))
        if cfg.blocks == "hardware":
            r = perplexity(_whole_blocks(ir, driver, cfg), ids, window=window, n_windows=windows, progress=progress)
        else:
            with on_device(ref, device), routed(ref, driver):
                r = perplexity(ref, ids, window=window, n_windows=windows, progress=progress, device=device)
        rows.append(PerplexityRow(cfg.name, r.ppl, r.nll, config_streamed_bits(cfg, ir.config), r.seconds,
                                  None if cfg.lut_methods else vars(cfg.quantization)))
    result = RunResult(str(data.path), data.sha256, windows, window, tuple(rows), backend, device,
                       model_source(checkpoint).name)
    _write_report(Path(build_root), result)
    return result


def _whole_blocks(ir, driver: HostDriver, cfg: Config):
    """The model as a callable for :func:`~lutforge.compiler.perplexity.perplexity` with every decoder
    block on the units (``blocks: hardware``): each window from an empty KV cache."""
    import torch

    runner = DecoderRunner(ir, driver, cfg.decoder)

    def model(chunk):
        runner.reset()
        return torch.from_numpy(runner.forward(chunk[0].numpy()))[None]
    return model


def _slice(configs, evaluations: list[EvaluationConfig], windows: int | None,
           window: int | None) -> tuple[int, int]:
    """The perplexity slice (the first configuration's unless given), checked with the
    configuration's limits before any work; the configurations must be some, with distinct names
    (each names its build folder and its row)."""
    if not configs:
        raise UsageError("No configuration is given; pass at least one.")
    names = [c.name for c in configs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"Two configurations are named {twice[0]!r}; their rows and build folders would "
                         f"collide, so give each a distinct name.")
    first = evaluations[0]
    chosen = EvaluationConfig(first.windows if windows is None else windows,
                              first.window if window is None else window)
    chosen.validate()
    return chosen.windows, chosen.window


def _write_report(root: Path, result: RunResult) -> None:
    root.mkdir(parents=True, exist_ok=True)
    table = markdown_table(["config", "perplexity", "NLL (nats)", "streamed bits/weight"],
                           [[r.config, r.perplexity, r.nll, r.bits_per_weight] for r in result.rows])
    (root / "perplexity.md").write_text(
        f"# Whole-model perplexity, {result.model}, {result.backend} backend\n\nWikiText-2 test, first {result.windows} "
        f"windows of {result.window} tokens ({result.tokens} predicted tokens).\n\n{table}\n\n"
        f"![perplexity](perplexity.png)\n")
    _plot(root / "perplexity.png", result.rows)


def _plot(path: Path, rows) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar([r.config for r in rows], [r.perplexity for r in rows], color="tab:purple")
    ax.set_yscale("log")
    ax.set_ylabel("perplexity (log)")
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
