"""The board jobs behind ``lutforge run --board`` and ``lutforge bitstream``: the SoC settings a
YAML file changes, and a check layer run on the board's core (or its simulation) against golden."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..support.checks import check_int
from ..support.errors import MissingFileError, UsageError
from ..support.yamlfile import load_yaml
from .results import BoardCheck

__all__ = ["load_soc_config", "check_board", "run_program_layer"]


# The SoC settings a YAML file may change; the clock and the GEMV core's sizes are the board's.
SOC_SETTINGS = ("baud", "mem_size", "memory", "idle_cycles", "core", "port_bytes")


def load_soc_config(board, path: "str | None"):
    """The board's SoC configuration, with the keys of the YAML file at ``path`` changed; every
    value is checked (:class:`lutforge.boards.soc.SocConfig`) and an error names the file."""
    if not path:
        return board.soc_config()
    changes = load_yaml(path, "SoC configuration file")
    if not isinstance(changes, dict):
        raise UsageError(f"{path} holds {type(changes).__name__} data, not SoC settings; write one `name: value` "
                         f"line for each of {', '.join(SOC_SETTINGS)} to change.")
    if not changes:
        raise UsageError(f"{path} changes no SoC setting; set one of {', '.join(SOC_SETTINGS)}, or leave the "
                         f"option out to use the board's settings.")
    unknown = [str(key) for key in changes if key not in SOC_SETTINGS]
    if unknown:
        raise UsageError(
            f"{path}: unknown SoC setting {', '.join(sorted(unknown))}; the settings are "
            f"{', '.join(SOC_SETTINGS)} (the clock and the GEMV core's sizes are the board's)."
        )
    try:
        return board.soc_config(**changes)
    except UsageError as error:
        raise UsageError(f"{path}: {error}") from None


def _check_port(port: str) -> None:
    """Refuse a serial device that is not there before any work (pyserial's own error names no fix)."""
    if port != "sim" and "://" not in port and os.name == "posix" and not Path(port).exists():
        raise MissingFileError(f"Serial port {port} does not exist; plug in the board and check the device name "
                               f"(e.g. /dev/ttyUSB1), or pass --transport sim to run its simulation.")


def _board_config(board_name: str, port: str, soc_config_path: "str | None"):
    """(board, SoC configuration), the port checked, before anything is started."""
    from ..boards.platforms import get_board

    board = get_board(board_name)
    _check_port(port)
    return board, load_soc_config(board, soc_config_path)


def _transport(port: str, config):
    """The link to ``port``: a serial device, or ``"sim"`` for the SoC in Verilator behind a
    simulated UART."""
    if port == "sim":
        from ..boards.sim_transport import open_sim
        return open_sim(config)
    from ..boards.serial_transport import open_serial
    return open_serial(port, config.baud)


def _result(board, port, transport, what, mismatches, started, cycles) -> BoardCheck:
    stats = transport.stats
    return BoardCheck(board.name, port, what, mismatches, stats.frames, stats.retries, stats.naks,
                      time.monotonic() - started, cycles)


def check_board(board_name: str, port: str, soc_config_path: "str | None" = None, seed: int = 0) -> BoardCheck:
    """Run a check layer on ``board_name``'s core over ``port`` (a serial device, or ``"sim"`` for
    the SoC in Verilator) and compare it with the golden model."""
    check_int("seed", seed, 0, fix="seeds are 0 or more")
    board, config = _board_config(board_name, port, soc_config_path)
    transport = _transport(port, config)
    started = time.monotonic()
    with transport:
        check = _run_gemv if config.core == "gemv" else _run_lmul
        what, mismatches, cycles = check(transport, config, seed)
    return _result(board, port, transport, what, mismatches, started, cycles)


def run_program_layer(board_name: str, port: str, program_dir: str, layer_name: str,
                      soc_config_path: "str | None" = None, seed: int = 0, *, tokens: int = 1) -> BoardCheck:
    """Run layer ``layer_name`` of the Program in ``program_dir`` on ``board_name``'s GEMV core over
    ``port`` (a serial device, or ``"sim"``) for ``tokens`` rows of seeded activations, through the
    board memory one core run at a time when it does not fit at once, and compare every accumulator
    with the golden backend's."""
    import numpy as np

    from ..backends.board import BoardBackend
    from ..program.artifact import read_program
    from ..program.golden import GoldenBackend
    from ..program.host import HostDriver

    check_int("seed", seed, 0, fix="seeds are 0 or more")
    check_int("tokens", tokens, 1, 64, fix="a board run checks 1 to 64 activation rows")
    program = read_program(program_dir)
    if layer_name not in program.layers:
        names = list(program.layers)
        raise UsageError(f"The Program in {program_dir} has no layer {layer_name!r}; it holds {len(names)}: "
                         f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''}; name one of them, or compile "
                         f"the layer with `lutforge compile --layer {layer_name}`.")
    layer = program.layers[layer_name]
    board, config = _board_config(board_name, port, soc_config_path)
    if config.core != "gemv":
        raise UsageError(f"A Program's layer runs on the GEMV core, and this {board.name} SoC carries "
                         f"{config.core!r}; set core: gemv in --soc-config.")
    if layer.kind != "lut":
        raise UsageError(f"Layer {layer_name} runs on the {layer.kind} core, which the {board.name} SoC does not "
                         f"carry (it holds the LUT core only); compile it as a LUT layer "
                         f"(configs/{board.name}.yaml) or run it with --backend golden or sim.")
    x = np.random.default_rng(seed).standard_normal((tokens, layer.in_features))
    golden = HostDriver(program, GoldenBackend())
    want = golden.run_int(layer_name, golden.quantize(layer_name, x)).acc
    transport = _transport(port, config)
    started = time.monotonic()
    with transport:
        device = HostDriver(program, BoardBackend(transport, config.gemv))
        got = device.run_int(layer_name, device.quantize(layer_name, x))
    what = (f"layer {layer_name} ({layer.in_features} x {layer.out_features}, {len(layer.runs)} core runs), "
            f"{tokens} token{'s' if tokens > 1 else ''}, in {got.cycles} core cycles")
    bad = np.argwhere(got.acc != want)
    mismatches = ""
    if bad.size:
        t, r, i = bad[0]
        mismatches = (f"{len(bad)} accumulators differ from golden; first: token {t} run {r} row {i}: "
                      f"expected {want[t, r, i]}, got {got.acc[t, r, i]}.")
    return _result(board, port, transport, what, mismatches, started, got.cycles)


def _run_lmul(transport, config, seed):
    import numpy as np

    from ..boards.host import Accelerator
    from ..golden.lmul import LMulPolicy, lmul

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
            f"expected {expected[i]:#04x}, got {result[i]:#04x}."), cycles
    return f"{n} e4m3 L-Mul products in {cycles} cycles", "", cycles


def _run_gemv(transport, config, seed):
    import numpy as np

    from ..backends.board import BoardBackend
    from ..program.host import HostDriver
    from ..program.golden import GoldenBackend
    from ..compiler.lower import lower_layer
    from ..golden.lut_layer import co_quantize
    from ..program.artifact import Program

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
                      f"expected {want[t, r, i]}, got {got.acc[t, r, i]}."), got.cycles
    return what, "", got.cycles
