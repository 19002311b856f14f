"""``lutforge demo``, ``compile``, ``run`` and ``quantize``: SmolLM2 through the compiler."""

import time
from pathlib import Path

from .board import add_run_arguments, run_board
from .common import check_writable, parse_assignments, write_json, yaml_file

__all__ = ["register"]


def _config(args):
    """The configuration of ``--config`` with the ``--set`` overrides applied (values are YAML)."""
    import yaml

    from ..compiler.config import default_config_path, load_config

    overrides = {}
    for name, value in parse_assignments(args.set, "--set").items():
        with yaml_file(f"The value of --set {name}"):
            overrides[name] = yaml.safe_load(value)
    with yaml_file(args.config or default_config_path()):
        return load_config(args.config, overrides)


def cmd_demo(args) -> int:
    from ..jobs.demo import demo, demo_table, mismatch_text

    check_writable(args.json)
    start = time.perf_counter()
    cfg = _config(args)
    print(f"lutforge demo: SmolLM2-135M block 0 linears, config {cfg.name!r}: compile, Verilator, "
          f"golden, PyTorch fp32.", flush=True)
    results = demo(cfg, args.build, layers=args.layer or None, tokens=args.tokens, sim_tokens=args.sim_tokens)
    write_json(args.json, results)
    print(demo_table(results))
    mm = mismatch_text(results)
    print(f"sim == golden bit-exact on all {len(results.layers)} layers: {results.all_bit_exact}"
          + (f" (first mismatch: {mm})" if mm else ""))
    for p in results.projections:
        print(f"projection: {p['model']} on {p['target']}: {p['tokens_per_s']:.1f} tokens/s "
              f"(decoder linears, {'/'.join(p['bound'])} bound)")
    print(f"Report: {Path(args.build) / 'report.md'}; wall time {time.perf_counter() - start:.1f} s.")
    return 0 if results.all_bit_exact else 1


def cmd_compile(args) -> int:
    from ..jobs.compile import compile_job

    check_writable(args.json)
    result = compile_job(_config(args), args.build, args.layer or None)
    write_json(args.json, result)
    print(f"Program: {result.program} ({len(result.layers)} layers).")
    return 0


def cmd_run(args) -> int:
    if args.board:
        return run_board(args)
    from ..compiler.config import default_config_path, load_config
    from ..compiler.search import is_method_config, load_method_config
    from ..jobs.run import run_methods, run_model

    check_writable(args.json)
    paths = args.config or [None]
    # One method configuration makes it a run layer by layer; each file must then be one.
    methods = any(path and is_method_config(path) for path in paths)
    configs = []
    for path in paths:
        with yaml_file(path or default_config_path()):
            configs.append(load_method_config(path) if methods else load_config(path))
    if methods:
        result = run_methods(configs, windows=args.windows, window=args.window, fp32=not args.no_fp32)
        for r in result.rows:
            print(f"  {r.config:20s} perplexity {r.perplexity:.4g}  {r.bits_per_weight:.3f} streamed "
                  f"bits/weight ({r.windows} windows of {r.window})")
        write_json(args.json, result)
        return 0
    result = run_model(configs, args.build, windows=args.windows, window=args.window, fp32=not args.no_fp32)
    write_json(args.json, result)
    print(f"Perplexity on {result.tokens} tokens of WikiText-2 test ({result.windows} windows "
          f"of {result.window}):")
    for r in result.rows:
        print(f"  {r.config:20s} perplexity {r.perplexity:.4g}  ({r.bits_per_weight:g} index bits/weight)")
    print(f"Report: {Path(args.build) / 'perplexity.md'}")
    return 0


def cmd_quantize(args) -> int:
    from ..compiler.search import quantize_search

    check_writable(args.output)
    check_writable(args.json)
    report = quantize_search(args.budget, args.output, rows=args.rows, lut_every=args.lut_every)
    write_json(args.json, report)
    print(f"Wrote {args.output}: {report.bits_per_weight:.3f} streamed bits/weight (budget {args.budget}).")
    for d in report.dominant_layers[:5]:
        print(f"  {d.layer:20s} {d.method:40s} estimated NLL +{d.est_nll_increase:.3g} "
              f"(relative output MSE {d.rel_mse:.3g})")
    return 0


def _config_arguments(p) -> None:
    p.add_argument("--config", help="accelerator config YAML (default: configs/default.yaml)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config key")


def register(sub) -> None:
    p = sub.add_parser("demo", help="the main job: compile SmolLM2 block 0, run it in Verilator, "
                                    "check against golden and PyTorch")
    _config_arguments(p)
    p.add_argument("--layer", action="append", help="linear layer(s) to run (default: block 0's seven)")
    p.add_argument("--tokens", type=int, default=32, help="tokens compared with PyTorch")
    p.add_argument("--sim-tokens", type=int, default=2, help="tokens run in Verilator")
    p.add_argument("--build", default="build/demo", help="build directory (Program, reports)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("compile", help="compile SmolLM2 linear layers into a Program directory")
    _config_arguments(p)
    p.add_argument("--layer", action="append", help="linear layer(s) (default: all)")
    p.add_argument("--build", default="build/compile", help="build directory")
    p.add_argument("--json", metavar="PATH", help="write the Program's path and layers as JSON")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("run", help="run the whole model on the golden backend and report perplexity; "
                                   "with --board, run a check layer on a board or its simulation")
    p.add_argument("--config", action="append", help="config YAML, repeatable (default: configs/default.yaml)")
    p.add_argument("--windows", type=int, help="WikiText-2 test windows (default: from the config)")
    p.add_argument("--window", type=int, help="tokens per window (default: from the config)")
    p.add_argument("--no-fp32", action="store_true", help="skip the fp32 reference row")
    p.add_argument("--model", choices=("smollm2",), default="smollm2", help="the model (SmolLM2-135M)")
    p.add_argument("--build", default="build/run", help="build directory")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    add_run_arguments(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("quantize", help="per-layer sensitivity and a search for a streamed-bits budget; "
                                        "writes a method configuration for `run`")
    p.add_argument("--model", choices=("smollm2",), default="smollm2", help="the model (SmolLM2-135M)")
    p.add_argument("--budget", type=float, required=True, metavar="BITS",
                   help="mean streamed bits per weight over the decoder linears")
    p.add_argument("--rows", type=int, default=512, help="calibration rows scored per layer")
    p.add_argument("--lut-every", type=int, default=4, metavar="K",
                   help="score LUT candidates in every K-th decoder block only (fits take minutes)")
    p.add_argument("-o", "--output", required=True, metavar="CONFIG.yaml")
    p.add_argument("--json", metavar="PATH", help="write the sensitivity table and choice as JSON")
    p.set_defaults(func=cmd_quantize)
