"""``verilator --lint-only -Wall`` on generated Verilog, with lutforge's documented waivers."""

import importlib.resources
import subprocess
import tempfile
from pathlib import Path

from .rtl import Design
from ..support.toolchain import verilator

__all__ = ["lint"]


def lint(design: Design) -> list[str]:
    """Every warning Verilator still reports on ``design`` after the waivers in lint_waivers.vlt."""
    tool = verilator()
    waivers = importlib.resources.files(__package__).joinpath("lint_waivers.vlt").read_text()
    with tempfile.TemporaryDirectory(prefix="lutforge-lint-") as tmp:
        # The file is named after the module so DECLFILENAME has nothing to say.
        Path(tmp, f"{design.top}.v").write_text(design.verilog)
        Path(tmp, "waivers.vlt").write_text(waivers)
        result = subprocess.run(
            ["perl", str(tool.executable), "--lint-only", "-Wall", "waivers.vlt", f"{design.top}.v"],
            cwd=tmp, env=tool.env(), capture_output=True, text=True)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("%")]
