"""Pipelined == combinational by two helper lemmas: the ``"pipeline-lemmas"`` engine.

k-induction over a wide pipelined unit (a bf16 multiplier, any fused multiply-add) runs past its
time limit, because the solver must relate every register to the inputs of earlier cycles. When
the gate is a plain pipeline, the sequential theorem splits into two lemmas that each finish in
seconds:

* **Lemma 1 (structure)**, :mod:`.formal_pipeline_structure`: the flattened gate has no loop, its
  only state is registers on the rising edge of ``clk`` without enable (``$dff``, or ``$sdff`` and
  ``$adff`` reset by ``rst``), and every path from an input bit to an output bit crosses exactly
  ``L`` registers (``L`` the claimed latency); register chains fed by constants are at most ``L`` long.
* **Lemma 2 (function)**: the gate with every register made transparent (``Q`` wired to ``D``)
  and ``rst`` tied low is combinationally equal to the gold — yosys ``sat`` through
  :func:`.formal.prove_equivalent`, with its cut points when the gate and gold share a submodule.

**Theorem.** For every cycle ``t >= L`` after which ``rst`` has been low for ``L`` cycles (the
property the ``"sby"`` engine checks), ``gate(t) == gold(x(t - L))``. *Proof:* call ``T(n)`` the
value of net ``n`` in the transparent netlist. By Lemma 1 each net ``n`` in an output's cone has one
register count ``d(n)`` over its paths from inputs, and at most ``c(n) <= L`` registers on any path
into it. By induction in topological order, ``n`` at cycle ``t >= c(n)`` equals ``T(n)`` of the
inputs at ``t - d(n)`` (constants being equal at every cycle): a combinational cell applies the same
function to inputs that all satisfy this with the same ``d``; a register's output at ``t`` is its
``D`` at ``t - 1`` (no enable, reset low), one register further from the inputs, which is ``T`` of
the inputs at ``t - 1 - d(D) = t - d(Q)``. An output has ``d = L``, so
``gate(t) = T(out)(x(t - L))``, which Lemma 2 shows equal to ``gold(x(t - L))``. Conversely, a
Lemma 2 counterexample with Lemma 1 holding is a real one: hold its inputs and read the gate ``L``
cycles later.

When Lemma 1 does not hold, bounded model checking of the whole designs looks for a real
counterexample within the time limit; without one the result is INCONCLUSIVE with the reason.
"""

import json
import re
import time

from ..support.cache import build_dir, content_key
from .equivalence import FAIL, PASS, Netlist, ProofResult, cached_yosys, prove_equivalent
from .pipeline_structure import REGISTERS, STATEFUL, PipelineStructureError, check_pipeline_structure
from ..support.toolchain import tool_versions

__all__ = ["ENGINE", "transparent", "prove_pipelined"]

ENGINE = "pipeline-lemmas"

_CELL = re.compile(r"^  cell (\S+) (\S+)\n(.*?)^  end\n", re.M | re.S)
_CONNECT = re.compile(r"^    connect \\(\w+) (.+)$", re.M)


def _processed(netlist: Netlist) -> str:
    """RTLIL after ``proc``: Amaranth's processes become ``$dff`` registers and multiplexers."""
    return cached_yosys(
        "formal-pipeline", netlist.text, "proc", "proc.il",
        lambda src, dst: f"read_rtlil {src}; hierarchy -top {netlist.top}; proc; write_rtlil {dst}",
        lambda log: ValueError(f"yosys could not process {netlist.top!r}: {log[-300:]}"))


def _normalised(text: str, top: str) -> Netlist:
    """``text`` read back and written by yosys, so both sides of a cut have the same formatting."""
    return Netlist(cached_yosys(
        "formal-pipeline", text, "normalise", "norm.il",
        lambda src, dst: f"read_rtlil {src}; hierarchy -top {top}; write_rtlil {dst}",
        lambda log: ValueError(f"yosys could not read the rewritten netlist of {top!r}: {log[-300:]}")), top)


def _wire_through(match: re.Match) -> str:
    kind, name, body = match.groups()
    if kind not in REGISTERS:
        if kind.startswith(STATEFUL):
            raise PipelineStructureError(f"Cell {name} is a {kind}, which cannot be made transparent; prove this "
                                         f"design with engine='sby'.")
        return match.group(0)
    ports = dict(_CONNECT.findall(body))
    return f"  connect {ports['Q']} {ports['D']}\n"


def transparent(netlist: Netlist) -> Netlist:
    """``netlist`` with every register replaced by a wire from ``D`` to ``Q`` and ``clk``/``rst`` tied low.

    Lemma 1 checks first that each register's reset, if any, is ``rst``: with ``rst`` low it is
    inactive. The hierarchy is kept, so a submodule can still be cut out of the result.
    """
    text = _CELL.sub(_wire_through, _processed(netlist))
    header = re.search(rf"^module \\{re.escape(netlist.top)}\n", text, re.M)
    end = text.index("\nend\n", header.end())
    body = text[header.end():end]
    for port in ("clk", "rst"):
        body, found = re.subn(rf"^  wire input \d+ \\{port}$", rf"  wire \\{port}", body, flags=re.M)
        if found:
            body += f"\n  connect \\{port} 1'0"
    return _normalised(text[:header.end()] + body + text[end:], netlist.top)


def prove_pipelined(gold, gate, *, name: str, gold_latency: int, gate_latency: int, solver: str,
                    timeout: float, fixed: "dict[str, int] | None", assume: "str | None",
                    cut: "tuple[str, ...]", depth: "int | None", cache: bool) -> ProofResult:
    """Prove a pipelined ``gate`` (latency ``gate_latency``) equal to a combinational ``gold`` by
    Lemmas 1 and 2 (see the module docstring); arguments as for :func:`.formal.prove_equivalent`."""
    fixed = fixed or {}
    gold_n, gate_n = Netlist.of(gold, "gold"), Netlist.of(gate, "gate")
    if gold_latency or gold_n.clocked:
        raise ValueError(f"The {ENGINE} engine compares a pipelined gate with a combinational gold, but the gold "
                         f"has latency {gold_latency} and {'a' if gold_n.clocked else 'no'} clock; compare two "
                         f"pipelines with engine='sby'.")
    if gate_latency < 1 or not gate_n.clocked:
        raise ValueError(f"The {ENGINE} engine needs a clocked gate with latency 1 or more, not {gate_latency}; "
                         f"prove a combinational gate with engine='sat'.")
    key = content_key(gold_n.text, gate_n.text, ENGINE, str(gate_latency), ",".join(cut), fixed, assume or "",
                      solver, tool_versions())
    result_file = build_dir("formal", key) / "result.json"
    if cache and result_file.exists():
        result = ProofResult.from_json(json.loads(result_file.read_text()))
        result.name, result.cached = name, True
        return result
    start = time.perf_counter()
    left = lambda: max(1.0, timeout - (time.perf_counter() - start))
    try:
        registers = check_pipeline_structure(gate_n, gate_latency, fixed=tuple(fixed))
    except PipelineStructureError as error:
        # The lemmas say nothing here; a real counterexample (or a k-induction proof) still may.
        whole = prove_equivalent(gold_n, gate_n, name=name, gate_latency=gate_latency, engine="sby", solver=solver,
                                 timeout=left(), depth=depth, fixed=fixed, assume=assume, cache=cache)
        whole.detail = f"Lemma 1 (structure) does not hold: {error} Whole designs: {whole.detail}"
        return whole
    lemma2 = prove_equivalent(_normalised(_processed(gold_n), "gold"), transparent(gate_n), name=name,
                              engine="sat", solver=solver, timeout=left(), fixed=fixed, assume=assume, cut=cut,
                              cache=cache, merge=True)
    detail = (f"Lemma 1: {registers} registers, {gate_latency} on every input-to-output path; "
              f"Lemma 2 (registers transparent): {lemma2.detail}")
    result = ProofResult(name, lemma2.status, f"{ENGINE}/{lemma2.engine}", time.perf_counter() - start, detail,
                         lemma2.counterexample, False, lemma2.workdir)
    if result.status in (PASS, FAIL):
        partial = result_file.with_name(f"result-{id(result)}.json")
        partial.write_text(json.dumps(result.to_json()))
        partial.replace(result_file)
    return result
