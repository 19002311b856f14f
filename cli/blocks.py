"""``lutforge blocks``, ``verilog`` and ``sim``: the block catalogue from the command line."""

import argparse
import re
import sys
from pathlib import Path

from ..support.errors import UsageError
from .common import check_writable, number, parse_assignments, write_json

__all__ = ["register"]

# Random vectors per self-check: ten million take the batch harness about ten seconds and
# cocotb, one cycle at a time, hours; more only repeat what those found.
MAX_VECTORS = 10_000_000


def verilog_name(text: str) -> str:
    """An argparse ``type``: a plain Verilog identifier (a module name that needs no escaping)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a Verilog identifier (a letter or _, then letters, "
                                         f"digits or _)")
    return text


def cmd_blocks(args) -> int:
    from ..blocks import catalogue
    for name, block in catalogue().items():
        print(f"{name:20s} {block.summary}")
        for pname, p in block.params.items():
            choices = f" ({'|'.join(map(str, p.choices))})" if p.choices else ""
            print(f"    {pname}={p.default}{choices}: {p.describe()}")
    return 0


def _block_and_params(args, *, simulate: bool):
    from ..blocks import get_block
    block = get_block(args.block)
    return block, block.resolve(parse_assignments(args.param, "--param"), simulate=simulate)


def cmd_verilog(args) -> int:
    from ..sim.rtl import elaborate
    if args.output != "-":
        check_writable(args.output)
    block, params = _block_and_params(args, simulate=False)
    design = elaborate(block.build(params), top=args.top)
    if args.output == "-":
        sys.stdout.write(design.verilog)
    else:
        Path(args.output).write_text(design.verilog)
        print(f"Wrote {args.output}: module {design.top} with {len(design.ports)} ports.")
    return 0


def _harness(simulator: str, cocotb: bool) -> str:
    if simulator == "amaranth":
        if cocotb:
            raise UsageError("--cocotb drives Verilator or Icarus; --simulator amaranth runs without it, so leave "
                             "--cocotb out or pick --simulator verilator.")
        return "amaranth"
    if simulator == "icarus":
        return "cocotb-icarus"
    return "cocotb-verilator" if cocotb else "batch"


def cmd_sim(args) -> int:
    from ..blocks.selfcheck import self_check
    check_writable(args.json)
    harness = _harness(args.simulator, args.cocotb)
    block, params = _block_and_params(args, simulate=True)
    result = self_check(block, params, harness, count=args.vectors, seed=args.seed, waves=args.waves)
    scope = "all" if result.exhaustive else "random"
    print(f"{block.name} {params} on {result.harness}: {result.vectors - result.mismatches} of "
          f"{result.vectors} {scope} vectors agree with the golden model "
          f"({result.vectors_per_second:,.0f} vectors/s).")
    if result.first_mismatch:
        print(result.first_mismatch)
    if result.waves_path:
        print(f"Waveforms: {result.waves_path}")
    write_json(args.json, result)
    return 0 if result.passed else 1


def register(sub) -> None:
    p = sub.add_parser("blocks", help="list the registered blocks and their parameters")
    p.set_defaults(func=cmd_blocks)

    p = sub.add_parser("verilog", help="write Verilog for a registered block")
    p.add_argument("block")
    p.add_argument("--param", "-p", action="append", metavar="NAME=VALUE",
                   help="block parameter (`lutforge blocks` lists them with their ranges)")
    p.add_argument("--top", default="top", type=verilog_name, help="top module name (a Verilog identifier)")
    p.add_argument("-o", "--output", default="-", help="output file ('-' for stdout)")
    p.set_defaults(func=cmd_verilog)

    p = sub.add_parser("sim", help="run a block's self-check against its golden model")
    p.add_argument("block")
    p.add_argument("--param", "-p", action="append", metavar="NAME=VALUE",
                   help="block parameter (`lutforge blocks` lists them with their ranges)")
    p.add_argument("--simulator", choices=("amaranth", "verilator", "icarus"), default="verilator")
    p.add_argument("--cocotb", action="store_true",
                   help="drive Verilator from cocotb, one cycle at a time, instead of the batch harness")
    p.add_argument("--vectors", type=number(int, 1, MAX_VECTORS), metavar="N",
                   help=f"random vectors, 1 to {MAX_VECTORS:,} (default: exhaustive when small)")
    p.add_argument("--seed", type=number(int, 0),
                   help="seed of the random vectors and stalls, 0 or more (default 0); not for exhaustive runs")
    p.add_argument("--waves", choices=("vcd", "fst"),
                   help="write waveforms (amaranth and cocotb runs; the batch harness has none)")
    p.add_argument("--json", metavar="PATH", help="write the result as JSON")
    p.set_defaults(func=cmd_sim)
