"""The job behind ``lutforge explore``: quality x speed x area of every point of a design space.

Each point (:mod:`lutforge.jobs.explore_space`) is a whole configuration. It is scored by three
independent tasks, each a pure function of content-hashed inputs whose result is cached, so that
points sharing a quantization share its quality and points sharing a core share its area:

* **quality**: perplexity of the hardware arithmetic (every linear lowered onto its core and run on
  the golden backend, as ``lutforge run``) on the configuration's ``evaluation`` windows of
  WikiText-2 test, with its calibration on valid. Few short windows make it cheap; the report
  says how many tokens it rests on.
* **area**: yosys + nextpnr of each core the configuration's layers run on (the co-quantized LUT
  core, the weight-only LUT core, the block-format core) with its lanes and sizes, for the
  target's FPGA family (``boards.synth``; ECP5 parts are placed on the 85F die). A target with no
  open toolchain (``v80``) has no area.
* **speed** (computed in place): cycles and bytes per token of the decoder linears from the
  performance model (``compiler.perf.method_token_cost``) at the target's clock, or at the core's
  Fmax where that is lower.

A point fits when its cores fit the board's LUTs, multipliers and block RAMs and its weights fit
the target's memory. ``sim_check`` points, drawn with the space's seed, also run one token of one
layer on the RTL in Verilator, and its cycles are compared with the performance model's.

Tasks fan out on an executor (``support.executor``): local processes or a Ray cluster, the same
results either way.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..compiler.config import MODELS, Config
from ..compiler.perf import MODEL_SHAPES, LayerShape, Target, method_layer_cost, method_token_cost, resolve_target
from ..support.cache import cache_root, content_key, read_cached, source_hash, write_cached
from .explore_space import Space, SpacePoint, grid_points, random_points

__all__ = ["PointResult", "ExploreResult", "explore", "CoreBuild", "core_builds"]

@dataclass(frozen=True)
class CoreBuild:
    """One core an accelerator needs, with the sizes it is built with."""
    kind: str  # "lut", "tmac" or "block"
    params: tuple[tuple[str, object], ...]

    @property
    def label(self) -> str:
        return f"{self.kind}(" + ", ".join(f"{k}={v}" for k, v in self.params) + ")"

    def component(self):
        p = dict(self.params)
        if self.kind == "block":
            from ..hdl.block_gemv import BlockGemvCore
            return BlockGemvCore(p["weight"], p["act"], lanes=p["lanes"], max_chunks=p["max_positions"])
        if self.kind == "tmac":
            from ..hdl.tmac_core import TmacCore
            return TmacCore(p["v"], p["c_w"], cb_bits=p["cb_bits"], lanes=p["lanes"], max_positions=p["max_positions"],
                            max_table_rows=p["max_positions"])
        from ..hdl.gemv_core import GemvCore
        return GemvCore(p["v"], p["c_a"], p["c_w"], table_bits=p["table_bits"], lanes=p["lanes"], chains=p["chains"],
                        metric=p["metric"], max_positions=p["max_positions"])


def _methods(config: Config):
    return [config.lut_methods.default, *config.lut_methods.layers.values()]


def core_builds(config: Config) -> list[CoreBuild]:
    """The distinct cores the layers of ``config`` run on, as the simulator builds them
    (``backends.verilator.SimBackend.core``): the core section's lanes, chains and sizes."""
    core, builds = config.core, []
    for m in _methods(config):
        if m.kind == "lut":
            params = dict(v=m.v, c_a=m.c_a, c_w=m.c_w, table_bits=m.table_bits, lanes=core.lanes, chains=core.chains,
                          metric=core.metric, max_positions=core.max_positions)
        elif m.kind == "tmac":
            params = dict(v=m.v, c_w=m.c_w, cb_bits=m.cb_bits, lanes=core.lanes, max_positions=core.max_positions)
        else:
            params = dict(weight=m.kind, act=m.act, lanes=core.lanes, max_positions=core.max_positions)
        build = CoreBuild("lut" if m.kind == "lut" else "tmac" if m.kind == "tmac" else "block", tuple(params.items()))
        if build not in builds:
            builds.append(build)
    return builds


@dataclass
class PointResult:
    """One scored point; ``perplexity`` on ``tokens`` tokens of WikiText-2 test."""
    id: str
    label: str
    config: dict
    target: str
    perplexity: float
    bits_per_weight: float
    tokens: int
    tokens_per_s: float
    cycles_per_token: int
    clock_mhz: float
    bound: list[str]
    lut4: "int | None"
    ff: "int | None"
    dsp: "int | None"
    ebr: "int | None"
    fmax_mhz: "float | None"
    image_mib: float
    fits: bool
    why_not: list[str]
    seconds: float
    cores: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class SimCheck:
    """The performance model against the simulated RTL on one token of one layer of a point."""
    point: str
    layer: str
    simulated: int
    model: int

    @property
    def error(self) -> float:
        return (self.model - self.simulated) / self.simulated


@dataclass
class ExploreResult:
    space: str
    sampler: str
    executor: str
    workers: int
    points: list[PointResult]
    pareto: list[str]        # perplexity vs tokens/s, fitting points
    pareto_area: list[str]   # perplexity vs LUTs, fitting points with an area
    sim_checks: list[SimCheck]
    retried: list[str]
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"space": self.space, "sampler": self.sampler, "executor": self.executor, "workers": self.workers,
                "points": [p.to_json() for p in self.points], "pareto": self.pareto,
                "pareto_area": self.pareto_area,
                "sim_checks": [{**dataclasses.asdict(c), "error": c.error} for c in self.sim_checks],
                "retried": self.retried, "seconds": self.seconds, "notes": self.notes}


# ---- tasks: pure functions of their inputs, each cached by content --------------------------------

@dataclass(frozen=True)
class QualityTask:
    methods: tuple          # (default, ((layer, method), ...)) of the configuration
    model: str
    calibration: tuple      # sorted items of the calibration section
    windows: int
    window: int
    threads: int = 2
    device: str = "cpu"  # where PyTorch runs calibration, fits and the model's own operations

    def method_config(self):
        from ..compiler.session import MethodConfig
        default, layers = self.methods
        return MethodConfig("explore", default, dict(layers), dict(self.calibration), self.model)

    def cache_path(self) -> Path:
        from ..compiler.calibration import calibration_version
        from ..compiler.lut_methods import fit_version
        from ..compiler.session import SCORING_SOURCES
        from ..compiler.torch_reference import device_key
        default, layers = self.methods
        fits = sorted({fit_version(m) for m in (default, *(m for _, m in layers))})
        key = content_key(repr(self.methods), self.model, self.calibration, self.windows, self.window, fits,
                          source_hash(*SCORING_SOURCES), calibration_version(), *device_key(self.device))
        return cache_root() / "explore" / "quality" / f"{key}.json"


def quality_of(config: Config, threads: int = 2, device: str = "cpu") -> QualityTask:
    methods = (config.lut_methods.default, tuple(sorted(config.lut_methods.layers.items())))
    return QualityTask(methods, config.model, tuple(sorted(dataclasses.asdict(config.calibration).items())),
                       config.evaluation.windows, config.evaluation.window, threads, device)


def run_quality(task: QualityTask) -> dict:
    """Perplexity of the hardware arithmetic (cached); ``seconds`` is the time it first took."""
    cached = read_cached(task.cache_path())
    if cached is not None:
        return json.loads(cached)
    from ..compiler.session import SessionSpec, worker_session
    from ..program.core import GemvCoreParams

    t0 = time.perf_counter()
    session = worker_session(SessionSpec(task.calibration, GemvCoreParams(), task.threads, task.device))
    r = session.perplexity(task.method_config(), task.windows, task.window)
    out = {"perplexity": r.perplexity, "bits_per_weight": r.bits_per_weight, "tokens": r.tokens,
           "seconds": time.perf_counter() - t0}
    write_cached(task.cache_path(), json.dumps(out).encode())
    return out


def run_area(task: tuple[CoreBuild, str]) -> dict:
    """yosys + nextpnr of one core for one FPGA family (``boards.synth`` caches it by content). A
    design yosys cannot synthesise is a result (``error``), not a failed task: running it again
    would fail the same way, and the points on that core are reported as not fitting, with why."""
    from ..boards.synth import SynthError, synthesize
    build, arch = task
    started = time.perf_counter()
    try:
        return synthesize(build.component(), arch).to_json()
    except SynthError as error:
        return {"error": str(error), "seconds": time.perf_counter() - started}


def run_sim_check(task) -> tuple[int, int]:
    """Simulated cycles of one token of the model's first key projection under the point's method and
    core, and the performance model's for it."""
    import numpy as np

    from ..backends import get_backend
    from ..compiler.session import SessionSpec, worker_session
    from ..program.artifact import Program
    from ..program.core import GemvCoreParams
    from ..program.host import HostDriver

    quality, core, memory_latency, layer = task
    session = worker_session(SessionSpec(quality.calibration, GemvCoreParams(), quality.threads, quality.device))
    m = quality.method_config().method(layer)
    params = GemvCoreParams(lanes=core.lanes, chains=core.chains, max_positions=core.max_positions,
                            metric=core.metric)
    low = session.lower(layer, m, params)
    backend = get_backend("sim", core=params, memory_latency=memory_latency)
    driver = HostDriver(Program(None, {}, {layer: low}), backend)
    x = session.calib.inputs[layer][:1].astype(np.float32)
    simulated = driver.run_int(layer, driver.quantize(layer, x)).cycles
    n, k = session.sizes[layer]
    clockless = Target("check", 1.0, float("inf"), core.lanes, memory_latency, None, "")
    model = method_layer_cost(m, LayerShape(layer, k, n), clockless, lanes=core.lanes, chains=core.chains).cycles
    return int(simulated), int(model)


# ---- scoring a point ------------------------------------------------------------------------------

def _arch(target: str) -> "str | None":
    from ..boards.platforms import BOARDS
    return BOARDS[target].family if target in BOARDS else None


def _short(error: str) -> str:
    """nextpnr's error line without the cell name, which yosys builds from every cell on its path."""
    return re.sub(r"cell '[^']*'", "a cell", error)


def _assemble(point: SpacePoint, quality: dict, areas: list[tuple[CoreBuild, dict]]) -> PointResult:
    from ..boards.platforms import BOARDS

    config = point.config
    target = resolve_target(config.target)
    model = MODELS[config.model]
    weights = MODEL_SHAPES[model][0] * sum(k * o for _, k, o in MODEL_SHAPES[model][1])
    image_mib = quality["bits_per_weight"] * weights / 8 / 2**20
    why_not, notes = [], []
    lut4 = ff = dsp = ebr = fmax = None
    failed = [(b, a) for b, a in areas if "error" in a]
    for build, a in failed:
        why_not.append(f"no area: {a['error']}")
    if areas and not failed:
        arch = _arch(target.name)
        lut4 = sum(a["luts"] + (2 * a["carries"] if arch == "ecp5" else 0) for _, a in areas)
        ff = sum(a["ffs"] for _, a in areas)
        dsp = sum(a["dsps"] for _, a in areas)
        ebr = sum(a["cells"].get("DP16KD" if arch == "ecp5" else "SB_RAM40_4K", 0) for _, a in areas)
        fmaxes = [a["fmax_mhz"] for _, a in areas]
        fmax = None if None in fmaxes else min(fmaxes)
        notes += [n for _, a in areas for n in a.get("notes", [])]
        board = BOARDS[target.name]
        for what, used, have in (("LUT4s", lut4, board.lut4), ("multipliers", dsp, board.dsp),
                                 ("block RAMs", ebr, board.ebr)):
            if used > have:
                why_not.append(f"{used} {what} > {have} on the {board.name}")
        if fmax is None:
            why_not.append("nextpnr did not place and route it (" + "; ".join(
                _short(a["pnr_error"] or "no error given") for _, a in areas if a["fmax_mhz"] is None) + ")")
    if target.memory_mib is not None and image_mib > target.memory_mib:
        why_not.append(f"{image_mib:.1f} MiB of weights > {target.memory_mib:g} MiB of memory")
    # The core runs at the target's clock, or at its Fmax where it closes lower.
    clock = min(target.clock_mhz, fmax) if fmax else target.clock_mhz
    if fmax and fmax < target.clock_mhz:
        notes.append(f"Fmax {fmax:.1f} MHz is below the target's {target.clock_mhz:g} MHz; priced at Fmax")
    timed = dataclasses.replace(target, clock_mhz=clock)
    cost = method_token_cost(config.lut_methods.method, model, timed, lanes=config.core.lanes,
                             chains=config.core.chains,
                             tables=None if config.core.tables == "auto" else config.core.tables)
    seconds = quality["seconds"] + sum(a["seconds"] for _, a in areas)
    return PointResult(point.id, point.label, point.data, target.name, quality["perplexity"],
                       quality["bits_per_weight"], quality["tokens"], cost.tokens_per_s, cost.cycles, clock,
                       list(cost.bound), lut4, ff, dsp, ebr, fmax, image_mib, not why_not, why_not, seconds,
                       [b.label for b, _ in areas], notes)


def _score(points: list[SpacePoint], executor, threads: int, known: dict, device: str) -> list[PointResult]:
    """Score ``points``, running each distinct quality and area task once (``known`` holds the
    results of earlier batches)."""
    qualities = {}
    areas = {}
    for p in points:
        qualities.setdefault(quality_of(p.config, threads, device), p.label)
        arch = _arch(p.config.target.preset)
        if arch:
            for build in core_builds(p.config):
                areas.setdefault((build, arch), f"{build.label} on {arch}")
    todo_q = [t for t in qualities if t not in known]
    for t, r in zip(todo_q, executor.map(run_quality, todo_q, labels=[f"quality of {qualities[t]}" for t in todo_q],
                                         desc="quality")):
        known[t] = r
    todo_a = [t for t in areas if t not in known]
    for t, r in zip(todo_a, executor.map(run_area, todo_a, labels=[areas[t] for t in todo_a], desc="area")):
        known[t] = r
    out = []
    for p in points:
        arch = _arch(p.config.target.preset)
        area = [(b, known[(b, arch)]) for b in core_builds(p.config)] if arch else []
        out.append(_assemble(p, known[quality_of(p.config, threads, device)], area))
    return out


def _tpe(space: Space, executor, threads: int, known: dict, device: str) -> list[tuple[SpacePoint, PointResult]]:
    """Optuna's TPE sampler (multi-objective: perplexity down, tokens/s up), asking as many points
    at a time as the executor has workers; a point that does not fit is a failed trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["minimize", "maximize"],
                                sampler=optuna.samplers.TPESampler(seed=space.seed))
    dists = {key: optuna.distributions.CategoricalDistribution(list(range(len(values))))
             for key, values in space.dimensions}
    results: dict[str, tuple[SpacePoint, PointResult]] = {}
    asks = 0
    # A sampler that keeps proposing scored points has converged on them: stop after this many asks.
    while len(results) < space.samples and asks < 20 * space.samples:
        batch = [study.ask(dists) for _ in range(min(executor.workers, space.samples - len(results)))]
        asks += len(batch)
        points = [space.point(tuple(t.params[key] for key, _ in space.dimensions)) for t in batch]
        for trial, point, r in zip(batch, points, _score(points, executor, threads, known, device)):
            results.setdefault(r.id, (point, r))
            if r.fits:
                study.tell(trial, [r.perplexity, r.tokens_per_s])
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return list(results.values())


def front(points: list[PointResult], speed) -> list[str]:
    """Ids of the fitting points no other fitting point beats on perplexity and ``speed`` (larger
    is better) at once."""
    rows = [p for p in points if p.fits and speed(p) is not None]

    def beaten(p):
        return any(q.perplexity <= p.perplexity and speed(q) >= speed(p)
                   and (q.perplexity < p.perplexity or speed(q) > speed(p)) for q in rows)
    return [p.id for p in sorted(rows, key=lambda p: p.perplexity) if not beaten(p)]


# The layer whose cycles a sim check compares: the model's first key projection (its smallest linear).
SIM_CHECK_LAYER = "layers.0.attn.k"


def explore(space: Space, executor, *, threads: int = 2, device: str = "cpu") -> ExploreResult:
    t0 = time.perf_counter()
    known: dict = {}
    if space.sampler == "tpe":
        scored = _tpe(space, executor, threads, known, device)
    else:
        points = grid_points(space) if space.sampler == "grid" else random_points(space)
        scored = list(zip(points, _score(points, executor, threads, known, device)))
    notes = []
    if len(scored) < (space.samples if space.sampler != "grid" else space.size):
        notes.append(f"The {space.sampler} sampler kept proposing points it had scored and stopped after "
                     f"{20 * space.samples} asks with {len(scored)} of the {space.samples} points asked for; "
                     f"sample a larger space or ask for fewer.")
    checks = []
    if space.sim_check:
        chosen = random.Random(space.seed).sample(scored, min(space.sim_check, len(scored)))
        tasks = [(quality_of(p.config, threads), p.config.core, resolve_target(p.config.target).memory_latency,
                  SIM_CHECK_LAYER) for p, _ in chosen]
        cycles = executor.map(run_sim_check, tasks, labels=[f"sim check of {r.label}" for _, r in chosen],
                              desc="sim check")
        checks = [SimCheck(r.id, SIM_CHECK_LAYER, sim, model) for (_, r), (sim, model) in zip(chosen, cycles)]
    results = [r for _, r in scored]
    return ExploreResult(space.name, space.sampler, executor.name, executor.workers, results,
                         front(results, lambda p: p.tokens_per_s),
                         front(results, lambda p: -p.lut4 if p.lut4 is not None else None),
                         checks, [f"{r.task} (attempt {r.attempt}): {r.error}" for r in executor.retried],
                         time.perf_counter() - t0, notes)
