"""Whole tokens on the accelerator: the KV cache, greedy generation through the host driver, and the
Verilator backend equal to the golden one in every accumulator of every token."""

import numpy as np
import pytest
import torch

from lutforge.backends import get_backend
from lutforge.program.host import HostDriver
from lutforge.compiler.config import parse_config
from lutforge.compiler.steps import Build, compile_model
from lutforge.compiler.torch_reference import KVCache
from lutforge.jobs.generate import greedy, make_backend, on_hardware

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_decoding_with_the_kv_cache_gives_the_full_forward_pass(smollm2_ref, tokenizer):
    ids = torch.tensor(tokenizer.encode("The capital of France is Paris, and the capital of"))
    full = smollm2_ref(ids)[0]
    cache = KVCache()
    with torch.inference_mode():
        steps = [smollm2_ref(ids[:5], cache)[0]] + [smollm2_ref(ids[i:i + 1], cache)[0] for i in range(5, len(ids))]
    stepped = torch.cat(steps)
    assert cache.length == len(ids)
    # The same sums in other orders (shorter matrices): equal up to fp32 rounding of the logits.
    assert torch.equal(stepped.argmax(-1), full.argmax(-1))
    assert float((stepped - full).abs().max()) < 1e-3 * float(full.abs().max())


def test_greedy_tokens_are_the_argmax_of_the_full_sequence(smollm2_ref, tokenizer):
    prompt = tokenizer.encode("The capital of France is")
    out = greedy(smollm2_ref, prompt, 3)
    with torch.inference_mode():
        for i, token in enumerate(out):
            assert int(smollm2_ref(torch.tensor(prompt + out[:i]))[0, -1].argmax()) == token


def test_tokens_chained_through_verilator_equal_golden_bit_for_bit(tmp_path, smollm2_ir, smollm2_ref, tokenizer):
    """A LUT layer and two block layers on their cores (the other linears fp32 on the host), three
    tokens generated on each backend: the same tokens and the same accumulators, call by call."""
    cfg = parse_config({
        "name": "gen",
        "lut_methods": {"default": "mxint4", "layers": {
            "layers.0.mlp.up": {"kind": "lut", "v": 4, "c_a": 16, "c_w": 16, "table_bits": 8, "iterations": 2},
            "layers.1.attn.q": {"kind": "nvfp4"}}},
        "core": {"lanes": 4, "max_positions": 256}, "calibration": {"rows": 64, "window": 64}})
    layers = ["layers.0.mlp.up", "layers.0.mlp.down", "layers.1.attn.q"]
    program = compile_model(Build(tmp_path, cfg, progress=False), smollm2_ir, layers, reference=smollm2_ref,
                            tokenizer=tokenizer)
    assert {n: program.layers[n].kind for n in layers} == {"layers.0.mlp.up": "lut", "layers.0.mlp.down": "block",
                                                          "layers.1.attn.q": "block"}
    prompt = tokenizer.encode("The capital of France is")
    golden = HostDriver(program, get_backend("golden"), keep=True)
    sim = HostDriver(program, make_backend("sim", cfg), keep=True)
    g_tokens, _ = on_hardware(smollm2_ref, golden, prompt, 3)
    s_tokens, _ = on_hardware(smollm2_ref, sim, prompt, 3)
    assert s_tokens == g_tokens
    g, s = golden.kept(), sim.kept()
    for name in layers:
        # Prefill (5 prompt tokens) and two decoded tokens, every accumulator.
        assert g[name].shape[0] == 7 and np.array_equal(g[name], s[name]), name
    assert sim.accumulators.hexdigest() == golden.accumulators.hexdigest() and sim.cycles > 0
    # The host hands the fp32 layers back afterwards.
    assert not smollm2_ref.overrides
