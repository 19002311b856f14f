import numpy as np
import pytest
import torch

from lutforge.compiler.calibration import capture_calibration
from lutforge.compiler.data import wikitext2_tokens

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LAYERS = ["layers.0.attn.q", "layers.0.attn.k", "layers.2.mlp.gate", "layers.2.mlp.up",
          "layers.2.mlp.down"]


def test_capture_and_cache(smollm2_ref, tokenizer, hf_model, monkeypatch, tmp_path):
    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path))
    kw = dict(n_windows=2, window=32, rows=20, seed=3, layers=LAYERS, progress=False)
    calib = capture_calibration(smollm2_ref, tokenizer, **kw)
    assert not calib.from_cache
    assert calib.path.parent == tmp_path / "calib" and calib.path.is_file()
    assert list(calib.inputs) == LAYERS
    assert calib.shared == {"layers.0.attn.k": "layers.0.attn.q", "layers.2.mlp.up": "layers.2.mlp.gate"}
    assert calib.inputs["layers.0.attn.q"].shape == (20, 576)
    assert calib.inputs["layers.2.mlp.down"].shape == (20, 1536)

    # Oracle: the same rows, read off transformers' modules with forward pre-hooks.
    tokens = torch.tensor(wikitext2_tokens("valid", tokenizer)[0][:64]).reshape(2, 32)
    seen = {}
    mods = {"layers.0.attn.q": hf_model.model.layers[0].self_attn.q_proj,
            "layers.2.mlp.gate": hf_model.model.layers[2].mlp.gate_proj,
            "layers.2.mlp.down": hf_model.model.layers[2].mlp.down_proj}
    handles = [m.register_forward_pre_hook(lambda mod, args, n=n: seen.__setitem__(n, args[0].clone()))
               for n, m in mods.items()]
    try:
        with torch.inference_mode():
            hf_model(tokens)
    finally:
        for h in handles:
            h.remove()
    positions = np.sort(np.random.default_rng(3).choice(64, size=20, replace=False))
    for n in mods:
        expected = seen[n].reshape(64, -1)[positions].numpy()
        np.testing.assert_allclose(calib.inputs[n], expected, rtol=1e-4, atol=1e-5)

    again = capture_calibration(smollm2_ref, tokenizer, **kw)
    assert again.from_cache and again.key == calib.key and again.shared == calib.shared
    for n in LAYERS:
        assert np.array_equal(again.inputs[n], calib.inputs[n])
    other = capture_calibration(smollm2_ref, tokenizer, **{**kw, "seed": 4, "layers": LAYERS[:1]})
    assert other.key != calib.key and not other.from_cache


def test_capture_refuses_replaced_layers(smollm2_ref, tokenizer):
    smollm2_ref.replace_linear("layers.1.attn.v", lambda x: x[..., :192])
    try:
        with pytest.raises(ValueError, match=r"replaced linear layers \['layers.1.attn.v'\]; "
                                             r"calibration data is keyed on the fp32 model"):
            capture_calibration(smollm2_ref, tokenizer, cache=False, progress=False)
    finally:
        smollm2_ref.replace_linear("layers.1.attn.v", None)


def test_rows_are_checked(smollm2_ref, tokenizer):
    with pytest.raises(ValueError, match=r"rows = 100 is outside 1\.\.64"):
        capture_calibration(smollm2_ref, tokenizer, n_windows=2, window=32, rows=100,
                            cache=False, progress=False)


@pytest.mark.parametrize("how", ["truncate", "old"])
def test_a_damaged_entry_is_named_and_captured_again(smollm2_ref, tokenizer, monkeypatch, tmp_path, capsys, how):
    """A truncated entry (a killed copy, a full disk) or one without a record (written by an older
    lutforge) is reported with its path, captured again, and the run gets the same inputs."""
    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path))
    kw = dict(n_windows=1, window=16, rows=8, seed=1, layers=LAYERS[:2], progress=False)
    clean = capture_calibration(smollm2_ref, tokenizer, **kw)
    record = clean.path.with_name(clean.path.name + ".entry.json")
    if how == "truncate":
        data = clean.path.read_bytes()
        clean.path.write_bytes(data[: len(data) // 2])
        problem = (f"its content ({len(data) // 2} bytes) does not match the SHA-256 recorded when it was "
                   f"written")
    else:
        record.unlink()
        problem = "it has no record (written by an older lutforge or interrupted)"
    capsys.readouterr()
    again = capture_calibration(smollm2_ref, tokenizer, **kw)
    assert capsys.readouterr().err == (f"lutforge: discarding cache entry {clean.path}: {problem}; "
                                       f"it will be rebuilt.\n")
    assert not again.from_cache and again.path == clean.path and record.is_file()
    for n in kw["layers"]:
        assert np.array_equal(again.inputs[n], clean.inputs[n])
    assert capture_calibration(smollm2_ref, tokenizer, **kw).from_cache


def test_the_search_scores_on_the_valid_window_after_the_calibration(smollm2_ref, tokenizer, hf_model,
                                                                     monkeypatch, tmp_path):
    # Held-out rows: every token of the window that follows the calibration windows, which no fit
    # sees. Oracle: transformers' module inputs on that window.
    from lutforge.compiler.session import Session

    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path))
    s = Session.__new__(Session)
    s.ref, s.tok, s.progress, s._heldout, s.device = smollm2_ref, tokenizer, False, None, "cpu"
    s.cal_params = {"windows": 2, "window": 16, "rows": 8}
    seen = {}
    module = hf_model.model.layers[2].mlp.down_proj
    handle = module.register_forward_pre_hook(lambda mod, args: seen.__setitem__("x", args[0].clone()))
    try:
        with torch.inference_mode():
            hf_model(torch.tensor(wikitext2_tokens("valid", tokenizer)[0][32:48])[None])
    finally:
        handle.remove()
    assert s.heldout["layers.2.mlp.down"].shape == (16, 1536)
    np.testing.assert_allclose(s.heldout["layers.2.mlp.down"], seen["x"][0].numpy(), rtol=1e-4, atol=1e-5)
