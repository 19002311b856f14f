"""The proofs lutforge runs, the fault-injection campaign over them, and ``lutforge prove``.

A :class:`Proof` names a gold (reference) and a gate (optimized) component and their latencies.
``proofs()`` lists every registered proof; ``fast`` ones run in ``make test``, the rest in
``make prove-all``. Blocks whose RTL is not in the tree yet are skipped, not faked.

``mutation_campaign`` injects faults into a proof's gate (:mod:`.formal_mutate`), proves each
mutant against the gold, runs the block's simulation test vectors on every mutant with Verilator
(one build), and replays every counterexample on that build against the golden model to confirm
it as a test vector.
"""

import argparse
import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .equivalence import FAIL, INCONCLUSIVE, PASS, Counterexample, ProofResult, prove_equivalent
from .pipeline import ENGINE as PIPELINE_LEMMAS
from ..support.progress import progress

__all__ = ["Proof", "MutationTarget", "MutationReport", "proofs", "mutation_targets", "run_proofs",
           "mutation_campaign", "mutation_totals", "replay", "register_cli", "prove_main"]

SMALL_FORMATS = ("e4m3", "e5m2", "e3m2", "e2m3", "e2m1")


@dataclass(frozen=True)
class Proof:
    name: str
    gold: Callable[[], Any]
    gate: Callable[[], Any]
    gold_latency: int = 0
    gate_latency: int = 0
    fast: bool = False
    engine: str = "auto"
    timeout: float = 300.0
    summary: str = ""
    assume: "str | None" = None
    cut: tuple[str, ...] = ()

    def run(self, *, cache: bool = True, solver: str = "yices", timeout: "float | None" = None,
            engine: "str | None" = None) -> ProofResult:
        return prove_equivalent(self.gold(), self.gate(), name=self.name, gold_latency=self.gold_latency,
                                gate_latency=self.gate_latency, engine=engine or self.engine, solver=solver,
                                timeout=timeout or self.timeout, assume=self.assume, cut=self.cut, cache=cache)


def _have(module: str) -> bool:
    return importlib.util.find_spec(f"lutforge.hdl.{module}") is not None


def _lmul_proofs():
    from ..golden.lmul import LMulPolicy
    from ..hdl.lmul import LMulMultiplier
    from ..golden.formats import get
    from .specs import LMulSpec
    policies = {"default": None, "wrap": "wrap", "inf": LMulPolicy(overflow="inf")}
    for fmt in SMALL_FORMATS + ("bf16", "fp16", "fp32"):
        for pname, pol in policies.items():
            if pname == "inf" and not get(fmt).has_nan:
                continue  # overflow to Inf/NaN needs a format that has one
            yield Proof(f"lmul-spec-{fmt}-{pname}", lambda f=fmt, p=pol: LMulSpec(f, p),
                        lambda f=fmt, p=pol: LMulMultiplier(f, p),
                        fast=(fmt in ("e4m3", "bf16") and pname == "default"),
                        summary=f"L-Mul multiplier == plain spec RTL, {fmt}, policy {pname}")
        for latency in (1, 2, 3):
            yield Proof(f"lmul-pipe-{fmt}-L{latency}", lambda f=fmt: LMulMultiplier(f),
                        lambda f=fmt, n=latency: LMulMultiplier(f, latency=n), 0, latency,
                        fast=(fmt == "e4m3" and latency == 2),
                        summary=f"pipelined L-Mul (latency {latency}) == combinational, {fmt}")


def _fp_pipeline_proofs():
    units = []
    if _have("fp_mul"):
        from ..hdl.fp_mul import FPMultiplier
        units.append(("fpmul", FPMultiplier, (1, 2, 3)))
    if _have("fp_add"):
        from ..hdl.fp_add import FPAdder
        units.append(("fpadd", FPAdder, (1, 2, 3)))
    if _have("fp_fma"):
        from ..hdl.fp_fma import FPFusedMultiplyAdd
        units.append(("fpfma", FPFusedMultiplyAdd, (1, 3, 4)))
    for unit, cls, latencies in units:
        for fmt in SMALL_FORMATS + ("bf16", "fp16"):
            # k-induction must relate each register to earlier inputs: on the wide multipliers and on
            # every fused multiply-add it runs past its limit, and on the wide adders it takes about
            # 100 s. Those plain pipelines are proven by the pipeline lemmas instead (balanced
            # structure, then registers transparent == combinational), in seconds.
            lemmas = unit == "fpfma" or (unit in ("fpmul", "fpadd") and fmt not in SMALL_FORMATS)
            for latency in latencies:
                yield Proof(f"{unit}-pipe-{fmt}-L{latency}", lambda c=cls, f=fmt: c(f),
                            lambda c=cls, f=fmt, n=latency: c(f, latency=n), 0, latency,
                            fast=(fmt == "e4m3" and latency == 2 and unit == "fpmul"),
                            engine=PIPELINE_LEMMAS if lemmas else "auto",
                            timeout=120.0 if fmt in SMALL_FORMATS else 600.0,
                            summary=f"pipelined {unit} (latency {latency}) == combinational, {fmt}"
                                    + (", by pipeline lemmas" if lemmas else ""))


def _fp_reference_proofs():
    if not (_have("fp_reference") and _have("fp_mul") and _have("fp_add")):
        return
    from ..hdl.fp_add import FPAdder
    from ..hdl.fp_mul import FPMultiplier
    from .reference_fp import ReferenceAdder, ReferenceMultiplier
    for unit, ref, cls in (("fpmul", ReferenceMultiplier, FPMultiplier), ("fpadd", ReferenceAdder, FPAdder)):
        for fmt in SMALL_FORMATS + ("bf16", "fp16"):
            for subnormals in ("keep", "flush"):
                tag = "" if subnormals == "keep" else "-flush"
                # Wide multipliers: no monolithic proof finishes in minutes, so the shared significand
                # multiplier is cut out (proven identically fed, its product a free input).
                wide_mul = unit == "fpmul" and fmt not in SMALL_FORMATS
                yield Proof(f"{unit}-ref-{fmt}{tag}", lambda r=ref, f=fmt, s=subnormals: r(f, subnormals=s),
                            lambda c=cls, f=fmt, s=subnormals: c(f, subnormals=s),
                            fast=(fmt == "e4m3" and not tag) or (wide_mul and fmt == "bf16" and not tag),
                            timeout=120.0 if fmt in SMALL_FORMATS else 600.0,
                            cut=("sig_mul",) if wide_mul else (),
                            summary=f"{unit} == plain reference RTL, {fmt}, subnormals {subnormals}")


CONVERSIONS = (("bf16", "e4m3"), ("bf16", "e5m2"), ("bf16", "e3m2"), ("bf16", "e2m3"), ("bf16", "e2m1"),
               ("fp16", "e4m3"), ("fp16", "e5m2"), ("fp32", "e4m3"), ("e4m3", "bf16"), ("e5m2", "fp16"),
               ("e2m1", "e4m3"), ("e3m2", "bf16"))


def _convert_proofs():
    if not (_have("fp_convert") and _have("fp_reference")):
        return
    from ..hdl.fp_convert import FPConvert
    from .specs import ConvertSpec
    # No input assumption: the golden model refuses NaN into a format without NaN, but the block
    # and the spec still agree on those inputs, which the proof shows.
    for src, dst in CONVERSIONS:
        yield Proof(f"fpcvt-ref-{src}-{dst}", lambda s=src, d=dst: ConvertSpec(s, d), lambda s=src, d=dst: FPConvert(s, d),
                    fast=(src, dst) == ("bf16", "e4m3"),
                    summary=f"FP converter == plain reference RTL, {src} -> {dst}")
        yield Proof(f"fpcvt-pipe-{src}-{dst}-L2", lambda s=src, d=dst: FPConvert(s, d),
                    lambda s=src, d=dst: FPConvert(s, d, latency=2), 0, 2,
                    summary=f"pipelined FP converter (latency 2) == combinational, {src} -> {dst}")


# (v, C_a, chains, metric, element bits): small configurations, every chain count from one chain to
# one PE per chain. L2 squares the differences, and no proof over 8-bit squares finishes in ten
# minutes, so the L2 proofs take 3- and 4-bit elements: the same chains, tree and tie rule.
CENTROID_CONFIGS = ((2, 4, 2, "linf", 8), (2, 4, 1, "linf", 8), (2, 4, 4, "linf", 8), (2, 8, 4, "linf", 8),
                    (4, 4, 2, "linf", 8), (2, 2, 2, "l2", 4), (2, 4, 2, "l2", 4), (2, 4, 1, "l2", 3),
                    (2, 4, 4, "l2", 3), (4, 4, 2, "l2", 3))


def _centroid_proofs():
    if not _have("centroid_search"):
        return
    from ..hdl.centroid_search import CentroidSearch
    from .specs import CentroidSearchSpec
    for v, c_a, chains, metric, bits in CENTROID_CONFIGS:
        # The unit's documented latency, chain_length + ceil(log2(chains)), without building one here.
        latency = -(-c_a // chains) + (chains - 1).bit_length()
        width = "" if bits == 8 else f"-e{bits}"
        # The spec never stalls: the proof covers the pipeline with the output always taken.
        yield Proof(f"centroid-v{v}-c{c_a}-k{chains}-{metric}{width}",
                    lambda v=v, c=c_a, mt=metric, e=bits: CentroidSearchSpec(v, c, metric=mt, element_bits=e),
                    lambda v=v, c=c_a, k=chains, mt=metric, e=bits: CentroidSearch(v, c, metric=mt, chains=k,
                                                                                 element_bits=e),
                    0, latency, assume="o__ready",
                    timeout=600.0, summary=f"centroid search unit == plain argmin, v={v}, C_a={c_a}, "
                                           f"{chains} chains, {metric}, {bits}-bit elements, output always ready")


# (C_w, table bits, lanes, positions, tiles, stall cycles): whole GEMVs small enough to prove in
# minutes; the second tile shows the accumulators restart after `last`.
GEMV_CONFIGS = ((4, 4, 2, 2, 1, 1), (4, 4, 2, 2, 2, 1), (4, 4, 2, 3, 2, 1))


def _gemv_proofs():
    if not _have("lut_gemv"):
        return
    from .gemv import GemvProof, Holds, completion_deadline, harness_signature
    for c_w, bits, lanes, positions, tiles, stalls in GEMV_CONFIGS:
        shape = dict(c_w=c_w, table_bits=bits, lanes=lanes, positions=positions, tiles=tiles)
        # The harness's verdict is final at its deadline, so that is its latency (see formal_gemv).
        deadline = completion_deadline(tiles=tiles, positions=positions, stalls=stalls)
        yield Proof(f"gemv-c{c_w}-b{bits}-l{lanes}-p{positions}-t{tiles}-s{stalls}",
                    lambda s=shape: Holds(harness_signature(**s)), lambda s=shape, k=stalls: GemvProof(**s, stalls=k),
                    0, deadline,
                    fast=(positions, tiles) == (2, 1), timeout=600.0,
                    summary=f"LUT GEMV engine == plain MAC reference over a whole GEMV, C_w={c_w}, {bits}-bit "
                            f"entries, {lanes} lanes, {positions} positions, {tiles} tiles, any lane masks, "
                            f"up to {stalls} stall cycles")


def proofs() -> dict[str, Proof]:
    """Every registered proof by name."""
    found = {}
    for source in (_lmul_proofs, _fp_pipeline_proofs, _fp_reference_proofs, _convert_proofs, _centroid_proofs,
                   _gemv_proofs):
        for proof in source():
            found[proof.name] = proof
    return found


def run_proofs(selected: "list[Proof]", *, cache: bool = True, solver: str = "yices",
               timeout: "float | None" = None) -> list[ProofResult]:
    results = []
    bar = progress(selected, desc="proofs", unit="proof")
    for proof in bar:
        bar.set_postfix_str(proof.name)
        results.append(proof.run(cache=cache, solver=solver, timeout=timeout))
    return results


# --- replaying counterexamples -------------------------------------------------------------------

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
                              latency=gate_latency)
    want = {k: int(np.asarray(v, dtype=np.uint64)[cex.index]) for k, v in expected(vectors).items()}
    return want, {k: int(outputs[k][cex.index]) for k in want}


# --- fault injection -----------------------------------------------------------------------------

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


@dataclass
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


@dataclass
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
                                  latency=proof.gate_latency)
        return all(np.array_equal(outputs[k].astype(np.uint64), np.asarray(v, dtype=np.uint64))
                   for k, v in expected.items())

    clean = tests_pass(0)
    outcomes = []
    for mutant in progress(bundle.mutants, desc=target.name, unit="mutant"):
        result = prove(mutant.index)
        outcome = MutantOutcome(mutant.index, mutant.kind, mutant.target, result.status, result.seconds,
                                not tests_pass(mutant.index))
        if result.counterexample is not None:
            cex = result.counterexample
            outcome.counterexample = {"inputs": cex.inputs[cex.index], "expected": cex.gold, "actual": cex.gate}
            want, got = replay(cex, sim, target.expected, gate_latency=proof.gate_latency,
                               gate_inputs=fixed(mutant.index))
            # The golden model agrees with the proof's gold side, Verilator with its gate side.
            outcome.replayed = (want == {k: cex.gold.get(k) for k in want}
                                and got == {k: cex.gate.get(k) for k in want} and want != got)
        outcomes.append(outcome)
    return MutationReport(target.name, outcomes, unmutated.status, clean, time.perf_counter() - start,
                          target.exhaustive, bundle.screened)


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


# --- command line --------------------------------------------------------------------------------

def _specs():
    """Plain reference RTL for catalogue blocks, keyed by block name."""
    from ..golden.lmul import LMulPolicy
    from .specs import LMulSpec

    def lmul(params):
        pol = LMulPolicy.wrap() if params["policy"] == "wrap" else LMulPolicy(overflow=params["overflow"])
        return LMulSpec(params["format"], pol)
    return {"lmul": lmul}


def _block_proof(name: str, given: dict[str, str]) -> Proof:
    from ..blocks import get_block
    block = get_block(name)
    params = block.resolve(given)
    latency = block.latency(params)
    if latency and "latency" in block.params:
        comb = dict(params, latency=0)
        return Proof(f"{name}-pipe", lambda: block.build(comb), lambda: block.build(params), 0, latency)
    specs = _specs()
    if name not in specs:
        raise ValueError(f"Block {name!r} has no reference to prove it against: give it a latency above 0 "
                         f"to prove the pipelined form, or use one of the blocks with a spec: {', '.join(specs)}.")
    return Proof(f"{name}-spec", lambda: specs[name](params), lambda: block.build(params))


def _params(pairs) -> dict[str, str]:
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"lutforge prove: parameters are NAME=VALUE, not {pair!r}.")
        params[key] = value
    return params


def cmd_prove(args) -> int:
    registered = proofs()
    if args.list:
        for name, proof in registered.items():
            print(f"{name:28s} {'fast' if proof.fast else 'slow'}  {proof.summary}")
        return 0
    if args.all or args.fast:
        selected = [p for p in registered.values() if p.fast or not args.fast]
    elif args.block is None:
        raise SystemExit("lutforge prove: name a block or proof, or pass --all, --fast or --list.")
    elif args.block in registered:
        selected = [registered[args.block]]
    else:
        selected = [_block_proof(args.block, _params(args.param))]
    results = run_proofs(selected, cache=not args.no_cache, solver=args.solver, timeout=args.timeout)
    report = {"proofs": {r.name: r.to_json() for r in results}}
    for r in results:
        print(r)
    if args.mutants:
        targets = mutation_targets()
        per_block = {}
        for proof in selected:
            if proof.name in targets:
                per_block[proof.name] = mutation_campaign(targets[proof.name], count=args.mutants,
                                                          cache=not args.no_cache).summary()
                print(f"{proof.name}: mutants {json.dumps(per_block[proof.name])}")
        report["mutants"] = mutation_totals(per_block)
        print(f"mutants: {report['mutants']['killed_by_proofs']} of {report['mutants']['total']} injected "
              f"killed by the proofs, {report['mutants']['killed_by_tests']} by the tests, "
              f"{report['mutants']['equivalent']} equivalent")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    failed = [r for r in results if r.status != PASS]
    return 1 if failed else 0


def register_cli(subparsers) -> argparse.ArgumentParser:
    """Add ``prove`` to an argparse sub-command set; the parsed args run with ``args.func(args)``."""
    p = subparsers.add_parser("prove", help="prove a block equivalent to its reference or combinational form")
    p.add_argument("block", nargs="?", help="catalogue block (lmul ...) or registered proof name (see --list)")
    p.add_argument("param", nargs="*", metavar="NAME=VALUE", help="block parameters")
    p.add_argument("--list", action="store_true", help="list the registered proofs")
    p.add_argument("--all", action="store_true", help="run every registered proof (make prove-all)")
    p.add_argument("--fast", action="store_true", help="run the fast proofs (make test)")
    p.add_argument("--solver", default="yices", choices=("yices", "z3", "boolector"), help="SMT solver for sby")
    p.add_argument("--timeout", type=float, default=None, help="seconds per proof before INCONCLUSIVE")
    p.add_argument("--mutants", type=int, default=0, metavar="N", help="also run N injected faults per proof")
    p.add_argument("--no-cache", action="store_true", help="ignore cached proof results")
    p.add_argument("--json", metavar="PATH", help="write results as JSON")
    p.set_defaults(func=cmd_prove)
    return p


def prove_main(argv: "list[str] | None" = None) -> int:
    """``lutforge prove ...`` as a stand-alone entry point; exit status 0 only if every proof passed."""
    parser = argparse.ArgumentParser(prog="lutforge")
    sub = parser.add_subparsers(dest="command", required=True)
    register_cli(sub)
    args = parser.parse_args(["prove", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(prove_main())
