"""The job behind ``lutforge estimate``: compile a model (or its shapes only) and project the whole
token on a target: ms per decoded token, the prefill-plus-decode latency next to LUT-LLM's artifact,
what bounds it (:mod:`lutforge.compiler.estimate`), in ``estimate.md`` with ``estimate.png``."""

from __future__ import annotations

from pathlib import Path

from ..compiler.checkpoint import model_config, model_source
from ..compiler.config import Config
from ..compiler.estimate import (ARTIFACT_LATENCY_S, H200_LINEARS_MS, Host, generation, lm_head_on_core,
                                 pass_estimate)
from ..compiler.evaluate import markdown_table
from ..compiler.perf import TARGETS, resolve_target
from ..compiler.shape_only import NOT_QUALITY
from ..program.artifact import read_program
from ..support.checks import check_choice, check_int
from ..support.errors import UsageError
from .compile import compile_job
from .results import EstimateResult

__all__ = ["estimate"]


def estimate(cfg: Config, build_dir, *, checkpoint: str | None = None, weights: str = "checkpoint",
             target: str | None = None, prompt: int = 128, new: int = 256, contexts=(128, 384),
             host_bandwidth_gbs: float = 100.0, progress: bool = True) -> EstimateResult:
    """Compile ``checkpoint`` with ``cfg`` under ``build_dir`` and project it on ``target`` (default:
    the configuration's): decode at each of ``contexts`` cached tokens, and a ``prompt``-token
    prefill followed by ``new`` tokens."""
    if target is not None:
        check_choice("target", target, tuple(TARGETS))
    check_int("prompt", prompt, 1, 1 << 20)
    check_int("new", new, 2, 1 << 20)
    for c in contexts:
        check_int("context", c, 0, 1 << 20)
    model = model_config(checkpoint)
    longest = max(prompt + new - 1, *(c + 1 for c in contexts))
    if longest > model.context_length:
        raise UsageError(f"The estimate reaches {longest} tokens of context, more than the model's context_length = "
                         f"{model.context_length}; ask for a shorter prompt, fewer new tokens or smaller --context.")
    if cfg.blocks == "hardware" and longest > cfg.decoder.max_keys:
        raise UsageError(f"The estimate reaches {longest} tokens of context, more than the attention unit of "
                         f"{cfg.name} holds (decoder.max_keys = {cfg.decoder.max_keys}); raise decoder.max_keys or "
                         f"ask for a shorter prompt, fewer new tokens or smaller --context.")
    compiled = compile_job(cfg, build_dir, progress=progress, checkpoint=checkpoint, weights=weights)
    program = read_program(compiled.program)
    tgt = TARGETS[target] if target is not None else resolve_target(cfg.target)
    host = Host(host_bandwidth_gbs)
    at = {c: pass_estimate(program, model, cfg, tgt, 1, c, host) for c in contexts}
    prefill, decode = generation(program, model, cfg, tgt, prompt, new, host)
    decode_s = sum(p.seconds for p in decode)
    mean_units = {u.unit: {"where": u.where, "bound": u.bound,
                           "ms_per_token": 1e3 * sum(p.unit(u.unit).seconds for p in decode) / len(decode),
                           "cycles_per_token": (None if u.cycles is None else
                                                sum(p.unit(u.unit).cycles for p in decode) / len(decode))}
                  for u in decode[0].units}
    head = lm_head_on_core(model, cfg, tgt)
    result = EstimateResult(
        model=model_source(checkpoint).name, weights=weights, config=cfg.name, target=tgt.name, lanes=cfg.core.lanes,
        clock_mhz=tgt.clock_mhz, bandwidth_gbs=tgt.bandwidth_gbs, host_bandwidth_gbs=host.bandwidth_gbs,
        blocks=cfg.blocks, prompt=prompt, new=new,
        ms_per_token_decode=1e3 * decode_s / len(decode),
        ms_per_token_decode_at_context={c: 1e3 * p.seconds for c, p in at.items()},
        prefill_s=prefill.seconds, latency_s=prefill.seconds + decode_s,
        bound=max(decode, key=lambda p: p.context).bound, units=mean_units,
        lm_head_on_core_ms=1e3 * head.seconds,
        artifact_latency_s=ARTIFACT_LATENCY_S.get((prompt, new)), h200_linears_ms=H200_LINEARS_MS,
        program=compiled.program, note=NOT_QUALITY if weights == "random" else "")
    _write_report(Path(build_dir), result, at)
    return result


def _write_report(root: Path, r: EstimateResult, at: dict) -> None:
    rows = [[name, u["where"], u["bound"], u["ms_per_token"],
             "" if u["cycles_per_token"] is None else round(u["cycles_per_token"])] for name, u in r.units.items()]
    contexts = ", ".join(f"{c} cached tokens: {ms:.3f} ms" for c, ms in r.ms_per_token_decode_at_context.items())
    artifact = (f"{r.artifact_latency_s} s (LUT-LLM's artifact, V80 at 250 MHz)" if r.artifact_latency_s
                else "no artifact figure for this prompt/length")
    text = [f"# Whole-token estimate: {r.model} on {r.target}", "",
            *([f"**{r.note}.** The Program's layout, image sizes and cycles are those of the real model.", ""]
              if r.note else []),
            f"Configuration `{r.config}` ({r.lanes} lanes, blocks on the {'units' if r.blocks == 'hardware' else 'host'}), "
            f"{r.clock_mhz:g} MHz, {r.bandwidth_gbs:g} GB/s; host operations at {r.host_bandwidth_gbs:g} GB/s "
            f"({Host().note}).", "",
            f"* Decode, mean over the {r.new - 1} decode passes: **{r.ms_per_token_decode:.3f} ms per token** "
            f"({contexts}); the H200 runs Qwen3-1.7B's linear layers in {r.h200_linears_ms} ms.",
            f"* {r.prompt}-token prefill and {r.new} new tokens: **{r.latency_s:.4f} s** (prefill "
            f"{r.prefill_s:.4f} s); {artifact}.",
            f"* Bound: {r.bound}. With the LM head on the core (default method) it would take "
            f"{r.lm_head_on_core_ms:.3f} ms instead of {r.units['lm_head']['ms_per_token']:.3f} ms.",
            f"* {_what_would_change(r)}", "",
            "Per unit, mean decoded token:", "",
            markdown_table(["unit", "where", "bound", "ms per token", "cycles per token"], rows), "",
            "![estimate](estimate.png)", ""]
    root.mkdir(parents=True, exist_ok=True)
    (root / "estimate.md").write_text("\n".join(text))
    _plot(root / "estimate.png", r, at)


def _what_would_change(r: EstimateResult) -> str:
    """What the H200 figure asks of the design: the cores' time fixed, the units' sped up."""
    cores = r.units["linears"]["ms_per_token"] + r.lm_head_on_core_ms
    units = sum(u["ms_per_token"] for u in r.units.values() if u["where"] == "units")
    left = r.h200_linears_ms - cores
    if units == 0 or r.ms_per_token_decode <= r.h200_linears_ms:
        return f"{r.ms_per_token_decode:.3f} ms against the H200's {r.h200_linears_ms} ms."
    if left <= 0:
        return (f"Even with the LM head on the core, the linears alone take {cores:.3f} ms, more than the H200's "
                f"{r.h200_linears_ms} ms: more bandwidth or fewer streamed bits per weight would have to come first.")
    return (f"To reach the H200's {r.h200_linears_ms} ms: the LM head on the core ({cores:.3f} ms with the linears) and "
            f"the units' {units:.3f} ms cut to {left:.3f} ms, {units / left:.1f}x faster (units that take one element "
            f"per cycle: wider norms, SiLU and adds, and an attention unit per head).")


def _plot(path: Path, r: EstimateResult, at: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, lat) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
    labels = [f"decode @{c}" for c in at]
    bottom = [0.0] * len(at)
    for name in r.units:
        ms = [1e3 * p.unit(name).seconds for p in at.values()]
        ax.bar(labels, ms, bottom=bottom, label=f"{name} ({r.units[name]['where']})")
        bottom = [b + m for b, m in zip(bottom, ms)]
    ax.axhline(r.h200_linears_ms, color="k", linestyle="--", label=f"H200, linears only ({r.h200_linears_ms} ms)")
    ax.set_ylabel("ms per decoded token")
    ax.set_title(f"{r.model} on {r.target}" + (" (shape only)" if r.note else ""))
    ax.legend(fontsize=7, loc="upper left")
    bars = {"lutforge (model)": r.latency_s}
    if r.artifact_latency_s:
        bars["LUT-LLM artifact"] = r.artifact_latency_s
    lat.bar(list(bars), list(bars.values()), color=["tab:blue", "tab:gray"][:len(bars)])
    lat.set_ylabel("s")
    lat.set_title(f"{r.prompt} in / {r.new} out")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
