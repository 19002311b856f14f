"""Fault injection on a flattened netlist: every mutant in one design, chosen by a ``mutsel`` input.

The block is flattened by yosys (``proc; flatten; opt_clean``) and rewritten as RTLIL text. Each
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

from .formal import Netlist, cached_yosys

__all__ = ["Mutant", "MutantNetlist", "mutants", "KINDS"]

KINDS = ("flip", "stuck0", "stuck1", "plus1", "minus1", "const+1", "const-1", "swap")
_OUTPUT_PORTS = {"\\Y", "\\Q", "\\RD_DATA"}
_ARITH = {"$add", "$sub", "$lt", "$le", "$gt", "$ge", "$eq", "$ne"}
_SWAP = {"$sub", "$lt", "$le", "$gt", "$ge", "$mux"}
# Names that mark the fault classes the issue lists; these wires are mutated first.
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

    def verilog(self) -> str:
        """The mutant netlist as Verilog (for Verilator), written by yosys."""
        return cached_yosys(
            "mutate", self.netlist.text, "verilog", "mutants.v",
            lambda src, dst: f"read_rtlil {src}; write_verilog -noattr {dst}",
            lambda log: RuntimeError(f"yosys could not write the mutant netlist as Verilog: {log[-400:]}"))


def _flatten(netlist: Netlist) -> str:
    return cached_yosys(
        "mutate", netlist.text, "flat", "flat.il",
        lambda src, dst: f"read_rtlil {src}; hierarchy -top {netlist.top}; proc; "
                         f"flatten; opt_clean; chformal -remove; write_rtlil {dst}",
        lambda log: RuntimeError(f"yosys could not flatten {netlist.top!r}: {log[-400:]}"))


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
            match = re.match(r"wire (?:width (\d+) )?(?:(input|output|inout) \d+ )?(\S+)$", stripped)
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


def mutants(design, *, count: "int | None" = 60, seed: int = 0, top: str = "gate") -> MutantNetlist:
    """Up to ``count`` mutants of ``design`` (component or :class:`Netlist`), drawn with ``seed``.

    Wires whose names mark rounding, sticky, exponent and special-value logic are mutated first;
    the rest of the budget is drawn at random from every other candidate.
    """
    netlist = Netlist.of(design, top)
    module = _Module(_flatten(netlist), top)
    rng = random.Random(seed)

    # A wire nothing reads gives only equivalent mutants.
    read_text = " ".join(_reads(module))
    named = sorted(w for w in module.wires
                   if w.startswith("\\") and w not in ("\\clk", "\\rst", "\\mutsel")
                   and re.search(r"(?<=[\s{])" + re.escape(w) + r"(?=[\s\[}]|$)", read_text))
    wire_faults = []
    for wire in named:
        width = module.wires[wire]
        for bit in range(width):
            for kind in ("flip", "stuck0", "stuck1"):
                wire_faults.append((kind, wire, bit))
        if width > 1 and re.search(r"exp", wire, re.I):
            wire_faults += [("plus1", wire, None), ("minus1", wire, None)]
    cell_faults = []
    for position, (kind, value) in enumerate(module.items):
        if kind != "cell":
            continue
        ctype = _cell_type(value)
        if ctype in _ARITH:
            for port in ("\\A", "\\B"):
                conn = _conn(value, port)
                if conn and re.fullmatch(r"\d+'[01]+", conn[1]):
                    cell_faults += [("const+1", position, port), ("const-1", position, port)]
        if ctype in _SWAP:
            cell_faults.append(("swap", position, None))

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
        value = wire
        for index, (kind, _, bit) in faults:
            if kind == "flip":
                altered = module.binary("$xor", wire, _bits(1 << bit, width), width)
            elif kind == "stuck0":
                altered = module.binary("$and", wire, _bits(~(1 << bit), width), width)
            elif kind == "stuck1":
                altered = module.binary("$or", wire, _bits(1 << bit, width), width)
            else:
                altered = module.binary("$add" if kind == "plus1" else "$sub", wire, _bits(1, width), width)
            value = module.mux(value, altered, is_index(index), width)
        token = re.compile(r"(?<=[\s{])" + re.escape(wire) + r"(?=[\s\[}]|$)")
        for item in module.items:
            if item[0] == "cell":
                item[1] = [token.sub(value, line) if line.strip().startswith("connect ")
                           and line.split()[1] not in _OUTPUT_PORTS else line for line in item[1]]
            elif item[1].strip().startswith("connect "):
                _, lhs_rhs = item[1].split("connect ", 1)
                lhs, rhs = _split_connect(lhs_rhs)
                item[1] = f"  connect {lhs} {token.sub(value, ' ' + rhs).lstrip()}"

    for position, faults in by_cell.items():
        cell = module.items[position][1]
        ctype = _cell_type(cell)
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
                p_pos, const = _conn(clone, port)
                bits = int(const.split("'")[0])
                number = int(const.split("'")[1], 2) + (1 if kind == "const+1" else -1)
                clone[p_pos] = f"    connect {port} {_bits(number, bits)}"
            module.extra += clone
            value = module.mux(value, altered, is_index(index), width)
        module.extra.append(f"  connect {y_sig} {value}")

    text = module.text()
    return MutantNetlist(Netlist(text, top), tuple(result), select_width)


def _reads(module: _Module) -> list[str]:
    """Every signal expression some cell input or connection reads."""
    reads = []
    for kind, value in module.items:
        if kind == "cell":
            reads += [" " + line.split(None, 2)[2] for line in value
                      if line.strip().startswith("connect ") and line.split()[1] not in _OUTPUT_PORTS]
        elif value.strip().startswith("connect "):
            reads.append(" " + _split_connect(value.split("connect ", 1)[1])[1])
    return reads


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
