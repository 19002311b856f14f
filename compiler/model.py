"""Common model representation for the compiler, and the frontends that do not need GGUF.

Every frontend produces a `ModelIR`: a Llama-family `LlamaConfig` plus fp32 NumPy weights under a
stable naming. Linear weights are stored as (out_features, in_features), like `torch.nn.Linear`.

    embed                        token embedding, (vocab, d_model)
    layers.{i}.attn_norm         RMSNorm weight before attention, (d_model,)
    layers.{i}.attn.{q,k,v,o}    attention projections; q/k rows in Hugging Face (half-split) RoPE order
    layers.{i}.attn.{q,k}_norm   Qwen3's QK-norm: RMSNorm weights over each head, (head_dim,)
    layers.{i}.mlp_norm          RMSNorm weight before the MLP, (d_model,)
    layers.{i}.mlp.{gate,up,down}
    norm                         final RMSNorm weight, (d_model,)
    lm_head                      only when not tied to `embed`, (vocab, d_model)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ..support.cache import content_key

BLOCK_LINEARS = ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up", "mlp.down")


ARCHITECTURES = ("llama", "qwen3")


@dataclass(frozen=True)
class LlamaConfig:
    """A Llama-family decoder: Llama itself, or Qwen3 (``arch="qwen3"``), which adds an RMSNorm over
    each head of q and k before RoPE (``qk_norm``) and may decouple the head dimension from
    ``d_model / n_heads`` (``head_size``; None: ``d_model // n_heads``)."""
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_model: int
    d_ff: int
    vocab_size: int
    rope_theta: float
    rms_eps: float
    tied_embeddings: bool
    context_length: int = 2048
    head_size: int | None = None
    qk_norm: bool = False
    arch: str = "llama"
    # Llama 3's scaled RoPE as llama.cpp's rope_freqs holds it: frequency i of every head divided by
    # factor i (head_dim / 2 of them); None: plain RoPE.
    rope_freq_factors: tuple[float, ...] | None = None

    @property
    def head_dim(self) -> int:
        return self.head_size or self.d_model // self.n_heads

    def __post_init__(self):
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"Architecture {self.arch!r} is not supported; supported ones are "
                             f"{', '.join(ARCHITECTURES)}.")
        if self.head_size is None and self.d_model % self.n_heads:
            raise ValueError(
                f"d_model = {self.d_model} is not a multiple of n_heads = {self.n_heads}; "
                f"the head dimension must be an integer, so fix the model's config.")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"n_heads = {self.n_heads} is not a multiple of n_kv_heads = {self.n_kv_heads}; "
                f"grouped-query attention needs whole groups, so fix the model's config.")
        if self.rope_freq_factors is not None and len(self.rope_freq_factors) != self.head_dim // 2:
            raise ValueError(f"The RoPE frequency factors are {len(self.rope_freq_factors)}, and head_dim / 2 = "
                             f"{self.head_dim // 2} frequencies need one each; fix the model's rope scaling.")
        if self.head_dim % 2:
            raise ValueError(
                f"head_dim = {self.head_dim} is odd; RoPE rotates pairs of dimensions and needs "
                f"an even head dimension.")


@dataclass(frozen=True)
class LinearLayer:
    name: str
    in_features: int
    out_features: int


@dataclass
class ModelIR:
    config: LlamaConfig
    weights: dict[str, np.ndarray]
    source: str
    # Content hash of what the weights came from; caches (calibration, Programs) are keyed on it.
    source_hash: str
    metadata: dict = field(default_factory=dict)
    # Real weights (a shape-only model, :mod:`lutforge.compiler.shape_only`, has random ones).
    shape_only = False

    def __post_init__(self):
        expected = expected_shapes(self.config)
        missing = sorted(set(expected) - set(self.weights))
        extra = sorted(set(self.weights) - set(expected))
        if missing or extra:
            raise ValueError(
                f"The weights of {self.source} do not match its config: missing {missing[:8]}"
                f"{' ...' if len(missing) > 8 else ''}, unexpected {extra[:8]}"
                f"{' ...' if len(extra) > 8 else ''}. Check that the frontend maps every tensor "
                f"name and that tied_embeddings is right.")
        for name, shape in expected.items():
            w = self.weights[name]
            if w.shape != shape or w.dtype != np.float32:
                raise ValueError(
                    f"Weight {name!r} of {self.source} has shape {w.shape} and dtype {w.dtype}; "
                    f"the config requires shape {shape} and float32.")

    def linear_layers(self) -> list[LinearLayer]:
        """The decoder's linear layers in execution order: q, k, v, o, gate, up, down per block.
        lm_head is not listed: it stays on the host (see `precheck`)."""
        return [LinearLayer(name, k, n) for name, (n, k) in linear_shapes(self.config).items()]


def expected_shapes(cfg: LlamaConfig) -> dict[str, tuple[int, ...]]:
    d, hd = cfg.d_model, cfg.head_dim
    shapes: dict[str, tuple[int, ...]] = {"embed": (cfg.vocab_size, d), "norm": (d,)}
    if not cfg.tied_embeddings:
        shapes["lm_head"] = (cfg.vocab_size, d)
    for i in range(cfg.n_layers):
        p = f"layers.{i}."
        shapes.update({
            p + "attn_norm": (d,),
            p + "attn.q": (cfg.n_heads * hd, d),
            p + "attn.k": (cfg.n_kv_heads * hd, d),
            p + "attn.v": (cfg.n_kv_heads * hd, d),
            p + "attn.o": (d, cfg.n_heads * hd),
            p + "mlp_norm": (d,),
            **({p + "attn.q_norm": (hd,), p + "attn.k_norm": (hd,)} if cfg.qk_norm else {}),
            p + "mlp.gate": (cfg.d_ff, d),
            p + "mlp.up": (cfg.d_ff, d),
            p + "mlp.down": (d, cfg.d_ff),
        })
    return shapes


def linear_shapes(cfg: LlamaConfig) -> dict[str, tuple[int, int]]:
    """The decoder linears of a model with config ``cfg``, in execution order, with their
    (out_features, in_features)."""
    shapes = expected_shapes(cfg)
    return {f"layers.{i}.{kind}": shapes[f"layers.{i}.{kind}"] for i in range(cfg.n_layers) for kind in BLOCK_LINEARS}


# ---------------------------------------------------------------------------------------------
# Pre-check: what the hardware cannot run.

@dataclass(frozen=True)
class HostOp:
    name: str
    op: str
    where: str
    why: str


@dataclass(frozen=True)
class PrecheckReport:
    hardware: list[LinearLayer]
    host: list[HostOp]
    lm_head_tied: bool
    lm_head_on_hardware: bool

    def format(self) -> str:
        lines = [f"{len(self.hardware)} linear layers (GEMV) map to the accelerator; "
                 f"{len(self.host)} ops run on the host instead:"]
        width = max(len(op.name) for op in self.host)
        lines += [f"  {op.name:<{width}}  {op.op:<14} -> {op.where}: {op.why}" for op in self.host]
        lines.append(f"lm_head is {'tied to' if self.lm_head_tied else 'separate from'} the embedding "
                     f"and is {'mapped to the accelerator' if self.lm_head_on_hardware else 'left on the host'}.")
        return "\n".join(lines)


_NOT_GEMV = "the accelerator runs linear layers (GEMV) only"


def precheck(ir: ModelIR) -> PrecheckReport:
    """List, before any quantization or lowering, every op the accelerator cannot run and where it
    runs instead. The hardware runs the decoder's linear layers only; everything else is host work."""
    cfg = ir.config
    host = [HostOp("embed", "embedding", "host", "a table gather, not a GEMV")]
    for i in range(cfg.n_layers):
        p = f"layers.{i}."
        host += [
            HostOp(p + "attn_norm", "RMSNorm", "host", _NOT_GEMV),
            *([HostOp(p + "attn.qk_norm", "QK-norm", "host", _NOT_GEMV + "; RMSNorm over each head of q and k")]
              if cfg.qk_norm else []),
            HostOp(p + "attn.rope", "RoPE", "host", f"{_NOT_GEMV}; theta = {cfg.rope_theta:g}"),
            HostOp(p + "attn.qk", "attention QK^T", "host",
                   "both operands are activations, there is no fixed weight to tabulate"),
            HostOp(p + "attn.softmax", "softmax", "host", _NOT_GEMV + "; causal mask included"),
            HostOp(p + "attn.av", "attention AV", "host",
                   "both operands are activations, there is no fixed weight to tabulate"),
            HostOp(p + "attn.residual", "residual add", "host", _NOT_GEMV),
            HostOp(p + "mlp_norm", "RMSNorm", "host", _NOT_GEMV),
            HostOp(p + "mlp.act", "SiLU(gate)*up", "host", _NOT_GEMV),
            HostOp(p + "mlp.residual", "residual add", "host", _NOT_GEMV),
        ]
    host.append(HostOp("norm", "RMSNorm", "host", _NOT_GEMV))
    tied = cfg.tied_embeddings
    host.append(HostOp("lm_head", "linear (GEMV)", "host",
                       ("tied to the embedding; " if tied else "") +
                       "not mapped to the accelerator yet (vocab-sized output)"))
    return PrecheckReport(ir.linear_layers(), host, tied, lm_head_on_hardware=False)


# ---------------------------------------------------------------------------------------------
# Hugging Face state-dict / safetensors frontend.

_HF_BLOCK = {
    "input_layernorm.weight": "attn_norm",
    "self_attn.q_proj.weight": "attn.q",
    "self_attn.k_proj.weight": "attn.k",
    "self_attn.v_proj.weight": "attn.v",
    "self_attn.o_proj.weight": "attn.o",
    "self_attn.q_norm.weight": "attn.q_norm",
    "self_attn.k_norm.weight": "attn.k_norm",
    "post_attention_layernorm.weight": "mlp_norm",
    "mlp.gate_proj.weight": "mlp.gate",
    "mlp.up_proj.weight": "mlp.up",
    "mlp.down_proj.weight": "mlp.down",
}


def _hf_name(key: str) -> str | None:
    if key == "model.embed_tokens.weight":
        return "embed"
    if key == "model.norm.weight":
        return "norm"
    if key == "lm_head.weight":
        return "lm_head"
    parts = key.split(".", 3)
    if len(parts) == 4 and parts[0] == "model" and parts[1] == "layers" and parts[3] in _HF_BLOCK:
        return f"layers.{int(parts[2])}.{_HF_BLOCK[parts[3]]}"
    return None


def config_from_hf(hf: dict) -> LlamaConfig:
    """A `LlamaConfig` from a Hugging Face Llama or Qwen3 `config.json` dictionary; a feature the
    reference model does not implement (biases, scaled RoPE, sliding windows) is refused by name."""
    arch = hf.get("model_type", "llama")
    if arch not in ARCHITECTURES:
        raise ValueError(f"model_type {arch!r} is not supported; supported ones are {', '.join(ARCHITECTURES)} "
                         f"(set model_type in config.json, or convert the model to one of them).")
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in ("default", "llama3"):
        raise ValueError(
            f"rope_type {rope_type!r} is not supported; plain ('default') RoPE and Llama 3's ('llama3') are "
            f"implemented.")
    for flag in ("attention_bias", "mlp_bias", "use_sliding_window"):
        if hf.get(flag):
            raise ValueError(f"{flag} is true in the model's config; the reference model implements neither "
                             f"biases nor sliding-window attention, so this checkpoint is not supported.")
    theta = rope.get("rope_theta", hf.get("rope_theta", 10000.0))
    n_heads = hf["num_attention_heads"]
    head_dim = hf.get("head_dim")
    dim = head_dim or hf["hidden_size"] // n_heads
    if head_dim not in (None, hf["hidden_size"] // n_heads) and arch == "llama":
        raise ValueError(f"head_dim = {head_dim} differs from hidden_size / heads = {hf['hidden_size'] // n_heads}; "
                         f"decoupled head dimensions are supported for Qwen3 only.")
    return LlamaConfig(
        n_layers=hf["num_hidden_layers"], n_heads=n_heads,
        n_kv_heads=hf.get("num_key_value_heads") or n_heads,
        d_model=hf["hidden_size"], d_ff=hf["intermediate_size"], vocab_size=hf["vocab_size"],
        rope_theta=float(theta), rms_eps=float(hf["rms_norm_eps"]),
        tied_embeddings=bool(hf.get("tie_word_embeddings", False)),
        context_length=hf.get("max_position_embeddings", 2048),
        head_size=None if head_dim in (None, hf["hidden_size"] // n_heads) else int(head_dim),
        qk_norm=arch == "qwen3", arch=arch,
        rope_freq_factors=llama3_freq_factors(rope, float(theta), dim) if rope_type == "llama3" else None)


def llama3_freq_factors(rope: dict, theta: float, head_dim: int) -> tuple[float, ...]:
    """Llama 3's RoPE scaling as one divisor per frequency (llama.cpp's ``rope_freqs``): long
    wavelengths (beyond original_max_position_embeddings / low_freq_factor) divided by ``factor``,
    short ones (below ... / high_freq_factor) kept, the band between blended smoothly."""
    factor, low, high = (float(rope[k]) for k in ("factor", "low_freq_factor", "high_freq_factor"))
    old_context = float(rope["original_max_position_embeddings"])
    out = []
    for i in range(0, head_dim, 2):
        wavelength = 2 * np.pi * theta ** (i / head_dim)
        if wavelength < old_context / high:
            out.append(1.0)
        elif wavelength > old_context / low:
            out.append(factor)
        else:
            smooth = (old_context / wavelength - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return tuple(out)


def _hash_arrays(arrays: dict[str, np.ndarray]) -> str:
    return content_key(*(part for name in sorted(arrays) for part in (name, np.asarray(arrays[name]))))


def from_state_dict(state_dict: dict, config: LlamaConfig | dict, source: str = "state dict") -> ModelIR:
    """A `ModelIR` from a Hugging Face Llama or Qwen3 state dict (torch tensors or NumPy arrays).
    `config` is a `LlamaConfig` or a Hugging Face config dictionary. Keys the Llama layout does
    not use (rotary caches) are ignored; unknown weights are an error."""
    cfg = config if isinstance(config, LlamaConfig) else config_from_hf(config)
    weights: dict[str, np.ndarray] = {}
    unknown = []
    for key, value in state_dict.items():
        if key.endswith("rotary_emb.inv_freq"):
            continue
        name = _hf_name(key)
        if name is None:
            unknown.append(key)
            continue
        if hasattr(value, "detach"):
            value = value.detach().to("cpu").float().numpy()
        weights[name] = np.ascontiguousarray(value, dtype=np.float32)
    if unknown:
        raise ValueError(f"{source} has tensors outside the {cfg.arch} layout: {unknown[:8]}; only "
                         f"Llama and Qwen3 checkpoints (no biases) are supported.")
    if cfg.tied_embeddings and "lm_head" in weights:
        if not np.array_equal(weights["lm_head"], weights["embed"]):
            raise ValueError(f"{source} says tie_word_embeddings but lm_head.weight differs from "
                             f"the embedding; set tie_word_embeddings to false.")
        del weights["lm_head"]
    # The config is hashed with the weights: the same weights under another RoPE theta or eps are
    # another model, and must not share its calibration or Programs.
    return ModelIR(cfg, weights, source, content_key(_hash_arrays(weights), dataclasses.asdict(cfg)))


def from_safetensors(path: str | Path, config: LlamaConfig | dict | str | Path | None = None) -> ModelIR:
    """A `ModelIR` from a safetensors file (or a directory of shards) in Hugging Face Llama or Qwen3 layout.
    `config` defaults to `config.json` next to the weights."""
    from safetensors.numpy import load_file

    path = Path(path)
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"No *.safetensors files in {path}; pass a file or a model directory.")
    if config is None or isinstance(config, (str, Path)):
        cfg_path = Path(config) if config is not None else (path if path.is_dir() else path.parent) / "config.json"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"No config at {cfg_path}; pass config= as a path, a dict or a LlamaConfig.")
        config = json.loads(cfg_path.read_text())
    state: dict[str, np.ndarray] = {}
    for f in files:
        state.update(load_file(f))
    return from_state_dict(state, config, source=str(path))


def from_torch_module(module) -> ModelIR:
    """A `ModelIR` from a Hugging Face `LlamaForCausalLM` (or any module with its state-dict layout
    and a `config` attribute)."""
    hf_cfg = getattr(module, "config", None)
    if hf_cfg is None:
        raise ValueError(f"{type(module).__name__} has no `config`; use `linear_layers_of` to list its "
                         f"nn.Linear layers, or pass a Hugging Face Llama model.")
    return from_state_dict(module.state_dict(), hf_cfg.to_dict(), source=type(module).__name__)


def linear_layers_of(module) -> list[LinearLayer]:
    """Every `torch.nn.Linear` in a module, in registration order, by qualified name."""
    import torch

    return [LinearLayer(name, m.in_features, m.out_features)
            for name, m in module.named_modules() if isinstance(m, torch.nn.Linear)]
