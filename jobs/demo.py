"""The job behind ``lutforge demo``, the main one.

:func:`demo` compiles the linear layers of decoder block 0 (or the layers asked for), runs them on
the golden backend and on the Verilator backend, checks sim == golden bit-exact and golden against
PyTorch fp32 on real activations (the fp32 model's inputs to each layer on the first tokens of
WikiText-2 test), compares simulated cycles with the performance model and writes ``report.md``
and ``layer_error.png``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..backends import get_backend
from ..backends.driver import HostDriver
from ..compiler.bundled import load_model
from ..compiler.config import Config, check_layers
from ..compiler.data import check_data
from ..compiler.evaluate import first_mismatch, float_metrics, markdown_table, plot_layer_errors
from ..compiler.model import BLOCK_LINEARS
from ..compiler.perf import TARGETS, LayerShape, layer_cost, model_cost, resolve_target
from ..compiler.steps import Build, compile_model
from ..support.checks import check_int
from ..support.progress import progress as progress_bar, status
from .results import DemoResult, DemoSeconds, LayerCheck

__all__ = ["demo", "demo_table", "mismatch_text", "block_layers", "eval_inputs", "MAX_TOKENS", "MAX_SIM_TOKENS"]

# The fp32 model sees the compared tokens in one forward pass (SmolLM2 was trained on 2048-token
# contexts); Verilator simulates every token through every layer, about a second each.
MAX_TOKENS = 2048
MAX_SIM_TOKENS = 64


def block_layers(block: int = 0) -> list[str]:
    return [f"layers.{block}.{n}" for n in BLOCK_LINEARS]


def eval_inputs(ref, tokenizer, layers: list[str], tokens: int) -> dict[str, np.ndarray]:
    """fp32 inputs of ``layers`` on the first ``tokens`` tokens of WikiText-2 test (T, K)."""
    import torch

    from ..compiler.data import wikitext2_tokens

    ids, _ = wikitext2_tokens("test", tokenizer)
    with torch.inference_mode(), ref.capture_inputs(layers) as captured:
        ref(torch.from_numpy(ids[:tokens].astype(np.int64))[None])
    return {n: captured[n][0].numpy().astype(np.float32) for n in layers}


def demo(cfg: Config, build_dir, *, layers: list[str] | None = None, tokens: int = 32,
         sim_tokens: int = 2, progress: bool = True, model=None) -> DemoResult:
    """The main job (see the module docstring); ``model`` is ``load_model()``'s result, when loaded.
    The arguments are checked before the model is loaded."""
    check_int("tokens", tokens, 1, MAX_TOKENS)
    check_int("sim_tokens", sim_tokens, 1, min(tokens, MAX_SIM_TOKENS),
              fix="Verilator runs a prefix of the tokens compared with PyTorch, at most "
                  f"{MAX_SIM_TOKENS}; lower sim_tokens or raise tokens")
    if layers is not None:
        check_layers(layers, cfg.model)
    check_data("valid", "test")
    start = time.perf_counter()
    build_dir = Path(build_dir)
    ir, ref, tok = model or load_model(progress)
    layers = block_layers(0) if layers is None else layers
    program = compile_model(Build(build_dir, cfg, progress), ir, layers, reference=ref, tokenizer=tok)
    t_compile = time.perf_counter() - start

    xs = eval_inputs(ref, tok, layers, tokens)
    golden = HostDriver(program, get_backend("golden"))
    core = cfg.core
    sim = HostDriver(program, get_backend("sim", core=cfg.core_params, memory_latency=core.memory_latency))
    with status("sim: building the GEMV core with Verilator (once per core configuration, then cached)"):
        for name in layers:
            sim.backend.core(program.layers[name])
    checks, g_acc, s_acc = [], {}, {}
    t_sim = 0.0
    for name in progress_bar(layers, desc="demo layers", disable=None if progress else True):
        layer = program.layers[name]
        x = xs[name]
        y = golden.linear(name, x)
        w = ref.weight(name).numpy().astype(np.float64)
        m = float_metrics(y, x.astype(np.float64) @ w.T)
        x_q = golden.quantize(name, x[:sim_tokens])
        g_acc[name] = golden.run_int(name, x_q).acc
        t1 = time.perf_counter()
        result = sim.run_int(name, x_q)
        t_sim += time.perf_counter() - t1
        s_acc[name] = result.acc
        model_cycles = sim_tokens * sum(
            layer_cost(LayerShape(name, run.positions * layer.v, layer.out_features),
                       cfg.core_params.for_layer(layer), memory_latency=core.memory_latency,
                       clock_mhz=1.0, bandwidth_gbs=np.inf).cycles
            for run in layer.runs)
        checks.append(LayerCheck(name, (layer.out_features, layer.in_features), len(layer.runs),
                                 bool(np.array_equal(g_acc[name], s_acc[name])), m["max_abs"], m["rel_rms"],
                                 m["cosine"], result.cycles, model_cycles,
                                 (model_cycles - result.cycles) / result.cycles))
    projections = tuple(model_cost(m, cfg.core_params, TARGETS[t], group_rows=cfg.quantization.group_rows,
                                   positions_per_run=cfg.quantization.positions_per_run)
                        for m in ("SmolLM2-135M", "Qwen3-1.7B") for t in ("orangecrab-25f", "v80"))
    results = DemoResult(
        cfg.name, cfg.hash(), tuple(checks), first_mismatch(g_acc, s_acc, layers), tokens, sim_tokens,
        sim.backend.build_seconds, sim.backend.builds_cached,
        DemoSeconds(t_compile, t_sim, time.perf_counter() - start), resolve_target(cfg.target).name,
        projections, str(program.path), cfg.quantization.bits_per_weight)
    write_demo_report(build_dir, results, cfg)
    return results


def demo_table(results: DemoResult) -> str:
    return markdown_table(
        ["layer", "N x K", "bit-exact", "cosine", "rel RMS", "max abs", "sim cycles", "model cycles", "model err"],
        [[r.layer, "{} x {}".format(*r.shape), "yes" if r.bit_exact else "NO", r.cosine, r.rel_rms, r.max_abs,
          r.cycles, r.model_cycles, f"{100 * r.model_error:+.2f} %"]
         for r in results.layers])


def mismatch_text(results: DemoResult) -> str:
    """Where sim and golden first differ, in words; empty when they agree everywhere."""
    mm = results.first_mismatch
    if mm is None:
        return ""
    return f"layer {mm.layer} token {mm.token} row {mm.element}: expected {mm.expected}, got {mm.actual}"


def write_demo_report(build_dir: Path, results: DemoResult, cfg: Config) -> None:
    png = plot_layer_errors(build_dir / "layer_error.png", [r.to_json() for r in results.layers],
                            f"{cfg.name}: LUT-LLM layers vs PyTorch fp32 ({results.tokens_compared_with_pytorch} tokens)")
    proj = markdown_table(
        ["model", "target", "tokens/s (decode, linears)", "bound", "image MiB", "fits", "LUT-LLM published decode tokens/s (>=)"],
        [[p["model"], p["target"], p["tokens_per_s"], "/".join(p["bound"]), p["image_mib"],
          p["fits_memory"], (p["published"] or {}).get("decode_tokens_per_s_lower_bound", "-")]
         for p in results.projections])
    mm = mismatch_text(results)
    seconds = results.seconds
    lines = [
        f"# lutforge demo: SmolLM2-135M, config `{cfg.name}`", "",
        f"Quantization: {cfg.quantization}", "",
        f"Core: {cfg.core}", "",
        "## Layers (golden vs PyTorch fp32 on real activations; sim vs golden bit-exact)", "",
        demo_table(results), "",
        f"All layers bit-exact (sim == golden): **{results.all_bit_exact}**"
        + (f"; first mismatch: {mm}" if mm else ""), "",
        f"![per-layer error]({png.name})", "",
        "## Projection (performance model; non-linear ops excluded)", "", proj, "",
        f"Wall time: {seconds.total:.1f} s (compile {seconds.compile:.1f} s, "
        f"Verilator build {results.sim_build_seconds:.1f} s, simulation {seconds.sim:.1f} s).",
    ]
    (build_dir / "report.md").write_text("\n".join(lines) + "\n")
