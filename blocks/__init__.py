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

from ..support.checks import check_int

__all__ = ["Param", "Block", "register", "catalogue", "get_block", "positive_integer"]


def positive_integer(text: str) -> int:
    """A :class:`Param` parser: a decimal integer of 1 or more."""
    return check_int("value", int(text))


@dataclass(frozen=True)
class Param:
    default: Any
    help: str
    choices: "tuple | None" = None
    parse: Callable[[str], Any] = str

    def convert(self, block: str, name: str, text: str):
        try:
            value = self.parse(text)
        except ValueError:
            raise ValueError(
                f"Block {block!r} parameter {name}={text!r} is not a valid {self.parse.__name__.replace('_', ' ')}."
            ) from None
        if self.choices is not None and value not in self.choices:
            raise ValueError(
                f"Block {block!r} parameter {name}={text!r} is not allowed; "
                f"use one of {', '.join(map(str, self.choices))}."
            )
        return value


@dataclass(frozen=True)
class Block:
    """One registered block.

    ``vectors(params, rng, count)`` returns input arrays by port name; when the input space has at
    most ``2**20`` points, ``exhaustive(params)`` returns all of them instead (or None).
    ``golden(params, inputs)`` returns the expected output arrays by port name.

    A block with ``streams=True`` is checked transaction by transaction instead of cycle by cycle:
    ``vectors`` returns the payloads of each input stream by stream name (``"i"`` for ports
    ``i__valid``/``i__ready``/``i__payload``) and ``golden`` the payloads each output stream must
    deliver, in order; the self-check drives them with random stalls on both sides.
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

    def resolve(self, given: "dict[str, str]") -> dict:
        """Parameters from CLI text (``NAME=VALUE``), defaults filled in, each checked."""
        unknown = set(given) - set(self.params)
        if unknown:
            raise ValueError(
                f"Block {self.name!r} has no parameter {', '.join(sorted(unknown))}; "
                f"its parameters are {', '.join(self.params) or 'none'}."
            )
        params = {name: p.default for name, p in self.params.items()}
        for name, text in given.items():
            params[name] = self.params[name].convert(self.name, name, text)
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
        raise ValueError(f"No block named {name!r}; the registered blocks are {', '.join(blocks)}.")
    return blocks[name]
