"""``lutforge bitstream`` and ``lutforge run --board``: the board commands.

    lutforge bitstream --board icebreaker [--config soc.yaml] [--json report.json] [-o top.bin]
    lutforge bitstream --all --json bitstreams.json --plot bitstreams.png
    lutforge run --board icebreaker --port /dev/ttyUSB1     # a layer on the board, checked
    lutforge run --board icebreaker --port sim              # the same, the SoC in Verilator
"""

import shutil
import sys
from pathlib import Path

from ..support.errors import UsageError
from .common import check_writable, write_json, yaml_file
from .errors import message

__all__ = ["register", "add_run_arguments", "run_board"]


def cmd_bitstream(args) -> int:
    from ..boards.bitstream import BitstreamError, build_bitstream, format_table, plot_reports
    from ..boards.platforms import BOARDS, get_board
    from ..jobs.board import load_soc_config

    if not args.all and not args.board:
        raise UsageError(f"Name a board with --board (one of {', '.join(BOARDS)}) or pass --all.")
    for path in (args.output, args.json, args.plot):
        check_writable(path)
    reports, failed = [], []
    for name in list(BOARDS) if args.all else [args.board]:
        board = get_board(name)
        with yaml_file(args.config):
            config = load_soc_config(board, args.config)
        try:
            report = build_bitstream(board, config, check_timing=not args.no_timing_check)
        except BitstreamError as error:
            # One board failing does not stop the others; the exit status says some failed.
            print(f"lutforge: {message(error)}", file=sys.stderr)
            failed.append(name)
            continue
        reports.append(report)
        origin = "cached" if report.cached else f"built in {report.seconds:.0f} s"
        print(f"{name}: {report.bitstream} ({origin})")
        if args.output and not args.all:
            shutil.copyfile(report.bitstream, args.output)
            print(f"Copied the bitstream to {args.output}.")
    if reports:
        print(format_table(reports))
    if reports and args.plot:
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        plot_reports(reports, args.plot)
        print(f"Wrote the plot to {args.plot}.")
    write_json(args.json, [r.to_json() for r in reports])
    return 1 if failed else 0


def run_board(args) -> int:
    """``run --board``: a check layer on the board's core (or its simulation) against golden."""
    from ..jobs.board import check_board

    if not args.port:
        raise UsageError(f"Running on board {args.board!r} needs --port: a serial device, or 'sim' for its "
                         f"simulation.")
    check_writable(args.json)
    with yaml_file(args.soc_config):
        result = check_board(args.board, args.port, args.soc_config, args.seed)
    print(f"{result.board} over {result.port}: {result.what}; {result.frames} frames, {result.retries} retries "
          f"({result.naks} NAKs), {result.seconds:.1f} s")
    write_json(args.json, result)
    if not result.passed:
        print(result.mismatches, file=sys.stderr)
        return 1
    print("All results equal the golden model.")
    return 0


def add_run_arguments(p) -> None:
    """The board options of ``run``, which it shares with the whole-model golden run."""
    from ..boards.platforms import BOARDS

    p.add_argument("--board", choices=list(BOARDS), help="run a check layer on this board")
    p.add_argument("--port", help="serial device, or 'sim' for the Verilator SoC (with --board)")
    p.add_argument("--soc-config", metavar="YAML", help="the SoC settings the bitstream was built with")
    p.add_argument("--seed", type=int, default=0, help="seed of the check layer (with --board)")


def register(sub) -> None:
    from ..boards.platforms import BOARDS

    p = sub.add_parser("bitstream", help="build a board's bitstream with the YoWASP tools")
    p.add_argument("--board", choices=list(BOARDS))
    p.add_argument("--all", action="store_true", help="build every supported board")
    p.add_argument("--config", metavar="YAML", help="SoC settings to change (baud, mem_size, idle_cycles)")
    p.add_argument("-o", "--output", metavar="PATH", help="copy the bitstream here")
    p.add_argument("--json", metavar="PATH", help="write utilization and Fmax as JSON")
    p.add_argument("--plot", metavar="PATH", help="plot utilization and Fmax (PNG, SVG, ...)")
    p.add_argument("--no-timing-check", action="store_true", help="keep a bitstream that misses timing")
    p.set_defaults(func=cmd_bitstream)
