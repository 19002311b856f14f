"""Argument checks shared by every layer: one message format for a value out of range."""

import numbers

from .errors import UsageError

__all__ = ["check_int", "check_choice"]


def check_int(name: str, value, low: int = 1, high: "int | None" = None, *, fix: str = "",
              error: type = UsageError) -> int:
    """``value`` as an int when it is an integer in [low, high]; otherwise ``error`` (a
    :class:`UsageError` subclass where a layer names its own, e.g. a configuration error) naming
    ``name``, the value and the range (``fix``, when given, is appended as the remedy)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (
            high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise error(f"{name}={value!r} is not an integer {span}" + (f"; {fix}." if fix else "."))
    return int(value)


def check_choice(name: str, value, choices, *, error: type = UsageError) -> object:
    """``value`` when it is one of ``choices``; otherwise ``error`` listing them."""
    if value not in tuple(choices):
        raise error(f"{name}={value!r} is not one of {', '.join(map(repr, choices))}.")
    return value
