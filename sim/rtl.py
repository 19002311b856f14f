"""Verilog from Amaranth components, and the port list the simulators drive."""

import re
from dataclasses import dataclass

from amaranth.back import verilog

from ..support.errors import UsageError

__all__ = ["Port", "Design", "Stream", "elaborate", "streams"]


@dataclass(frozen=True)
class Port:
    name: str
    direction: str  # "input" or "output"
    width: int

    @property
    def words(self) -> int:
        """32-bit words per value, as Verilator stores it."""
        return (self.width + 31) // 32


@dataclass(frozen=True)
class Design:
    """A component converted to Verilog, with the ports of its top module."""

    top: str
    verilog: str
    ports: tuple[Port, ...]

    @property
    def inputs(self) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.direction == "input" and p.name not in ("clk", "rst"))

    @property
    def outputs(self) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.direction == "output")

    @property
    def clocked(self) -> bool:
        return any(p.name == "clk" for p in self.ports)

    def port(self, name: str) -> Port:
        for p in self.ports:
            if p.name == name:
                return p
        raise KeyError(
            f"Design {self.top!r} has no port {name!r}; its ports are "
            f"{', '.join(p.name for p in self.ports)}."
        )


@dataclass(frozen=True)
class Stream:
    """A ``lib.stream`` interface as Verilog ports ``X__valid``, ``X__ready`` and ``X__payload``."""

    name: str
    valid: Port
    ready: Port
    payload: "Port | None"

    @property
    def words(self) -> int:
        return self.payload.words if self.payload else 0


def streams(design: Design) -> tuple[list[Stream], list[Stream]]:
    """The input streams (the design takes payloads) and the output streams of ``design``."""
    names = {p.name for p in design.ports}
    sources, sinks = [], []
    for port in design.ports:
        if not port.name.endswith("__valid"):
            continue
        stem = port.name[: -len("__valid")]
        if f"{stem}__ready" not in names:
            continue
        payload = design.port(f"{stem}__payload") if f"{stem}__payload" in names else None
        stream = Stream(stem, port, design.port(f"{stem}__ready"), payload)
        (sources if port.direction == "input" else sinks).append(stream)
    return sources, sinks


_PORT = re.compile(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?\\?([\w$.]+)\s*;", re.M)


def _top_ports(text: str, top: str) -> tuple[Port, ...]:
    start = text.find(f"module {top}(")
    if start < 0:  # yosys escapes a top name that is a Verilog keyword (``module \\module (``)
        raise UsageError(f"The top module name {top!r} is a Verilog keyword; choose another name.")
    end = text.index("endmodule", start)
    return tuple(
        Port(name, direction, int(msb) + 1 if msb else 1)
        for direction, msb, name in _PORT.findall(text[start:end])
    )


def elaborate(component, top: str = "top") -> Design:
    """Convert ``component`` to Verilog with its ports named after its signature (``i__payload``)."""
    text = verilog.convert(component, name=top, emit_src=False)
    return Design(top, text, _top_ports(text, top))
