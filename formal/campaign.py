"""The fault-injection campaign: how many injected faults the proofs kill, and how many the tests kill.

``mutation_campaign`` injects faults into a proof's gate (:mod:`.mutate`), proves each mutant
against the gold, runs the block's simulation test vectors on every mutant with Verilator (one
build), and replays every counterexample on that build against the golden model to confirm it as
a test vector (:func:`replay`). ``mutation_targets`` names the registered proofs (:mod:`.suite`)
the campaign runs on.
"""

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..support.progress import progress
from .engines import prove_equivalent
from .results import FAIL, INCONCLUSIVE, PASS, Counterexample
from .suite import Proof, proofs

__all__ = ["MutationTarget", "MutantOutcome", "MutationReport", "mutation_targets", "mutation_campaign",
           "mutation_summaries", "mutation_totals", "replay"]


def _design(side):
    """A component, or a (Verilog text, top) pair, as a batch-harness Design."""
    from ..sim.rtl import Design, _top_ports
    if isinstance(side, tuple):
        text, top = side
        return Design(top, text, _top_ports(text, top))
    return side


def replay(cex: Counterexample, gate, expected: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]], *,
           gate_latency: int = 0, gate_inputs: "dict[str, int] | None" = None) -> tuple[dict[str, int], dict[str, int]]:
    """A counterexample as a test vector: the golden model's outputs and the gate's on Verilator, at ``cex.index``.

    ``gate`` is a component, a ``(verilog, top)`` pair or a built ``BatchSim``; ``expected`` maps
    input arrays to the golden model's output arrays; ``gate_inputs`` drives extra gate ports (the
    mutant selector) with a constant. Only the outputs the golden model gives are compared.
    """
    from ..sim.batch import BatchSim
    vectors = {k: v for k, v in cex.vectors().items() if k not in (gate_inputs or {})}
    n = len(next(iter(vectors.values())))
    sim = gate if isinstance(gate, BatchSim) else BatchSim(_design(gate))
    outputs = sim.run_vectors({**vectors, **{k: np.full(n, v, dtype=np.uint64) for k, v in (gate_inputs or {}).items()}},
                              latency=gate_latency).outputs
    want = {k: int(np.asarray(v, dtype=np.uint64)[cex.index]) for k, v in expected(vectors).items()}
    return want, {k: int(outputs[k][cex.index]) for k in want}


@dataclass(frozen=True)
class MutationTarget:
    """A proof whose gate is mutated, with the simulation test the block's test suite runs."""

    name: str
    proof: Proof
    vectors: Callable[[], dict[str, np.ndarray]]
    expected: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    exhaustive: bool = False


def _lmul_target(fmt: str, latency: int) -> MutationTarget:
    from ..blocks import get_block
    block = get_block("lmul")
    params = block.resolve({"format": fmt, "latency": str(latency)})
    everything = block.exhaustive(params)
    name = f"lmul-spec-{fmt}-default" if latency == 0 else f"lmul-pipe-{fmt}-L{latency}"
    return MutationTarget(
        name, proofs()[name],
        vectors=lambda: everything if everything is not None else block.vectors(params, np.random.default_rng(0), 4096),
        expected=lambda inputs: block.golden(params, inputs), exhaustive=everything is not None)


def _fp_target(name: str, unit: str, fmt: str) -> MutationTarget:
    from ..golden import fp
    golden = {"fpmul": fp.mul, "fpadd": fp.add}[unit]
    return MutationTarget(name, proofs()[name], vectors=lambda: _all_pairs(fmt),
                          expected=lambda inputs: {"r": golden(inputs["a"], inputs["b"], fmt)}, exhaustive=True)


def _all_pairs(fmt: str) -> dict[str, np.ndarray]:
    from ..golden.formats import get
    every = np.arange(1 << get(fmt).width, dtype=np.uint64)
    a, b = np.meshgrid(every, every)
    return {"a": a.ravel(), "b": b.ravel()}


def _convert_target(src: str, dst: str) -> MutationTarget:
    from ..golden.convert import convert
    from ..golden.formats import get
    every = np.arange(1 << get(src).width, dtype=np.uint64)
    return MutationTarget(f"fpcvt-ref-{src}-{dst}", proofs()[f"fpcvt-ref-{src}-{dst}"], vectors=lambda: {"a": every},
                          expected=lambda inputs: {"r": convert(inputs["a"], src, dst)}, exhaustive=True)


def mutation_targets() -> dict[str, MutationTarget]:
    """The blocks of the fault-injection campaign: each proof's gate mutated, its tests rerun."""
    targets = [_lmul_target("e4m3", 0), _lmul_target("e2m1", 0), _lmul_target("e4m3", 2)]
    registered = proofs()
    for unit in ("fpmul", "fpadd"):
        for name, fmt in ((f"{unit}-ref-e4m3", "e4m3"), (f"{unit}-ref-e2m1", "e2m1"), (f"{unit}-pipe-e4m3-L2", "e4m3")):
            if name in registered:
                targets.append(_fp_target(name, unit, fmt))
    # A converter from bf16: every one of the 65536 inputs is a test vector. Converters into formats
    # without NaN are left out: their proofs find counterexamples on NaN inputs, where the golden
    # model that replays them refuses to convert.
    if "fpcvt-ref-bf16-e4m3" in registered:
        targets.append(_convert_target("bf16", "e4m3"))
    return {t.name: t for t in targets}


@dataclass(frozen=True)
class MutantOutcome:
    index: int
    kind: str
    target: str
    proof: str
    proof_seconds: float
    killed_by_tests: bool
    counterexample: "dict | None" = None
    replayed: "bool | None" = None

    @property
    def killed_by_proof(self) -> bool:
        return self.proof == FAIL


@dataclass(frozen=True)
class MutationReport:
    name: str
    outcomes: list[MutantOutcome]
    unmutated_proof: str
    unmutated_tests_pass: bool
    seconds: float
    exhaustive_tests: bool
    screened: dict[str, int]

    @property
    def total(self) -> int:
        return len(self.outcomes)

    @property
    def killed_by_proofs(self) -> int:
        return sum(o.killed_by_proof for o in self.outcomes)

    @property
    def killed_by_tests(self) -> int:
        return sum(o.killed_by_tests for o in self.outcomes)

    def equivalent_mutants(self) -> list[MutantOutcome]:
        """Mutants the proof passes and exhaustive simulation cannot tell apart: no fault at all.

        Only counted after the fact; they stay in ``total``, so the score over injected mutants
        charges them as misses.
        """
        if not self.exhaustive_tests:
            return []
        return [o for o in self.outcomes if o.proof == PASS and not o.killed_by_tests]

    @property
    def equivalent(self) -> int:
        return len(self.equivalent_mutants())

    def summary(self) -> dict:
        live = self.total - self.equivalent
        return {
            "total": self.total, "killed_by_proofs": self.killed_by_proofs,
            "killed_by_tests": self.killed_by_tests, "equivalent": self.equivalent,
            "inconclusive": sum(o.proof == INCONCLUSIVE for o in self.outcomes),
            "proof_score_injected": self.killed_by_proofs / self.total if self.total else 1.0,
            "test_score_injected": self.killed_by_tests / self.total if self.total else 1.0,
            "proof_score": self.killed_by_proofs / live if live else 1.0,
            "test_score": self.killed_by_tests / live if live else 1.0,
            "counterexamples_replayed": sum(bool(o.replayed) for o in self.outcomes),
            "unmutated_proof": self.unmutated_proof, "unmutated_tests_pass": self.unmutated_tests_pass,
            "screened": dict(self.screened),
            "equivalent_mutants": [{"index": o.index, "kind": o.kind, "target": o.target}
                                   for o in self.equivalent_mutants()],
            "seconds": round(self.seconds, 1),
            # Which mutants the proof kills and which the simulation tests kill, one by one.
            "mutants": [{"index": o.index, "kind": o.kind, "target": o.target, "proof": o.proof,
                         "proof_seconds": round(o.proof_seconds, 2), "killed_by_tests": o.killed_by_tests,
                         "replayed": o.replayed} for o in self.outcomes],
        }


def mutation_campaign(target: MutationTarget, *, count: int = 40, seed: int = 0,
                      cache: bool = True) -> MutationReport:
    """Prove and simulate every mutant of ``target``'s gate; replay every counterexample as a test vector."""
    from ..sim.batch import BatchSim
    from .mutate import mutants
    start = time.perf_counter()
    proof = target.proof
    gold = proof.gold()
    bundle = mutants(proof.gate(), count=count, seed=seed)
    fixed = lambda index: {"mutsel": index}

    def prove(index):
        return prove_equivalent(gold, bundle.netlist, name=f"{target.name}#{index}", gold_latency=proof.gold_latency,
                                gate_latency=proof.gate_latency, fixed=fixed(index), timeout=proof.timeout,
                                assume=proof.assume, cache=cache)

    unmutated = prove(0)
    # One Verilator build of every mutant; the test is the block's own vectors against its golden.
    gate_design = _design((bundle.verilog(), "gate"))
    sim = BatchSim(gate_design)
    vectors = target.vectors()
    expected = target.expected(vectors)
    n = len(next(iter(vectors.values())))

    def tests_pass(index):
        outputs = sim.run_vectors({**vectors, "mutsel": np.full(n, index, dtype=np.uint64)},
                                  latency=proof.gate_latency).outputs
        return all(np.array_equal(outputs[k].astype(np.uint64), np.asarray(v, dtype=np.uint64))
                   for k, v in expected.items())

    clean = tests_pass(0)
    outcomes = []
    for mutant in progress(bundle.mutants, desc=target.name, unit="mutant"):
        result = prove(mutant.index)
        cex, counterexample, replayed = result.counterexample, None, None
        if cex is not None:
            counterexample = {"inputs": cex.inputs[cex.index], "expected": cex.gold, "actual": cex.gate}
            want, got = replay(cex, sim, target.expected, gate_latency=proof.gate_latency,
                               gate_inputs=fixed(mutant.index))
            # The golden model agrees with the proof's gold side, Verilator with its gate side.
            replayed = (want == {k: cex.gold.get(k) for k in want}
                        and got == {k: cex.gate.get(k) for k in want} and want != got)
        outcome = MutantOutcome(mutant.index, mutant.kind, mutant.target, result.status, result.seconds,
                                not tests_pass(mutant.index), counterexample, replayed)
        outcomes.append(outcome)
    return MutationReport(target.name, outcomes, unmutated.status, clean, time.perf_counter() - start,
                          target.exhaustive, bundle.screened)


def mutation_summaries(names, *, count: int, cache: bool = True, executor=None) -> "list[tuple[str, dict]]":
    """``(name, MutationReport.summary())`` for each of ``names`` that is a mutation target, one
    task per target on ``executor`` (default: one after another here)."""
    from ..support.executor import LocalExecutor
    chosen = [name for name in names if name in mutation_targets()]
    summaries = (executor or LocalExecutor()).map(_summary, [(name, count, cache) for name in chosen], labels=chosen,
                                                  desc="mutation campaigns")
    return list(zip(chosen, summaries))


def _summary(task) -> dict:
    """One target's campaign summary (a task: workers build the target by its name)."""
    name, count, cache = task
    return mutation_campaign(mutation_targets()[name], count=count, cache=cache).summary()


def mutation_totals(per_block: "dict[str, dict]") -> dict:
    """Totals over every block's ``MutationReport.summary()``, with the blocks under ``per_block``.

    Scores are given over every injected mutant (an equivalent one counts as a miss) and over the
    non-equivalent ones; each equivalent mutant is listed with its block, kind and fault site.
    """
    totals = {key: sum(s[key] for s in per_block.values())
              for key in ("total", "killed_by_proofs", "killed_by_tests", "equivalent", "inconclusive",
                          "counterexamples_replayed")}
    total, live = totals["total"], totals["total"] - totals["equivalent"]
    totals["proof_score_injected"] = totals["killed_by_proofs"] / total if total else 1.0
    totals["test_score_injected"] = totals["killed_by_tests"] / total if total else 1.0
    totals["proof_score"] = totals["killed_by_proofs"] / live if live else 1.0
    totals["test_score"] = totals["killed_by_tests"] / live if live else 1.0
    totals["screened"] = {}
    for summary in per_block.values():
        for reason, n in summary["screened"].items():
            totals["screened"][reason] = totals["screened"].get(reason, 0) + n
    totals["equivalent_mutants"] = [dict(block=name, **m) for name, s in per_block.items()
                                    for m in s["equivalent_mutants"]]
    totals["per_block"] = per_block
    return totals
