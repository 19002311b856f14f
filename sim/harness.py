"""The harness registry, in the manner of cocotb's ``get_runner``: one name per way of running RTL.

    sim = get_harness("batch", component)
    run = sim.run_vectors({"a": a, "b": b}, latency=2)   # a HarnessRun
    run.outputs["r"]

``amaranth`` is Amaranth's Python simulator (no build, slowest); ``batch`` is a Verilator build driven
from arrays with no Python per cycle (fastest); ``cocotb-verilator`` and ``cocotb-icarus`` drive the
design from cocotb one cycle at a time (waveforms). The interface is :class:`Harness`, every run
returns a :class:`HarnessRun`.
"""

import inspect

from ..support.errors import UsageError
from .amaranth_sim import AmaranthSim
from .batch import BatchSim
from .cocotb_run import CocotbIcarus, CocotbVerilator
from .interface import Harness, HarnessRun, unsupported

__all__ = ["HARNESSES", "check_harness", "get_harness", "Harness", "HarnessRun"]

HARNESSES: dict[str, type[Harness]] = {cls.name: cls for cls in (AmaranthSim, BatchSim, CocotbVerilator, CocotbIcarus)}


def _takes(cls: type[Harness], option: str) -> bool:
    return option in inspect.signature(cls.__init__).parameters


def check_harness(name: str, **options) -> dict:
    """The options harness ``name`` would be built with, or a :class:`UsageError`: for an unknown name,
    or an option the harness cannot honour (naming the harnesses that can). An option set to
    ``None`` counts as not given. Callers check before they build the component, which Amaranth
    wants elaborated once made."""
    if name not in HARNESSES:
        raise UsageError(f"Harness {name!r} is unknown; use one of {', '.join(HARNESSES)}.")
    cls = HARNESSES[name]
    options = {key: value for key, value in options.items() if value is not None}
    for key, value in options.items():
        able = tuple(other for other, c in HARNESSES.items() if _takes(c, key))
        if not able:
            raise UsageError(f"No harness takes the option {key}={value!r}; the harnesses are "
                             f"{', '.join(HARNESSES)}.")
        if key == "waves":
            able = tuple(other for other, c in HARNESSES.items() if value in c.waves_formats)
            if value not in cls.waves_formats:
                if not able:
                    formats = sorted({f for c in HARNESSES.values() for f in c.waves_formats})
                    raise UsageError(f"Waveform format {value!r} is not supported; use one of "
                                     f"{', '.join(map(repr, formats))}.")
                raise unsupported(f"waves={value!r}", name, able)
        elif name not in able:
            raise unsupported(f"{key}=", name, able)
    return options


def get_harness(name: str, component, **options) -> Harness:
    """Build ``component`` for harness ``name`` with ``options`` (see :func:`check_harness`)."""
    return HARNESSES[name](component, **check_harness(name, **options))
