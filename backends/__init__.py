"""Backends a Program runs on, by name: ``golden`` (the golden models), ``sim`` (the GEMV core RTL in
Verilator) and ``board`` (the SoC over a transport). Each implements
:class:`lutforge.program.backend.Backend`; :func:`get_backend` is the one registry, and it imports a
backend's module only when asked for, so choosing ``golden`` never imports amaranth.
"""

from __future__ import annotations

import importlib

from ..program.backend import Backend

__all__ = ["BACKENDS", "get_backend"]

# name -> (module relative to this package, class); options are the class's keyword arguments. The
# golden backend is the Program's own definition (the compiler scores with it), so it lives there.
BACKENDS = {
    "golden": ("..program.golden", "GoldenBackend"),
    "sim": (".verilator", "SimBackend"),
    "board": (".board", "BoardBackend"),
}


def get_backend(name: str, **options) -> Backend:
    """The backend ``name`` (one of :data:`BACKENDS`) built with ``options``."""
    if name not in BACKENDS:
        raise ValueError(f"Backend {name!r} does not exist; use one of {', '.join(map(repr, BACKENDS))}.")
    module, cls = BACKENDS[name]
    return getattr(importlib.import_module(module, __name__), cls)(**options)
