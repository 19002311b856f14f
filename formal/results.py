"""What a proof returns: ``PASS``, ``FAIL`` with a :class:`Counterexample`, or ``INCONCLUSIVE``.

An unfinished proof (time limit, solver error, an assumption no input meets) is INCONCLUSIVE,
never a pass. :class:`ProveReport` is what ``lutforge prove --json`` writes.
"""

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["PASS", "FAIL", "INCONCLUSIVE", "Counterexample", "ProofResult", "ProveReport"]

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"


@dataclass(frozen=True)
class Counterexample:
    """Inputs that make the two sides differ, one dict per cycle, and both sides' outputs.

    ``index`` is the vector (cycle) whose outputs differ: replaying ``vectors()`` with each side's
    latency through :meth:`lutforge.sim.batch.BatchSim.run_vectors` reproduces ``gold`` and
    ``gate`` at that index.
    """

    inputs: list[dict[str, int]]
    index: int
    gold: dict[str, int]
    gate: dict[str, int]

    def vectors(self) -> dict[str, np.ndarray]:
        names = self.inputs[0].keys()
        return {name: np.array([step[name] for step in self.inputs], dtype=np.uint64) for name in names}

    def describe(self) -> str:
        ins = ", ".join(f"{k}={v:#x}" for k, v in self.inputs[self.index].items())
        diffs = "; ".join(f"{k}: expected {self.gold[k]:#x} ({self.gold[k]}), got {self.gate[k]:#x} ({self.gate[k]})"
                          for k in self.gold if self.gold[k] != self.gate[k])
        return f"vector {self.index} ({ins}): {diffs}"


@dataclass(frozen=True)
class ProofResult:
    name: str
    status: str
    engine: str
    seconds: float
    detail: str = ""
    counterexample: "Counterexample | None" = None
    cached: bool = False
    workdir: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ProofResult":
        data = dict(data)
        if data.get("counterexample"):
            data["counterexample"] = Counterexample(**data["counterexample"])
        return cls(**data)

    def __str__(self):
        text = f"{self.name}: {self.status} ({self.engine}, {self.seconds:.1f} s{', cached' if self.cached else ''})"
        if self.counterexample:
            text += f" — {self.counterexample.describe()}"
        elif self.detail and self.status != PASS:
            text += f" — {self.detail}"
        return text


@dataclass(frozen=True)
class ProveReport:
    """The proofs one ``lutforge prove`` ran, and with ``--mutants`` the fault-injection totals
    (:func:`lutforge.formal.campaign.mutation_totals`)."""

    proofs: tuple[ProofResult, ...]
    mutants: "dict | None" = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.proofs)

    def to_json(self) -> dict:
        data = {"proofs": {r.name: r.to_json() for r in self.proofs}}
        if self.mutants is not None:
            data["mutants"] = self.mutants
        return data
