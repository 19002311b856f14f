"""Shape-only compiles (``--weights random``) and the whole-token estimate (``lutforge estimate``):
the layout of a shape-only Program against the real checkpoint's, the whole token's modelled cycles
(cores and units) against a simulated generation, and the command's JSON."""

import json

import numpy as np
import pytest

from lutforge.cli import main
from lutforge.compiler.checkpoint import load_model, model_config
from lutforge.compiler.config import parse_config
from lutforge.compiler.estimate import generation
from lutforge.compiler.model import linear_shapes
from lutforge.compiler.perf import MODEL_SHAPES, TARGETS
from lutforge.jobs.generate import generate
from lutforge.program.artifact import read_program

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Qwen3 blocks on the units and its linears on a 4-lane block core: small enough to simulate.
TINY_BLOCKS = {"name": "tiny-blocks", "lut_methods": {"default": {"kind": "nvfp4", "act": "mxint8"}},
               "core": {"lanes": 4, "max_positions": 256}, "calibration": {"rows": 64, "window": 64},
               "blocks": "hardware", "decoder": {"max_keys": 32}}


def test_the_named_qwen3_architecture_has_the_published_shapes():
    """configs/models/qwen3-1.7b.json against the performance model's shape table, written apart
    from it (Qwen3-1.7B: 28 blocks, d 2048, ff 6144, q 2048, k/v 1024)."""
    cfg = model_config("qwen3-1.7b")
    blocks, shapes = MODEL_SHAPES["Qwen3-1.7B"]
    assert (cfg.n_layers, cfg.arch, cfg.qk_norm, cfg.head_dim, cfg.vocab_size) == (blocks, "qwen3", True, 128, 151936)
    assert linear_shapes(cfg) == {f"layers.{i}.{n}": (o, k) for i in range(blocks) for n, k, o in shapes}


def test_a_shape_only_program_has_the_real_layout(checkpoints, tmp_path):
    """The same configuration compiled from the checkpoint and from its shapes only: the same layers,
    kinds and memory images (file, dtype, shape) — different contents, and labelled so."""
    directory, _ = checkpoints["qwen3"]
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({**TINY_BLOCKS, "lut_methods": {
        "default": {"kind": "nvfp4", "act": "mxint8"},
        "layers": {"layers.1.mlp.up": {"kind": "lut", "v": 2, "c_a": 16, "c_w": 16, "table_bits": 8, "iterations": 2}}}}))
    programs = {}
    for weights in ("checkpoint", "random"):
        assert main(["compile", "--model", str(directory), "--weights", weights, "--config", str(config),
                     "--build", str(tmp_path / weights)]) == 0
        programs[weights] = read_program(tmp_path / weights / "program")
    real, shapes = programs["checkpoint"], programs["random"]
    assert list(shapes.layers) == list(real.layers)
    kinds = [layer["kind"] for layer in real.manifest["layers"]]
    assert kinds.count("lut") == 1 and kinds.count("block") == 13
    for a, b in zip(shapes.manifest["layers"], real.manifest["layers"]):
        assert a["kind"] == b["kind"]
        assert {k: (f["dtype"], f["shape"]) for k, f in a["files"].items()} == {
            k: (f["dtype"], f["shape"]) for k, f in b["files"].items()}
    assert shapes.manifest["source"]["weights"] == "random" and real.manifest["source"]["weights"] == "checkpoint"
    assert "not a quality figure" in shapes.manifest["source"]["model"]
    # Every weight image differs: random weights, not the checkpoint's.
    blocks = [(a, b) for a, b in zip(shapes.manifest["layers"], real.manifest["layers"]) if a["kind"] == "block"]
    assert all(a["files"]["w"]["sha256"] != b["files"]["w"]["sha256"] for a, b in blocks)


def test_the_whole_token_model_equals_a_simulated_generation(checkpoints, tmp_path):
    """Qwen3 on the simulated accelerator, every linear on the block core and every other operation
    on the units (QK-norm included): the prefill and two decoded tokens take exactly the cycles the
    estimate's passes count, and the RTL equals golden in every output."""
    cfg = parse_config(TINY_BLOCKS)
    model = load_model(checkpoints["qwen3"][0], progress=False)
    runs = {backend: generate(cfg, tmp_path, "The capital of France is", 3, backend=backend, progress=False,
                              model=model) for backend in ("golden", "sim")}
    sim = runs["sim"]
    assert sim.tokens == runs["golden"].tokens
    assert sim.accumulators_sha256 == runs["golden"].accumulators_sha256
    prefill, decode = generation(read_program(sim.program), model[0].config, cfg, TARGETS["sim"],
                                 len(sim.prompt_tokens), 3)
    passes = [prefill, *decode]
    assert [(p.tokens, p.context) for p in passes] == [(len(sim.prompt_tokens), 0), (1, len(sim.prompt_tokens)),
                                                       (1, len(sim.prompt_tokens) + 1)]
    assert sum(u.cycles for p in passes for u in p.units if u.where == "units") == sim.unit_cycles
    # Within the 5 % the model promises; in fact equal.
    assert sum(u.cycles for p in passes for u in p.units if u.cycles is not None) == sim.cycles


def test_estimate_writes_the_whole_token(checkpoints, tmp_path, capsys):
    directory, _ = checkpoints["qwen3"]
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({**TINY_BLOCKS, "decoder": {"max_keys": 512}}))
    assert main(["estimate", "--model", str(directory), "--weights", "random", "--config", str(config),
                 "--target", "v80", "--build", str(tmp_path / "b"), "--json", str(tmp_path / "e.json")]) == 0
    out = json.loads((tmp_path / "e.json").read_text())
    assert out["note"] == "shape only: random weights, not a quality figure"
    assert {"ms_per_token_decode", "prefill_128_decode_256_s", "bound", "units"} <= set(out)
    assert set(out["units"]) == {"linears", "rmsnorm", "qk_norm", "rope", "kv_cache", "attention", "residual",
                                 "silu_mul", "lm_head", "embedding"}
    assert out["units"]["linears"]["where"] == "core" and out["units"]["lm_head"]["where"] == "host"
    at = out["ms_per_token_decode_at_context"]
    assert at["128"] < out["ms_per_token_decode"] < at["384"]  # attention grows with the context
    assert out["artifact_latency_s"] == 1.4506
    assert np.isclose(sum(u["ms_per_token"] for u in out["units"].values()), out["ms_per_token_decode"])
    assert (tmp_path / "b" / "estimate.png").is_file()
    assert "shape only" in (tmp_path / "b" / "estimate.md").read_text()
