"""The whole token in the performance model: a compiled Program's linears on their cores, the rest
of every decoder block on the units or the host, and the LM head, for decode and for prefill.

Where each piece runs is where the configuration puts it:

* **Decoder linears** run on their cores (:func:`lutforge.compiler.perf.program_layer_costs`, each
  run ``max(cycles / clock, bytes / bandwidth)``), with the Program's lanes. The cores are GEMV
  engines: a prompt of T tokens is T passes over the weights.
* **The decoder units** (``blocks: hardware``): RMSNorm with its gains, Qwen3's QK-norm, RoPE, the
  KV-cache writer, attention over the cache, the residual adds, SiLU and the gate product, at
  the cycles of :func:`lutforge.compiler.perf_units.decoder_units_breakdown` (equal to simulation:
  tests/compiler/test_perf_units.py, test_decoder_blocks.py, test_checkpoints.py), one unit busy at
  a time as :class:`~lutforge.program.decoder.DecoderRunner` drives them. Attention also reads the
  KV cache: every query head reads its key/value head's cache (``2 · n · head_dim`` elements of
  the attention format), so it takes ``max(cycles / clock, bytes / bandwidth)``.
  With ``blocks: host`` these operations run on the host: their time is the bytes they touch
  over the host's memory bandwidth (:class:`Host`, an assumption every report states).
* **The LM head** stays on the host (:func:`lutforge.compiler.model.precheck`: the compiler does not
  map it): its fp32 weights over the host's bandwidth. What it would cost on the core, with the
  configuration's default method, is reported beside it (``lm_head_on_core``), since it is the
  first thing to move.
* **The embedding** is a host gather of one row per token.

Host-accelerator transfers, the host's own control and the sampling of the next token are not
modelled.
"""

from __future__ import annotations

from dataclasses import dataclass

from .perf import LayerShape, Target, method_layer_cost, program_layer_costs, program_table_choice
from .perf_units import decoder_units_breakdown

__all__ = ["Host", "UnitTime", "PassEstimate", "pass_estimate", "generation", "lm_head_on_core", "table_engine",
           "ARTIFACT_LATENCY_S",
           "H200_LINEARS_MS"]

# LUT-LLM's artifact, reference latency on the V80 at 250 MHz, Qwen3-1.7B: (prompt, new tokens) -> s.
ARTIFACT_LATENCY_S = {(128, 256): 1.4506, (32, 256): 1.3243}
# All linear layers of Qwen3-1.7B for one decoded token on an H200 (bf16, batch 1, CUDA graph).
H200_LINEARS_MS = 1.82


@dataclass(frozen=True)
class Host:
    """The host's side of the model: the memory bandwidth its operations are bound by."""
    bandwidth_gbs: float = 100.0
    note: str = "a server CPU socket's DRAM bandwidth (assumed, not measured)"


@dataclass(frozen=True)
class UnitTime:
    unit: str          # linears, lm_head, rmsnorm, qk_norm, rope, kv_cache, attention, residual, silu_mul, embedding
    where: str         # core, units or host
    cycles: int | None  # None on the host
    bytes: int
    seconds: float
    bound: str         # compute, memory or host


@dataclass(frozen=True)
class PassEstimate:
    """One pass of ``tokens`` new tokens after ``context`` cached ones (decode: one token)."""
    tokens: int
    context: int
    units: tuple[UnitTime, ...]

    @property
    def seconds(self) -> float:
        return sum(u.seconds for u in self.units)

    @property
    def bound(self) -> str:
        """The unit that takes the most time, and what bounds it there."""
        top = max(self.units, key=lambda u: u.seconds)
        return f"{top.unit} ({top.where}, {top.bound})"

    def unit(self, name: str) -> UnitTime:
        return next(u for u in self.units if u.unit == name)


def _elements_bytes(fmt: str) -> int:
    from ..golden.formats import get
    return -(-get(fmt).width // 8)


def _host_unit_bytes(model, t: int, start: int) -> dict[str, int]:
    """The bytes the host's fp32 operations touch for t tokens after start cached ones."""
    d, hd, n, f = model.d_model, model.head_dim, model.n_layers, 4
    keys = sum(start + j + 1 for j in range(t))
    return {"rmsnorm": (2 * n + 1) * 2 * t * d * f,
            "qk_norm": n * 2 * t * (model.n_heads + model.n_kv_heads) * hd * f if model.qk_norm else 0,
            "rope": n * 2 * t * (model.n_heads + model.n_kv_heads) * hd * f,
            "kv_cache": n * 2 * t * model.n_kv_heads * hd * f,
            "attention": n * model.n_heads * 2 * keys * hd * f,
            "residual": n * 2 * 3 * t * d * f,
            "silu_mul": n * 3 * t * model.d_ff * f}


def table_engine(program, cfg, target: Target) -> str:
    """The LUT core's table engine: the configuration's ``core.tables``, or with ``auto`` the one
    on which the Program's layers take less time on ``target``."""
    if cfg.core.tables != "auto":
        return cfg.core.tables
    return program_table_choice(program, target, lanes=cfg.core.lanes, chains=cfg.core.chains).tables


def pass_estimate(program, model, cfg, target: Target, tokens: int, context: int, host: Host = Host(),
                  costs: list | None = None) -> PassEstimate:
    """The time of ``tokens`` new tokens after ``context`` cached ones of ``model`` (a
    :class:`~lutforge.compiler.model.LlamaConfig`) compiled into ``program`` with ``cfg`` on
    ``target`` (module docstring); ``costs``: the Program's layer costs, when already computed."""
    clock = target.clock_mhz * 1e6
    if costs is None:
        costs, _ = program_layer_costs(program, target, lanes=cfg.core.lanes, chains=cfg.core.chains,
                                       tables=table_engine(program, cfg, target))
    cycles = sum(c.cycles for c in costs)
    units = [UnitTime("linears", "core", tokens * cycles, tokens * sum(c.bytes for c in costs),
                      tokens * sum(c.seconds for c in costs),
                      "memory" if sum(c.seconds for c in costs) > cycles / clock else "compute")]
    if cfg.blocks == "hardware":
        spec = cfg.decoder
        breakdown = decoder_units_breakdown(model, tokens, context, target.memory_latency, spec.attention_lanes)
        keys = sum(context + j + 1 for j in range(tokens))
        kv_bytes = model.n_layers * model.n_heads * 2 * keys * model.head_dim * _elements_bytes(spec.attention_format)
        for name, c in breakdown.items():
            nbytes = kv_bytes if name == "attention" else 0
            t_mem = nbytes / (target.bandwidth_gbs * 1e9)
            units.append(UnitTime(name, "units", c, nbytes, max(c / clock, t_mem),
                                  "memory" if t_mem > c / clock else "compute"))
    else:
        for name, nbytes in _host_unit_bytes(model, tokens, context).items():
            units.append(UnitTime(name, "host", None, nbytes, nbytes / (host.bandwidth_gbs * 1e9), "host"))
    head = model.vocab_size * model.d_model * 4
    units.append(UnitTime("lm_head", "host", None, head, head / (host.bandwidth_gbs * 1e9), "host"))
    units.append(UnitTime("embedding", "host", None, tokens * model.d_model * 4,
                          tokens * model.d_model * 4 / (host.bandwidth_gbs * 1e9), "host"))
    return PassEstimate(tokens, context, tuple(units))


def lm_head_on_core(model, cfg, target: Target) -> UnitTime:
    """The LM head as one more linear on the core of the configuration's default method (what the
    estimate would gain by mapping it; the compiler leaves it on the host)."""
    from .layer_quant import default_method

    c = method_layer_cost(default_method(cfg), LayerShape("lm_head", model.d_model, model.vocab_size), target,
                          lanes=cfg.core.lanes, chains=cfg.core.chains)
    return UnitTime("lm_head", "core", c.cycles, c.bytes, c.seconds, c.bound)


def generation(program, model, cfg, target: Target, prompt: int, new: int,
               host: Host = Host()) -> tuple[PassEstimate, list[PassEstimate]]:
    """The prefill of a ``prompt``-token prompt and the decode passes of ``new`` tokens: the last
    prompt position's logits give the first new token, so ``new - 1`` decode passes follow it."""
    costs, _ = program_layer_costs(program, target, lanes=cfg.core.lanes, chains=cfg.core.chains,
                                   tables=table_engine(program, cfg, target))
    prefill = pass_estimate(program, model, cfg, target, prompt, 0, host, costs)
    return prefill, [pass_estimate(program, model, cfg, target, 1, prompt + i, host, costs) for i in range(new - 1)]
