"""The job behind ``lutforge demo``, the main one: a configuration compiled for the accelerator and
run on it, whole tokens at a time.

:func:`demo` compiles every decoder linear of the configuration (each on its core: LUT layers on
the LUT core, block-format layers on the block core), then

1. per layer: the golden backend against PyTorch fp32 on real activations (the fp32 model's inputs
   to the layer on the first ``tokens`` tokens of WikiText-2 test);
2. greedy generation of ``sim_tokens`` tokens after a prompt with every linear in Verilator, the
   same on the golden backend, and PyTorch fp32's: sim == golden bit for bit in every layer's
   accumulators of every token, the texts side by side;
3. per layer: the simulated cycles of one decoded token against the performance model;
4. the whole-model perplexity of the configuration (golden backend) and of fp32 on ``windows``
   windows of WikiText-2 test;
5. cycle and throughput projections of the same Program on the performance model's targets;

and writes ``report.md`` with ``layer_error.png``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..backends import get_backend
from ..compiler.torch_reference import routed
from ..program.host import HostDriver
from ..compiler.checkpoint import load_model
from ..compiler.config import Config, EvaluationConfig, check_layers, model_linears
from ..compiler.data import check_data, wikitext2_tokens
from ..compiler.evaluate import first_mismatch, float_metrics, markdown_table, plot_layer_errors
from ..compiler.layer_quant import config_streamed_bits
from ..compiler.model import BLOCK_LINEARS
from ..compiler.perplexity import perplexity
from ..compiler.perf import (TARGETS, LayerShape, block_layer_cost, layer_cost, program_cost, resolve_target,
                             tmac_layer_cost)
from ..compiler.steps import Build, compile_model
from ..support.errors import UsageError
from ..support.checks import check_int
from ..support.progress import progress as progress_bar, status
from .generate import agreement, check_prompt, greedy, layer_kinds, make_backend, on_hardware, prompt_ids
from .results import DemoGeneration, DemoResult, DemoSeconds, LayerCheck, PerplexityRow

__all__ = ["demo", "demo_table", "mismatch_text", "block_layers", "eval_inputs", "MAX_TOKENS", "MAX_SIM_TOKENS",
           "DEMO_PROMPT"]

# The fp32 model sees the compared tokens in one forward pass (SmolLM2 was trained on 2048-token
# contexts); Verilator runs every linear of every generated token.
MAX_TOKENS = 2048
MAX_SIM_TOKENS = 64
DEMO_PROMPT = "The capital of France is"
# The projections' targets: a small board and the datacenter card LUT-LLM was measured on.
PROJECTION_TARGETS = ("orangecrab-25f", "v80")


def block_layers(block: int = 0) -> list[str]:
    return [f"layers.{block}.{n}" for n in BLOCK_LINEARS]


def eval_inputs(ref, tokenizer, layers: list[str], tokens: int) -> dict[str, np.ndarray]:
    """fp32 inputs of ``layers`` on the first ``tokens`` tokens of WikiText-2 test (T, K)."""
    import torch

    ids, _ = wikitext2_tokens("test", tokenizer)
    with torch.inference_mode(), ref.capture_inputs(layers) as captured:
        ref(torch.from_numpy(ids[:tokens].astype(np.int64))[None])
    return {n: captured[n][0].numpy().astype(np.float32) for n in layers}


def model_cycles(layer, cfg: Config, tokens: int = 1) -> int:
    """The performance model's cycles of ``tokens`` tokens through ``layer`` on the simulated core
    (the configuration's lanes and memory latency, memory never the bound)."""
    core = cfg.core
    if layer.kind == "block":
        return tokens * block_layer_cost(LayerShape(layer.name, layer.in_features, layer.out_features), layer.format,
                                         lanes=layer.lanes, memory_latency=core.memory_latency, clock_mhz=1.0,
                                         bandwidth_gbs=np.inf).cycles
    if layer.kind == "tmac":
        return tokens * sum(
            tmac_layer_cost(LayerShape(layer.name, run.positions * layer.v, layer.out_features), v=layer.v,
                            c_w=layer.c_w, cb_bits=layer.cb_bits, group_rows=layer.group_rows, lanes=layer.lanes,
                            memory_latency=core.memory_latency, clock_mhz=1.0, bandwidth_gbs=np.inf).cycles
            for run in layer.runs)
    return tokens * sum(
        layer_cost(LayerShape(layer.name, run.positions * layer.v, layer.out_features),
                   cfg.core_params.for_layer(layer), memory_latency=core.memory_latency, clock_mhz=1.0,
                   bandwidth_gbs=np.inf).cycles
        for run in layer.runs)


def demo(cfg: Config, build_dir, *, layers: list[str] | None = None, tokens: int = 32, sim_tokens: int = 2,
         windows: int = 1, window: int = 256, prompt: str = DEMO_PROMPT, progress: bool = True,
         model=None) -> DemoResult:
    """The main job (see the module docstring). ``layers`` are the linears compiled and run on the
    accelerator (default: every decoder linear; the others stay fp32 on the host); ``model`` is
    ``load_model()``'s result, when loaded. The arguments are checked before the model is loaded."""
    if cfg.blocks == "hardware":
        raise UsageError(f"Configuration {cfg.name!r} has blocks: hardware, and the demo runs the linears alone on "
                         f"the accelerator; run its whole blocks with lutforge generate --config CONFIG --backend "
                         f"sim (and lutforge run --window {cfg.decoder.max_keys} for perplexity), or give the demo a "
                         f"configuration without 'blocks'.")
    check_int("tokens", tokens, 1, MAX_TOKENS)
    check_int("sim_tokens", sim_tokens, 1, MAX_SIM_TOKENS,
              fix=f"Verilator runs every linear of each generated token; generate at most {MAX_SIM_TOKENS}")
    EvaluationConfig(windows, window).validate()
    check_prompt(prompt)
    if layers is not None:
        check_layers(layers, cfg.model)
    check_data("valid", "test")
    start = time.perf_counter()
    build_dir = Path(build_dir)
    ir, ref, tok = model or load_model(progress=progress)
    ids = prompt_ids(tok, ir, prompt, sim_tokens)
    layers = list(ref.linear_names) if layers is None else layers
    program = compile_model(Build(build_dir, cfg, progress), ir, layers, reference=ref, tokenizer=tok)
    t_compile = time.perf_counter() - start

    # 1. Per layer: the hardware arithmetic (golden) against PyTorch fp32 on real activations.
    golden = HostDriver(program, get_backend("golden"))
    xs = eval_inputs(ref, tok, layers, tokens)
    errors = {}
    for name in progress_bar(layers, desc="layers vs fp32", disable=None if progress else True, leave=False):
        x = xs[name]
        errors[name] = float_metrics(golden.linear(name, x), x.astype(np.float64) @ ref.weight(name).double().numpy().T)

    # 2. Whole tokens: Verilator, golden and PyTorch fp32 generate from the same prompt.
    reference = greedy(ref, ids, sim_tokens, progress=progress, desc="PyTorch fp32")
    golden = HostDriver(program, get_backend("golden"), keep=True)
    golden_tokens, _ = on_hardware(ref, golden, ids, sim_tokens, progress=progress, desc="generate (golden)")
    sim = HostDriver(program, make_backend("sim", cfg), keep=True)
    with status("sim: building the cores with Verilator (once per core configuration, then cached)"):
        for layer in program.layers.values():
            sim.backend.core(layer)
    sim_tokens_out, t_sim = on_hardware(ref, sim, ids, sim_tokens, progress=progress, desc="generate (Verilator)")
    g_acc, s_acc = golden.kept(), sim.kept()
    mismatch = first_mismatch(g_acc, s_acc, list(program.layers))
    generation = DemoGeneration(
        prompt, tuple(ids), tuple(sim_tokens_out), tok.decode(sim_tokens_out), tuple(golden_tokens),
        tuple(reference), tok.decode(reference), agreement(sim_tokens_out, reference),
        sim.accumulators.hexdigest(), golden.accumulators.hexdigest(), sim.cycles)

    # 3. Per layer: the last call (one decoded token) in Verilator against the performance model.
    checks = []
    for name in layers:
        layer = program.layers[name]
        cycles, model = sim.results[name].cycles, model_cycles(layer, cfg)
        e = errors[name]
        checks.append(LayerCheck(name, layer.kind, (layer.out_features, layer.in_features),
                                 bool(np.array_equal(g_acc[name], s_acc[name])), e["max_abs"], e["rel_rms"],
                                 e["cosine"], cycles, model, (model - cycles) / cycles))

    # 4. Whole-model perplexity of the hardware arithmetic, and of fp32, on the same windows.
    test_ids, _ = wikitext2_tokens("test", tok)
    fp32 = perplexity(ref, test_ids, window=window, n_windows=windows, progress=progress)
    with routed(ref, HostDriver(program, get_backend("golden"))):
        quant = perplexity(ref, test_ids, window=window, n_windows=windows, progress=progress)
    rows = (PerplexityRow("fp32", fp32.ppl, fp32.nll, 32.0, fp32.seconds),
            PerplexityRow(cfg.name, quant.ppl, quant.nll, config_streamed_bits(cfg), quant.seconds))

    # 5. Projections of this Program.
    projections = tuple(program_cost(program, TARGETS[t]) for t in PROJECTION_TARGETS)
    results = DemoResult(
        cfg.name, cfg.hash(), layer_kinds(program), tuple(checks), mismatch, tokens, generation, rows, windows,
        window, sim.backend.build_seconds, sim.backend.builds_cached,
        DemoSeconds(t_compile, t_sim, time.perf_counter() - start), resolve_target(cfg.target).name,
        projections, str(program.path), config_streamed_bits(cfg))
    write_demo_report(build_dir, results, cfg)
    return results


def demo_table(results: DemoResult) -> str:
    return markdown_table(
        ["layer", "core", "N x K", "sim == golden", "cosine", "rel RMS", "max abs", "sim cycles", "model cycles",
         "model err"],
        [[r.layer, r.kind, "{} x {}".format(*r.shape), "yes" if r.bit_exact else "NO", r.cosine, r.rel_rms,
          r.max_abs, r.cycles, r.model_cycles, f"{100 * r.model_error:+.2f} %"]
         for r in results.layers])


def mismatch_text(results: DemoResult) -> str:
    """Where sim and golden first differ, in words; empty when they agree everywhere."""
    return "" if results.first_mismatch is None else str(results.first_mismatch)


def write_demo_report(build_dir: Path, results: DemoResult, cfg: Config) -> None:
    png = plot_layer_errors(build_dir / "layer_error.png", [r.to_json() for r in results.layers],
                            f"{cfg.name}: hardware arithmetic vs PyTorch fp32 "
                            f"({results.tokens_compared_with_pytorch} tokens)")
    proj = markdown_table(
        ["target", "tokens/s (decode, linears)", "cycles/token", "bound", "image MiB", "fits"],
        [[p["target"], p["tokens_per_s"], p["cycles_per_token"], "/".join(p["bound"]), p["image_mib"],
          p["fits_memory"]] for p in results.projections])
    g = results.generation
    mm = mismatch_text(results)
    seconds = results.seconds
    kinds = ", ".join(f"{n} on the {k} core" for k, n in sorted(results.layer_kinds.items()))
    total = len(model_linears(cfg.model))
    ppl = markdown_table(["config", "perplexity", "streamed bits/weight"],
                         [[r.config, r.perplexity, r.bits_per_weight] for r in results.perplexity])
    lines = [
        f"# lutforge demo: SmolLM2-135M, config `{cfg.name}`", "",
        f"{sum(results.layer_kinds.values())} of {total} decoder linears compiled for the accelerator: {kinds} "
        f"(any others stay fp32 on the host); "
        f"{results.bits_per_weight:.3f} streamed bits per weight.", "",
        "## Generated text (greedy, every linear on the accelerator)", "",
        f"Prompt: {g.prompt!r} ({len(g.prompt_tokens)} tokens)", "",
        f"* Verilator: {g.text!r}",
        f"* PyTorch fp32: {g.pytorch_text!r} ({g.agreement} of {len(g.tokens)} tokens agree)", "",
        f"Verilator == golden in every accumulator of every token: **{results.all_bit_exact}**"
        + (f"; {mm}" if mm else "") + f" (SHA-256 {g.sim_sha256[:16]}... vs {g.golden_sha256[:16]}...; "
        f"{g.cycles} simulated cycles).", "",
        f"## Whole-model perplexity ({results.windows} windows of {results.window} tokens of WikiText-2 test, "
        f"golden backend)", "", ppl, "",
        "## Layers (hardware arithmetic vs PyTorch fp32 on real activations; sim cycles of one token)", "",
        demo_table(results), "",
        f"![per-layer error]({png.name})", "",
        "## Projection of this Program (performance model; non-linear ops excluded)", "", proj, "",
        f"Wall time: {seconds.total:.1f} s (compile {seconds.compile:.1f} s, Verilator build "
        f"{results.sim_build_seconds:.1f} s, generation in Verilator {seconds.sim:.1f} s).",
    ]
    (build_dir / "report.md").write_text("\n".join(lines) + "\n")
