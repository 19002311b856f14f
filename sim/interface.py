"""What every harness offers: a design built once, then driven by vectors or by streams.

In the manner of cocotb's ``Runner``: one abstract class, one implementation per simulator, one
result type (:class:`HarnessRun`), and the registry in :mod:`lutforge.sim.harness`. An option a
harness cannot honour is refused with the names of the harnesses that can, never ignored.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..support.errors import UsageError

__all__ = ["Harness", "HarnessRun", "SimulationTimeout", "unsupported", "as_array"]


class SimulationTimeout(RuntimeError):
    """A stream run hit its cycle limit before every output stream delivered its payloads."""


@dataclass(frozen=True)
class HarnessRun:
    """One run of a harness.

    ``outputs`` holds, per output port (vectors) or output stream (streams), its values in order:
    uint64 arrays, object arrays of Python ints for values above 64 bits. The cycle counts, the
    payloads each input stream gave (``consumed``) and the output ports' values at the end
    (``final``) are ``None`` where the harness does not measure them.
    """

    harness: str
    outputs: dict[str, np.ndarray]
    build_seconds: float
    cached: bool
    cycles: "int | None" = None
    first_input_cycle: "int | None" = None
    last_output_cycle: "int | None" = None
    consumed: "dict[str, int] | None" = None
    final: "dict[str, int] | None" = None
    waves_path: "Path | None" = None


def unsupported(option: str, harness: str, able: "tuple[str, ...]") -> UsageError:
    """The error for an option ``harness`` cannot honour, naming the harnesses that can."""
    names = " or ".join(filter(None, (", ".join(able[:-1]), able[-1])))
    return UsageError(f"The {harness} harness cannot honour {option}; use the {names} "
                      f"harness{'es' if len(able) > 1 else ''} for it.")


def as_array(values: list[int]) -> np.ndarray:
    """Payloads as uint64, or as Python ints when one needs more than 64 bits."""
    return np.array(values, dtype=object if any(v >> 64 for v in values) else np.uint64)


class Harness(ABC):
    """A component built for one simulator; every run returns a :class:`HarnessRun`.

    Subclasses set :attr:`name` (the registry key), :attr:`default_vectors` (random vectors that
    take about ten seconds, for self-checks) and, once built, :attr:`build_seconds`,
    :attr:`cached` and :attr:`waves_path`.
    """

    name: ClassVar[str]
    default_vectors: ClassVar[int]
    # Waveform formats the constructor's ``waves=`` takes; none where it takes no ``waves``.
    waves_formats: ClassVar[tuple[str, ...]] = ()
    # Whether run_streams answers memory request streams (``memories=``); only the batch harness does.
    serves_memories: ClassVar[bool] = False

    build_seconds: float = 0.0
    cached: bool = False
    waves_path: "Path | None" = None

    @abstractmethod
    def run_vectors(self, inputs: dict[str, np.ndarray], latency: int = 0) -> HarnessRun:
        """Apply one input vector per cycle (per evaluation without a clock); ``outputs`` holds
        every output port, aligned to its input vector, read ``latency`` cycles later."""

    @abstractmethod
    def run_streams(self, inputs: dict[str, np.ndarray], expect: dict[str, int], *,
                    constants: "dict[str, int] | None" = None, seed: int = 0,
                    input_stall: float = 0.0, output_stall: float = 0.0,
                    max_cycles: int = 10_000_000, memories: "dict[str, np.ndarray] | None" = None,
                    memory_latency: int = 1) -> HarnessRun:
        """Send ``inputs[S]`` into each input stream S and take ``expect[T]`` payloads from each
        output stream T, with seeded valid/ready stalls of the given probabilities; ``constants``
        holds the non-stream inputs. A memory ``memories={"M": image}`` answers the addresses of
        output stream ``M__req`` on input stream ``M__resp`` after ``memory_latency`` cycles."""

    def _run(self, outputs: dict[str, np.ndarray], **measured) -> HarnessRun:
        return HarnessRun(self.name, outputs, self.build_seconds, self.cached,
                          waves_path=self.waves_path, **measured)

    def _vector_count(self, top: str, inputs: dict, names: "list[str]", latency: int, *,
                      clocked: "bool | None") -> int:
        """The number of vectors in ``inputs``, after checking it names exactly the ports ``names``
        and that ``latency`` suits the design (``clocked`` is ``None`` where that is not known)."""
        missing, unknown = set(names) - set(inputs), set(inputs) - set(names)
        if missing or unknown:
            raise UsageError(
                f"Design {top!r} takes inputs {', '.join(sorted(names))}; "
                f"missing {', '.join(sorted(missing)) or 'none'}, unknown {', '.join(sorted(unknown)) or 'none'}."
            )
        lengths = {len(np.asarray(inputs[name])) for name in names}
        if len(lengths) > 1:
            raise UsageError(f"Every input needs the same number of vectors; got lengths {sorted(lengths)}.")
        if not isinstance(latency, int) or latency < 0:
            raise UsageError(f"A latency of {latency!r} cycles is not allowed; use 0 or more.")
        if latency and clocked is False:
            raise UsageError(f"Design {top!r} has no clock, so its latency must be 0, not {latency}.")
        return lengths.pop() if lengths else 0

    def _check_streams(self, top: str, inputs: dict, expect: dict, constants: dict,
                       memories: "dict | None", stalls: "tuple[float, float]", *,
                       sources: "list[str]", sinks: "list[str]", constant_ports: "list[str]") -> None:
        """Refuse stream, constant and memory names the design lacks, a sink without a count, and
        stall probabilities outside [0, 1)."""
        if memories and not self.serves_memories:
            raise unsupported("memories=", self.name, ("batch",))
        for what, given, allowed in (("input streams", inputs, sources), ("output streams", expect, sinks),
                                     ("constant inputs", constants, constant_ports)):
            if set(given) - set(allowed):
                raise UsageError(
                    f"Design {top!r} has no {what} named "
                    f"{', '.join(sorted(set(given) - set(allowed)))}; it has {', '.join(allowed) or 'none'}."
                )
        for name in sinks:
            if name not in expect:
                raise UsageError(f"Say how many payloads output stream {name!r} must deliver (expect={{...}}).")
        for p in stalls:
            if not 0.0 <= p < 1.0:
                raise UsageError(f"A stall probability of {p} is outside [0, 1); use e.g. 0.3.")
