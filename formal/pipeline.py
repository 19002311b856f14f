"""Pipelined == combinational by two helper lemmas: the ``"pipeline-lemmas"`` engine.

k-induction over a wide pipelined unit (a bf16 multiplier, any fused multiply-add) runs past its
time limit, because the solver must relate every register to the inputs of earlier cycles. When
the gate is a plain pipeline, the sequential theorem splits into two lemmas that each finish in
seconds:

* **Lemma 1 (structure)**, :mod:`.pipeline_structure`: the flattened gate has no loop, its
  only state is registers on the rising edge of ``clk`` without enable (``$dff``, or ``$sdff`` and
  ``$adff`` reset by ``rst``), and every path from an input bit to an output bit crosses exactly
  ``L`` registers (``L`` the claimed latency); register chains fed by constants are at most ``L`` long.
* **Lemma 2 (function)**: the gate with every register made transparent (``Q`` wired to ``D``)
  and ``rst`` tied low is combinationally equal to the gold — yosys ``sat`` through
  :func:`.engines.prove_equivalent`, with its cut points when the gate and gold share a submodule.

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

This module holds the netlist side of Lemma 2 (:func:`transparent`); :mod:`.engines` runs the two
lemmas.
"""

import re

from .netlist import Netlist, cached_yosys
from .pipeline_structure import REGISTERS, STATEFUL, PipelineStructureError

__all__ = ["ENGINE", "transparent", "processed", "normalised"]

ENGINE = "pipeline-lemmas"

_CELL = re.compile(r"^  cell (\S+) (\S+)\n(.*?)^  end\n", re.M | re.S)
_CONNECT = re.compile(r"^    connect \\(\w+) (.+)$", re.M)


def processed(netlist: Netlist) -> str:
    """RTLIL after ``proc``: Amaranth's processes become ``$dff`` registers and multiplexers."""
    return cached_yosys(
        "formal-pipeline", netlist.text, "proc.il",
        lambda src, dst: f"read_rtlil {src}; hierarchy -top {netlist.top}; proc; write_rtlil {dst}",
        lambda log: ValueError(f"yosys could not process {netlist.top!r}: {log[-300:]}"))


def normalised(text: str, top: str) -> Netlist:
    """``text`` read back and written by yosys, so both sides of a cut have the same formatting."""
    return Netlist(cached_yosys(
        "formal-pipeline", text, "norm.il",
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
    text = _CELL.sub(_wire_through, processed(netlist))
    # With no register left an init value means nothing, and yosys refuses one on a wire that its
    # optimisation ties to a constant (a register of a fixed bit, now a wire from a constant).
    text = re.sub(r"^ *attribute \\init .*\n", "", text, flags=re.M)
    header = re.search(rf"^module \\{re.escape(netlist.top)}\n", text, re.M)
    end = text.index("\nend\n", header.end())
    body = text[header.end():end]
    for port in ("clk", "rst"):
        body, found = re.subn(rf"^  wire input \d+ \\{port}$", rf"  wire \\{port}", body, flags=re.M)
        if found:
            body += f"\n  connect \\{port} 1'0"
    return normalised(text[:header.end()] + body + text[end:], netlist.top)
