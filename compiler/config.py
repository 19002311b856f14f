"""The accelerator + quantization configuration: one typed schema, loaded from YAML and validated.

A configuration file has five sections; every key is optional and defaults to the value below
(``configs/default.yaml`` spells them all out)::

    quantization:   # how each linear layer is co-quantized (lutforge.golden.lut_layer.co_quantize)
      v: 2                  # sub-vector length, 1..8
      c_a: 64               # activation centroids per position, 2..256
      c_w: 16               # weight centroids per (position, row block), 2..256
      group_rows: 512       # G, rows per weight-codebook block; a multiple of core.lanes
      table_bits: 8         # 4 or 8
      scheme: asymmetric    # asymmetric | artifact
      granularity: block    # layer | head | block  (table-scale cell)
      head_rows: null       # rows per head, with granularity 'head'
      rounding: rne         # rne | floor | trunc
      positions_per_run: 0  # positions per core run (K tile; one table scale per tile and row
                            # block); 0 = all positions in one run when they fit core.max_positions
      iterations: 4         # k-means Lloyd steps
      seed: 0
    core:           # the cores' build parameters (lutforge.hdl.gemv_core.GemvCore; the block core
                    # lutforge.hdl.block_gemv.BlockGemvCore takes lanes, and max_positions as its
                    # activation chunks per run)
      lanes: 16, chains: 4, max_positions: 1024, metric: linf, memory_latency: 4
      tables: auto          # the LUT core's table engine: rows (multiplexers), resident (block
                            # RAM), or auto: the faster on the target (compiler.perf.choose_tables)
    calibration:    # WikiText-2 valid capture (lutforge.compiler.calibration)
      windows: 1, window: 256, rows: 256
    evaluation:     # perplexity slice of WikiText-2 test
      windows: 4, window: 256
    target:         # performance-model target: a preset name or clock_mhz/bandwidth_gbs/lanes
      preset: sim
    model: smollm2  # the model the configuration is for
    lut_methods:    # instead of quantization: a method per decoder linear (lutforge.compiler.lut_methods)
      default: {kind: lut, v: 2, c_a: 256, c_w: 16, fit: gptq, hadamard: 64}
      layers:       # overrides by layer name
        layers.0.mlp.down: {kind: mxint4, fit: gptq, act: mxint8}
    finetune:       # with lut_methods only: train the block-format layers before quantizing them
      steps: 200, lr: 1.0e-5, codebook_lr: 1.0e-4, window: 256, holdout: 4, eval_every: 25, seed: 0
    blocks: host    # host: only the linears on the accelerator; hardware: whole decoder blocks
                    # (lutforge.program.decoder), with the units' formats in the decoder section
    decoder:        # with blocks: hardware only (lutforge.program.decoder.DecoderSpec)
      norm_format: fp32, attention_format: bf16, attention_acc: fp32, attention_mul: exact,
      attention_offset: null, attention_lanes: 1, mlp_format: bf16, max_keys: 256, seed_bits: 7

Every layer is compiled for a core (``lutforge compile``/``demo``/``run``/``generate``, one path:
:mod:`lutforge.compiler.steps`): with ``lut_methods`` each layer by its method (``lut`` on the LUT
core; ``mxint8``, ``mxint4``, ``mxfp4``, ``nvfp4`` on the block-format core with activations in the
method's ``act`` format), else every layer co-quantized with the ``quantization`` section on the
LUT core. With a ``finetune`` section (:mod:`lutforge.compiler.finetune`) the compile flow's
``finetune`` step trains the weights of the block-format layers first, and those are quantized.
A file with both sections, or a method no core runs (``bf16``, ``fp32``, float or
``artifact`` tables), is refused on load, naming the layer and the fix.

Errors name the key (``quantization.c_a``), the bad value and the allowed range.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..golden.gemv_core import TABLE_ENGINES
from ..program.core import GemvCoreParams
from ..program.decoder import DecoderSpec
from ..support.checks import check_choice, check_int
from ..support.errors import UsageError
from ..support.paths import REPO_ROOT
from ..support.cache import content_key
from ..support.yamlfile import load_yaml

__all__ = ["ConfigError", "QuantConfig", "CoreConfig", "CalibrationConfig", "EvaluationConfig",
           "TargetConfig", "MethodsConfig", "FinetuneConfig", "DecoderConfig", "Config", "BLOCKS", "load_config", "parse_config", "default_config_path",
           "estimate_config_path", "EVAL_WINDOWS", "EVAL_WINDOW", "model_linears", "check_layers", "check_lowerable",
           "check_config_for"]


class ConfigError(UsageError):
    """A configuration value is missing, of the wrong type or out of range."""


def default_config_path() -> Path:
    return REPO_ROOT / "configs" / "default.yaml"


def estimate_config_path() -> Path:
    """The configuration ``estimate`` takes by default: the V80 preset's (block-format linears, 1024
    lanes, whole blocks on the units)."""
    return REPO_ROOT / "configs" / "v80.yaml"


def shipped_config_path() -> Path:
    """The best shipped quality configuration: what ``run``, ``generate`` and the demo use by default
    and whose fine-tuning hyper-parameters ``quantize --finetune`` writes."""
    return REPO_ROOT / "configs" / "smollm2-lut.yaml"


def _float(key: str, value, low: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value < float("inf"):
        raise ConfigError(f"{key} = {value!r} is not a finite number above {low}; use a positive number.")
    return float(value)


# The shared checks (one message format), raising this module's error so a caller can tell a bad
# configuration from a bad argument.
_int = functools.partial(check_int, error=ConfigError)
_choice = functools.partial(check_choice, error=ConfigError)


@dataclass(frozen=True)
class QuantConfig:
    v: int = GemvCoreParams.v
    c_a: int = GemvCoreParams.c_a
    c_w: int = GemvCoreParams.c_w
    group_rows: int = 512
    table_bits: int = GemvCoreParams.table_bits
    scheme: str = "asymmetric"
    granularity: str = "block"
    head_rows: int | None = None
    rounding: str = "rne"
    positions_per_run: int = 0
    iterations: int = 4
    seed: int = 0

    def validate(self) -> None:
        s = "quantization."
        _int(s + "v", self.v, 1, 8)
        _int(s + "c_a", self.c_a, 2, 256)
        _int(s + "c_w", self.c_w, 2, 256)
        _int(s + "group_rows", self.group_rows, 1)
        _choice(s + "table_bits", self.table_bits, (4, 8))
        _choice(s + "scheme", self.scheme, ("asymmetric", "artifact"))
        _choice(s + "granularity", self.granularity, ("layer", "head", "block"))
        _choice(s + "rounding", self.rounding, ("rne", "floor", "trunc"))
        _int(s + "positions_per_run", self.positions_per_run, 0, 65535)
        _int(s + "iterations", self.iterations, 0, 1000)
        _int(s + "seed", self.seed, 0)
        if self.granularity == "head":
            _int(s + "head_rows", self.head_rows, 1)
            if self.head_rows % self.group_rows:
                raise ConfigError(
                    f"{s}head_rows = {self.head_rows} is not a multiple of {s}group_rows = "
                    f"{self.group_rows}; a head must be a whole number of row blocks.")
        elif self.head_rows is not None:
            raise ConfigError(f"{s}head_rows = {self.head_rows!r} only applies to granularity 'head'; "
                              f"remove it or set {s}granularity: head.")
        if self.scheme == "artifact" and (self.granularity != "layer" or self.rounding != "rne"):
            raise ConfigError(
                f"{s}scheme = 'artifact' needs granularity 'layer' and rounding 'rne'; got "
                f"granularity {self.granularity!r}, rounding {self.rounding!r}.")
        if self.granularity != "block" and self.positions_per_run:
            raise ConfigError(
                f"{s}positions_per_run = {self.positions_per_run} needs granularity 'block' (one "
                f"table scale per K tile); granularity {self.granularity!r} runs all positions at once, "
                f"so set it to 0.")

    @property
    def bits_per_weight(self) -> float:
        """Weight-index bits per weight element (the stored weight itself)."""
        return max(1, (self.c_w - 1).bit_length()) / self.v


@dataclass(frozen=True)
class CoreConfig:
    lanes: int = GemvCoreParams.lanes
    chains: int = GemvCoreParams.chains
    max_positions: int = GemvCoreParams.max_positions
    metric: str = GemvCoreParams.metric
    memory_latency: int = 4
    tables: str = "auto"

    def validate(self) -> None:
        s = "core."
        _int(s + "lanes", self.lanes, 1, 1024)
        _int(s + "chains", self.chains, 1, 256)
        _int(s + "max_positions", self.max_positions, 1, 65535)
        _choice(s + "metric", self.metric, ("linf", "l2"))
        _int(s + "memory_latency", self.memory_latency, 1, 1000)
        _choice(s + "tables", self.tables, ("auto",) + TABLE_ENGINES)


@dataclass(frozen=True)
class CalibrationConfig:
    windows: int = 1
    window: int = 256
    rows: int = 256

    def validate(self) -> None:
        s = "calibration."
        _int(s + "windows", self.windows, 1, 1000)
        _int(s + "window", self.window, 2, 8192)
        _int(s + "rows", self.rows, 1, self.windows * self.window)


# The perplexity slice's limits (also those of ``lutforge run --windows/--window``): a window
# predicts at least one token, and 10000 windows of 8192 tokens already exceed WikiText-2 test.
EVAL_WINDOWS = (1, 10000)
EVAL_WINDOW = (2, 8192)


@dataclass(frozen=True)
class EvaluationConfig:
    windows: int = 4
    window: int = 256

    def validate(self) -> None:
        _int("evaluation.windows", self.windows, *EVAL_WINDOWS)
        _int("evaluation.window", self.window, *EVAL_WINDOW)


@dataclass(frozen=True)
class TargetConfig:
    """A performance-model target: ``preset`` names one of :data:`lutforge.compiler.perf.TARGETS`;
    the explicit keys override it."""
    preset: str = "sim"
    clock_mhz: float | None = None
    bandwidth_gbs: float | None = None
    lanes: int | None = None

    def validate(self) -> None:
        from .perf import TARGETS
        _choice("target.preset", self.preset, tuple(TARGETS))
        if self.clock_mhz is not None:
            _float("target.clock_mhz", self.clock_mhz, 0)
        if self.bandwidth_gbs is not None:
            _float("target.bandwidth_gbs", self.bandwidth_gbs, 0)
        if self.lanes is not None:
            _int("target.lanes", self.lanes, 1, 65536)


@dataclass(frozen=True)
class FinetuneConfig:
    """The ``finetune`` section (:mod:`lutforge.compiler.finetune`): Adam steps of one window of
    WikiText-2 valid each, the last ``holdout`` windows held out and scored every ``eval_every``
    steps (the best scoring weights are kept); the loss is the KL on the logits plus ``block_mse``
    times the decoder blocks' mean relative output error."""
    steps: int = 200
    lr: float = 1e-5            # block-format layers' weights
    codebook_lr: float = 1e-4   # LUT layers' codebooks
    window: int = 256
    holdout: int = 4
    eval_every: int = 25
    seed: int = 0
    block_mse: float = 0.0      # weight of the per-block output error beside the KL on the logits

    def validate(self) -> None:
        s = "finetune."
        _int(s + "steps", self.steps, 1, 1_000_000)
        _float(s + "lr", self.lr, 0)
        if self.lr > 1:
            raise ConfigError(f"finetune.lr = {self.lr!r} is above 1, which no Adam fine-tuning survives; "
                              f"use a learning rate such as 1e-5.")
        _float(s + "codebook_lr", self.codebook_lr, 0)
        _int(s + "window", self.window, 2, 2048)
        _int(s + "holdout", self.holdout, 1, 64)
        _int(s + "eval_every", self.eval_every, 1, 1_000_000)  # the last step is always scored too
        _int(s + "seed", self.seed, 0, 2**31 - 1)
        mse = self.block_mse
        if isinstance(mse, bool) or not isinstance(mse, (int, float)) or not 0 <= mse < float("inf"):
            raise ConfigError(f"finetune.block_mse = {mse!r} is not a finite number of 0 or more; use 0 (the KL "
                              f"on the logits alone) or a weight such as 0.1.")


@dataclass(frozen=True)
class DecoderConfig(DecoderSpec):
    """The ``decoder`` section: the decoder block's unit formats (:class:`DecoderSpec`)."""

    def validate(self) -> None:
        try:
            self.check()
        except ValueError as error:
            raise ConfigError(str(error)) from None


# Where the decoder blocks' non-linear operations run (the linears are on the cores either way).
BLOCKS = ("host", "hardware")


@dataclass(frozen=True)
class MethodsConfig:
    """The ``lut_methods`` section: a :class:`~lutforge.compiler.lut_methods.LayerMethod` for every
    decoder linear, ``default`` unless ``layers`` names the layer."""
    default: Any
    layers: dict = field(default_factory=dict)

    def method(self, layer: str):
        return self.layers.get(layer, self.default)


# The models a configuration can be for, with their name in the performance model's shape table
# (which also gives their decoder linears without loading the model).
MODELS = {"smollm2": "SmolLM2-135M"}


def model_linears(model="smollm2") -> dict[str, tuple[int, int]]:
    """The decoder linears of ``model`` (the layers a configuration or ``--layer`` may name), with
    their (out_features, in_features), known without loading the model: ``model`` is a key of
    :data:`MODELS` or a loaded checkpoint's :class:`~lutforge.compiler.model.LlamaConfig`."""
    if not isinstance(model, str):
        from .model import linear_shapes
        return linear_shapes(model)
    from .perf import MODEL_SHAPES
    blocks, shapes = MODEL_SHAPES[MODELS[model]]
    return {f"layers.{i}.{name}": (n, k) for i in range(blocks) for name, k, n in shapes}


def _model_name(model) -> str:
    return MODELS[model] if isinstance(model, str) else f"the {model.arch} checkpoint ({model.n_layers} blocks)"


def check_layers(names, model="smollm2", what: str = "Layer", error: type = UsageError) -> None:
    """Refuse a name that is not a decoder linear of ``model`` (as for :func:`model_linears`;
    naming the valid ones), one given twice, or no names at all (a run over no layers checks
    nothing)."""
    if not names:
        raise error(f"No layers are named; name at least one linear layer of {_model_name(model)}, or none "
                    f"to take the default ones.")
    valid = model_linears(model)
    seen = set()
    for name in names:
        if name not in valid:
            first, last = next(iter(valid)), list(valid)[-1]
            raise error(f"{what} {name!r} is not a linear layer of {_model_name(model)}; its linear layers are "
                        f"{first!r} ... {last!r} (layers.N.attn.q, .attn.k, .attn.v, .attn.o, .mlp.gate, "
                        f".mlp.up or .mlp.down).")
        if name in seen:
            raise error(f"{what} {name!r} is given twice; give each layer once.")
        seen.add(name)


def check_config_for(cfg: "Config", model) -> None:
    """Refuse a configuration whose per-layer methods name layers ``model`` (a checkpoint's
    :class:`~lutforge.compiler.model.LlamaConfig`) does not have: they would be silently unused."""
    if cfg.lut_methods is not None and cfg.lut_methods.layers:
        check_layers(cfg.lut_methods.layers, model, what=f"lut_methods.layers in {cfg.name}: layer",
                     error=ConfigError)


@dataclass(frozen=True)
class Config:
    quantization: QuantConfig = field(default_factory=QuantConfig)
    core: CoreConfig = field(default_factory=CoreConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    name: str = "default"
    model: str = "smollm2"
    lut_methods: MethodsConfig | None = None
    finetune: FinetuneConfig | None = None
    blocks: str = "host"
    decoder: DecoderConfig | None = None  # set exactly when blocks is "hardware"

    def validate(self) -> "Config":
        for section in (self.quantization, self.core, self.calibration, self.evaluation, self.target):
            section.validate()
        _choice("model", self.model, tuple(MODELS))
        q, c = self.quantization, self.core
        if self.lut_methods is not None:
            return self  # the quantization section is unused: each layer has its own method
        if q.group_rows % c.lanes:
            raise ConfigError(
                f"quantization.group_rows = {q.group_rows} is not a multiple of core.lanes = {c.lanes}; "
                f"the core walks a row block in whole tiles of lanes rows.")
        if q.positions_per_run > c.max_positions:
            raise ConfigError(
                f"quantization.positions_per_run = {q.positions_per_run} exceeds core.max_positions = "
                f"{c.max_positions}; lower it or build a larger core.")
        return self

    @property
    def core_params(self) -> GemvCoreParams:
        """The GEMV core this configuration compiles for: the quantization's sizes, the core's build,
        the table engine of :attr:`table_choice`."""
        return dataclasses.replace(self._core_sizes(), tables=self.table_choice.tables)

    def _core_sizes(self) -> GemvCoreParams:
        q, c = self.quantization, self.core
        return GemvCoreParams(v=q.v, c_a=q.c_a, c_w=q.c_w, table_bits=q.table_bits, lanes=c.lanes,
                              metric=c.metric, chains=c.chains, max_positions=c.max_positions)

    @functools.cached_property
    def table_choice(self):
        """The LUT core's table engine (:class:`lutforge.compiler.perf.TableChoice`): ``core.tables``,
        or with ``auto`` the engine on which one decoder block of the configuration's model, quantized
        as the quantization section says, takes less time on the target."""
        from .perf import MODEL_SHAPES, LayerShape, TableChoice, choose_tables, layer_cost, resolve_target

        target, q = resolve_target(self.target), self.quantization
        _, block = MODEL_SHAPES[MODELS[self.model]]

        def seconds(engine: str) -> float:
            core = dataclasses.replace(self._core_sizes(), tables=engine)
            return sum(layer_cost(LayerShape(name, k, n), core, memory_latency=target.memory_latency,
                                  clock_mhz=target.clock_mhz, bandwidth_gbs=target.bandwidth_gbs,
                                  positions_per_run=q.positions_per_run, port=target.port,
                                  group_rows=q.group_rows).seconds
                       for name, k, n in block)

        choice = choose_tables(seconds)
        return choice if self.core.tables == "auto" else TableChoice(self.core.tables, choice.seconds)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self, *sections: str) -> str:
        """Content hash of the named sections (all when none): cache keys depend only on what
        they use, so changing the target does not invalidate codebooks."""
        d = self.to_dict()
        d.pop("name")
        if sections:
            d = {k: d[k] for k in sections}
        return content_key(d)


_SECTIONS = {"quantization": QuantConfig, "core": CoreConfig, "calibration": CalibrationConfig,
             "evaluation": EvaluationConfig, "target": TargetConfig}
_TOP_KEYS = ("name", "model", "lut_methods", "finetune", "blocks", "decoder")
# Sections that are absent unless given (None), unlike those above.
_OPTIONAL = {"finetune": FinetuneConfig, "decoder": DecoderConfig}


def _keys(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _section(data: dict, key: str, name: str) -> dict:
    """The mapping of section ``key``; a section that is there but empty configures nothing, which
    is more often a mistake (a lost indentation) than a wish for the defaults."""
    if key not in data:
        return {}
    values = data[key]
    if values is None or values == {}:
        raise ConfigError(f"Section {key!r} in {name} is empty; set at least one of its keys "
                          f"({', '.join(_keys({**_SECTIONS, **_OPTIONAL}[key]))}) or remove the section.")
    if not isinstance(values, dict):
        raise ConfigError(f"Section {key!r} in {name} must be a mapping of keys to values; got {values!r}.")
    allowed = _keys({**_SECTIONS, **_OPTIONAL}[key])
    bad = sorted(set(values) - set(allowed), key=str)
    if bad:
        raise ConfigError(f"Unknown key {key}.{bad[0]} in {name}; allowed keys: {', '.join(allowed)}.")
    return values


def _name(value, name: str) -> str:
    # The name is a row label and a folder under the build directory (``lutforge run``), which it
    # must not leave.
    if not isinstance(value, str) or not value.strip() or "/" in value or "\\" in value or value in (".", ".."):
        raise ConfigError(f"name={value!r} in {name} is not a usable configuration name; it names a folder "
                          f"of the build directory, so give a text without '/' that is not '.' or '..'.")
    return value


def parse_config(data: dict | None, name: str = "config") -> Config:
    """Build and validate a :class:`Config` from a parsed YAML mapping."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"The configuration {name} must be a mapping of sections "
                          f"({', '.join(_SECTIONS)}); got {type(data).__name__}.")
    unknown = sorted(set(data) - set(_SECTIONS) - set(_TOP_KEYS), key=str)
    if unknown:
        raise ConfigError(f"Unknown section {unknown[0]!r} in {name}; allowed sections: "
                          f"{', '.join(_SECTIONS)}, lut_methods, finetune, blocks, decoder.")
    if "quantization" in data and "lut_methods" in data:
        raise ConfigError(f"{name} has both 'quantization' (one co-quantized LUT setting for every layer) and "
                          f"'lut_methods' (a method per layer); keep one of them.")
    sections = {key: cls(**_section(data, key, name)) for key, cls in _SECTIONS.items()}
    model = _choice("model", data.get("model", "smollm2"), tuple(MODELS))
    methods = _parse_methods(data["lut_methods"], name, model) if "lut_methods" in data else None
    finetune = None
    if "finetune" in data:
        if methods is None:
            raise ConfigError(f"Section 'finetune' in {name} trains the block-format layers of a 'lut_methods' "
                              f"configuration, and {name} has none; add 'lut_methods' or remove 'finetune'.")
        finetune = FinetuneConfig(**_section(data, "finetune", name))
        finetune.validate()
    blocks = _choice("blocks", data.get("blocks", "host"), BLOCKS)
    decoder = None
    if blocks == "hardware":
        decoder = DecoderConfig(**_section(data, "decoder", name))
        decoder.validate()
    elif "decoder" in data:
        raise ConfigError(f"Section 'decoder' in {name} sets the formats of the decoder block's units, which run "
                          f"only with blocks: hardware, and {name} has blocks: host; add 'blocks: hardware' or "
                          f"remove 'decoder'.")
    return Config(**sections, name=_name(data["name"], name) if "name" in data else name, model=model,
                  lut_methods=methods, finetune=finetune, blocks=blocks, decoder=decoder).validate()


# Options of a method that only a LUT method reads; on a numeric kind they would be ignored.
_LUT_ONLY = ("v", "c_a", "c_w", "group_rows", "table_bits", "scales", "scale_positions", "residual",
             "hadamard", "iterations", "seed")


def _method(value, key: str):
    from .lut_methods import parse_method
    if isinstance(value, dict) and value.get("kind", "lut") not in ("lut", "tmac"):
        ignored = [k for k in _LUT_ONLY if k in value]
        if ignored:
            raise ConfigError(f"{key}.{ignored[0]} has no effect on kind {value['kind']!r} (only LUT methods "
                              f"read it); remove it or use kind: lut.")
    try:
        return parse_method(value, key)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def check_lowerable(name: str, m) -> None:
    """Refuse a method of layer ``name`` that no core runs, before any work."""
    from .lut_methods import BLOCK_KINDS, method_label

    if m.kind in BLOCK_KINDS or m.kind == "tmac":
        return
    if m.kind != "lut":
        raise ConfigError(
            f"Layer {name} uses kind {m.kind!r}, which no core of the accelerator runs (the block core takes "
            f"MXINT8, MXINT4, MXFP4 and NVFP4 weights); give it kind mxint8 (8.25 bits per weight, the "
            f"closest to {m.kind}) or another block or LUT kind.")
    if m.table_bits == 0 or m.scales == "artifact":
        raise ConfigError(
            f"Layer {name} uses the LUT method {method_label(m)!r}, whose "
            f"{'float tables' if m.table_bits == 0 else 'float zero point (scales: artifact)'} the core's "
            f"integer tables cannot hold; use table_bits 4 or 8 with scales 'block' or 'layer'.")


def _parse_methods(section, name: str, model: str) -> MethodsConfig:
    if section is None or section == {}:
        raise ConfigError(f"Section 'lut_methods' in {name} is empty; give it a 'default' method (and "
                          f"optional per-layer 'layers') or remove it.")
    if not isinstance(section, dict):
        raise ConfigError(f"Section 'lut_methods' in {name} must be a mapping with 'default' and optional "
                          f"'layers'; got {section!r}.")
    unknown = sorted(set(section) - {"default", "layers"}, key=str)
    if unknown:
        raise ConfigError(f"Unknown key lut_methods.{unknown[0]} in {name}; allowed keys: default, layers.")
    layers = section.get("layers", {})
    if "layers" in section and (layers is None or layers == {}):
        raise ConfigError(f"lut_methods.layers in {name} is empty; name layers with their methods or remove "
                          f"the key.")
    if not isinstance(layers, dict):
        raise ConfigError(f"lut_methods.layers in {name} must map layer names to methods; got {layers!r}.")
    methods = MethodsConfig(_method(section.get("default", {}), "lut_methods.default"),
                            {n: _method(m, f"lut_methods.layers.{n}") for n, m in layers.items()})
    if layers:
        check_layers(layers, model, what=f"lut_methods.layers in {name}: layer", error=ConfigError)
    for layer in model_linears(model):
        check_lowerable(layer, methods.method(layer))
    return methods


def _override(data: dict, dotted: str, value) -> None:
    """Apply ``--set SECTION.KEY=VALUE`` to the parsed file ``data``; a name that is not a key of
    the schema is refused here, naming the option rather than the file."""
    section, _, key = dotted.partition(".")
    sections = {**_SECTIONS, **_OPTIONAL}
    if section not in sections or key not in _keys(sections[section]):
        where = (f"section {section} has no key {key!r} (its keys are {', '.join(_keys(sections[section]))})"
                 if section in sections else f"the sections are {', '.join(sections)}")
        raise ConfigError(f"--set {dotted} names no configuration key: {where}; fix the name.")
    if not isinstance(data.get(section, {}), dict):
        return  # parse_config names the malformed section
    data[section] = {**(data.get(section) or {}), key: value}


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Load ``path`` (default ``configs/default.yaml``), apply ``overrides`` ({"quantization.c_a": 256}
    style keys) and validate."""
    path = Path(path) if path else default_config_path()
    data = load_yaml(path, "configuration file")
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
        for dotted, value in (overrides or {}).items():
            _override(data, dotted, value)
    return parse_config(data, str(path))
