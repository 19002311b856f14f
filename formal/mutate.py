"""Fault injection on a flattened netlist: every mutant in one design, chosen by a ``mutsel`` input.

The block is flattened and constant-folded by yosys (``_FLATTEN``) and rewritten as RTLIL text. Each
mutant is guarded by ``mutsel == index`` (index 0 is the unmodified design), so one netlist serves
every proof (``prove_equivalent(..., fixed={"mutsel": index})``) and one Verilator build serves
every simulation test. Fault kinds:

* ``flip`` / ``stuck0`` / ``stuck1`` — one bit of a named wire, as every reader sees it; on wires
  named like ``round``/``guard`` a flip is the flipped rounding bit, on ``sticky`` a stuck-at-0 is
  the dropped sticky bit;
* ``plus1`` / ``minus1`` — a named wire off by one, as read (on ``exp*`` wires: exponent off by one);
* ``const+1`` / ``const-1`` — a constant operand of an adder or comparator off by one (bias,
  thresholds, offsets);
* ``swap`` — the operands of a non-commutative cell swapped (``$sub``, comparisons; on ``$mux``
  it inverts the select).
"""

import random
import re
from dataclasses import dataclass

from ..support.errors import ToolError
from .netlist import Netlist, cached_yosys
from .structure import Structure, constant, output_ports

__all__ = ["Mutant", "MutantNetlist", "mutants", "KINDS"]

KINDS = ("flip", "stuck0", "stuck1", "plus1", "minus1", "const+1", "const-1", "swap")
_ARITH = {"$add", "$sub", "$lt", "$le", "$gt", "$ge", "$eq", "$ne"}
_SWAP = {"$sub", "$lt", "$le", "$gt", "$ge", "$mux"}
# Names that mark the classic FP datapath faults (rounding, normalisation, exponent, specials);
# these wires are mutated first.
_PRIORITY = re.compile(r"round|guard|sticky|exp|carry|norm|shift|over|under|nan|inf|zero|sign", re.I)


@dataclass(frozen=True)
class Mutant:
    index: int
    kind: str
    target: str

    def __str__(self):
        return f"#{self.index} {self.kind} {self.target}"


@dataclass(frozen=True)
class MutantNetlist:
    netlist: Netlist
    mutants: tuple[Mutant, ...]
    select_width: int
    # Candidate faults left out by the netlist's structure, by reason (see ``mutants``).
    screened: dict[str, int]

    def verilog(self) -> str:
        """The mutant netlist as Verilog (for Verilator), written by yosys."""
        return cached_yosys(
            "mutate", self.netlist.text, "mutants.v",
            lambda src, dst: f"read_rtlil {src}; write_verilog -noattr {dst}",
            lambda log: ToolError(f"yosys could not write the mutant netlist as Verilog: {log[-400:]}"))


# Constant folding (``opt -full``) and width reduction (``wreduce``) leave constant bits as constants
# in their readers, so no fault site is a bit whose value the structure already fixes; ``opt_clean
# -purge`` drops named wires nothing reads (dead aliases such as a second name for an output).
# All three preserve the design's function: mutant 0 is still proven equal to the gold. The first
# ``opt_clean`` removes registers of constant bits before ``opt -full`` would tie them to the
# constant (yosys then refuses the register's init value: "Conflicting init values"), as in the
# function units, whose pipeline carries fixed exponent fields.
_FLATTEN = "proc; flatten; chformal -remove; opt_clean; opt -full; wreduce; opt_clean -purge"


def _flatten(netlist: Netlist) -> str:
    return cached_yosys(
        "mutate", netlist.text, "flat.il",
        lambda src, dst: f"read_rtlil {src}; hierarchy -top {netlist.top}; {_FLATTEN}; write_rtlil {dst}",
        lambda log: ToolError(f"yosys could not flatten {netlist.top!r}: {log[-400:]}"))


def _bits(value: int, width: int) -> str:
    return f"{width}'{value % (1 << width):0{width}b}"


class _Module:
    """The one module of a flattened RTLIL file, split into wires, cells and connections."""

    def __init__(self, text: str, top: str):
        lines = text.splitlines()
        start = lines.index(f"module \\{top}")
        end = len(lines) - 1 - lines[::-1].index("end")
        self.head, self.tail = lines[:start + 1], lines[end:]
        self.wires: dict[str, int] = {}
        self.ports: dict[str, str] = {}
        self.items: list = []  # ("line", text) or ("cell", [lines])
        body = lines[start + 1:end]
        i = 0
        while i < len(body):
            line = body[i]
            stripped = line.strip()
            if stripped.startswith("cell "):
                j = body.index("  end", i)
                self.items.append(["cell", body[i:j + 1]])
                i = j + 1
                continue
            match = re.match(r"wire (?:width (\d+) )?(?:signed )?(?:(input|output|inout) \d+ )?(\S+)$", stripped)
            if match:
                self.wires[match.group(3)] = int(match.group(1) or 1)
                if match.group(2):
                    self.ports[match.group(3)] = match.group(2)
            self.items.append(["line", line])
            i += 1
        self.extra_wires: list[str] = []
        self.extra: list[str] = []
        self.counter = 0

    def fresh(self, stem: str, width: int) -> str:
        self.counter += 1
        name = f"$mut${stem}${self.counter}"
        self.extra_wires.append(f"  wire width {width} {name}")
        return name

    def cell(self, kind: str, params: dict, conns: dict):
        self.counter += 1
        self.extra.append(f"  cell {kind} $mut$cell${self.counter}")
        self.extra += [f"    parameter \\{k} {v}" for k, v in params.items()]
        self.extra += [f"    connect \\{k} {v}" for k, v in conns.items()]
        self.extra.append("  end")

    def binary(self, kind: str, a: str, b: str, width: int, y_width: int = None) -> str:
        y = self.fresh(kind.strip("$"), y_width or width)
        self.cell(kind, {"A_SIGNED": 0, "A_WIDTH": width, "B_SIGNED": 0, "B_WIDTH": width,
                         "Y_WIDTH": y_width or width}, {"A": a, "B": b, "Y": y})
        return y

    def mux(self, a: str, b: str, s: str, width: int, y: "str | None" = None) -> str:
        y = y or self.fresh("mux", width)
        self.cell("$mux", {"WIDTH": width}, {"A": a, "B": b, "S": s, "Y": y})
        return y

    def redirect_drivers(self, token: re.Pattern, width: int) -> str:
        """Make whatever drives the wire ``token`` matches (cell outputs, connection targets) drive a
        fresh wire of ``width`` bits instead; returns that wire's name."""
        fresh = self.fresh("drv", width)
        for item in self.items:
            if item[0] == "cell":
                item[1] = [token.sub(fresh, line) if line.strip().startswith("connect ")
                           and line.split()[1] in output_ports(_cell_type(item[1])) else line
                           for line in item[1]]
            elif item[1].strip().startswith("connect "):
                lhs, rhs = _split_connect(item[1].split("connect ", 1)[1])
                item[1] = f"  connect {token.sub(fresh, ' ' + lhs).lstrip()} {rhs}"
        return fresh

    def structure(self) -> Structure:
        cells = [(_cell_type(value), {line.split()[1]: line.strip().split(None, 2)[2] for line in value
                                      if line.strip().startswith("connect ")})
                 for kind, value in self.items if kind == "cell"]
        connects = [_split_connect(value.split("connect ", 1)[1]) for kind, value in self.items
                    if kind == "line" and value.strip().startswith("connect ")]
        outputs = [name for name, direction in self.ports.items() if direction == "output"]
        return Structure(self.wires, cells, connects, outputs)

    def text(self) -> str:
        lines = list(self.head) + self.extra_wires
        for kind, value in self.items:
            lines += value if kind == "cell" else [value]
        return "\n".join(lines + self.extra + self.tail) + "\n"


def _cell_type(cell: list[str]) -> str:
    return cell[0].split()[1]


def _conn(cell: list[str], port: str) -> "tuple[int, str] | None":
    for k, line in enumerate(cell):
        parts = line.strip().split(None, 2)
        if parts[:2] == ["connect", port]:
            return k, parts[2]
    return None


def _param(cell: list[str], name: str) -> "int | None":
    for line in cell:
        parts = line.strip().split()
        if parts[:2] == ["parameter", name]:
            return int(parts[2])
    return None


def _candidates(module: _Module, structure: Structure, screened: dict[str, int]) -> tuple[list, list]:
    """Every wire fault and cell fault the structure screens let through; the rest counted in ``screened``."""
    wire_faults = []
    for wire in sorted(w for w in module.wires if w.startswith("\\") and w not in ("\\clk", "\\rst")):
        width = module.wires[wire]
        for bit in range(width):
            for kind in ("flip", "stuck0", "stuck1"):
                if (wire, bit) not in structure.observed:
                    screened["unobserved"] += 1
                elif kind != "flip" and structure.constant.get((wire, bit)) == kind[-1]:
                    screened["constant"] += 1
                else:
                    wire_faults.append((kind, wire, bit))
        if width > 1 and re.search(r"exp", wire, re.I):
            if any((wire, bit) in structure.observed for bit in range(width)):
                wire_faults += [("plus1", wire, None), ("minus1", wire, None)]
            else:
                screened["unobserved"] += 2
    cell_faults = []
    for position, (kind, value) in enumerate(module.items):
        if kind != "cell":
            continue
        ctype = _cell_type(value)
        if ctype in _ARITH:
            for port in ("\\A", "\\B"):
                conn = _conn(value, port)
                if conn and re.fullmatch(r"\d+'[01]+", constant(conn[1]) or ""):
                    for step in (1, -1):
                        if _shifted(value, port, step) is None:
                            screened["wraps"] += 1
                        else:
                            cell_faults.append((f"const{step:+d}", position, port))
        if ctype in _SWAP:
            # Swapping two identical operands (a mux choosing between equal values) changes nothing.
            if _conn(value, "\\A")[1] == _conn(value, "\\B")[1]:
                screened["same operands"] += 1
            else:
                cell_faults.append(("swap", position, None))
    return wire_faults, cell_faults


def mutants(design, *, count: "int | None" = 60, seed: int = 0, top: str = "gate",
            outputs: bool = False) -> MutantNetlist:
    """Up to ``count`` mutants of ``design`` (component or :class:`Netlist`), drawn with ``seed``.

    Wires whose names mark rounding, sticky, exponent and special-value logic are mutated first;
    the rest of the budget is drawn at random from every other candidate. Candidates that cannot
    be faults by the netlist's structure alone are left out, counted in ``screened`` by reason:

    * ``unobserved``: a wire bit no reader in the fan-in cone of an output sees (a fault on it
      changes nothing; :mod:`.structure`);
    * ``constant``: stuck-at the value a constant already drives on that bit;
    * ``wraps``: a constant off by one past the end of the operation's range (the far end, no neighbour);
    * ``same operands``: swapping two identical operands.

    No proof or simulation outcome takes part in the choice, so the kill rate stays a measurement.

    With ``outputs``, the candidates are instead the flips of the output port bits: each changes
    that output on every input and every cycle, so each is a fault by construction, one that any
    sound proof of a correct gate must find (a check that the proof can fail).
    """
    netlist = Netlist.of(design, top)
    module = _Module(_flatten(netlist), top)
    rng = random.Random(seed)
    structure = module.structure()
    screened = {"unobserved": 0, "constant": 0, "wraps": 0, "same operands": 0}

    if outputs:
        wire_faults = [("flip", port, bit) for port, direction in sorted(module.ports.items())
                       if direction == "output" for bit in range(module.wires[port])]
        cell_faults = []
    else:
        wire_faults, cell_faults = _candidates(module, structure, screened)

    def priority(fault):
        name = fault[1] if isinstance(fault[1], str) else ""
        return 0 if _PRIORITY.search(name.lstrip("\\").split(".")[-1]) else 1
    rng.shuffle(wire_faults)
    rng.shuffle(cell_faults)
    wire_faults.sort(key=priority)
    if count is None:
        chosen = wire_faults + cell_faults
    else:
        # Half the budget for operator faults (constants, swaps), the rest for wire faults.
        cells = cell_faults[:max(count // 2, count - len(wire_faults))]
        chosen = wire_faults[:count - len(cells)] + cells

    select_width = max(1, len(chosen).bit_length())
    select = "\\mutsel"
    port_ids = [int(m) for m in re.findall(r"(?:input|output|inout) (\d+) ", "\n".join(
        v for k, v in module.items if k == "line"))]
    module.extra_wires.append(f"  wire width {select_width} input {max(port_ids, default=0) + 1} {select}")

    def is_index(index):
        return module.binary("$eq", select, _bits(index, select_width), select_width, 1)

    result = []
    by_wire: dict[str, list] = {}
    by_cell: dict[int, list] = {}
    for index, fault in enumerate(chosen, start=1):
        kind = fault[0]
        if isinstance(fault[1], str):
            by_wire.setdefault(fault[1], []).append((index, fault))
            target = fault[1].lstrip("\\") + (f"[{fault[2]}]" if fault[2] is not None else "")
        else:
            by_cell.setdefault(fault[1], []).append((index, fault))
            cell = module.items[fault[1]][1]
            target = f"{_cell_type(cell)} {cell[0].split()[2]}" + (f" {fault[2].lstrip(chr(92))}" if fault[2] else "")
        result.append(Mutant(index, kind, target))

    for wire, faults in by_wire.items():
        width = module.wires[wire]
        token = re.compile(r"(?<=[\s{])" + re.escape(wire) + r"(?=[\s\[}]|$)")
        # A wire is faulted as its readers see it; an output port, as the world outside sees it:
        # its drivers drive a fresh wire, and the port takes the faulted value.
        source = module.redirect_drivers(token, width) if outputs else wire
        value = source
        for index, (kind, _, bit) in faults:
            if kind == "flip":
                altered = module.binary("$xor", source, _bits(1 << bit, width), width)
            elif kind == "stuck0":
                altered = module.binary("$and", source, _bits(~(1 << bit), width), width)
            elif kind == "stuck1":
                altered = module.binary("$or", source, _bits(1 << bit, width), width)
            else:
                altered = module.binary("$add" if kind == "plus1" else "$sub", source, _bits(1, width), width)
            value = module.mux(value, altered, is_index(index), width)
        if outputs:
            module.extra.append(f"  connect {wire} {value}")
            continue
        for item in module.items:
            if item[0] == "cell":
                item[1] = [token.sub(value, line) if line.strip().startswith("connect ")
                           and line.split()[1] not in output_ports(_cell_type(item[1])) else line
                           for line in item[1]]
            elif item[1].strip().startswith("connect "):
                _, lhs_rhs = item[1].split("connect ", 1)
                lhs, rhs = _split_connect(lhs_rhs)
                item[1] = f"  connect {lhs} {token.sub(value, ' ' + rhs).lstrip()}"

    for position, faults in by_cell.items():
        cell = module.items[position][1]
        y_pos, y_sig = _conn(cell, "\\Y")
        width = _param(cell, "\\Y_WIDTH") or _param(cell, "\\WIDTH")
        original = module.fresh("orig", width)
        cell[y_pos] = f"    connect \\Y {original}"
        value = original
        for index, (kind, _, port) in faults:
            clone = [line.replace(cell[0].split()[2], f"{cell[0].split()[2]}$m{index}") if n == 0 else line
                     for n, line in enumerate(cell)]
            altered = module.fresh("alt", width)
            clone[y_pos] = f"    connect \\Y {altered}"
            if kind == "swap":
                a_pos, a_sig = _conn(clone, "\\A")
                b_pos, b_sig = _conn(clone, "\\B")
                clone[a_pos], clone[b_pos] = f"    connect \\A {b_sig}", f"    connect \\B {a_sig}"
                for n, line in enumerate(clone):
                    for x, y in (("\\A_WIDTH", "\\B_WIDTH"), ("\\A_SIGNED", "\\B_SIGNED")):
                        if line.strip().startswith(f"parameter {x} "):
                            clone[n] = line.replace(x, y)
                        elif line.strip().startswith(f"parameter {y} "):
                            clone[n] = line.replace(y, x)
            else:
                p_pos, _ = _conn(clone, port)
                shifted = _shifted(clone, port, 1 if kind == "const+1" else -1)
                clone[p_pos] = f"    connect {port} {shifted}"
                clone = [f"    parameter {port}_WIDTH {shifted.split(chr(39))[0]}"
                         if line.strip().startswith(f"parameter {port}_WIDTH ") else line for line in clone]
            module.extra += clone
            value = module.mux(value, altered, is_index(index), width)
        module.extra.append(f"  connect {y_sig} {value}")

    text = module.text()
    return MutantNetlist(Netlist(text, top), tuple(result), select_width, screened)


def _shifted(cell: list[str], port: str, step: int) -> "str | None":
    """``port``'s constant plus ``step`` at the width the cell computes in, or None if it leaves that range.

    yosys stores a constant at its own minimal width and extends it to the operation's width, so
    the off-by-one is taken there (``x > 7`` becomes ``x > 8`` even when 7 was written in 4 bits);
    a step past the end of the operation's range would wrap to the far end, no off-by-one at all.
    """
    size, digits = constant(_conn(cell, port)[1]).split("'")
    size = int(size)
    signed = _param(cell, "\\A_SIGNED") and _param(cell, "\\B_SIGNED")
    ports = ("\\A_WIDTH", "\\B_WIDTH") + (("\\Y_WIDTH",) if _cell_type(cell) in ("$add", "$sub") else ())
    width = max(_param(cell, p) or 0 for p in ports)
    value = int(digits, 2)
    if signed and value >> (size - 1):
        value -= 1 << size
    low, high = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    return _bits(value + step, width) if low <= value + step <= high else None


def _split_connect(text: str) -> tuple[str, str]:
    """``LHS RHS`` of an RTLIL connect, where either side may be a ``{ ... }`` concatenation."""
    text = text.strip()
    if text.startswith("{"):
        end = text.index("}") + 1
        return text[:end], text[end:].strip()
    lhs, rhs = text.split(None, 1)
    if rhs.startswith("["):
        end = rhs.index("]") + 1
        lhs, rhs = f"{lhs} {rhs[:end]}", rhs[end:].strip()
    return lhs, rhs
