"""``lutforge demo``, ``compile``, ``run``, ``generate``, ``quantize`` and ``finetune``: SmolLM2 (or a Llama /
Qwen3 checkpoint given with ``--model``) through the compiler.

Every argument, configuration and output path is checked before the model is loaded: a bad one
costs a second, not the minutes of a compile.
"""

import time
from pathlib import Path

from ..compiler.perf import TARGETS
from ..compiler.shape_only import NOT_QUALITY
from ..support.errors import UsageError
from .board import add_run_arguments, run_board
from .common import (add_device_argument, add_executor_arguments, check_folder, check_writable, device_from,
                     executor_from, no_repeats, number, parse_assignments, print_timings, write_json)

__all__ = ["register"]

def _config(args):
    """The configuration of ``--config`` with the ``--set`` overrides applied (values are YAML)."""
    from ..compiler.config import load_config
    from ..support.yamlfile import parse_yaml

    overrides = {name: parse_yaml(value, f"The value of --set {name}", "quote it or give a plain value")
                 for name, value in parse_assignments(args.set, "--set").items()}
    return load_config(args.config, overrides)


def _check_outputs(args) -> None:
    check_writable(args.json)
    check_folder(args.build, "--build")


def cmd_demo(args) -> int:
    from ..compiler.config import shipped_config_path
    from ..jobs.demo import demo, demo_table, mismatch_text

    _check_outputs(args)
    no_repeats(args.layer, "--layer")
    start = time.perf_counter()
    if args.config is None:
        args.config = str(shipped_config_path())
    cfg = _config(args)
    print(f"lutforge demo: SmolLM2-135M, config {cfg.name!r}: every decoder linear compiled for the "
          f"accelerator, text generated in Verilator, golden, PyTorch fp32.", flush=True)
    results = demo(cfg, args.build, layers=args.layer, tokens=args.tokens, sim_tokens=args.sim_tokens,
                   windows=args.windows, window=args.window, prompt=args.prompt)
    write_json(args.json, results)
    print(demo_table(results))
    g = results.generation
    print(f"prompt: {g.prompt!r}\n  Verilator:    {g.text!r}\n  PyTorch fp32: {g.pytorch_text!r} "
          f"({g.agreement} of {len(g.tokens)} tokens agree)")
    mm = mismatch_text(results)
    print(f"Verilator == golden bit for bit in every accumulator of every token: {results.all_bit_exact}"
          + (f" ({mm})" if mm else ""))
    for r in results.perplexity:
        print(f"perplexity {r.config}: {r.perplexity:.4g} ({results.windows} windows of {results.window}, "
              f"{r.bits_per_weight:.3f} streamed bits/weight)")
    for p in results.projections:
        print(f"projection: {p['model']} on {p['target']}: {p['tokens_per_s']:.1f} tokens/s "
              f"(decoder linears, {'/'.join(p['bound'])} bound)")
    print(f"Report: {Path(args.build) / 'report.md'}; wall time {time.perf_counter() - start:.1f} s.")
    return 0 if results.all_bit_exact else 1


def cmd_compile(args) -> int:
    from ..jobs.compile import compile_job

    _check_outputs(args)
    no_repeats(args.layer, "--layer")
    result = compile_job(_config(args), args.build, args.layer, checkpoint=args.model, weights=args.weights)
    write_json(args.json, result)
    print(f"Program: {result.program} ({len(result.layers)} layers"
          f"{'; ' + NOT_QUALITY if result.weights == 'random' else ''}).")
    return 0


def cmd_estimate(args) -> int:
    from ..compiler.config import estimate_config_path
    from ..jobs.estimate import estimate

    _check_outputs(args)
    if args.config is None:
        args.config = str(estimate_config_path())
    contexts = no_repeats(args.context, "--context") or [128, 384]
    result = estimate(_config(args), args.build, checkpoint=args.model, weights=args.weights, target=args.target,
                      prompt=args.prompt, new=args.new, contexts=contexts, host_bandwidth_gbs=args.host_bandwidth)
    write_json(args.json, result)
    if result.note:
        print(f"{result.model}: {result.note}.")
    at = ", ".join(f"{ms:.3f} ms at {c}" for c, ms in result.ms_per_token_decode_at_context.items())
    print(f"{result.model} on {result.target}: {result.ms_per_token_decode:.3f} ms per decoded token ({at} cached "
          f"tokens); {result.prompt} in / {result.new} out in {result.latency_s:.4f} s"
          + (f" (LUT-LLM's artifact: {result.artifact_latency_s} s)" if result.artifact_latency_s else "")
          + f"; bound: {result.bound}.")
    print(f"Report: {Path(args.build) / 'estimate.md'}")
    return 0


# The options of each kind of run; one given to the other kind would be ignored.
_MODEL_RUN = {"config": "--config", "model": "--model", "windows": "--windows", "window": "--window", "no_fp32": "--no-fp32",
              "build": "--build", "backend": "--backend", "device": "--device"}
_BOARD_RUN = {"transport": "--transport", "port": "--port", "soc_config": "--soc-config", "program": "--program",
              "layer": "--layer", "tokens": "--tokens", "seed": "--seed"}


def cmd_run(args) -> int:
    if args.board:
        given = [flag for name, flag in _MODEL_RUN.items() if getattr(args, name)]
        if given:
            raise UsageError(f"{given[0]} does not apply to a board run (--board {args.board}); remove it, or "
                             f"remove --board to run the whole model.")
        return run_board(args)
    given = [flag for name, flag in _BOARD_RUN.items() if getattr(args, name) is not None]
    if given:
        raise UsageError(f"{given[0]} applies only to a board run; add --board BOARD or remove it.")
    from ..compiler.config import load_config
    from ..jobs.run import run_model

    check_writable(args.json)
    configs = [load_config(path) for path in no_repeats(args.config, "--config") or [None]]
    build = args.build or "build/run"
    check_folder(build, "--build")
    result = run_model(configs, build, windows=args.windows, window=args.window, fp32=not args.no_fp32,
                       backend=args.backend or "golden", device=device_from(args) if args.device else "cpu",
                       checkpoint=args.model)
    write_json(args.json, result)
    print(f"Perplexity on {result.tokens} tokens of WikiText-2 test ({result.windows} windows "
          f"of {result.window}), {result.backend} backend:")
    for r in result.rows:
        print(f"  {r.config:20s} perplexity {r.perplexity:.4g}  ({r.bits_per_weight:.3f} streamed bits/weight)")
    print(f"Report: {Path(build) / 'perplexity.md'}")
    return 0


def cmd_generate(args) -> int:
    from ..compiler.checkpoint import model_source
    from ..compiler.config import default_config_path, shipped_config_path
    from ..jobs.generate import agreement, generate

    _check_outputs(args)
    if args.config is None:
        # The shipped configuration is tuned (and fine-tuned) for SmolLM2's layers; another checkpoint
        # takes the default one, which names no layer.
        args.config = str(shipped_config_path() if model_source(args.model).kind == "bundled"
                          else default_config_path())
    result = generate(_config(args), args.build, args.prompt, args.tokens, backend=args.backend,
                      checkpoint=args.model)
    write_json(args.json, result)
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(result.layer_kinds.items()))
    print(f"prompt ({len(result.prompt_tokens)} tokens): {result.prompt!r}")
    where = ("; norms, RoPE, attention, SiLU and residual adds on the decoder units"
             if result.blocks == "hardware" else "")
    print(f"{result.backend:>7} ({result.layers_on_hardware} linears on hardware: {kinds}{where}): {result.text!r}")
    print(f"PyTorch fp32: {result.pytorch_text!r}")
    print(f"{agreement(result.tokens, result.pytorch_tokens)} of {len(result.tokens)} tokens agree with PyTorch fp32; "
          f"{'accumulators and unit outputs' if result.blocks == 'hardware' else 'accumulators'} SHA-256 "
          f"{result.accumulators_sha256}; {result.seconds:.1f} s" +
          (f", {result.cycles} simulated cycles" if result.cycles is not None else "") + ".")
    if result.unit_model_cycles is not None:
        simulated = f"{result.unit_cycles} simulated, " if result.unit_cycles is not None else ""
        print(f"decoder units: {simulated}{result.unit_model_cycles} by the performance model "
              f"(compiler/perf_units.py).")
    return 0


def cmd_quantize(args) -> int:
    from ..compiler.search import quantize_search

    check_writable(args.output)
    check_writable(args.json)
    executor = executor_from(args)
    report = quantize_search(args.budget, args.output, rows=args.rows, lut_every=args.lut_every,
                             finetune_steps=args.finetune, executor=executor, device=device_from(args),
                             threads=args.threads, tune_steps=args.tune)
    write_json(args.json, report)
    print(f"Wrote {args.output}: {report.bits_per_weight:.3f} streamed bits/weight (budget {args.budget}).")
    print_timings(executor)
    for d in report.dominant_layers[:5]:
        print(f"  {d.layer:20s} {d.method:40s} estimated NLL +{d.est_nll_increase:.3g} "
              f"(relative output MSE {d.rel_mse:.3g})")
    return 0


def cmd_finetune(args) -> int:
    from ..compiler.finetune import resolve_device
    from ..jobs.finetune import finetune_job

    _check_outputs(args)
    resolve_device(args.device)
    result = finetune_job(_config(args), args.build, device=args.device, checkpoint=args.model)
    write_json(args.json, result)
    print(f"finetune {result.config} on {result.device}: {result.steps} steps, {result.tokens_seen} tokens, "
          f"{result.train_seconds:.0f} s; held-out perplexity (WikiText-2 valid) "
          f"{result.initial_holdout_perplexity:.3f} -> {result.best_holdout_perplexity:.3f} at step {result.best_step}; "
          f"{result.block_layers} block-format and {result.lut_layers} LUT layers trained.")
    print(f"Loss curve: {result.loss_plot}; Program of the trained model: {result.program}")
    return 0


# The limits live next to the code they protect; those modules import torch, so the parser reads
# them only when the option is given (the help texts quote them; tests/test_bad_input_model.py
# checks that they agree).
def _max_tokens():
    from ..jobs.demo import MAX_TOKENS
    return MAX_TOKENS


def _max_sim_tokens():
    from ..jobs.demo import MAX_SIM_TOKENS
    return MAX_SIM_TOKENS


def _eval_limit(key: str):
    def limit():
        from ..compiler import config
        return getattr(config, key)[1]
    return limit


def _max_new_tokens():
    from ..jobs.generate import MAX_NEW_TOKENS
    return MAX_NEW_TOKENS


def _max_budget():
    from ..compiler.search import MAX_BUDGET
    return MAX_BUDGET


def _max_tune_steps():
    from ..compiler.lut_methods import MAX_TUNE_STEPS
    return MAX_TUNE_STEPS


def _max_rows():
    from ..compiler.search import SEARCH_CALIBRATION
    return SEARCH_CALIBRATION["window"]


def _blocks():
    from ..compiler.config import model_linears
    return len({name.split(".")[1] for name in model_linears()})


def _config_arguments(p) -> None:
    p.add_argument("--config", help="accelerator config YAML (default: configs/default.yaml)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config key")


def _model_argument(p, weights: bool = False) -> None:
    # No default: a board run refuses a --model it would ignore.
    p.add_argument("--model", metavar="PATH", help="a Llama or Qwen3 checkpoint: a GGUF file, a safetensors file or a "
                                                   "Hugging Face-style directory, with its tokenizer (default: the "
                                                   "bundled SmolLM2-135M, also named 'smollm2')"
                                                   + ("; or a named architecture of configs/models (qwen3-1.7b) "
                                                      "with --weights random" if weights else ""))
    if weights:
        p.add_argument("--weights", choices=("checkpoint", "random"), default="checkpoint",
                       help="the checkpoint's weights (default), or random ones in its shapes: a shape-only Program "
                            "for projections, not a quality figure")


def register(sub) -> None:
    p = sub.add_parser("demo", help="the main job: compile every SmolLM2 linear for the accelerator, generate "
                                    "text in Verilator, check against golden and PyTorch")
    p.add_argument("--config", help="config YAML (default: configs/smollm2-lut.yaml, the best shipped one)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config key")
    p.add_argument("--layer", action="append",
                   help="linear layer(s) compiled and run on the accelerator, the others fp32 (default: all)")
    p.add_argument("--tokens", type=number(int, 1, _max_tokens), default=32,
                   help="tokens of real activations per layer compared with PyTorch, 1 to 2048")
    p.add_argument("--sim-tokens", type=number(int, 1, _max_sim_tokens), default=3,
                   help="tokens generated in Verilator, 1 to 64")
    p.add_argument("--prompt", default="The capital of France is", help="the text the generation continues")
    p.add_argument("--windows", type=number(int, 1, _eval_limit("EVAL_WINDOWS")), default=1,
                   help="WikiText-2 test windows of the perplexity, 1 to 10000")
    p.add_argument("--window", type=number(int, 2, _eval_limit("EVAL_WINDOW")), default=256,
                   help="tokens per window, 2 to 8192")
    p.add_argument("--build", default="build/demo", help="build directory (Program, reports)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("compile", help="compile a model's linear layers into a Program directory")
    _config_arguments(p)
    _model_argument(p, weights=True)
    p.add_argument("--layer", action="append", help="linear layer(s) (default: all)")
    p.add_argument("--build", default="build/compile", help="build directory")
    p.add_argument("--json", metavar="PATH", help="write the Program's path and layers as JSON")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("estimate", help="compile a model (or its shapes only) and project the whole token on a "
                                        "target: ms per decoded token, prefill + decode latency, what bounds it")
    p.add_argument("--config", help="config YAML (default: configs/v80.yaml, block-format linears and whole blocks "
                                    "on the units for the V80 preset)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config key")
    _model_argument(p, weights=True)
    p.add_argument("--target", choices=sorted(TARGETS), help="target preset (default: the configuration's)")
    p.add_argument("--prompt", type=number(int, 1, 1 << 20), default=128, help="prompt tokens of the latency (default 128)")
    p.add_argument("--new", type=number(int, 2, 1 << 20), default=256, help="generated tokens of the latency (default 256)")
    p.add_argument("--context", type=number(int, 0, 1 << 20), action="append",
                   help="cached tokens of a decode estimate, repeatable (default: 128 and 384)")
    p.add_argument("--host-bandwidth", type=number(float, 0.001, 1e6), default=100.0, metavar="GB/S",
                   help="memory bandwidth of the host, for what runs there (default 100, assumed)")
    p.add_argument("--build", default="build/estimate", help="build directory (Program, estimate.md, estimate.png)")
    p.add_argument("--json", metavar="PATH", help="write the estimate as JSON")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("run", help="run the whole model on the golden backend (or the RTL) and report perplexity; "
                                   "with --board, run a check layer on a board or its simulation")
    p.add_argument("--config", action="append", help="config YAML, repeatable (default: configs/default.yaml)")
    p.add_argument("--windows", type=number(int, 1, _eval_limit("EVAL_WINDOWS")),
                   help="WikiText-2 test windows, 1 to 10000 (default: from the config)")
    p.add_argument("--window", type=number(int, 2, _eval_limit("EVAL_WINDOW")),
                   help="tokens per window, 2 to 8192 (default: from the config)")
    p.add_argument("--no-fp32", action="store_true", help="skip the fp32 reference row")
    _model_argument(p)
    # No default: a device given to a board run would be ignored, and `run` refuses it then.
    add_device_argument(p, None, "calibration, fine-tuning, fits and the model's own operations (the quantized "
                                 "layers run on the golden backend or the RTL either way)")
    # No default: a backend given to a board run would be ignored, and `run` refuses it then.
    p.add_argument("--backend", choices=("golden", "sim"),
                   help="golden models (default) or the RTL in Verilator: the same perplexity bit for bit, "
                        "far slower (use a short --window)")
    p.add_argument("--build", help="build directory (default: build/run)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    add_run_arguments(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("generate", help="greedy text with every decoder linear on the accelerator (golden "
                                        "models or the RTL in Verilator), next to PyTorch fp32's")
    p.add_argument("--config", help="config YAML (default: configs/smollm2-lut.yaml, the best shipped one, for "
                                    "SmolLM2; configs/default.yaml for another --model)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config key")
    _model_argument(p)
    p.add_argument("--prompt", required=True, help="the text to continue")
    p.add_argument("--tokens", type=number(int, 1, _max_new_tokens), default=8, help="new tokens, 1 to 256")
    p.add_argument("--backend", choices=("golden", "sim"), default="golden",
                   help="golden models or the RTL in Verilator (default: golden)")
    p.add_argument("--build", default="build/generate", help="build directory (Program)")
    p.add_argument("--json", metavar="PATH", help="write the tokens, texts and accumulator hash as JSON")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("quantize", help="per-layer sensitivity and a search for a streamed-bits budget; "
                                        "writes a method configuration for `run`")
    p.add_argument("--model", choices=("smollm2",), default="smollm2", help="the model (SmolLM2-135M)")
    p.add_argument("--budget", type=number(float, 0, _max_budget), required=True, metavar="BITS",
                   help="mean streamed bits per weight over the decoder linears, up to 8.25 (MXINT8); at least "
                        "what the cheapest candidates stream (1.972 with --lut-every 1)")
    p.add_argument("--rows", type=number(int, 1, _max_rows), default=512,
                   help="held-out rows (tokens of the valid window after the calibration's) scored per layer, 1 to 512")
    p.add_argument("--lut-every", type=number(int, 1, _blocks), default=1, metavar="K",
                   help="score co-quantized LUT candidates in every K-th decoder block only, 1 to 30 (default: "
                        "every block; a fit takes 1-15 s on 2 cores, weight-only LUT candidates are always scored "
                        "in every block)")
    p.add_argument("--finetune", type=number(int, 1, 1_000_000), metavar="STEPS",
                   help="write a finetune section of STEPS steps, so that `run` trains the chosen "
                        "configuration first (1 to 1000000)")
    p.add_argument("--tune", type=number(int, 0, _max_tune_steps), default=0, metavar="STEPS",
                   help="tune every LUT candidate's codebooks STEPS Adam steps on its layer's output before "
                        "scoring it (default 0: the fits as they are; bench/layer_tune.py measures what it buys)")
    p.add_argument("-o", "--output", required=True, metavar="CONFIG.yaml")
    p.add_argument("--json", metavar="PATH", help="write the sensitivity table and choice as JSON")
    add_executor_arguments(p)
    p.add_argument("--threads", type=number(int, 1, 256), default=2,
                   help="torch threads of the session and of each worker's (default 2; workers x threads "
                        "above the cores oversubscribe them)")
    add_device_argument(p, "cpu", "calibration, fits and the loss probes' model operations (on every worker)")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("finetune", help="train a configuration's block-format layers for the hardware "
                                        "arithmetic (resumable) and compile the trained model")
    p.add_argument("--config", required=True, help="config YAML with lut_methods and finetune sections")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config key")
    _model_argument(p)
    add_device_argument(p, "auto", "calibration, the training and the fits")
    p.add_argument("--build", default="build/finetune", help="build directory (reports, loss plot, Program)")
    p.add_argument("--json", metavar="PATH", help="write the run's summary as JSON")
    p.set_defaults(func=cmd_finetune)
