import numpy as np
import pytest
import torch
import transformers

from lutforge.compiler.model import (
    LlamaConfig, from_safetensors, from_state_dict, from_torch_module, linear_layers_of, precheck)
from lutforge.compiler.torch_reference import ReferenceModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_llama(tied: bool, seed: int = 0):
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(
        vocab_size=97, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
        num_attention_heads=6, num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=5000.0,
        max_position_embeddings=64, tie_word_embeddings=tied)
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        # Random norms so a mix-up of attn_norm / mlp_norm / norm cannot cancel out.
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("tied", [True, False])
def test_safetensors_frontend_matches_transformers(tmp_path, tied):
    hf = tiny_llama(tied)
    hf.save_pretrained(tmp_path)
    ir = from_safetensors(tmp_path)
    assert ir.config.tied_embeddings is tied
    assert ("lm_head" in ir.weights) is (not tied)
    assert ir.config == LlamaConfig(2, 6, 2, 48, 80, 97, 5000.0, 1e-6, tied, 64)
    tokens = torch.randint(0, 97, (2, 23), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ours = ReferenceModel(ir)(tokens)
        theirs = hf(tokens).logits
    assert float((ours - theirs).norm() / theirs.norm()) <= 1e-5
    assert precheck(ir).host[-1].why.startswith("tied to the embedding" if tied else "not mapped")


def test_torch_module_frontends():
    hf = tiny_llama(tied=False)
    ir = from_torch_module(hf)
    assert [l.name for l in ir.linear_layers()][:7] == [
        f"layers.0.{k}" for k in ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up", "mlp.down")]
    np.testing.assert_array_equal(ir.weights["layers.1.mlp.up"],
                                  hf.model.layers[1].mlp.up_proj.weight.detach().numpy())
    linears = linear_layers_of(hf)
    assert [(l.name, l.in_features, l.out_features) for l in linears[:3]] == [
        ("model.layers.0.self_attn.q_proj", 48, 48), ("model.layers.0.self_attn.k_proj", 48, 16),
        ("model.layers.0.self_attn.v_proj", 48, 16)]
    assert linears[-1].name == "lm_head" and len(linears) == 2 * 7 + 1


def test_frontend_errors():
    hf = tiny_llama(tied=True)
    cfg = hf.config.to_dict()
    sd = dict(hf.state_dict())
    with pytest.raises(ValueError, match=r"tensors outside the llama layout: \['model.layers.0.self_attn.q_proj.bias'\]"):
        from_state_dict({**sd, "model.layers.0.self_attn.q_proj.bias": torch.zeros(48)}, cfg)
    del sd["model.layers.1.mlp.up_proj.weight"]
    with pytest.raises(ValueError, match=r"missing \['layers.1.mlp.up'\]"):
        from_state_dict(sd, cfg)
    with pytest.raises(ValueError, match="n_heads = 6 is not a multiple of n_kv_heads = 4"):
        LlamaConfig(2, 6, 4, 48, 80, 97, 5000.0, 1e-6, True)
    with pytest.raises(ValueError, match="has no `config`; use `linear_layers_of`"):
        from_torch_module(torch.nn.Linear(2, 2))
