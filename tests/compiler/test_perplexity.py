import pytest
import torch

from lutforge.compiler.data import wikitext2_tokens
from lutforge.compiler.perplexity import perplexity

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def test_tokens(tokenizer):
    return wikitext2_tokens("test", tokenizer)[0]


def test_one_window_matches_transformers_loss(smollm2_ref, hf_model, test_tokens):
    result = perplexity(smollm2_ref, test_tokens, window=128, n_windows=1, progress=False)
    chunk = torch.tensor(test_tokens[:128])[None]
    with torch.inference_mode():
        loss = float(hf_model(chunk, labels=chunk).loss)
    assert result.n_tokens == 127
    assert result.nll == pytest.approx(loss, rel=1e-4)
    assert result.ppl == pytest.approx(torch.tensor(loss).exp().item(), rel=1e-4)


def test_window_count_is_checked(smollm2_ref, test_tokens):
    with pytest.raises(ValueError, match=r"n_windows = 3 is outside 1\.\.2: 1100 tokens hold 2 "
                                         r"whole windows of 512"):
        perplexity(smollm2_ref, test_tokens[:1100], n_windows=3, progress=False)


@pytest.mark.slow
def test_fp32_perplexity_16_windows(smollm2_ref, test_tokens):
    # Measured 29.60 (16 windows of 512, 8176 predicted tokens); the design note says about 30.
    result = perplexity(smollm2_ref, test_tokens, window=512, n_windows=16)
    assert result.ppl == pytest.approx(29.60, abs=0.05)
