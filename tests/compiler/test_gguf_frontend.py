import gguf
import numpy as np
import pytest

from lutforge.compiler.gguf_frontend import (
    open_gguf, permute_rope_rows, read_config, smollm2_path, unpermute_rope_rows)
from lutforge.compiler.model import BLOCK_LINEARS, precheck


def test_config_from_metadata(smollm2_ir):
    cfg = smollm2_ir.config
    # SmolLM2-135M's published config.json (HuggingFaceTB/SmolLM2-135M-Instruct).
    assert (cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.d_model, cfg.d_ff, cfg.vocab_size) == \
        (30, 9, 3, 576, 1536, 49152)
    assert cfg.head_dim == 64
    assert cfg.rope_theta == 100000.0
    assert cfg.rms_eps == pytest.approx(1e-5)
    assert cfg.tied_embeddings


def test_tensor_types_and_dtypes(smollm2_ir):
    types = smollm2_ir.metadata["gguf_tensor_types"]
    assert types["embed"] == "Q8_0"
    assert {types[f"layers.{i}.{k}"] for i in range(30) for k in BLOCK_LINEARS} == {"Q4_1"}
    assert types["norm"] == types["layers.0.attn_norm"] == "F32"
    assert all(w.dtype == np.float32 and w.flags.writeable for w in smollm2_ir.weights.values())


@pytest.mark.slow
def test_every_weight_equals_transformers_gguf_import(smollm2_ir, hf_gguf_model):
    """transformers dequantizes and un-permutes q/k on its own; bit-equal weights prove both the
    Q4_1/Q8_0 dequantization and the inverse of llama.cpp's permute."""
    sd = hf_gguf_model.state_dict()
    hf_names = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
                "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj",
                "down": "mlp.down_proj"}
    for i in range(smollm2_ir.config.n_layers):
        for kind in BLOCK_LINEARS:
            ours = smollm2_ir.weights[f"layers.{i}.{kind}"]
            theirs = sd[f"model.layers.{i}.{hf_names[kind.split('.')[1]]}.weight"].numpy()
            assert np.array_equal(ours, theirs), f"layers.{i}.{kind}"
        assert np.array_equal(smollm2_ir.weights[f"layers.{i}.attn_norm"],
                              sd[f"model.layers.{i}.input_layernorm.weight"].numpy())
        assert np.array_equal(smollm2_ir.weights[f"layers.{i}.mlp_norm"],
                              sd[f"model.layers.{i}.post_attention_layernorm.weight"].numpy())
    assert np.array_equal(smollm2_ir.weights["embed"], sd["model.embed_tokens.weight"].numpy())
    assert np.array_equal(smollm2_ir.weights["norm"], sd["model.norm.weight"].numpy())


def raw_tensor(name):
    reader = open_gguf(smollm2_path())
    return next(t for t in reader.tensors if t.name == name)


def test_q4_1_and_q8_0_against_plain_decoder(smollm2_ir):
    """ggml's block layouts, decoded by hand: Q4_1 = fp16 d, fp16 m, 16 bytes of nibbles
    (low nibbles are elements 0-15, high 16-31), x = d*q + m; Q8_0 = fp16 d, 32 int8, x = d*q."""
    t = raw_tensor("blk.11.ffn_down.weight")
    blocks = np.asarray(t.data[:4]).reshape(4, -1, 20)
    d = blocks[..., 0:2].copy().view(np.float16).astype(np.float32)
    m = blocks[..., 2:4].copy().view(np.float16).astype(np.float32)
    qs = blocks[..., 4:]
    q = np.concatenate([qs & 0xF, qs >> 4], axis=-1).astype(np.float32)
    np.testing.assert_array_equal((d * q + m).reshape(4, -1), smollm2_ir.weights["layers.11.mlp.down"][:4])

    t = raw_tensor("token_embd.weight")
    blocks = np.asarray(t.data[[0, 260, 49151]]).reshape(3, -1, 34)
    d = blocks[..., 0:2].copy().view(np.float16).astype(np.float32)
    q = blocks[..., 2:].copy().view(np.int8).astype(np.float32)
    np.testing.assert_array_equal((d * q).reshape(3, -1), smollm2_ir.weights["embed"][[0, 260, 49151]])


def test_unpermuted_weights_give_llama_cpp_attention_scores(smollm2_ir):
    """llama.cpp rotates adjacent pairs (2i, 2i+1) of the stored (permuted) q/k; we rotate
    (i, i + head_dim/2) of the un-permuted ones. Both must give the same attention scores."""
    cfg = smollm2_ir.config
    hd = cfg.head_dim
    freqs = cfg.rope_theta ** (-np.arange(0, hd, 2) / hd)

    def rope_adjacent(x, pos):
        c, s = np.cos(pos * freqs), np.sin(pos * freqs)
        out = x.copy()
        out[..., 0::2] = x[..., 0::2] * c - x[..., 1::2] * s
        out[..., 1::2] = x[..., 0::2] * s + x[..., 1::2] * c
        return out

    def rope_half(x, pos):
        c, s = np.cos(pos * freqs), np.sin(pos * freqs)
        a, b = x[..., :hd // 2], x[..., hd // 2:]
        return np.concatenate([a * c - b * s, a * s + b * c], axis=-1)

    def dequant(name):
        t = raw_tensor(name)
        return gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)

    rng = np.random.default_rng(0)
    x_q, x_k = rng.standard_normal(cfg.d_model), rng.standard_normal(cfg.d_model)
    for layer in (0, 17):
        raw_q = (dequant(f"blk.{layer}.attn_q.weight") @ x_q).reshape(cfg.n_heads, hd)
        raw_k = (dequant(f"blk.{layer}.attn_k.weight") @ x_k).reshape(cfg.n_kv_heads, hd)
        q = (smollm2_ir.weights[f"layers.{layer}.attn.q"].astype(np.float64) @ x_q).reshape(cfg.n_heads, hd)
        k = (smollm2_ir.weights[f"layers.{layer}.attn.k"].astype(np.float64) @ x_k).reshape(cfg.n_kv_heads, hd)
        group = cfg.n_heads // cfg.n_kv_heads
        for pq, pk in [(5, 2), (300, 0), (1000, 999)]:
            ours = np.einsum("hd,hd->h", rope_half(q, pq), np.repeat(rope_half(k, pk), group, axis=0))
            theirs = np.einsum("hd,hd->h", rope_adjacent(raw_q, pq), np.repeat(rope_adjacent(raw_k, pk), group, axis=0))
            np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)
        # Without the un-permute the scores would differ.
        wrong = np.einsum("hd,hd->h", rope_half(raw_q, 5), np.repeat(rope_half(raw_k, 2), group, axis=0))
        assert not np.allclose(wrong, np.einsum("hd,hd->h", rope_half(q, 5), np.repeat(rope_half(k, 2), group, axis=0)))


def test_raw_gguf_q_k_rows_are_permuted(smollm2_ir):
    """The file itself holds llama.cpp's layout: the stored rows are `permute` of ours, and
    differ from ours, so the un-permute is not a no-op."""
    cfg = read_config(open_gguf(smollm2_path()))
    for name, heads, ours in [("blk.3.attn_q.weight", cfg.n_heads, "layers.3.attn.q"),
                              ("blk.3.attn_k.weight", cfg.n_kv_heads, "layers.3.attn.k")]:
        t = raw_tensor(name)
        stored = gguf.quants.dequantize(t.data, t.tensor_type).reshape(smollm2_ir.weights[ours].shape)
        assert not np.array_equal(stored, smollm2_ir.weights[ours])
        assert np.array_equal(stored, permute_rope_rows(smollm2_ir.weights[ours], heads))


def test_unpermute_inverts_llama_cpp_permute():
    # The convert script's permute, restated from llama.cpp's convert_hf_to_gguf.py.
    def permute(weights, n_head, n_head_kv):
        if n_head_kv is not None and n_head != n_head_kv:
            n_head = n_head_kv
        return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
                .swapaxes(1, 2).reshape(weights.shape))

    rng = np.random.default_rng(0)
    q = rng.standard_normal((9 * 8, 5))
    k = rng.standard_normal((3 * 8, 5))
    assert np.array_equal(unpermute_rope_rows(permute(q, 9, 9), 9), q)
    assert np.array_equal(unpermute_rope_rows(permute(k, 9, 3), 3), k)
    # Within a head, GGUF row 2j+i holds Hugging Face row i*head_dim/2 + j.
    rows = np.arange(8)[:, None].astype(float)
    assert unpermute_rope_rows(rows, 1).ravel().tolist() == [0, 2, 4, 6, 1, 3, 5, 7]


def test_linear_layer_order(smollm2_ir):
    layers = smollm2_ir.linear_layers()
    assert len(layers) == 30 * 7
    assert [l.name for l in layers[:8]] == [
        "layers.0.attn.q", "layers.0.attn.k", "layers.0.attn.v", "layers.0.attn.o",
        "layers.0.mlp.gate", "layers.0.mlp.up", "layers.0.mlp.down", "layers.1.attn.q"]
    assert (layers[1].in_features, layers[1].out_features) == (576, 192)
    assert (layers[6].in_features, layers[6].out_features) == (1536, 576)


def test_precheck_lists_every_host_op(smollm2_ir):
    report = precheck(smollm2_ir)
    assert [l.name for l in report.hardware] == [l.name for l in smollm2_ir.linear_layers()]
    by_name = {op.name: op for op in report.host}
    per_block = {"attn_norm": "RMSNorm", "attn.rope": "RoPE", "attn.qk": "attention QK^T",
                 "attn.softmax": "softmax", "attn.av": "attention AV", "attn.residual": "residual add",
                 "mlp_norm": "RMSNorm", "mlp.act": "SiLU(gate)*up", "mlp.residual": "residual add"}
    for i in range(30):
        for suffix, op in per_block.items():
            assert by_name[f"layers.{i}.{suffix}"].op == op
    assert by_name["embed"].op == "embedding"
    assert by_name["norm"].op == "RMSNorm"
    assert len(report.host) == 1 + 30 * 9 + 2
    assert all(op.where == "host" for op in report.host)
    assert report.lm_head_tied and not report.lm_head_on_hardware
    text = report.format()
    assert text.startswith("210 linear layers (GEMV) map to the accelerator; 273 ops run on the host")
    assert "lm_head is tied to the embedding and is left on the host." in text
