"""A fit's own codebook tuning (``tune_steps``): it lowers the layer's output error in its training
arithmetic, the tuned fit still compiles bit-exact, untuned methods keep their cache keys, and
options it cannot honour are refused."""

import dataclasses

import numpy as np
import pytest
import torch

from lutforge.compiler.lut_methods import (LayerMethod, fit_layer, fit_sources, parse_method, to_lut_layers,
                                           to_tmac_layer)
from lutforge.compiler.trainable import TrainableLut, TrainableTmac


def _layer(seed, n=48, k=64):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, k)).astype(np.float32)
    x = (rng.standard_normal((400, k)) * np.linspace(0.2, 2.0, k)).astype(np.float32)
    return w, x


def _relative_error(fitted, w, x) -> float:
    """The tuning's own loss, computed apart from it: relative squared error of the training
    arithmetic's output against the float ``x W^T``."""
    m = fitted.method
    layer = TrainableTmac(fitted, "cpu", 1 << 30) if m.kind == "tmac" else TrainableLut(fitted, "cpu")
    with torch.no_grad():
        y = layer(torch.from_numpy(x)).double().numpy()
    ref = x.astype(np.float64) @ w.T.astype(np.float64)
    return float(((y - ref) ** 2).sum() / (ref ** 2).sum())


@pytest.mark.parametrize("m, margin", [(LayerMethod(v=2, c_a=16, c_w=8, group_rows=16), 0.95),
                                       (LayerMethod(kind="tmac", v=2, c_w=8, fit="kmeans"), 0.98)],
                         ids=["co-quantized", "weight-only"])
def test_tuning_lowers_the_output_error_it_trains_on(m, margin):
    w, x = _layer(2)
    plain = fit_layer(w, x, m)
    tuned = fit_layer(w, x, dataclasses.replace(m, tune_steps=100))
    before, after = _relative_error(plain, w, x), _relative_error(tuned, w, x)
    # k-means codebooks ignore the output; 100 steps on it must cut its error by a visible margin
    # (the weight-only layer has no activation codebooks to move: less room).
    assert after < margin * before, (before, after)
    print(f"{m.kind}: relative output error {before:.4f} -> {after:.4f}")
    # The weight indices are the fit's; only the codebooks moved.
    for a, b in zip(plain.widx, tuned.widx):
        assert torch.equal(a, b)
    assert tuned.method.tune_steps == 100


def test_a_tuned_fit_compiles_to_integer_tables():
    w, x = _layer(3)
    lut = fit_layer(w, x, LayerMethod(v=2, c_a=16, c_w=8, group_rows=16, tune_steps=5))
    (layer,) = to_lut_layers(lut)
    assert np.array_equal(layer.act_codebooks, lut.act_codebooks.numpy())
    tmac = fit_layer(w, x, LayerMethod(kind="tmac", v=2, c_w=8, tune_steps=5))
    assert to_tmac_layer(tmac).codes.dtype.kind == "i"


def test_untuned_methods_keep_their_keys_and_sources():
    plain = LayerMethod(v=2, c_a=16, c_w=8)
    tuned = dataclasses.replace(plain, tune_steps=10)
    assert "tune_steps" not in plain.to_dict() and "tune_lr" not in plain.to_dict()
    assert tuned.key() != plain.key()
    assert "lutforge.compiler.layer_tune" in fit_sources(tuned)
    assert "lutforge.compiler.layer_tune" not in fit_sources(plain)
    assert parse_method({"kind": "tmac", "tune_steps": 4}).to_dict()["tune_steps"] == 4


@pytest.mark.parametrize("data, message", [
    ({"kind": "nvfp4", "tune_steps": 5},
     r"^m.tune_steps has no effect on kind 'nvfp4' \(only LUT fits have codebooks to tune\); remove it, or use "
     r"kind: lut or tmac.$"),
    ({"tune_lr": 0.1},
     r"^m.tune_lr has no effect without tune_steps \(the fit is not tuned\); set m.tune_steps or remove tune_lr.$"),
    ({"tune_steps": -1}, r"^m.tune_steps = -1 is not allowed; use an integer from 0 \(no tuning\) to 10000.$"),
    ({"kind": "tmac", "tune_steps": 3, "tune_lr": 2.0},
     r"^m.tune_lr = 2.0 is not allowed; use a fraction of the codebooks' mean magnitude above 0 and at most 1.$"),
])
def test_tuning_options_it_cannot_honour_are_refused(data, message):
    with pytest.raises(ValueError, match=message):
        parse_method(data, "m")
