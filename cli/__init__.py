"""The ``lutforge`` command line."""

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]


def _params(pairs: "list[str] | None") -> dict[str, str]:
    params = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"lutforge: --param takes NAME=VALUE, not {pair!r}.")
        params[name] = value
    return params


def _write_json(path: "str | None", data) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, indent=2, default=str) + "\n")


def cmd_blocks(args) -> int:
    from ..blocks import catalogue
    for name, block in catalogue().items():
        print(f"{name:20s} {block.summary}")
        for pname, p in block.params.items():
            choices = f" ({'|'.join(map(str, p.choices))})" if p.choices else ""
            print(f"    {pname}={p.default}{choices}: {p.help}")
    return 0


def cmd_verilog(args) -> int:
    from ..blocks import get_block
    from ..sim.rtl import elaborate
    block = get_block(args.block)
    params = block.resolve(_params(args.param))
    design = elaborate(block.build(params), top=args.top)
    if args.output == "-":
        sys.stdout.write(design.verilog)
    else:
        Path(args.output).write_text(design.verilog)
        print(f"Wrote {args.output}: module {design.top} with {len(design.ports)} ports.")
    return 0


def _harness(simulator: str, cocotb: bool) -> str:
    if simulator == "amaranth":
        return "amaranth"
    if simulator == "icarus":
        return "cocotb-icarus"
    return "cocotb-verilator" if cocotb else "batch"


def cmd_sim(args) -> int:
    from ..blocks import get_block
    from ..blocks.selfcheck import self_check
    block = get_block(args.block)
    params = block.resolve(_params(args.param))
    result = self_check(block, params, _harness(args.simulator, args.cocotb), count=args.vectors,
                        seed=args.seed, waves=args.waves)
    scope = "all" if result.exhaustive else "random"
    print(f"{block.name} {params} on {result.harness}: {result.vectors - result.mismatches} of "
          f"{result.vectors} {scope} vectors agree with the golden model "
          f"({result.vectors_per_second:,.0f} vectors/s).")
    if result.first_mismatch:
        print(result.first_mismatch)
    if result.waves_path:
        print(f"Waveforms: {result.waves_path}")
    _write_json(args.json, result.to_json())
    return 0 if result.passed else 1


def _config(args):
    from ..compiler.config import load_config
    overrides = {}
    for name, value in _params(getattr(args, "set", None)).items():
        import yaml
        overrides[name] = yaml.safe_load(value)
    return load_config(args.config, overrides)


def cmd_demo(args) -> int:
    import time
    from ..jobs.model_jobs import demo, demo_table
    start = time.perf_counter()
    cfg = _config(args)
    layers = args.layer or None
    print(f"lutforge demo: SmolLM2-135M block 0 linears, config {cfg.name!r}: compile, Verilator, "
          f"golden, PyTorch fp32.", flush=True)
    results = demo(cfg, args.build, layers=layers, tokens=args.tokens, sim_tokens=args.sim_tokens,
                   json_path=args.json)
    print(demo_table(results))
    mm = results["first_mismatch"]
    print(f"sim == golden bit-exact on all {len(results['layers'])} layers: {results['all_bit_exact']}"
          + ("" if mm is None else f" ({mm['layer']} token {mm['token']} row {mm['element']}: "
                                   f"expected {mm['expected']}, got {mm['actual']})"))
    for p in results["projections"]:
        print(f"projection: {p['model']} on {p['target']}: {p['tokens_per_s']:.1f} tokens/s "
              f"(decoder linears, {'/'.join(p['bound'])} bound)")
    print(f"Report: {Path(args.build) / 'report.md'}; wall time {time.perf_counter() - start:.1f} s.")
    return 0 if results["all_bit_exact"] else 1


def cmd_compile(args) -> int:
    from ..jobs.model_jobs import compile_job
    program = compile_job(_config(args), args.build, args.layer or None)
    print(f"Program: {program.path} ({len(program.layers)} layers).")
    return 0


def cmd_run(args) -> int:
    if args.board:
        from .board import run_main
        return run_main(args)
    from ..compiler.config import load_config
    from ..jobs.model_jobs import run_model
    from ..compiler.search import is_method_config
    if args.config and any(is_method_config(c) for c in args.config):
        return cmd_run_methods(args)
    configs = [load_config(c) for c in (args.config or [None])]
    results = run_model(configs, args.build, windows=args.windows, window=args.window,
                        json_path=args.json, fp32=not args.no_fp32)
    print(f"Perplexity on {results['tokens']} tokens of WikiText-2 test ({results['windows']} windows "
          f"of {results['window']}):")
    for r in results["rows"]:
        print(f"  {r['config']:20s} ppl {r['ppl']:.4g}  ({r['bits_per_weight']:g} index bits/weight)")
    print(f"Report: {Path(args.build) / 'perplexity.md'}")
    return 0


def cmd_run_methods(args) -> int:
    """``run`` with per-layer method configurations (lutforge.compiler.search)."""
    from ..compiler.search import Session, load_method_config
    cfgs = [load_method_config(c) for c in args.config]
    session = Session(cfgs[0].calibration)
    windows = args.windows or cfgs[0].evaluation["windows"]
    window = args.window or cfgs[0].evaluation["window"]
    rows = [] if args.no_fp32 else [session.perplexity(None, windows, window)]
    rows += [session.perplexity(c, windows, window) for c in cfgs]
    for r in rows:
        print(f"  {r['config']:20s} ppl {r['perplexity']:.4g}  {r['bits_per_weight']:.3f} streamed bits/weight "
              f"({r['windows']} windows of {r['window']})")
    last = rows[-1]
    _write_json(args.json, {"perplexity": last["perplexity"], "bits_per_weight": last["bits_per_weight"],
                            "config": last["config"], "windows": last["windows"], "rows": rows})
    return 0


def cmd_quantize(args) -> int:
    from ..compiler.search import quantize_search
    report = quantize_search(args.budget, args.output, json_path=args.json, rows=args.rows,
                             lut_every=args.lut_every)
    print(f"Wrote {args.output}: {report['bits_per_weight']:.3f} streamed bits/weight (budget {args.budget}).")
    for d in report["dominant_layers"][:5]:
        print(f"  {d['layer']:20s} {d['method']:40s} estimated NLL +{d['est_nll_increase']:.3g} "
              f"(relative output MSE {d['rel_mse']:.3g})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .board import add_bitstream_cli, add_run_arguments
    from ..formal.suite import register_cli as register_prove_cli

    parser = argparse.ArgumentParser(
        prog="lutforge",
        description="Co-design FPGA accelerators for quantized LLM inference: generate, simulate and "
                    "check LUT-GEMV, L-Mul and floating-point blocks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("blocks", help="list the registered blocks and their parameters")
    p.set_defaults(func=cmd_blocks)

    p = sub.add_parser("verilog", help="write Verilog for a registered block")
    p.add_argument("block")
    p.add_argument("--param", "-p", action="append", metavar="NAME=VALUE", help="block parameter")
    p.add_argument("--top", default="top", help="top module name")
    p.add_argument("-o", "--output", default="-", help="output file ('-' for stdout)")
    p.set_defaults(func=cmd_verilog)

    p = sub.add_parser("sim", help="run a block's self-check against its golden model")
    p.add_argument("block")
    p.add_argument("--param", "-p", action="append", metavar="NAME=VALUE", help="block parameter")
    p.add_argument("--simulator", choices=("amaranth", "verilator", "icarus"), default="verilator")
    p.add_argument("--cocotb", action="store_true",
                   help="drive Verilator from cocotb, one cycle at a time, instead of the batch harness")
    p.add_argument("--vectors", type=int, help="random vectors (default: exhaustive when small)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--waves", choices=("vcd", "fst"), help="write waveforms (cocotb runs)")
    p.add_argument("--json", metavar="PATH", help="write the result as JSON")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("demo", help="the main job: compile SmolLM2 block 0, run it in Verilator, "
                                    "check against golden and PyTorch")
    p.add_argument("--config", help="accelerator config YAML (default: configs/default.yaml)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config key")
    p.add_argument("--layer", action="append", help="linear layer(s) to run (default: block 0's seven)")
    p.add_argument("--tokens", type=int, default=32, help="tokens compared with PyTorch")
    p.add_argument("--sim-tokens", type=int, default=2, help="tokens run in Verilator")
    p.add_argument("--build", default="build/demo", help="build directory (Program, reports)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("compile", help="compile SmolLM2 linear layers into a Program directory")
    p.add_argument("--config", help="accelerator config YAML (default: configs/default.yaml)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config key")
    p.add_argument("--layer", action="append", help="linear layer(s) (default: all)")
    p.add_argument("--build", default="build/compile", help="build directory")
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
    add_run_arguments(p, required=False)
    p.set_defaults(func=cmd_run)

    register_prove_cli(sub)
    add_bitstream_cli(sub)

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
    return parser


def main(argv: "list[str] | None" = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as error:
        print(f"lutforge: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
