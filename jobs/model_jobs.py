"""The jobs behind ``lutforge compile``, ``lutforge demo`` and ``lutforge run``.

* :func:`demo` compiles the linear layers of decoder block 0 (or the layers asked for), runs them
  on the golden backend and on the Verilator backend, checks sim == golden bit-exact and golden
  against PyTorch fp32 on real activations (the fp32 model's inputs to each layer on the first
  tokens of WikiText-2 test), compares simulated cycles with the performance model and writes
  ``report.md``, ``layer_error.png`` and, on request, JSON.
* :func:`run_model` compiles every linear layer, runs the whole model with all of them on the
  golden backend (non-linear operations on the host) and reports perplexity on a fixed slice of
  WikiText-2 test next to fp32.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..compiler.config import Config
from ..backends import get_backend
from ..backends.driver import HostDriver, replace_all
from ..compiler.evaluate import first_mismatch, float_metrics, markdown_table, plot_layer_errors, write_json
from ..compiler.model import BLOCK_LINEARS
from ..compiler.perf import layer_cost, LayerShape, model_cost, resolve_target, TARGETS
from ..compiler.bundled import load_model
from ..compiler.steps import Build, compile_model

__all__ = ["demo", "run_model", "compile_job", "eval_inputs"]


def block_layers(block: int = 0) -> list[str]:
    return [f"layers.{block}.{n}" for n in BLOCK_LINEARS]


def compile_job(cfg: Config, build_dir, layers: list[str] | None = None, progress: bool = True):
    ir, ref, tok = load_model(progress)
    layers = layers or ref.linear_names
    return compile_model(Build(build_dir, cfg, progress), ir, layers, reference=ref, tokenizer=tok)


def eval_inputs(ref, tokenizer, layers: list[str], tokens: int) -> dict[str, np.ndarray]:
    """fp32 inputs of ``layers`` on the first ``tokens`` tokens of WikiText-2 test (T, K)."""
    import torch

    from ..compiler.data import wikitext2_tokens

    ids, _ = wikitext2_tokens("test", tokenizer)
    with torch.inference_mode(), ref.capture_inputs(layers) as captured:
        ref(torch.from_numpy(ids[:tokens].astype(np.int64))[None])
    return {n: captured[n][0].numpy().astype(np.float32) for n in layers}


def demo(cfg: Config, build_dir, *, layers: list[str] | None = None, tokens: int = 32,
         sim_tokens: int = 2, json_path=None, progress: bool = True, model=None) -> dict:
    """The main job (see the module docstring). Returns the results dict (also written as JSON)."""
    start = time.perf_counter()
    build_dir = Path(build_dir)
    ir, ref, tok = model or load_model(progress)
    layers = layers or block_layers(0)
    build = Build(build_dir, cfg, progress)
    program = compile_model(build, ir, layers, reference=ref, tokenizer=tok)
    t_compile = time.perf_counter() - start

    xs = eval_inputs(ref, tok, layers, tokens)
    golden = HostDriver(program, get_backend("golden"))
    core = cfg.core
    sim = HostDriver(program, get_backend("sim", chains=core.chains, max_positions=core.max_positions,
                                          memory_latency=core.memory_latency))
    if progress:
        print("sim: building the GEMV core with Verilator (once per core configuration, then cached) ...",
              flush=True)
    for name in layers:
        sim.backend.core(program.layers[name])
    rows, g_acc, s_acc = [], {}, {}
    t_sim = 0.0
    for name in layers:
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
            layer_cost(LayerShape(name, run.positions * layer.v, layer.out_features), cfg.quantization,
                       lanes=layer.lanes, chains=core.chains, memory_latency=core.memory_latency,
                       clock_mhz=1.0, bandwidth_gbs=np.inf).cycles
            for run in layer.runs)
        rows.append({"layer": name, "shape": [layer.out_features, layer.in_features],
                     "runs": len(layer.runs), "bit_exact": bool(np.array_equal(g_acc[name], s_acc[name])),
                     **m, "cycles": result.cycles, "model_cycles": model_cycles,
                     "model_error": (model_cycles - result.cycles) / result.cycles})
        if progress:
            r = rows[-1]
            print(f"  {name:18s} bit_exact={r['bit_exact']} cos={r['cosine']:.4f} rel_rms={r['rel_rms']:.4f} "
                  f"cycles={r['cycles']}", flush=True)
    mismatch = first_mismatch(g_acc, s_acc, layers)
    target = resolve_target(cfg.target)
    projections = [model_cost(m, cfg.quantization, TARGETS[t], core.chains)
                   for m in ("SmolLM2-135M", "Qwen3-1.7B") for t in ("orangecrab-25f", "v80")]
    results = {
        "config": cfg.name, "config_hash": cfg.hash(), "layers": rows,
        "all_bit_exact": mismatch is None, "first_mismatch": None if mismatch is None else vars(mismatch),
        "tokens_compared_with_pytorch": tokens, "tokens_simulated": sim_tokens,
        "sim_build_seconds": sim.backend.build_seconds, "sim_build_cached": sim.backend.builds_cached,
        "seconds": {"compile": t_compile, "sim": t_sim, "total": time.perf_counter() - start},
        "target": target.name, "projections": projections, "program": str(program.path),
        "bits_per_weight": cfg.quantization.bits_per_weight,
    }
    write_demo_report(build_dir, results, cfg)
    if json_path:
        write_json(json_path, results)
    return results


def demo_table(results: dict) -> str:
    return markdown_table(
        ["layer", "N x K", "bit-exact", "cosine", "rel RMS", "max abs", "sim cycles", "model cycles", "model err"],
        [[r["layer"], "{} x {}".format(*r["shape"]), "yes" if r["bit_exact"] else "NO", r["cosine"],
          r["rel_rms"], r["max_abs"], r["cycles"], r["model_cycles"], f"{100 * r['model_error']:+.2f} %"]
         for r in results["layers"]])


def write_demo_report(build_dir: Path, results: dict, cfg: Config) -> None:
    png = plot_layer_errors(build_dir / "layer_error.png", results["layers"],
                            f"{cfg.name}: LUT-LLM layers vs PyTorch fp32 ({results['tokens_compared_with_pytorch']} tokens)")
    proj = markdown_table(
        ["model", "target", "tokens/s (decode, linears)", "bound", "image MiB", "fits", "LUT-LLM published decode tokens/s (>=)"],
        [[p["model"], p["target"], p["tokens_per_s"], "/".join(p["bound"]), p["image_mib"],
          p["fits_memory"], (p["published"] or {}).get("decode_tokens_per_s_lower_bound", "-")]
         for p in results["projections"]])
    mm = results["first_mismatch"]
    lines = [
        f"# lutforge demo: SmolLM2-135M, config `{cfg.name}`", "",
        f"Quantization: {cfg.quantization}", "",
        f"Core: {cfg.core}", "",
        "## Layers (golden vs PyTorch fp32 on real activations; sim vs golden bit-exact)", "",
        demo_table(results), "",
        f"All layers bit-exact (sim == golden): **{results['all_bit_exact']}**"
        + ("" if mm is None else f"; first mismatch: layer {mm['layer']} token {mm['token']} "
           f"row {mm['element']}: expected {mm['expected']}, got {mm['actual']}"), "",
        f"![per-layer error]({png.name})", "",
        "## Projection (performance model; non-linear ops excluded)", "", proj, "",
        f"Wall time: {results['seconds']['total']:.1f} s (compile {results['seconds']['compile']:.1f} s, "
        f"Verilator build {results['sim_build_seconds']:.1f} s, simulation {results['seconds']['sim']:.1f} s).",
    ]
    (build_dir / "report.md").write_text("\n".join(lines) + "\n")


def run_model(configs: list[Config], build_root, *, windows: int | None = None, window: int | None = None,
              json_path=None, progress: bool = True, fp32: bool = True) -> dict:
    """Whole-model perplexity on the golden backend for each config, and for fp32."""
    from ..compiler.data import wikitext2_tokens
    from ..compiler.perplexity import perplexity

    ir, ref, tok = load_model(progress)
    windows = windows or configs[0].evaluation.windows
    window = window or configs[0].evaluation.window
    ids, data = wikitext2_tokens("test", tok)
    rows = []
    if fp32:
        r = perplexity(ref, ids, window=window, n_windows=windows, progress=progress)
        rows.append({"config": "fp32", "ppl": r.ppl, "nll": r.nll, "bits_per_weight": 32.0,
                     "seconds": r.seconds})
        if progress:
            print(f"fp32: {r}", flush=True)
    for cfg in configs:
        build = Build(Path(build_root) / cfg.name, cfg, progress)
        program = compile_model(build, ir, ref.linear_names, reference=ref, tokenizer=tok)
        driver = HostDriver(program, get_backend("golden"))
        replace_all(ref, driver)
        try:
            r = perplexity(ref, ids, window=window, n_windows=windows, progress=progress)
        finally:
            for name in ref.linear_names:
                ref.replace_linear(name, None)
        rows.append({"config": cfg.name, "ppl": r.ppl, "nll": r.nll,
                     "bits_per_weight": cfg.quantization.bits_per_weight, "seconds": r.seconds,
                     "quantization": vars(cfg.quantization)})
        if progress:
            print(f"{cfg.name}: {r}", flush=True)
    results = {"data": str(data.path), "data_sha256": data.sha256, "windows": windows, "window": window,
               "tokens": windows * (window - 1), "rows": rows}
    root = Path(build_root)
    root.mkdir(parents=True, exist_ok=True)
    table = markdown_table(["config", "perplexity", "NLL (nats)", "index bits/weight"],
                           [[r["config"], r["ppl"], r["nll"], r["bits_per_weight"]] for r in rows])
    (root / "perplexity.md").write_text(
        f"# Whole-model perplexity, SmolLM2-135M, golden backend\n\nWikiText-2 test, first {windows} "
        f"windows of {window} tokens ({windows * (window - 1)} predicted tokens).\n\n{table}\n\n"
        f"![perplexity](perplexity.png)\n")
    _plot_ppl(root / "perplexity.png", rows)
    if json_path:
        write_json(json_path, results)
    return results


def _plot_ppl(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar([r["config"] for r in rows], [r["ppl"] for r in rows], color="tab:purple")
    ax.set_yscale("log")
    ax.set_ylabel("perplexity (log)")
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
