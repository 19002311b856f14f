"""Llama and Qwen3 checkpoints through ``--model``: tiny random models the tests write themselves
(tests/tiny_checkpoints.py), as a Hugging Face directory and as a GGUF file.

Oracles we did not write: transformers' own models on the same files (its safetensors and its GGUF
import, its GGUF tokenizer conversion); then the whole compile path on them, the Verilator backend
bit for bit against the golden one.
"""

import dataclasses
import json
import types

import numpy as np
import pytest
import torch
from tiny_checkpoints import CONFIGS

from lutforge.backends import get_backend
from lutforge.cli import main
from lutforge.compiler.checkpoint import load_model, model_config
from lutforge.compiler.torch_reference import ReferenceModel
from lutforge.program.decoder import DecoderRunner, DecoderSpec
from lutforge.program.artifact import read_program
from lutforge.program.host import HostDriver
from lutforge.support.errors import UsageError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXT = "The capital of France is Paris; in 1990 it's 2,140,526 people.\n\n  Isn't it?"


@pytest.mark.parametrize("arch", list(CONFIGS))
def test_both_files_load_the_model_transformers_loads(checkpoints, arch):
    transformers = pytest.importorskip("transformers")

    directory, gguf_file = checkpoints[arch]
    ir, ref, tok = load_model(directory, progress=False)
    g_ir, g_ref, g_tok = load_model(gguf_file, progress=False)
    assert ir.config.arch == CONFIGS[arch]["model_type"] and ir.config.qk_norm is (arch == "qwen3")
    assert (ir.config.rope_freq_factors is None) is (arch != "llama3")
    assert ir.config.head_dim == CONFIGS[arch].get("head_dim", 16)
    assert ir.config.tied_embeddings is CONFIGS[arch]["tie_word_embeddings"]
    # GGUF stores eps and the RoPE factors as float32: the same eps in the model's fp32 arithmetic;
    # llama.cpp's converter computes the blended factors in float32 and we in float64: one ulp apart.
    assert np.float32(g_ir.config.rms_eps) == np.float32(ir.config.rms_eps)
    factors = [np.asarray(c.rope_freq_factors or (), np.float64) for c in (g_ir.config, ir.config)]
    np.testing.assert_allclose(*factors, rtol=2.0 ** -23, atol=0)
    assert dataclasses.replace(g_ir.config, rms_eps=ir.config.rms_eps,
                               rope_freq_factors=ir.config.rope_freq_factors) == ir.config
    assert sorted(g_ir.weights) == sorted(ir.weights)
    for name, w in ir.weights.items():  # Llama's q/k rows un-permuted, Qwen3's left as they are
        np.testing.assert_array_equal(g_ir.weights[name], w, err_msg=name)

    ids = tok.encode(TEXT)
    assert g_tok.encode(TEXT) == ids and tok.decode(ids) == TEXT
    hf_tok = transformers.AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    assert hf_tok.encode(TEXT, add_special_tokens=False) == ids

    hf = transformers.AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    pairs = [(ref, hf), (g_ref, hf)]
    # transformers' GGUF import drops rope_freqs (it reads a Llama 3 GGUF as plain RoPE: 0.2 of the
    # logits' norm off), so a scaled-RoPE file is held against transformers' directory model only.
    if arch != "llama3":
        pairs.append((g_ref, transformers.AutoModelForCausalLM.from_pretrained(
            gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32).eval()))
    with torch.inference_mode():
        for ours, theirs in pairs:
            ours, theirs = ours(torch.tensor(ids))[0], theirs(torch.tensor([ids])).logits[0]
            # fp32 both ways, the same operations in another order: a few units of 2^-24 per sum of
            # up to 128 terms through two blocks; 1e-5 of the logits' norm leaves ten times that.
            assert float((ours - theirs).norm() / theirs.norm()) <= 1e-5


def test_qk_norm_is_the_reference_models_own(checkpoints):
    """The QK-norm weights matter: scaling one head's q gains changes the logits (a model that
    skipped them would not see it)."""
    ir, ref, tok = load_model(checkpoints["qwen3"][0], progress=False)
    ids = torch.tensor(tok.encode(TEXT))
    with torch.inference_mode():
        before = ref(ids).clone()
        ir.weights["layers.1.attn.q_norm"] = ir.weights["layers.1.attn.q_norm"] * 3
        assert not torch.allclose(ReferenceModel(ir)(ids), before, atol=1e-3)


@pytest.mark.parametrize("arch", ["qwen3", "llama3"])
def test_blocks_on_the_fp32_units_follow_pytorch(checkpoints, arch):
    """``blocks: hardware``: Qwen3's QK-norm on the rmsnorm and mul units, Llama 3's scaled RoPE in
    the RoPE unit's tables, with every other op, against PyTorch fp32 (bound as for SmolLM2's
    blocks: two sums of d_model terms' rounding)."""
    ir, ref, tok = load_model(checkpoints[arch][0], progress=False)
    ids = tok.encode(TEXT)
    spec = DecoderSpec(norm_format="fp32", attention_format="fp32", attention_acc="fp32", mlp_format="fp32")
    logits = DecoderRunner(ir, HostDriver(types.SimpleNamespace(layers={}), get_backend("golden")), spec).forward(ids)
    with torch.inference_mode():
        want = ref(torch.tensor(ids))[0].numpy()
    bound = 2 * max(ir.config.d_model, ir.config.head_dim) * 2.0 ** -24 * np.abs(want).max()
    assert np.abs(logits - want).max() <= bound
    assert np.array_equal(logits.argmax(-1), want.argmax(-1))


@pytest.mark.parametrize("arch, compiled, generated", [("qwen3", 0, 1), ("llama", 1, 0)],
                         ids=["qwen3-dir-then-gguf", "llama-gguf-then-dir"])
def test_compile_and_generate_on_the_simulated_accelerator(checkpoints, tmp_path, capsys, arch, compiled, generated):
    """The acceptance commands: ``compile --model DIR`` and ``generate --model FILE.gguf --backend sim
    --tokens 2`` (and the other way round for Llama); the generation on Verilator equals the golden
    one accumulator for accumulator."""
    files = checkpoints[arch]
    assert main(["compile", "--model", str(files[compiled]), "--build", str(tmp_path / "c"),
                 "--json", str(tmp_path / "c.json")]) == 0
    assert len(json.loads((tmp_path / "c.json").read_text())["layers"]) == 2 * 7
    runs = {}
    for backend in ("golden", "sim"):
        assert main(["generate", "--model", str(files[generated]), "--backend", backend, "--tokens", "2", "--prompt",
                     "The capital of France is", "--build", str(tmp_path / "g"),
                     "--json", str(tmp_path / f"{backend}.json")]) == 0
        runs[backend] = json.loads((tmp_path / f"{backend}.json").read_text())
    assert len(runs["sim"]["tokens"]) == 2
    assert runs["sim"]["tokens"] == runs["golden"]["tokens"]
    assert runs["sim"]["accumulators_sha256"] == runs["golden"]["accumulators_sha256"]
    assert runs["sim"]["layer_kinds"] == {"lut": 14}


def test_a_layer_the_checkpoint_lacks_is_named_before_loading(checkpoints, tmp_path, capsys):
    directory, _ = checkpoints["llama"]
    assert main(["compile", "--model", str(directory), "--layer", "layers.2.attn.q", "--build", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines()[0] == (
        "lutforge: Layer 'layers.2.attn.q' is not a linear layer of the llama checkpoint (2 blocks); its linear "
        "layers are 'layers.0.attn.q' ... 'layers.1.mlp.down' (layers.N.attn.q, .attn.k, .attn.v, .attn.o, "
        ".mlp.gate, .mlp.up or .mlp.down).")


def _edited_dir(checkpoints, tmp_path, **changes):
    """A copy of the tiny Llama directory with ``changes`` in its config.json."""
    import shutil

    directory = tmp_path / "m"
    shutil.copytree(checkpoints["llama"][0], directory)
    cfg = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**cfg, **changes}))
    return directory


@pytest.mark.parametrize("changes, message", [
    ({"model_type": "mistral"}, "model_type 'mistral' is not supported; supported ones are llama, qwen3 (set "
                                "model_type in config.json, or convert the model to one of them)."),
    ({"attention_bias": True}, "attention_bias is true in the model's config; the reference model implements neither "
                               "biases nor sliding-window attention, so this checkpoint is not supported."),
    ({"head_dim": 32}, "head_dim = 32 differs from hidden_size / heads = 16; decoupled head dimensions are supported "
                       "for Qwen3 only."),
], ids=["architecture", "bias", "llama-head-dim"])
def test_an_unsupported_config_is_one_line_naming_it(checkpoints, tmp_path, changes, message):
    directory = _edited_dir(checkpoints, tmp_path, **changes)
    with pytest.raises(UsageError) as error:
        model_config(directory)
    assert str(error.value) == f"The model {directory} cannot be used: {message}"


def test_an_unsupported_tensor_or_gguf_architecture_is_named(checkpoints, tmp_path):
    from safetensors.numpy import load_file, save_file

    directory = _edited_dir(checkpoints, tmp_path)
    weights = load_file(directory / "model.safetensors")
    save_file({**weights, "model.layers.0.self_attn.q_proj.bias": np.zeros(64, np.float32)},
              str(directory / "model.safetensors"))
    with pytest.raises(UsageError, match=r"^The model .* cannot be used: .* has tensors outside the llama layout: "
                                         r"\['model.layers.0.self_attn.q_proj.bias'\]; only Llama and Qwen3 "
                                         r"checkpoints \(no biases\) are supported\.$"):
        load_model(directory, progress=False)

    import gguf
    path = tmp_path / "gpt2.gguf"
    w = gguf.GGUFWriter(str(path), "gpt2")
    w.add_tensor("token_embd.weight", np.zeros((4, 2), np.float32))
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
    with pytest.raises(UsageError, match=r"^The model .*gpt2.gguf cannot be used: general.architecture is 'gpt2'; "
                                         r"supported GGUF architectures are llama, qwen3\.$"):
        model_config(path)



def test_run_reports_the_checkpoints_perplexity(checkpoints, tmp_path):
    """``run --model``: the checkpoint's own tokenizer on WikiText-2, its name in the report; a random
    model predicts about as well as a uniform guess over its vocabulary."""
    directory, _ = checkpoints["llama"]
    assert main(["run", "--model", str(directory), "--windows", "1", "--window", "32", "--build", str(tmp_path),
                 "--json", str(tmp_path / "r.json")]) == 0
    rows = {r["config"]: r for r in json.loads((tmp_path / "r.json").read_text())["rows"]}
    assert set(rows) == {"fp32", "default"}
    vocab = CONFIGS["llama"]["vocab_size"]
    assert vocab / 100 < rows["fp32"]["perplexity"] < vocab * 100
    assert f"# Whole-model perplexity, {directory.name}, golden backend" in (tmp_path / "perplexity.md").read_text()


def test_finetune_trains_the_checkpoint(checkpoints, tmp_path):
    """``finetune --model``: two steps on the tiny Qwen3 (its own tokenizer on WikiText-2 valid) change
    the compiled weights against a compile of the same methods without training."""
    directory, _ = checkpoints["qwen3"]
    base = {"calibration": {"windows": 1, "window": 64, "rows": 64},
            "lut_methods": {"default": {"kind": "nvfp4", "act": "mxint8"}}}
    (tmp_path / "ft.yaml").write_text(json.dumps({"name": "ft", **base, "finetune": {
        "steps": 2, "lr": 1e-4, "codebook_lr": 1e-4, "window": 32, "holdout": 1, "eval_every": 1, "seed": 0}}))
    (tmp_path / "plain.yaml").write_text(json.dumps({"name": "plain", **base}))
    assert main(["finetune", "--model", str(directory), "--config", str(tmp_path / "ft.yaml"), "--device", "cpu",
                 "--build", str(tmp_path / "ft"), "--json", str(tmp_path / "ft.json")]) == 0
    assert main(["compile", "--model", str(directory), "--config", str(tmp_path / "plain.yaml"),
                 "--build", str(tmp_path / "plain")]) == 0
    result = json.loads((tmp_path / "ft.json").read_text())
    assert result["block_layers"] == 14 and result["steps"] == 2 and result["best_step"] >= 1
    trained, plain = (read_program(tmp_path / b / "program") for b in ("ft", "plain"))
    changed = [a["name"] for a, b in zip(trained.manifest["layers"], plain.manifest["layers"])
               if a["files"]["w"]["sha256"] != b["files"]["w"]["sha256"]]
    assert len(changed) >= 7, changed
