"""The board jobs behind ``lutforge run --board`` and ``lutforge bitstream``: the SoC settings a
YAML file changes, and a check layer run on the board's core (or its simulation) against golden."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from ..support.errors import UsageError
from .results import BoardCheck

__all__ = ["load_soc_config", "check_board"]


def load_soc_config(board, path: "str | None"):
    """The board's SoC configuration, with the keys of the YAML file at ``path`` changed."""
    if not path:
        return board.soc_config()
    import yaml

    if not Path(path).is_file():
        raise UsageError(f"The SoC configuration file {path} does not exist; pass an existing YAML file.")
    changes = yaml.safe_load(Path(path).read_text()) or {}
    allowed = {f.name for f in dataclasses.fields(board.soc_config())} - {"clk_freq"}
    unknown = set(changes) - allowed if isinstance(changes, dict) else set()
    if not isinstance(changes, dict) or unknown:
        raise UsageError(
            f"{path}: unknown SoC setting {', '.join(sorted(map(str, unknown))) or repr(changes)}; "
            f"the settings are {', '.join(sorted(allowed))} (clk_freq is the board's)."
        )
    for key, value in changes.items():
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            raise UsageError(f"{path}: SoC setting {key}={value!r} must be an integer (or a core name).")
    return board.soc_config(**changes)


def check_board(board_name: str, port: str, soc_config_path: "str | None" = None, seed: int = 0) -> BoardCheck:
    """Run a check layer on ``board_name``'s core over ``port`` (a serial device, or ``"sim"`` for
    the SoC in Verilator) and compare it with the golden model."""
    from ..boards.platforms import get_board

    board = get_board(board_name)
    config = load_soc_config(board, soc_config_path)
    if port == "sim":
        from ..boards.sim_transport import open_sim
        transport = open_sim(config)
    else:
        from ..boards.serial_transport import open_serial
        transport = open_serial(port, config.baud)
    started = time.monotonic()
    with transport:
        check = _run_gemv if config.core == "gemv" else _run_lmul
        what, mismatches = check(transport, config, seed)
    stats = transport.stats
    return BoardCheck(board.name, port, what, mismatches, stats.frames, stats.retries, stats.naks,
                      time.monotonic() - started)


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
            f"expected {expected[i]:#04x}, got {result[i]:#04x}.")
    return f"{n} e4m3 L-Mul products in {cycles} cycles", ""


def _run_gemv(transport, config, seed):
    import numpy as np

    from ..backends.board import BoardBackend
    from ..backends.driver import HostDriver
    from ..backends.golden import GoldenBackend
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
                      f"expected {want[t, r, i]}, got {got.acc[t, r, i]}.")
    return what, ""
