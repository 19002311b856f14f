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
    from .blocks import catalogue
    for name, block in catalogue().items():
        print(f"{name:20s} {block.summary}")
        for pname, p in block.params.items():
            choices = f" ({'|'.join(map(str, p.choices))})" if p.choices else ""
            print(f"    {pname}={p.default}{choices}: {p.help}")
    return 0


def cmd_verilog(args) -> int:
    from .blocks import get_block
    from .sim.rtl import elaborate
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
    from .blocks import get_block
    from .sim.selfcheck import self_check
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
    _write_json(args.json, result.to_json())
    return 0 if result.passed else 1


def cmd_demo(args) -> int:
    from .blocks import get_block
    from .sim.selfcheck import self_check
    block = get_block("lmul")
    params = block.resolve({"format": "e4m3", "latency": "2"})
    result = self_check(block, params, "batch")
    print(f"lutforge demo: L-Mul e4m3 multiplier (2-stage pipeline) built to Verilog and run on Verilator.")
    print(f"  Verilator build: {'cached' if result.build_cached else f'{result.build_seconds:.1f} s'}")
    print(f"  {result.vectors - result.mismatches} of {result.vectors} operand pairs (exhaustive) "
          f"equal the golden model, {result.mismatches} mismatches.")
    if result.first_mismatch:
        print(f"  {result.first_mismatch}")
    _write_json(args.json, result.to_json())
    return 0 if result.passed else 1


def build_parser() -> argparse.ArgumentParser:
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
    p.add_argument("--waves", action="store_true", help="write waveforms (cocotb runs)")
    p.add_argument("--json", metavar="PATH", help="write the result as JSON")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("demo", help="the main job: build, simulate and check")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.set_defaults(func=cmd_demo)
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
