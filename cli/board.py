"""``lutforge bitstream`` and ``lutforge run --board``: the board commands.

    lutforge bitstream --board icebreaker [--config soc.yaml] [--json report.json] [-o top.bin]
    lutforge bitstream --all --json bitstreams.json --plot bitstreams.png
    lutforge run --board icebreaker --port /dev/ttyUSB1     # a check layer on the board, against golden
    lutforge run --board icebreaker --transport sim         # the same, the SoC in Verilator
    lutforge run --board ulx3s-85f --transport sim --program build/ulx3s/program --layer layers.0.attn.k
"""

import shutil
import sys
from pathlib import Path

from ..jobs.board import SOC_SETTINGS
from ..support.errors import UsageError
from .common import add_executor_arguments, check_writable, executor_from, number, print_timings, write_json
from .errors import message

__all__ = ["register", "add_run_arguments", "run_board"]


def cmd_bitstream(args) -> int:
    from ..boards.bitstream import format_table, plot_reports
    from ..boards.platforms import BOARDS, get_board
    from ..jobs.board import load_soc_config

    if args.all and args.board:
        raise UsageError(f"--all builds every board, so --board {args.board} would be ignored; give one of them.")
    if args.all and args.output:
        raise UsageError("-o copies one board's bitstream, and --all builds several; pick a board with --board, "
                         "or leave -o out (the table names each bitstream).")
    if not args.all and not args.board:
        raise UsageError(f"Name a board with --board (one of {', '.join(BOARDS)}) or pass --all.")
    for path in (args.output, args.json, args.plot):
        check_writable(path)
    check_plot_format(args.plot)
    # Every board's configuration is checked before the first (minutes-long) build starts.
    names = list(BOARDS) if args.all else [args.board]
    configs = {name: load_soc_config(get_board(name), args.config) for name in names}
    reports, failed = [], []
    # One task per board; a board that fails does not stop the others (the exit status says so).
    executor = executor_from(args)
    outcomes = executor.map(_build_board, [(name, config, not args.no_timing_check) for name, config in configs.items()],
                            labels=list(configs), desc="bitstreams")
    for name, (report, error) in zip(configs, outcomes):
        if error:
            print(f"lutforge: {error}", file=sys.stderr)
            failed.append(name)
            continue
        reports.append(report)
        origin = "cached" if report.cached else f"built in {report.seconds:.0f} s"
        print(f"{name}: {report.bitstream} ({origin})")
        if args.output:
            shutil.copyfile(report.bitstream, args.output)
            print(f"Copied the bitstream to {args.output}.")
    if reports:
        print(format_table(reports))
    if reports and args.plot:
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        plot_reports(reports, args.plot)
        print(f"Wrote the plot to {args.plot}.")
    print_timings(executor)
    write_json(args.json, [r.to_json() for r in reports])
    return 1 if failed else 0


def _build_board(task):
    """``(report, None)`` for one board's bitstream, or ``(None, message)`` when it fails."""
    from ..boards.bitstream import BitstreamError, build_bitstream
    from ..boards.platforms import get_board
    name, config, check_timing = task
    try:
        return build_bitstream(get_board(name), config, check_timing=check_timing), None
    except BitstreamError as error:
        return None, message(error)


def check_plot_format(path: "str | None") -> None:
    """Refuse a plot path whose suffix matplotlib cannot write, before any build."""
    if not path:
        return
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = Path(path).suffix.lstrip(".").lower()
    if suffix not in formats:
        raise UsageError(f"The plot {path} has {'the suffix .' + suffix if suffix else 'no suffix'}, which names no "
                         f"image format; end it in one of {', '.join('.' + f for f in sorted(formats))}.")


def run_board(args) -> int:
    """``run --board``: a check layer, or a compiled Program's layer (``--program``, ``--layer``), on
    the board's core or its simulation, against golden."""
    from ..jobs.board import check_board, run_program_layer

    if args.transport == "sim" and args.port:
        raise UsageError(f"--transport sim runs the board's SoC in Verilator and opens no serial port, so "
                         f"--port {args.port} would be ignored; remove one of them.")
    if args.transport != "sim" and not args.port:
        raise UsageError(f"Running on board {args.board!r} needs --port DEVICE (its serial port) or --transport sim "
                         f"(its SoC in Verilator).")
    if (args.program is None) != (args.layer is None):
        given, missing = ("--program", "--layer") if args.layer is None else ("--layer", "--program")
        raise UsageError(f"{given} needs {missing}: a board runs one layer of a compiled Program "
                         f"(--program DIR --layer NAME), or its own check layer when both are left out.")
    if args.program is None and args.tokens is not None:
        raise UsageError("--tokens applies to a Program's layer (--program DIR --layer NAME); the check layer "
                         "always runs 2 tokens. Remove it or name a layer.")
    check_writable(args.json)
    port = "sim" if args.transport == "sim" else args.port
    seed = 0 if args.seed is None else args.seed
    if args.program is not None:
        result = run_program_layer(args.board, port, args.program, args.layer, args.soc_config, seed,
                                   tokens=args.tokens or 1)
    else:
        result = check_board(args.board, port, args.soc_config, seed)
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

    p.add_argument("--board", choices=list(BOARDS), help="run a layer on this board (or its simulation)")
    # No defaults: a value given to a run without --board would be ignored, and `run` refuses it then.
    p.add_argument("--transport", choices=("serial", "sim"),
                   help="with --board: serial (the board on --port; the default) or sim (its SoC in Verilator "
                        "behind a simulated UART)")
    p.add_argument("--port", help="with --board: the board's serial device")
    p.add_argument("--soc-config", metavar="YAML", help="the SoC settings the bitstream was built with")
    p.add_argument("--program", metavar="DIR", help="with --board and --layer: a compiled Program (lutforge compile)")
    p.add_argument("--layer", metavar="NAME", help="with --board and --program: the layer to run, bit-exact "
                                                   "against golden")
    p.add_argument("--tokens", type=number(int, 1, 64),
                   help="with --program: activation rows (seeded) to run, 1 to 64; default 1")
    p.add_argument("--seed", type=number(int, 0), help="seed of the layer's activations (with --board), 0 or more; "
                                                       "default 0")


def register(sub) -> None:
    from ..boards.platforms import BOARDS

    p = sub.add_parser("bitstream", help="build a board's bitstream with the YoWASP tools")
    p.add_argument("--board", choices=list(BOARDS))
    p.add_argument("--all", action="store_true", help="build every supported board")
    p.add_argument("--config", metavar="YAML", help=f"SoC settings to change ({', '.join(SOC_SETTINGS)})")
    p.add_argument("-o", "--output", metavar="PATH", help="copy the bitstream here")
    p.add_argument("--json", metavar="PATH", help="write utilization and Fmax as JSON")
    p.add_argument("--plot", metavar="PATH", help="plot utilization and Fmax (PNG, SVG, ...)")
    p.add_argument("--no-timing-check", action="store_true", help="keep a bitstream that misses timing")
    add_executor_arguments(p)
    p.set_defaults(func=cmd_bitstream)
