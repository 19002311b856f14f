"""The catalogue of RTL blocks the CLI can generate, simulate and check.

Each module in this package registers one or more :class:`Block`s: how to build the component from
parameters, how to draw input vectors, and which golden function gives the expected outputs. The
CLI (``lutforge verilog``, ``lutforge sim``), the self-checks and the lint test all read this
catalogue, so a block registered here is covered by every one of them.
"""

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..support.errors import UsageError

__all__ = ["Param", "integer", "LATENCY", "Block", "register", "catalogue", "get_block"]


@dataclass(frozen=True)
class Param:
    """One block parameter, given on the command line as ``NAME=VALUE``.

    An integer parameter has a range [``low``, ``high``]: ``high`` is where generating or simulating
    the block stops taking seconds (or where the hardware ends), and ``lutforge blocks`` shows it.
    ``unused_when`` names the settings of other parameters under which this one has no effect, and
    ``sim_only`` marks a parameter that only shapes the vectors ``lutforge sim`` draws; giving such a
    parameter where it changes nothing is an error, not a silent no-op.
    """

    default: Any
    help: str
    choices: "tuple | None" = None
    parse: Callable[[str], Any] = str
    low: "int | None" = None
    high: "int | None" = None
    unused_when: "dict[str, Any] | None" = None
    sim_only: bool = False

    def describe(self) -> str:
        """The help text with the range and the conditions, as ``lutforge blocks`` prints it."""
        notes = []
        if self.low is not None:
            notes.append(f"{self.low} to {self.high}")
        if self.unused_when:
            notes.append("unused with " + ", ".join(f"{k}={v}" for k, v in self.unused_when.items()))
        if self.sim_only:
            notes.append("`lutforge sim` only")
        return self.help + (f" [{'; '.join(notes)}]" if notes else "")

    def convert(self, block: str, name: str, text: str):
        span = f"from {self.low} to {self.high}" if self.low is not None else ""
        try:
            value = self.parse(text)
        except ValueError:
            kind = "an integer" if self.parse is int else f"a valid {self.parse.__name__}"
            raise UsageError(f"Block {block!r} parameter {name}={text!r} is not {kind}"
                             + (f"; give one {span}." if span else ".")) from None
        if self.choices is not None and value not in self.choices:
            raise UsageError(
                f"Block {block!r} parameter {name}={text!r} is not allowed; "
                f"use one of {', '.join(map(str, self.choices))}."
            )
        if self.low is not None and value < self.low:
            raise UsageError(f"Block {block!r} parameter {name}={value} is below its minimum of {self.low}; "
                             f"give {name} {span}.")
        if self.high is not None and value > self.high:
            raise UsageError(f"Block {block!r} parameter {name}={value} is above its limit of {self.high}; "
                             f"give {name} {span} (`lutforge blocks` shows every limit).")
        return value


def integer(default: int, help: str, low: int, high: int, **kwargs) -> Param:
    """An integer :class:`Param` in [low, high]."""
    return Param(default, help, parse=int, low=low, high=high, **kwargs)


# Stages past a datapath's own only delay its result, while each adds registers to generate and
# simulate: `lmul -p latency=100000` wrote 28 MB of Verilog in 84 s; 32 takes a third of a second.
LATENCY = integer(0, "pipeline stages (0: combinational)", 0, 32)


@dataclass(frozen=True)
class Block:
    """One registered block.

    ``vectors(params, rng, count)`` returns input arrays by port name; when the input space has at
    most ``2**20`` points, ``exhaustive(params)`` returns all of them instead (or None).
    ``golden(params, inputs)`` returns the expected output arrays by port name. ``check(params)``
    refuses combinations of parameters that are each in range but not together (raising
    :class:`UsageError`); single parameters are checked by their :class:`Param`.

    A block with ``streams=True`` is checked transaction by transaction instead of cycle by cycle:
    ``vectors`` returns the payloads of each input stream by stream name (``"i"`` for ports
    ``i__valid``/``i__ready``/``i__payload``) and ``golden`` the payloads each output stream must
    deliver, in order; the self-check drives them with random stalls on both sides. ``memories``
    names the memory read ports (``M`` for streams ``M__req``/``M__resp``) whose images ``vectors``
    also returns under those names; the self-check serves them (with the batch harness).
    """

    name: str
    summary: str
    build: Callable[..., Any]
    params: dict[str, Param]
    vectors: Callable[[dict, np.random.Generator, int], dict[str, np.ndarray]]
    golden: Callable[[dict, dict[str, np.ndarray]], dict[str, np.ndarray]]
    latency: Callable[[dict], int] = field(default=lambda params: 0)
    exhaustive: Callable[[dict], "dict[str, np.ndarray] | None"] = field(default=lambda params: None)
    lint_examples: tuple[dict, ...] = ({},)
    streams: bool = False
    memories: tuple[str, ...] = ()
    check: Callable[[dict], None] = field(default=lambda params: None)

    def resolve(self, given: "dict[str, str]", *, simulate: bool = True) -> dict:
        """Parameters from CLI text (``NAME=VALUE``), defaults filled in, each checked. With
        ``simulate=False`` (Verilog, proofs) a parameter that only shapes simulation vectors is refused."""
        unknown = set(given) - set(self.params)
        if unknown:
            raise UsageError(
                f"Block {self.name!r} has no parameter {', '.join(sorted(unknown))}; "
                f"its parameters are {', '.join(self.params) or 'none'}."
            )
        params = {name: p.default for name, p in self.params.items()}
        for name, text in given.items():
            params[name] = self.params[name].convert(self.name, name, text)
        for name in given:
            p = self.params[name]
            if p.sim_only and not simulate:
                raise UsageError(
                    f"Block {self.name!r} parameter {name} only sets the vectors `lutforge sim` draws; the "
                    f"design does not depend on it, so leave it out here."
                )
            if p.unused_when and all(params[k] == v for k, v in p.unused_when.items()):
                setting = ", ".join(f"{k}={v}" for k, v in p.unused_when.items())
                raise UsageError(
                    f"Block {self.name!r} parameter {name}={given[name]} has no effect with {setting}; "
                    f"leave {name} out, or change {', '.join(p.unused_when)}."
                )
        self.check(params)
        return params


_CATALOGUE: dict[str, Block] = {}


def register(block: Block) -> Block:
    if block.name in _CATALOGUE:
        raise ValueError(f"A block named {block.name!r} is already registered; pick another name.")
    _CATALOGUE[block.name] = block
    return block


def catalogue() -> dict[str, Block]:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return dict(sorted(_CATALOGUE.items()))


def get_block(name: str) -> Block:
    blocks = catalogue()
    if name not in blocks:
        raise UsageError(f"No block named {name!r}; the registered blocks are {', '.join(blocks)}.")
    return blocks[name]
