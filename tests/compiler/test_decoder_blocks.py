"""Whole decoder blocks on the units (``blocks: hardware``, lutforge.program.decoder): the golden
backend's blocks against PyTorch fp32 (an oracle we did not write the arithmetic of), the Verilator
backend's against the golden one bit for bit, and the units' cycle model against simulation."""

import dataclasses
import types

import numpy as np
import pytest
import torch

from lutforge.backends import get_backend
from lutforge.compiler.perf_units import decoder_units_cycles
from lutforge.compiler.torch_reference import ReferenceModel
from lutforge.program.decoder import DecoderRunner, DecoderSpec
from lutforge.program.host import HostDriver

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FP32 = DecoderSpec(norm_format="fp32", attention_format="fp32", attention_acc="fp32", mlp_format="fp32")
PROMPT = "The capital of France is"
# No linear on a core: every linear runs in fp32 on the host, so only the units' arithmetic differs.
NO_LINEARS = types.SimpleNamespace(layers={})


def _first_blocks(ir, n):
    """``ir`` cut to its first ``n`` decoder blocks (embedding, final norm and head kept)."""
    weights = {k: w for k, w in ir.weights.items() if not k.startswith("layers.") or int(k.split(".")[1]) < n}
    return dataclasses.replace(ir, config=dataclasses.replace(ir.config, n_layers=n), weights=weights)


@pytest.fixture(scope="module")
def two_blocks(smollm2_ir):
    return _first_blocks(smollm2_ir, 2)


def _reference_logits(ir, ids):
    with torch.inference_mode():
        return ReferenceModel(ir)(torch.tensor(ids))[0].numpy()


def test_fp32_units_follow_pytorch_within_the_sums_rounding(two_blocks, tokenizer):
    ids = tokenizer.encode(PROMPT)
    logits = DecoderRunner(two_blocks, HostDriver(NO_LINEARS, get_backend("golden")), FP32).forward(ids)
    want = _reference_logits(two_blocks, ids)
    # A logit is a sum of d_model products whose inputs went through two blocks of fp32 units; the
    # units round once per operation (their bounds are a few units of 2^-24), so the error is that
    # of a few sums of d_model terms, gamma_d = d·2^-24 of the logits' scale each: allow two.
    bound = 2 * two_blocks.config.d_model * 2.0 ** -24 * np.abs(want).max()
    error = np.abs(logits - want).max()
    assert error <= bound, (error, bound)
    assert np.array_equal(logits.argmax(-1), want.argmax(-1))


def test_bf16_units_keep_pytorch_greedy_tokens(two_blocks, tokenizer):
    ids = tokenizer.encode(PROMPT)
    runner = DecoderRunner(two_blocks, HostDriver(NO_LINEARS, get_backend("golden")), DecoderSpec())
    logits = runner.forward(ids)
    want = _reference_logits(two_blocks, ids)
    # bf16 operands (u = 2^-8) in attention and the MLP: a relative error of a few u on the logits.
    assert np.abs(logits - want).max() <= 4 * 2.0 ** -8 * np.abs(want).max()
    assert np.array_equal(logits.argmax(-1), want.argmax(-1))
    # The KV cache: decoding token by token gives the logits of the whole sequence's last position.
    runner.reset()
    runner.forward(ids[:-1])
    assert runner.length == len(ids) - 1
    step = runner.forward(ids[-1:])[-1]
    assert np.abs(step - logits[-1]).max() <= 4 * 2.0 ** -8 * np.abs(want).max()


def test_the_context_is_refused_past_the_attention_units_buffer(two_blocks):
    runner = DecoderRunner(two_blocks, HostDriver(NO_LINEARS, get_backend("golden")), DecoderSpec(max_keys=4))
    with pytest.raises(ValueError, match=r"The context reaches 5 tokens, more than the attention unit's max_keys = 4; "
                                         r"build it with decoder.max_keys >= 5 or generate fewer tokens\."):
        runner.forward([1, 2, 3, 4, 5])


def test_lanes_must_divide_the_head_dimension(two_blocks):
    with pytest.raises(ValueError, match=r"decoder.attention_lanes = 5 does not divide the head dimension 64; "
                                         r"choose lanes dividing it\."):
        DecoderRunner(two_blocks, HostDriver(NO_LINEARS, get_backend("golden")), DecoderSpec(attention_lanes=5))


@pytest.mark.slow
@pytest.mark.parametrize("spec", [DecoderSpec(max_keys=16),
                                  DecoderSpec(attention_mul="lmul", attention_lanes=4, max_keys=16)],
                         ids=["exact", "lmul-lanes4"])
def test_blocks_through_verilator_equal_golden_and_the_cycle_model(smollm2_ir, tokenizer, spec):
    """One block, a prompt and two decoded tokens on each backend: the same tokens and the same
    hash over every unit output, and the units' cycles as the model counts them."""
    ir = _first_blocks(smollm2_ir, 1)
    ids = tokenizer.encode(PROMPT)
    golden = HostDriver(NO_LINEARS, get_backend("golden"))
    sim = HostDriver(NO_LINEARS, get_backend("sim", decoder_max_keys=spec.max_keys, memory_latency=4))
    g_tokens = DecoderRunner(ir, golden, spec).greedy(ids, 3)
    s_tokens = DecoderRunner(ir, sim, spec).greedy(ids, 3)
    assert s_tokens == g_tokens
    assert sim.accumulators.hexdigest() == golden.accumulators.hexdigest()
    steps = [(len(ids), 0), (1, len(ids)), (1, len(ids) + 1)]
    model = sum(decoder_units_cycles(ir.config, t, start, 4, spec.attention_lanes) for t, start in steps)
    # Within the 5 % the model promises; in fact equal (one exact count per unit).
    assert abs(model - sim.cycles) <= 0.05 * sim.cycles, (model, sim.cycles)
    assert model == sim.unit_cycles == sim.cycles


def test_run_refuses_windows_longer_than_the_attention_unit_before_loading_the_model(tmp_path):
    from lutforge.compiler.config import REPO_ROOT, load_config
    from lutforge.jobs.run import run_model
    from lutforge.support.errors import UsageError

    cfg = load_config(REPO_ROOT / "configs" / "smollm2-block.yaml")
    assert cfg.blocks == "hardware" and cfg.decoder.max_keys == 64
    with pytest.raises(UsageError, match=r"^Configuration 'smollm2-block' runs whole decoder blocks, whose attention "
                                         r"unit sees at most decoder.max_keys = 64 tokens, and the windows have 512; "
                                         r"pass --window 64 or less, or raise decoder.max_keys\.$"):
        run_model([cfg], tmp_path, progress=False)


def test_run_scores_whole_blocks_window_by_window(two_blocks, tokenizer):
    """run's model callable for blocks: hardware: each window from an empty KV cache, so fp32 units
    give PyTorch fp32's perplexity up to the logits' rounding (the bound of the first test)."""
    from lutforge.compiler.data import wikitext2_tokens
    from lutforge.compiler.perplexity import perplexity
    from lutforge.jobs.run import _whole_blocks

    ids, _ = wikitext2_tokens("valid", tokenizer)
    driver = HostDriver(NO_LINEARS, get_backend("golden"))
    got = perplexity(_whole_blocks(two_blocks, driver, types.SimpleNamespace(decoder=FP32)), ids, window=12,
                     n_windows=2, progress=False)
    want = perplexity(ReferenceModel(two_blocks), ids, window=12, n_windows=2, progress=False)
    assert got.n_tokens == want.n_tokens == 22
    # A token's NLL moves by at most twice the largest logit error, bounded as in the first test.
    scale = max(np.abs(_reference_logits(two_blocks, ids[w * 12:(w + 1) * 12])).max() for w in range(2))
    bound = 2 * 2 * two_blocks.config.d_model * 2.0 ** -24 * scale
    assert abs(got.nll - want.nll) <= bound, (got.nll, want.nll, bound)
    assert np.allclose(got.window_nll, want.window_nll, rtol=0, atol=bound)


def test_the_demo_refuses_whole_blocks_before_loading_the_model(tmp_path):
    from lutforge.compiler.config import REPO_ROOT, load_config
    from lutforge.jobs.demo import demo
    from lutforge.support.errors import UsageError

    cfg = load_config(REPO_ROOT / "configs" / "smollm2-block.yaml")
    with pytest.raises(UsageError, match=r"^Configuration 'smollm2-block' has blocks: hardware, and the demo runs "
                                         r"the linears alone on the accelerator; run its whole blocks with lutforge "
                                         r"generate --config CONFIG --backend sim \(and lutforge run --window 64 for "
                                         r"perplexity\), or give the demo a configuration without 'blocks'\.$"):
        demo(cfg, tmp_path, progress=False)
