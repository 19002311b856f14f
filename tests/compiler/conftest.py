import os

import pytest

# The transformers oracle must never reach a model hub; everything it needs is in the GGUF file.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Our naming -> Hugging Face Llama's, restated here so the oracle does not reuse the frontend's map.
HF_BLOCK = {"attn_norm": "input_layernorm", "attn.q": "self_attn.q_proj", "attn.k": "self_attn.k_proj",
            "attn.v": "self_attn.v_proj", "attn.o": "self_attn.o_proj",
            "mlp_norm": "post_attention_layernorm", "mlp.gate": "mlp.gate_proj",
            "mlp.up": "mlp.up_proj", "mlp.down": "mlp.down_proj"}


def hf_key(name: str) -> str:
    if name == "embed":
        return "model.embed_tokens.weight"
    if name == "norm":
        return "model.norm.weight"
    if name == "lm_head":
        return "lm_head.weight"
    _, i, rest = name.split(".", 2)
    return f"model.layers.{i}.{HF_BLOCK[rest]}.weight"


@pytest.fixture
def one_torch_thread():
    """These tests run short sequences: torch's thread pool only adds barrier waits, and under
    `pytest -n 2` on 2 cores it oversubscribes them. Used via `pytestmark` in this package's
    modules that run the model."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def smollm2_ir():
    from lutforge.compiler.gguf_frontend import load_gguf

    return load_gguf(progress=False)


@pytest.fixture(scope="session")
def smollm2_ref(smollm2_ir):
    from lutforge.compiler.torch_reference import ReferenceModel

    return ReferenceModel(smollm2_ir)


@pytest.fixture(scope="session")
def tokenizer():
    from lutforge.compiler.data import GGUFTokenizer
    from lutforge.compiler.gguf_frontend import smollm2_path

    return GGUFTokenizer(smollm2_path())


@pytest.fixture(scope="session")
def hf_model(smollm2_ir):
    """transformers' LlamaForCausalLM holding the same fp32 weights as `smollm2_ir`."""
    import torch
    import transformers

    c = smollm2_ir.config
    cfg = transformers.LlamaConfig(
        vocab_size=c.vocab_size, hidden_size=c.d_model, intermediate_size=c.d_ff,
        num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads, num_key_value_heads=c.n_kv_heads,
        rms_norm_eps=c.rms_eps, rope_theta=c.rope_theta, max_position_embeddings=c.context_length,
        tie_word_embeddings=c.tied_embeddings)
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(cfg)
    state = {hf_key(n): torch.tensor(w) for n, w in smollm2_ir.weights.items()}
    model.load_state_dict(state, strict=False, assign=True)
    model.tie_weights()
    # Built on the meta device to skip random init; the RoPE buffer must then be made for real.
    model.model.rotary_emb = transformers.models.llama.modeling_llama.LlamaRotaryEmbedding(config=cfg)
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    return model.eval()


@pytest.fixture(scope="session")
def hf_gguf_model():
    """transformers' own GGUF import of the same file: an independent undoing of llama.cpp's q/k
    row permutation (and a second dequantization). Costs ~17 s of CPU, so only slow tests use it."""
    import torch
    import transformers

    from lutforge.compiler.gguf_frontend import smollm2_path

    path = smollm2_path()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32)
    return model.eval()


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """Tiny random Llama and Qwen3 checkpoints (tests/tiny_checkpoints.py): {arch: (directory, gguf
    file)}, the same weights (seed 0) and tokenizer in both."""
    from tiny_checkpoints import CONFIGS, PRE_TOKENIZERS, train_tokenizer, write_gguf, write_hf_dir

    root = tmp_path_factory.mktemp("checkpoints")
    out = {}
    for arch in CONFIGS:
        tok = train_tokenizer(PRE_TOKENIZERS[arch][1])
        out[arch] = (write_hf_dir(root / arch, arch, tokenizer=tok), write_gguf(root / f"{arch}.gguf", arch, tokenizer=tok))
    return out
