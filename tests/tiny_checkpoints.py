"""Tiny random Llama and Qwen3 checkpoints that the tests write themselves: a Hugging Face-style
directory (config.json, tokenizer.json, model.safetensors) and the same model as a GGUF file, as
llama.cpp's converter lays it out (Llama's q/k rows permuted for its RoPE kernel, Qwen3's not).

The tokenizer is a byte-level BPE with Qwen2's pre-tokenizer, trained here on the start of
WikiText-2 valid (so its merges are real and the pre-tokenizer decides where they may apply).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lutforge.support.paths import REPO_ROOT

# Qwen2's split regex, as transformers' Qwen2Tokenizer writes it (tokenization_qwen2.PRETOKENIZE_REGEX).
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")
# Llama 3's: the same with up to three digits per piece (Meta's tokenizer.json).
LLAMA3_REGEX = QWEN2_REGEX.replace(r"|\p{N}|", r"|\p{N}{1,3}|")
VOCAB = 384

# Qwen3 with a head dimension decoupled from hidden / heads (64 / 2 = 32, heads of 128); 128 is
# also what transformers' GGUF import assumes for qwen3, which ignores qwen3.attention.key_length.
QWEN3 = {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "hidden_size": 64, "intermediate_size": 192,
         "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 128,
         "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "max_position_embeddings": 512, "tie_word_embeddings": True,
         "attention_bias": False, "use_sliding_window": False, "vocab_size": VOCAB, "torch_dtype": "float32"}
LLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 192,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
         "rope_theta": 10000.0, "max_position_embeddings": 512, "tie_word_embeddings": False, "vocab_size": VOCAB,
         "torch_dtype": "float32"}
# Llama 3's scaled RoPE with a short original context, so that its three bands (kept, blended,
# divided by the factor) all occur among the 8 frequencies of a 16-wide head.
LLAMA3 = {**LLAMA, "rope_theta": 500000.0, "rope_scaling": {
    "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64}}
CONFIGS = {"qwen3": QWEN3, "llama": LLAMA, "llama3": LLAMA3}
# The pre-tokenizer of each model's tokenizer: llama.cpp's name and the split regex.
PRE_TOKENIZERS = {"qwen3": ("qwen2", QWEN2_REGEX), "llama": ("qwen2", QWEN2_REGEX),
                  "llama3": ("llama-bpe", LLAMA3_REGEX)}


def llama3_rope_freqs(cfg: dict) -> np.ndarray:
    """llama.cpp's rope_freqs tensor for a llama3 rope_scaling (convert_hf_to_gguf.py's
    LlamaModel.generate_extra_tensors, written again here)."""
    r, base = cfg["rope_scaling"], cfg["rope_theta"]
    dim = cfg["hidden_size"] // cfg["num_attention_heads"]
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    low_wavelen = r["original_max_position_embeddings"] / r["low_freq_factor"]
    high_wavelen = r["original_max_position_embeddings"] / r["high_freq_factor"]
    factors = []
    for freq in freqs:
        wavelen = 2 * np.pi / freq
        if wavelen < high_wavelen:
            factors.append(1)
        elif wavelen > low_wavelen:
            factors.append(r["factor"])
        else:
            smooth = (r["original_max_position_embeddings"] / wavelen - r["low_freq_factor"]) / (
                r["high_freq_factor"] - r["low_freq_factor"])
            factors.append(1 / ((1 - smooth) / r["factor"] + smooth))
    return np.array(factors, dtype=np.float32)


def train_tokenizer(split: str = QWEN2_REGEX):
    """A byte-level BPE of VOCAB tokens (pre-tokenized with ``split``), trained on 200 kB of WikiText-2 valid."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    text = (REPO_ROOT / "data" / "wikitext-2" / "valid.txt").read_text()[:200_000]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([text], trainer)
    assert tok.get_vocab_size() == VOCAB
    return tok


def hf_weights(cfg: dict, seed: int) -> dict[str, np.ndarray]:
    """Random fp32 weights in Hugging Face naming for ``cfg`` (config.json's keys)."""
    rng = np.random.default_rng(seed)
    d, ff, hd = cfg["hidden_size"], cfg["intermediate_size"], cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]

    def lin(n, k):
        return (rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)

    def norm(n):  # random gains, so a mix-up of two norms cannot cancel out
        return rng.uniform(0.5, 1.5, n).astype(np.float32)

    w = {"model.embed_tokens.weight": rng.standard_normal((cfg["vocab_size"], d)).astype(np.float32),
         "model.norm.weight": norm(d)}
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = lin(cfg["vocab_size"], d)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w.update({p + "input_layernorm.weight": norm(d), p + "post_attention_layernorm.weight": norm(d),
                  p + "self_attn.q_proj.weight": lin(nh * hd, d), p + "self_attn.k_proj.weight": lin(nkv * hd, d),
                  p + "self_attn.v_proj.weight": lin(nkv * hd, d), p + "self_attn.o_proj.weight": lin(d, nh * hd),
                  p + "mlp.gate_proj.weight": lin(ff, d), p + "mlp.up_proj.weight": lin(ff, d),
                  p + "mlp.down_proj.weight": lin(d, ff)})
        if cfg["model_type"] == "qwen3":
            w[p + "self_attn.q_norm.weight"] = norm(hd)
            w[p + "self_attn.k_norm.weight"] = norm(hd)
    return w


def write_hf_dir(path: Path, arch: str, seed: int = 0, tokenizer=None) -> Path:
    """config.json, tokenizer.json and model.safetensors of a tiny random ``arch`` model in ``path``."""
    from safetensors.numpy import save_file

    path.mkdir(parents=True, exist_ok=True)
    cfg = CONFIGS[arch]
    (path / "config.json").write_text(json.dumps(cfg, indent=1))
    (tokenizer or train_tokenizer(PRE_TOKENIZERS[arch][1])).save(str(path / "tokenizer.json"))
    save_file(hf_weights(cfg, seed), str(path / "model.safetensors"), metadata={"format": "pt"})
    return path


_GGUF_BLOCK = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
               "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
               "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate",
               "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


def _gguf_name(hf: str) -> str:
    top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}
    if hf in top:
        return top[hf]
    _, _, i, rest = hf.split(".", 3)
    return f"blk.{i}.{_GGUF_BLOCK[rest.removesuffix('.weight')]}.weight"


def write_gguf(path: Path, arch: str, seed: int = 0, tokenizer=None) -> Path:
    """The model of :func:`write_hf_dir` (same seed: same weights) as an F32 GGUF file with its tokenizer."""
    import gguf

    from lutforge.compiler.gguf_frontend import permute_rope_rows

    cfg = CONFIGS[arch]
    tok = tokenizer or train_tokenizer(PRE_TOKENIZERS[arch][1])
    model = json.loads(tok.to_str())["model"]
    tokens = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    w = gguf.GGUFWriter(str(path), cfg["model_type"])
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    if "rope_scaling" in cfg:
        w.add_tensor("rope_freqs.weight", llama3_rope_freqs(cfg))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(PRE_TOKENIZERS[arch][0])
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.NORMAL] * len(tokens))
    w.add_token_merges(merges)
    for name, value in hf_weights(cfg, seed).items():
        if cfg["model_type"] == "llama" and name.endswith("q_proj.weight"):
            value = permute_rope_rows(value, cfg["num_attention_heads"])
        elif cfg["model_type"] == "llama" and name.endswith("k_proj.weight"):
            value = permute_rope_rows(value, cfg["num_key_value_heads"])
        w.add_tensor(_gguf_name(name), value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
