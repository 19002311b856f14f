"""The ``lutforge`` command line: the parser of every sub-command and the one error handler."""

import argparse
import sys

from .errors import EXPECTED, message

__all__ = ["main", "build_parser"]


class Parser(argparse.ArgumentParser):
    """argparse with the one-line error of every other expected failure (argparse prints the usage
    first, which buries the message)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}; see `{self.prog} --help`.\n")


def build_parser() -> argparse.ArgumentParser:
    from . import blocks, board, model
    from . import prove
    from . import cache
    from . import explore

    parser = Parser(
        prog="lutforge",
        description="Co-design FPGA accelerators for quantized LLM inference: generate, simulate and "
                    "check LUT-GEMV, L-Mul and floating-point blocks.")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an expected failure instead of its one-line message")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    blocks.register(sub)
    model.register(sub)
    prove.register(sub)
    cache.register(sub)
    board.register(sub)
    explore.register(sub)
    return parser


def main(argv: "list[str] | None" = None) -> int:
    """Run one command; an expected failure is one line on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EXPECTED as error:
        if args.debug:
            raise
        print(f"lutforge: {message(error)}", file=sys.stderr)
        return 2
