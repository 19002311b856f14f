"""Bit-level structure of a flattened RTLIL module: which wire bits a reader can observe, which are constant.

Fault injection (:mod:`.mutate`) uses this to skip fault sites that cannot change any output
by the netlist's structure alone, never by running a proof or a test:

* a bit is *observed* when some cell in the fan-in cone of an output port reads it, or a connection
  copies it into a bit that is itself in that cone; a fault on a bit nothing observes changes no
  output (an output port read only into a dead alias, the unread top bits of a wide wire);
* a bit is *constant* when a connection drives it from a constant (directly or through other
  connections); stuck-at that constant is no fault at all.
"""

import re

__all__ = ["Structure", "output_ports", "signal_bits", "constant"]

# Cell ports that drive their signal; every other port reads. Most cells drive Y (logic) or Q
# (flip-flops); these drive other ports (a memory write port's DATA is an input).
_OUTPUT_PORTS = {"\\Y", "\\Q", "\\RD_DATA"}
_OUTPUTS_BY_TYPE = {"$memrd": {"\\DATA"}, "$memrd_v2": {"\\DATA"}, "$alu": {"\\X", "\\CO"}, "$fa": {"\\X"},
                    "$lcu": {"\\CO"}}


def output_ports(cell_type: str) -> set[str]:
    """The ports a cell of ``cell_type`` drives."""
    return _OUTPUT_PORTS | _OUTPUTS_BY_TYPE.get(cell_type, set())


# RTLIL writes a constant as WIDTH'BITS, or as a plain decimal integer: 32 bits, two's complement
# (yosys 0.70 writes wide comparison thresholds so, e.g. ``connect \B 2139095039``).
_TOKEN = re.compile(r"\{|\}|\[\d+(?::\d+)?\]|\d+'[01xzm-]*|-?\d+|[\\$]\S+")
_INTEGER_BITS = 32


def constant(token: str) -> "str | None":
    """An RTLIL constant token as ``WIDTH'BITS`` (a decimal integer as its 32 bits); None if ``token``
    is no constant."""
    if re.fullmatch(r"\d+'[01xzm-]*", token):
        return token
    if re.fullmatch(r"-?\d+", token):
        return f"{_INTEGER_BITS}'{int(token) % (1 << _INTEGER_BITS):0{_INTEGER_BITS}b}"
    return None


def signal_bits(spec: str, wires: dict[str, int]) -> list:
    """The bits of an RTLIL signal expression, least significant first.

    A wire bit is ``(name, index)``; a constant bit is its character (``"0"``, ``"1"``, ``"x"``...).
    """
    tokens = _TOKEN.findall(spec)
    bits, end = (_parse(tokens, 0, wires) if "".join(tokens) == "".join(spec.split()) else (None, -1))
    if end != len(tokens):
        raise ValueError(f"RTLIL signal {spec!r} is not one wire, slice, constant or {{ }} concatenation, "
                         f"the only signals the fault injector reads; extend formal/structure.py (_TOKEN) to read it.")
    return bits


def _parse(tokens: list[str], pos: int, wires: dict[str, int]) -> tuple[list, int]:
    token = tokens[pos]
    if token == "{":
        parts, pos = [], pos + 1
        while tokens[pos] != "}":
            part, pos = _parse(tokens, pos, wires)
            parts.append(part)
        # A concatenation lists its most significant part first.
        return [bit for part in reversed(parts) for bit in part], pos + 1
    if constant(token) is not None:
        width, digits = constant(token).split("'")
        return list(reversed(digits.rjust(int(width), "0"))), pos + 1
    bits = [(token, i) for i in range(wires[token])]
    pos += 1
    if pos < len(tokens) and tokens[pos].startswith("["):
        hi, _, lo = tokens[pos][1:-1].partition(":")
        bits = bits[int(lo or hi):int(hi) + 1]
        pos += 1
    return bits, pos


class Structure:
    """Observed and constant bits of one module, from its cells and connections.

    ``cells`` are ``(type, {port: signal})`` pairs; ``connects`` are ``(lhs, rhs)`` pairs;
    ``outputs`` names the output ports.
    """

    def __init__(self, wires: dict[str, int], cells: list[tuple[str, dict[str, str]]], connects: list[tuple[str, str]],
                 outputs: list[str]):
        drivers: dict = {}
        cell_bits = []
        for cell_type, ports in cells:
            outs = output_ports(cell_type)
            reads = [b for port, sig in ports.items() if port not in outs for b in signal_bits(sig, wires)]
            drives = [b for port, sig in ports.items() if port in outs for b in signal_bits(sig, wires)]
            cell_bits.append((reads, drives))
            for bit in drives:
                drivers.setdefault(bit, []).extend(reads)
        copies = []
        for lhs, rhs in connects:
            pairs = list(zip(signal_bits(lhs, wires), signal_bits(rhs, wires)))
            copies += pairs
            for dst, src in pairs:
                drivers.setdefault(dst, []).append(src)

        # Every bit in the fan-in cone of an output port (conservatively: a cell's output bit
        # depends on all of its input bits).
        live = {(port, i) for port in outputs for i in range(wires[port])}
        stack = list(live)
        while stack:
            for src in drivers.get(stack.pop(), ()):
                if isinstance(src, tuple) and src not in live:
                    live.add(src)
                    stack.append(src)
        self.observed = {b for reads, drives in cell_bits if any(d in live for d in drives)
                         for b in reads if isinstance(b, tuple)}
        self.observed |= {src for dst, src in copies if dst in live and isinstance(src, tuple)}

        self.constant: dict = {}
        changed = True
        while changed:
            changed = False
            for dst, src in copies:
                value = src if not isinstance(src, tuple) else self.constant.get(src)
                if value in ("0", "1") and dst not in self.constant:
                    self.constant[dst] = value
                    changed = True
