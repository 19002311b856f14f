"""The ``batch`` harness: push whole arrays of vectors through a Verilated block, no Python per cycle.

``BatchSim(component)`` converts the component to Verilog, generates C++ accessors for its ports
and builds ``batch_driver.cpp`` around it (cached). Two modes:

* :meth:`BatchSim.run_vectors` — one input vector per cycle (per evaluation for combinational
  blocks), outputs read ``latency`` cycles later;
* :meth:`BatchSim.run_streams` — drive every ``lib.stream`` interface of the block (ports
  ``X__valid``/``X__ready``/``X__payload``) with seeded random stalls, until each output stream has
  delivered the expected number of payloads. A memory (``memories={"M": image}``) answers the
  address requests of output stream ``M__req`` on input stream ``M__resp`` with ``image[address]``,
  in order, ``memory_latency`` cycles after the request; requests see ``output_stall``, answers
  ``input_stall``.
"""

import importlib.resources
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..support.errors import UsageError
from .interface import Harness, HarnessRun, SimulationTimeout
from .rtl import Design, Port, elaborate, streams
from .verilator_build import build_executable, cxx_name

__all__ = ["BatchSim", "to_words", "from_words"]


def to_words(values, port: Port) -> np.ndarray:
    """Values of ``port`` as little-endian 32-bit words, shape (n, words), after a range check."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise UsageError(f"Port {port.name!r} takes a 1-D array of values; got shape {values.shape}.")
    if port.width <= 64 and values.dtype.kind in "ui":
        if values.dtype.kind == "i" and len(values) and values.min() < 0:
            bad = int(values[values < 0][0])
            raise UsageError(
                f"Port {port.name!r} got {bad}; ports carry unsigned bit patterns, "
                f"so pass {bad} & {(1 << port.width) - 1:#x} if two's complement is meant."
            )
        wide = values.astype("<u8", copy=False)
        if port.width < 64 and len(wide) and int(wide.max()) >> port.width:
            bad = int(wide[(wide >> np.uint64(port.width)) != 0][0])
            raise UsageError(
                f"Port {port.name!r} is {port.width} bits wide but got {bad} ({bad:#x}); "
                f"values must be below {1 << port.width}."
            )
        if port.words == 1:
            return wide.astype("<u4").reshape(-1, 1)
        return wide.view("<u4").reshape(-1, 2)
    words = np.zeros((len(values), port.words), dtype=np.uint32)
    for row, value in enumerate(values.tolist()):
        value = int(value)
        if not 0 <= value < (1 << port.width):
            raise UsageError(
                f"Port {port.name!r} is {port.width} bits wide but got {value}; "
                f"values must be in 0..{(1 << port.width) - 1}."
            )
        for k in range(port.words):
            words[row, k] = (value >> (32 * k)) & 0xFFFFFFFF
    return words


def from_words(words: np.ndarray, port: Port) -> np.ndarray:
    """Inverse of :func:`to_words`: uint64 for ports up to 64 bits, Python ints above."""
    words = words.reshape(-1, port.words)
    if port.words == 1:
        return words[:, 0].astype(np.uint64)
    if port.words == 2:
        return np.ascontiguousarray(words, dtype="<u4").view("<u8")[:, 0].astype(np.uint64)
    return np.array([sum(int(w) << (32 * k) for k, w in enumerate(row)) for row in words], dtype=object)


def _assign(target: str, port: Port, source: str) -> str:
    if port.width <= 32:
        return f"{target} = {source}[0];"
    if port.width <= 64:
        return f"{target} = (uint64_t){source}[0] | ((uint64_t){source}[1] << 32);"
    return f"for (int k = 0; k < {port.words}; k++) {target}[k] = {source}[k];"


def _read(port: Port, target: str, source: str) -> str:
    if port.width <= 32:
        return f"{target}[0] = {source};"
    if port.width <= 64:
        return f"{target}[0] = (uint32_t){source}; {target}[1] = (uint32_t)({source} >> 32);"
    return f"for (int k = 0; k < {port.words}; k++) {target}[k] = {source}[k];"


def _accessors(design: Design) -> str:
    inputs, outputs = design.inputs, design.outputs
    sources, sinks = streams(design)
    stream_ports = {p.name for s in sources + sinks for p in (s.valid, s.ready, s.payload) if p}
    constants = [i for i, p in enumerate(inputs) if p.name not in stream_ports]

    def table(name, values):
        body = ", ".join(map(str, values)) or "0"
        return f"static const int {name}[] = {{{body}}};"

    lines = [
        '#include "Vtop.h"',
        '#include "verilated.h"',
        f"#define HAS_CLK {int(design.clocked)}",
        f"#define HAS_RST {int(any(p.name == 'rst' for p in design.ports))}",
        f"static const int N_IN = {len(inputs)}, N_OUT = {len(outputs)};",
        table("IN_WORDS", [p.words for p in inputs]),
        table("OUT_WORDS", [p.words for p in outputs]),
        f"static const int MAX_WORDS = {max([64] + [p.words for p in design.ports])};",
        f"static const int N_CONST = {len(constants)}, N_SRC = {len(sources)}, N_SINK = {len(sinks)};",
        table("CONST_PORT", constants),
        table("SRC_WORDS", [s.words for s in sources]),
        table("SINK_WORDS", [s.words for s in sinks]),
        "static void set_in(Vtop* t, int p, const uint32_t* w) {",
        "  switch (p) {",
        *(f"  case {i}: {_assign('t->' + cxx_name(p.name), p, 'w')} break;" for i, p in enumerate(inputs)),
        "  }",
        "}",
        "static void get_out(Vtop* t, int p, uint32_t* w) {",
        "  switch (p) {",
        *(f"  case {i}: {_read(p, 'w', 't->' + cxx_name(p.name))} break;" for i, p in enumerate(outputs)),
        "  }",
        "}",
        "static void src_drive(Vtop* t, int s, bool valid, const uint32_t* w) {",
        "  switch (s) {",
    ]
    for i, s in enumerate(sources):
        payload = _assign("t->" + cxx_name(s.payload.name), s.payload, "w") if s.payload else ""
        lines.append(f"  case {i}: t->{cxx_name(s.valid.name)} = valid; {payload} break;")
    lines += ["  }", "}", "static bool src_accepted(Vtop* t, int s) {", "  switch (s) {"]
    lines += [f"  case {i}: return t->{cxx_name(s.ready.name)};" for i, s in enumerate(sources)]
    lines += ["  }", "  return false;", "}", "static void sink_ready(Vtop* t, int s, bool ready) {",
              "  switch (s) {"]
    lines += [f"  case {i}: t->{cxx_name(s.ready.name)} = ready; break;" for i, s in enumerate(sinks)]
    lines += ["  }", "}", "static bool sink_fired(Vtop* t, int s) {", "  switch (s) {"]
    lines += [f"  case {i}: return t->{cxx_name(s.valid.name)} && t->{cxx_name(s.ready.name)};"
              for i, s in enumerate(sinks)]
    lines += ["  }", "  return false;", "}", "static void sink_payload(Vtop* t, int s, uint32_t* w) {",
              "  switch (s) {"]
    for i, s in enumerate(sinks):
        if s.payload:
            lines.append(f"  case {i}: {_read(s.payload, 'w', 't->' + cxx_name(s.payload.name))} break;")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def _driver_source() -> str:
    return importlib.resources.files(__package__).joinpath("batch_driver.cpp").read_text()


class BatchSim(Harness):
    """A block built once with Verilator and driven from arrays.

    ``component`` is an Amaranth component (or an already elaborated :class:`Design`).
    """

    name = "batch"
    default_vectors = 1_000_000
    serves_memories = True

    def __init__(self, component, *, top: str = "top"):
        self.design = component if isinstance(component, Design) else elaborate(component, top)
        accessors = _accessors(self.design)
        driver = '#include "ports.h"\n' + _driver_source()
        self.executable, self.cached, self.build_seconds = build_executable(
            "batch", self.design.top, self.design.verilog, {"ports.h": accessors, "driver.cpp": driver})
        self.sources, self.sinks = streams(self.design)

    def run_vectors(self, inputs: dict[str, np.ndarray], latency: int = 0) -> HarnessRun:
        """Apply one vector per cycle; ``outputs`` holds every output port, aligned to its input vector."""
        design = self.design
        n = self._vector_count(design.top, inputs, [p.name for p in design.inputs], latency,
                               clocked=design.clocked)
        with tempfile.TemporaryDirectory(prefix="lutforge-batch-") as tmp:
            tmp = Path(tmp)
            with open(tmp / "in.bin", "wb") as f:
                for port in design.inputs:
                    to_words(inputs[port.name], port).tofile(f)
            self._execute(["vectors", str(tmp / "in.bin"), str(tmp / "out.bin"), str(n), str(latency)])
            raw = np.fromfile(tmp / "out.bin", dtype=np.uint32)
        outputs, offset = {}, 0
        for port in design.outputs:
            size = n * port.words
            outputs[port.name] = from_words(raw[offset:offset + size], port)
            offset += size
        return self._run(outputs)

    def run_streams(self, inputs: dict[str, np.ndarray], expect: dict[str, int], *,
                    constants: "dict[str, int] | None" = None, seed: int = 0,
                    input_stall: float = 0.0, output_stall: float = 0.0,
                    max_cycles: int = 10_000_000, memories: "dict[str, np.ndarray] | None" = None,
                    memory_latency: int = 1) -> HarnessRun:
        """Drive every stream of the block; see the module docstring.

        A memory image is a 1-D array of words (values of the ``M__resp`` payload) or a 2-D uint32
        array (depth, 32-bit words per payload) already in :func:`to_words` form. The requests a
        memory served are returned in ``outputs["M__req"]``. Every measurement of
        :class:`HarnessRun` is filled in.
        """
        constants = dict(constants or {})
        memories = dict(memories or {})
        by_name = {s.name: i for i, s in enumerate(self.sources)}
        sink_index = {s.name: i for i, s in enumerate(self.sinks)}
        attached = []
        for name, image in memories.items():
            req, resp = f"{name}__req", f"{name}__resp"
            if req not in sink_index or resp not in by_name or not self.sources[by_name[resp]].payload:
                raise UsageError(
                    f"Design {self.design.top!r} has no memory port {name!r}: a memory needs an output "
                    f"stream {req!r} (addresses) and an input stream {resp!r} (data)."
                )
            if not self.sinks[sink_index[req]].payload or self.sinks[sink_index[req]].payload.width > 64:
                raise UsageError(f"Memory requests on {req!r} must carry an address of 1 to 64 bits.")
            port = self.sources[by_name[resp]].payload
            image = np.asarray(image)
            if image.ndim == 2:
                if image.dtype != np.uint32 or image.shape[1] != port.words:
                    raise UsageError(
                        f"Memory {name!r} image of shape {image.shape} ({image.dtype}) is not "
                        f"(depth, {port.words}) uint32 words of the {port.width}-bit {resp!r} payload."
                    )
                words = image
            else:
                words = to_words(image, port)
            attached.append((sink_index[req], by_name[resp], words))
        if not isinstance(memory_latency, int) or memory_latency < 1:
            raise UsageError(f"A memory latency of {memory_latency!r} cycles is not allowed; use 1 or more.")
        memory_ports = {self.sinks[k].name for k, _, _ in attached} | {self.sources[k].name for _, k, _ in attached}
        expect = {**{n: 0 for n in memory_ports if n in sink_index}, **expect}
        sink_names = [s.name for s in self.sinks]
        stream_ports = {p.name for s in self.sources + self.sinks for p in (s.valid, s.ready, s.payload) if p}
        const_ports = [p for p in self.design.inputs if p.name not in stream_ports]
        self._check_streams(self.design.top, inputs, expect, constants, memories, (input_stall, output_stall),
                            sources=[s.name for s in self.sources if s.name not in memory_ports],
                            sinks=sink_names, constant_ports=[p.name for p in const_ports])
        with tempfile.TemporaryDirectory(prefix="lutforge-streams-") as tmp:
            tmp = Path(tmp)
            with open(tmp / "job.bin", "wb") as f:
                np.array([seed, round(input_stall * 1e6), round(output_stall * 1e6), max_cycles],
                         dtype=np.uint64).tofile(f)
                for port in const_ports:
                    to_words([constants.get(port.name, 0)], port).tofile(f)
                for stream in self.sources:
                    data = np.asarray(inputs.get(stream.name, np.zeros(0, dtype=np.uint64)))
                    np.array([len(data)], dtype=np.uint64).tofile(f)
                    if stream.payload and len(data):
                        to_words(data, stream.payload).tofile(f)
                np.array([expect[name] for name in sink_names], dtype=np.uint64).tofile(f)
                np.array([len(attached)], dtype=np.uint64).tofile(f)
                for sink, src, words in attached:
                    np.array([sink, src, memory_latency, len(words)], dtype=np.uint64).tofile(f)
                    np.ascontiguousarray(words, dtype=np.uint32).tofile(f)
            code = self._execute(["streams", str(tmp / "job.bin"), str(tmp / "out.bin")], allow=(3,))
            raw = np.fromfile(tmp / "out.bin", dtype=np.uint8)
        pos = 0

        def take(count, dtype):
            nonlocal pos
            size = count * np.dtype(dtype).itemsize
            chunk = raw[pos:pos + size].view(dtype)
            pos += size
            return chunk

        cycles, first_in, last_out = (int(v) for v in take(3, np.uint64))
        consumed = {s.name: int(take(1, np.uint64)[0]) for s in self.sources}
        outputs = {}
        for stream in self.sinks:
            count = int(take(1, np.uint64)[0])
            words = take(count * stream.words, np.uint32)
            outputs[stream.name] = (from_words(words, stream.payload) if stream.payload
                                    else np.zeros(count, dtype=np.uint64))
        final = {port.name: int(from_words(take(port.words, np.uint32), port)[0]) for port in self.design.outputs}
        if code == 3:
            got = ", ".join(f"{k}: {len(v)} of {expect[k]}" for k, v in outputs.items())
            raise SimulationTimeout(
                f"Design {self.design.top!r} stopped after {cycles} cycles (max_cycles) with output "
                f"streams at {got}; raise max_cycles if the block is just slow, else it is stuck."
            )
        return self._run(outputs, cycles=cycles, first_input_cycle=first_in, last_output_cycle=last_out,
                         consumed=consumed, final=final)

    def _execute(self, args: list[str], allow: tuple[int, ...] = ()) -> int:
        result = subprocess.run([str(self.executable), *args], capture_output=True, text=True)
        if result.returncode not in (0, *allow):
            raise RuntimeError(
                f"The batch driver for {self.design.top!r} failed with exit code {result.returncode}: "
                f"{(result.stdout + result.stderr).strip()}"
            )
        return result.returncode
