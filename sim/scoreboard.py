"""Checking a block's outputs against its golden model, one transaction at a time."""

from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Mismatch", "Scoreboard", "describe_mismatch"]


class Mismatch(AssertionError):
    """The RTL produced a value the golden model did not."""


def _fmt(value) -> str:
    return f"{int(value):#x} ({int(value)})"


def describe_mismatch(index: int, inputs, expected, actual, cycle: "int | None" = None) -> str:
    where = f"transaction {index}" + (f" at cycle {cycle}" if cycle is not None else "")
    if inputs is None:
        return f"Mismatch at {where}: expected {_fmt(expected)}, got {_fmt(actual)}."
    if isinstance(inputs, dict):
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in inputs.items())
    else:
        shown = _fmt(inputs) if isinstance(inputs, int) else repr(inputs)
    return f"Mismatch at {where}: inputs {shown}; expected {_fmt(expected)}, got {_fmt(actual)}."


@dataclass
class Scoreboard:
    """Holds expected outputs (from ``golden(input)``) and checks actual outputs in order.

    The first mismatch raises :class:`Mismatch` with the input, the expected and the actual value
    in hex and decimal, and the cycle when known.
    """

    golden: Callable
    pending: list = field(default_factory=list)
    checked: int = 0

    def expect(self, inputs):
        self.pending.append((inputs, self.golden(inputs)))

    def check(self, actual, cycle: "int | None" = None):
        if not self.pending:
            raise Mismatch(
                f"Output {_fmt(actual)} arrived at cycle {cycle} with no input waiting for it; "
                f"the block produced more outputs than it was given inputs."
            )
        inputs, expected = self.pending.pop(0)
        if int(actual) != int(expected):
            raise Mismatch(describe_mismatch(self.checked, inputs, expected, actual, cycle))
        self.checked += 1

    def done(self):
        if self.pending:
            raise Mismatch(
                f"{len(self.pending)} expected output(s) never arrived; the first was for inputs "
                f"{self.pending[0][0]!r} after {self.checked} correct output(s)."
            )
