"""Lemma 1 of the pipeline proof: a netlist is a balanced, feed-forward pipeline of plain registers.

The check runs on the flattened netlist (yosys ``proc; flatten; opt_clean; write_json``) and looks
at single bits. Every register must be a ``$dff`` on the rising edge of the ``clk`` port, with no
enable (the synchronous reset Amaranth adds is a multiplexer on ``D`` selected by ``rst``, which the
proof holds low); a ``$sdff`` or ``$adff`` whose reset is the ``rst`` port, active high, is the same
register while ``rst`` is low (yosys ``opt`` folds the reset multiplexer into one). With ``rst`` and the ``fixed`` inputs taken as constants, a
traversal in topological order gives each bit the set of register counts of the paths that reach it
from the primary inputs; Lemma 1 holds when the graph has no loop and no undriven bit, every
output bit's set is empty (a constant) or exactly ``{latency}``, and no output depends on a chain of
more than ``latency`` registers fed by constants (a register on a constant, like a delayed
``sticky = 0``, shows its reset value only until the pipeline has filled).

Cell outputs depend on all of the cell's inputs, except for bitwise cells and multiplexers of equal
widths, which are followed bit by bit: an over-approximation can only reject a pipeline, never
accept an unbalanced one.
"""

import json
from collections import deque

from .netlist import CLOCK_PORTS, Netlist, cached_yosys

__all__ = ["PipelineStructureError", "check_pipeline_structure", "REGISTERS", "STATEFUL"]

# Plain registers, and the reset port (with its polarity parameter) each may have.
REGISTERS = {"$dff": None, "$sdff": ("SRST", "SRST_POLARITY"), "$adff": ("ARST", "ARST_POLARITY")}
# Cells with state (or free values) other than the plain register: each breaks the argument.
STATEFUL = ("$dff", "$adff", "$sdff", "$aldff", "$dlatch", "$adlatch", "$sr", "$ff", "$mem", "$fsm",
             "$_DFF", "$_SDFF", "$_ALDFF", "$_DLATCH", "$_SR", "$_FF", "$anyseq", "$anyconst",
             "$anyinit", "$allseq", "$allconst", "$initstate")
_BITWISE = {"$and", "$or", "$xor", "$xnor", "$not", "$pos", "$_AND_", "$_OR_", "$_XOR_", "$_NOT_", "$_BUF_"}


class PipelineStructureError(ValueError):
    """The netlist is not a balanced feed-forward pipeline of the claimed latency."""


def _flat_module(netlist: Netlist) -> dict:
    text = cached_yosys(
        "formal-pipeline", netlist.text, "flat.json",
        lambda src, dst: f"read_rtlil {src}; hierarchy -top {netlist.top}; proc; flatten; chformal -remove; "
                         f"opt_clean; write_json {dst}",
        lambda log: ValueError(f"yosys could not flatten {netlist.top!r} for the structure check: {log[-300:]}"))
    return json.loads(text)["modules"][netlist.top]


def _bit_names(module: dict) -> dict[int, str]:
    """A readable name per bit, ``name[i]`` when wide: the shortest visible wire name holding it, an
    internal one before a port (a register is better named by its own signal than by the output it
    drives)."""
    names: dict[int, str] = {}
    rank = lambda item: (item[1].get("hide_name", 0), item[0] in module["ports"], len(item[0]), item[0])
    ranked = sorted(module["netnames"].items(), key=rank)
    for name, net in ranked:
        for index, bit in enumerate(net["bits"]):
            if isinstance(bit, int) and bit not in names:
                names[bit] = name if len(net["bits"]) == 1 else f"{name}[{index}]"
    return names


def _dependencies(cell: dict) -> "list[tuple[int, list[int]]]":
    """``(output bit, input bits it depends on)`` for every output bit of a combinational cell."""
    conns, dirs = cell["connections"], cell.get("port_directions", {})
    outs = [b for port, bits in conns.items() if dirs.get(port) == "output" for b in bits]
    ins = {port: bits for port, bits in conns.items() if dirs.get(port) == "input"}
    kind = cell["type"]
    if kind in _BITWISE and all(len(v) == len(outs) for v in ins.values()):
        return [(y, [v[i] for v in ins.values()]) for i, y in enumerate(outs)]
    if kind in ("$mux", "$_MUX_"):
        return [(y, [ins["A"][i], ins["B"][i], *ins["S"]]) for i, y in enumerate(outs)]
    if kind == "$pmux":
        width = len(outs)
        return [(y, [ins["A"][i], *ins["B"][i::width], *ins["S"]]) for i, y in enumerate(outs)]
    every = [b for bits in ins.values() for b in bits]
    return [(y, every) for y in outs]


def _register_error(name: str, cell: dict, clk: list, rst: list) -> "str | None":
    kind = cell["type"]
    if kind not in REGISTERS:
        return (f"Cell {name} is a {kind}: Lemma 1 accepts plain registers only ({', '.join(REGISTERS)}; no "
                f"enable, latch or memory); prove this design with engine='sby'.")
    high = lambda param: int(str(cell["parameters"].get(param, "1")), 2) == 1
    if cell["connections"]["CLK"] != clk or not high("CLK_POLARITY"):
        return (f"Register {name} is not clocked by the rising edge of the clk port; Lemma 1 needs one clock "
                f"for every register, so prove this design with engine='sby'.")
    reset = REGISTERS[kind]
    if reset and (cell["connections"][reset[0]] != rst or not high(reset[1])):
        return (f"Register {name} ({kind}) is reset by another signal than the rst port held high; Lemma 1 "
                f"needs registers that load D whenever rst is low, so prove this design with engine='sby'.")
    return None


def check_pipeline_structure(netlist: Netlist, latency: int, *, fixed: "tuple[str, ...]" = ()) -> int:
    """Check Lemma 1 for ``netlist`` with ``latency`` registers on every input-to-output path.

    ``fixed`` names inputs tied to constants (like ``rst``). Returns the number of registers;
    raises :class:`PipelineStructureError` naming an offending path, loop or cell.
    """
    module = _flat_module(netlist)
    names = _bit_names(module)
    ports = module["ports"]
    clk, rst = (ports.get(n, {}).get("bits", []) for n in CLOCK_PORTS)
    constant = {b for n in ("rst", *fixed) if n in ports for b in ports[n]["bits"]}
    sources = [b for n, p in ports.items() if p["direction"] == "input" and n not in CLOCK_PORTS and n not in fixed
               for b in p["bits"] if isinstance(b, int)]
    # edges[src] = [(dst, registers crossed, cell name)]
    edges: dict[int, list[tuple[int, int, str]]] = {}
    fed_by: dict[int, list[tuple[int, int, str]]] = {}
    registers = 0

    def edge(src, dst, regs, cell):
        if isinstance(src, int) and isinstance(dst, int) and src not in constant:
            edges.setdefault(src, []).append((dst, regs, cell))
            fed_by.setdefault(dst, []).append((src, regs, cell))

    for name, cell in module["cells"].items():
        kind = cell["type"]
        if kind.startswith(STATEFUL):
            problem = _register_error(name, cell, clk, rst)
            if problem:
                raise PipelineStructureError(problem)
            registers += 1
            for d, q in zip(cell["connections"]["D"], cell["connections"]["Q"]):
                edge(d, q, 1, name)
            continue
        if not kind.startswith("$"):
            raise PipelineStructureError(
                f"Cell {name} is an instance of {kind!r}, which flattening did not open; Lemma 1 needs every "
                f"cell visible, so give the netlist that module's definition or prove it with engine='sby'.")
        for out, ins in _dependencies(cell):
            for src in ins:
                if src in clk:
                    raise PipelineStructureError(
                        f"The clock drives logic (cell {name}), not only registers; Lemma 1 cannot follow "
                        f"such a design, so prove it with engine='sby'.")
                edge(src, out, 0, name)

    _check_driven(module, names)
    depths, settle = _depths(edges, fed_by, sources, names)
    for port, info in ports.items():
        if info["direction"] != "output":
            continue
        for index, bit in enumerate(info["bits"]):
            found = depths.get(bit, {}) if isinstance(bit, int) else {}
            wrong = [d for d in found if d != latency]
            label = port if len(info["bits"]) == 1 else f"{port}[{index}]"
            if wrong:
                seen = ", ".join(str(d) for d in sorted(found)) + (" register" if found.keys() == {1} else " registers")
                path = _path(found[wrong[0]], label, names)
                raise PipelineStructureError(
                    f"Output {label} is reached through {seen}{' on different paths' if len(found) > 1 else ''}"
                    f", not {latency} on every path as the claimed latency says: {path} crosses {wrong[0]}. "
                    f"Balance the pipeline or claim its real latency.")
            if isinstance(bit, int) and settle.get(bit, 0) > latency:
                raise PipelineStructureError(
                    f"Output {label} depends on a chain of {settle[bit]} registers, more than the latency {latency}, "
                    f"fed by constants only: it shows reset values after the pipeline is full. Shorten that "
                    f"chain or prove this design with engine='sby'.")
    return registers


def _check_driven(module: dict, names):
    """Refuse undriven and ``x`` bits: each cycle could see another value, which one proof cannot cover."""
    driven = {b for p in module["ports"].values() if p["direction"] == "input" for b in p["bits"]}
    used = [b for p in module["ports"].values() if p["direction"] == "output" for b in p["bits"]]
    for cell in module["cells"].values():
        dirs = cell.get("port_directions", {})
        for port, bits in cell["connections"].items():
            (driven.update if dirs.get(port) == "output" else used.extend)(bits)
    for bit in used:
        if bit in ("x", "z") or (isinstance(bit, int) and bit not in driven):
            where = names.get(bit, bit) if isinstance(bit, int) else f"a constant {bit!r}"
            raise PipelineStructureError(
                f"Bit {where} is read but never driven: its value may differ on every cycle, which Lemma 2 "
                f"cannot model; drive it with a constant or prove this design with engine='sby'.")


def _depths(edges, fed_by, sources, names) -> "tuple[dict[int, dict[int, tuple]], dict[int, int]]":
    """``{bit: {registers crossed: witness path}}`` and ``{bit: most registers on any path into it}``
    (from inputs or constants: the cycles after which the bit is settled), in topological order;
    raises on a loop.

    A witness path is the input bit followed by ``(register cell, its output bit)`` per register.
    """
    pending = {dst: len(srcs) for dst, srcs in fed_by.items()}
    depths: dict[int, dict[int, tuple]] = {b: {0: (b,)} for b in sources}
    settle: dict[int, int] = {}
    ready = deque(b for b in sorted(set(edges) | set(sources)) if pending.get(b, 0) == 0)
    while ready:
        bit = ready.popleft()
        mine = depths.get(bit, {})
        for dst, regs, cell in edges.get(bit, ()):
            theirs = depths.setdefault(dst, {})
            settle[dst] = max(settle.get(dst, 0), settle.get(bit, 0) + regs)
            for depth, path in mine.items():
                theirs.setdefault(depth + regs, path + ((cell, dst),) if regs else path)
            pending[dst] -= 1
            if pending[dst] == 0:
                ready.append(dst)
    stuck = [b for b, n in pending.items() if n > 0]
    if stuck:
        raise PipelineStructureError(_loop_message(stuck, fed_by, pending, names))
    return depths, settle


def _path(path: tuple, end: str, names) -> str:
    """``a[0] -> reg x[3] -> r[1]``: the input, each register crossed (by its output), the end."""
    hops = [f"reg {names.get(q, q)}" for _, q in path[1:]]
    return " -> ".join([str(names.get(path[0], path[0])), *hops, end])


def _loop_message(stuck, fed_by, pending, names) -> str:
    """Walk back through bits that never became ready until one repeats: that is a loop."""
    seen: dict[int, int] = {}
    trail: list[tuple[int, int, str]] = []
    bit = stuck[0]
    while bit not in seen:
        seen[bit] = len(trail)
        src, regs, cell = next((s, r, c) for s, r, c in fed_by[bit] if pending.get(s, 0) > 0)
        trail.append((bit, regs, cell))
        bit = src
    loop = trail[seen[bit]:][::-1]
    # Hidden (``$``-named) bits are yosys temporaries: the loop is named by its signals.
    shown = [f"reg {names.get(b, b)}" if regs else str(names.get(b, b)) for b, regs, _ in loop
             if regs or not names.get(b, "$").startswith("$")]
    chain = " -> ".join(shown + shown[:1])
    if any(regs for _, regs, _ in loop):
        return (f"The design has a register feedback loop: {chain}. Its state depends on every earlier input, so "
                f"it is no feed-forward pipeline; prove it with engine='sby'.")
    return f"The design has a combinational loop: {chain}. Break it before proving the design."
