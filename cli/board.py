"""``lutforge bitstream`` and ``lutforge run``: the board commands, for the top-level CLI.

``add_cli(subparsers)`` registers both sub-commands (each sets ``func``, which takes the parsed
arguments and returns an exit status); ``bitstream_main(args)`` and ``run_main(args)`` can also be
called directly with an ``argparse.Namespace``. Until the top-level CLI registers them,
``python -m lutforge.cli.board bitstream ...`` runs them on their own (the Makefile does).

    lutforge bitstream --board icebreaker [--config soc.yaml] [--json report.json] [-o top.bin]
    lutforge bitstream --all --plot bitstreams.png
    lutforge run --board icebreaker --port /dev/ttyUSB1     # a layer on the board, checked
    lutforge run --board icebreaker --port sim              # the same, the SoC in Verilator
"""

import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

__all__ = ["add_cli", "bitstream_main", "run_main", "load_config", "main"]


def load_config(board, path: "str | None"):
    """The board's SoC configuration, with the keys of the YAML file at ``path`` changed."""
    if not path:
        return board.soc_config()
    import yaml

    changes = yaml.safe_load(Path(path).read_text()) or {}
    allowed = {f.name for f in dataclasses.fields(board.soc_config())} - {"clk_freq"}
    unknown = set(changes) - allowed
    if not isinstance(changes, dict) or unknown:
        raise ValueError(
            f"{path}: unknown SoC setting {', '.join(sorted(map(str, unknown))) or repr(changes)}; "
            f"the settings are {', '.join(sorted(allowed))} (clk_freq is the board's)."
        )
    for key, value in changes.items():
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            raise ValueError(f"{path}: SoC setting {key}={value!r} must be an integer (or a core name).")
    return board.soc_config(**changes)


def bitstream_main(args) -> int:
    from ..boards.bitstream import BitstreamError, build_bitstream, format_table, plot_reports
    from ..boards.platforms import BOARDS, get_board

    names = list(BOARDS) if args.all else [args.board]
    if not args.all and not args.board:
        raise ValueError(f"Name a board with --board (one of {', '.join(BOARDS)}) or pass --all.")
    reports, failed = [], []
    for name in names:
        board = get_board(name)
        try:
            report = build_bitstream(board, load_config(board, args.config),
                                     check_timing=not args.no_timing_check)
        except BitstreamError as error:
            print(f"lutforge: {error}", file=sys.stderr)
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
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps([{
            "board": r.board, "bitstream": str(r.bitstream), "cached": r.cached,
            "utilization": r.utilization, "fmax_mhz": r.fmax, "steps_s": r.steps} for r in reports], indent=2) + "\n")
    return 1 if failed else 0


def run_main(args) -> int:
    """Run a check layer on the board's core (or its simulation) and compare it with golden."""
    from ..boards.platforms import get_board

    board = get_board(args.board)
    if not args.port:
        raise ValueError(f"Running on board {args.board!r} needs --port: a serial device, or 'sim' for its simulation.")
    config = load_config(board, args.soc_config)
    if args.port == "sim":
        from ..boards.sim_transport import open_sim
        transport = open_sim(config)
    else:
        from ..boards.serial_transport import open_serial
        transport = open_serial(args.port, config.baud)
    started = time.monotonic()
    with transport:
        check = _run_gemv if config.core == "gemv" else _run_lmul
        what, mismatches = check(transport, config, args.seed)
    stats = transport.stats
    print(f"{board.name} over {args.port}: {what}; {stats.frames} frames, {stats.retries} retries "
          f"({stats.naks} NAKs), {time.monotonic() - started:.1f} s")
    if mismatches:
        print(mismatches, file=sys.stderr)
        return 1
    print("All results equal the golden model.")
    return 0


def _run_lmul(transport, config, seed):
    import numpy as np

    from ..golden.lmul import LMulPolicy, lmul
    from ..boards.host import Accelerator

    n = min(1024, config.mem_size // 4)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, n, dtype=np.uint8)
    b = rng.integers(0, 256, n, dtype=np.uint8)
    acc = Accelerator(transport)
    acc.load_memory(0, a)
    acc.load_memory(n, b)
    cycles = acc.run([0, n, 2 * n, n])
    result = np.frombuffer(acc.read_results(2 * n, n), np.uint8)
    expected = lmul(a, b, "e4m3", LMulPolicy())
    bad = np.flatnonzero(result != expected)
    if bad.size:
        i = bad[0]
        return f"{n} L-Mul products", (
            f"{bad.size} of {n} results differ from golden; first at {i}: a={a[i]:#04x} b={b[i]:#04x} "
            f"expected {expected[i]:#04x}, got {result[i]:#04x}.")
    return f"{n} e4m3 L-Mul products in {cycles} cycles", ""


def _run_gemv(transport, config, seed):
    import numpy as np

    from ..backends.driver import HostDriver
    from ..backends.golden import GoldenBackend
    from ..compiler.lower import lower_layer
    from ..program.artifact import Program
    from ..golden.lut_layer import co_quantize
    from ..backends.board import BoardBackend

    p = config.gemv
    rng = np.random.default_rng(seed)
    n, k = 2 * p.lanes, 3 * p.v - 1  # two row blocks, a padded last position
    layer = co_quantize(rng.standard_normal((n, k)).astype(np.float32),
                        rng.standard_normal((4 * p.c_a, k)).astype(np.float32),
                        v=p.v, c_a=p.c_a, c_w=p.c_w, group_rows=p.lanes, granularity="layer",
                        metric=p.metric, seed=seed, iterations=2)
    program = Program(None, {"config": {}}, {"check": lower_layer("check", layer, p.lanes, p.max_positions)})
    x = rng.standard_normal((2, k))
    board = HostDriver(program, BoardBackend(transport, p))
    golden = HostDriver(program, GoldenBackend())
    got = board.run_int("check", board.quantize("check", x))
    want = golden.run_int("check", golden.quantize("check", x)).acc
    bad = np.argwhere(got.acc != want)
    what = f"a {k}x{n} LUT-GEMV layer, 2 tokens, in {got.cycles} cycles"
    if bad.size:
        t, r, i = bad[0]
        return what, (f"{len(bad)} accumulators differ from golden; first: token {t} run {r} row {i}: "
                      f"expected {want[t, r, i]}, got {got.acc[t, r, i]}.")
    return what, ""


def add_bitstream_cli(subparsers) -> None:
    """Add ``bitstream`` to an argparse sub-command set."""
    from ..boards.platforms import BOARDS

    p = subparsers.add_parser("bitstream", help="build a board's bitstream with the YoWASP tools")
    p.add_argument("--board", choices=list(BOARDS))
    p.add_argument("--all", action="store_true", help="build every supported board")
    p.add_argument("--config", metavar="YAML", help="SoC settings to change (baud, mem_size, idle_cycles)")
    p.add_argument("-o", "--output", metavar="PATH", help="copy the bitstream here")
    p.add_argument("--json", metavar="PATH", help="write utilization and Fmax as JSON")
    p.add_argument("--plot", metavar="PATH", help="plot utilization and Fmax (PNG, SVG, ...)")
    p.add_argument("--no-timing-check", action="store_true", help="keep a bitstream that misses timing")
    p.set_defaults(func=bitstream_main)


def add_run_arguments(p, *, required: bool) -> None:
    """The board options of ``run``; the main CLI shares ``run`` with the whole-model golden run."""
    from ..boards.platforms import BOARDS

    p.add_argument("--board", choices=list(BOARDS), required=required, help="run a check layer on this board")
    p.add_argument("--port", required=required, help="serial device, or 'sim' for the Verilator SoC")
    p.add_argument("--soc-config", metavar="YAML", help="the SoC settings the bitstream was built with")
    p.add_argument("--seed", type=int, default=0)


def add_cli(subparsers) -> None:
    add_bitstream_cli(subparsers)
    p = subparsers.add_parser("run", help="run a layer on a board (or its simulation) and check it")
    add_run_arguments(p, required=True)
    p.set_defaults(func=run_main)


def main(argv: "list[str] | None" = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="lutforge", description="lutforge board commands")
    add_cli(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as error:
        print(f"lutforge: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
