"""Per-layer quantization methods: the streamed-bits formula, the fast PyTorch evaluation against
the golden backend of the lowered program (every LUT method type), sim == golden for one layer of each type,
the budgeted search against brute force, and configuration errors."""

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from lutforge.backends import get_backend
from lutforge.program.host import HostDriver
from lutforge.compiler.lut_methods import (LayerMethod, fit_layer, hadamard_t, parse_method,
                                           streamed_bits, to_lut_layers)
from lutforge.compiler.lower import lower_layer
from lutforge.program.artifact import write_program
from lutforge.program.core import GemvCoreParams
from lutforge.compiler.search import loss_weights, search_budget
from lutforge.compiler.session import parse_method_config

LANES = 8
TYPES = {
    "kmeans, one scale per row block": LayerMethod(v=2, c_a=16, c_w=16, group_rows=16),
    "act-moment, one scale per layer": LayerMethod(v=2, c_a=16, c_w=16, group_rows=16, fit="act",
                                                   scales="layer"),
    "gptq, Hadamard, scale per (position, block)": LayerMethod(v=2, c_a=16, c_w=16, group_rows=16,
                                                               fit="gptq", hadamard=16, scale_positions=1),
    "gptq, residual, 4-bit tables": LayerMethod(v=2, c_a=16, c_w=16, group_rows=16, fit="gptq",
                                                residual=True, table_bits=4),
}


def test_streamed_bits_formula():
    # The artifact setting on a 1536 x 576 layer: 8 table bits + 2 index bits per weight, plus one
    # 48-bit scale/zero-point cell per row block (3 blocks).
    art = LayerMethod(v=2, c_a=64, c_w=16, group_rows=512, table_bits=8)
    assert streamed_bits(art, 1536, 576) == pytest.approx(64 * 16 * 8 / (512 * 2) + 4 / 2 + 48 * 3 / (1536 * 576))
    assert streamed_bits(LayerMethod(v=2, c_a=64, c_w=16, residual=True), 1536, 576) == pytest.approx(
        2 * (64 * 16 * 8 / (1536 * 2) + 2 + 48 / (1536 * 576)))
    assert streamed_bits(LayerMethod(kind="mxint4"), 576, 576) == 4.25
    assert streamed_bits(LayerMethod(kind="bf16"), 576, 576) == 16


def _layer(rng, n=40, k=64):
    w = rng.standard_normal((n, k)).astype(np.float32)
    x = (rng.standard_normal((300, k)) * np.linspace(0.2, 2.0, k)).astype(np.float32)
    return w, x


def _lowered(fitted, tag):
    return [lower_layer(f"{tag}.{i}", s, LANES, 64) for i, s in enumerate(to_lut_layers(fitted))]


def _program_output(driver, lows, fitted, x):
    xr = hadamard_t(torch.from_numpy(x), fitted.method.hadamard).numpy() if fitted.method.hadamard else x
    return sum(driver.linear(low.name, xr) for low in lows)


@pytest.mark.parametrize("kind", list(TYPES))
def test_fitted_float_model_agrees_with_the_golden_program(kind, tmp_path):
    rng = np.random.default_rng(list(TYPES).index(kind))
    w, x = _layer(rng)
    fitted = fit_layer(w, x, TYPES[kind])
    lows = _lowered(fitted, "l")
    golden = HostDriver(write_program(tmp_path, lows, config={}, source={}), get_backend("golden"))
    xt = (rng.standard_normal((5, w.shape[1])) * 1.5).astype(np.float32)
    want = _program_output(golden, lows, fitted, xt)
    got = fitted.forward(torch.from_numpy(xt)).double().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    # The fitted layer approximates W x (the LUT layer is a quantized linear, not noise).
    ref = xt.astype(np.float64) @ w.T.astype(np.float64)
    assert np.linalg.norm(got - ref) < 0.8 * np.linalg.norm(ref)


def test_output_aware_fit_beats_plain_kmeans():
    rng = np.random.default_rng(7)
    w, x = _layer(rng, 64, 128)
    ref = torch.from_numpy(x).double() @ torch.from_numpy(w).double().T
    errs = {}
    for fit in ("kmeans", "gptq"):
        f = fit_layer(w, x, LayerMethod(v=2, c_a=16, c_w=8, fit=fit, table_bits=0))
        errs[fit] = float(((f.forward(torch.from_numpy(x)).double() - ref) ** 2).sum())
    assert errs["gptq"] < errs["kmeans"]


@pytest.mark.slow
def test_sim_equals_golden_for_each_method_type(tmp_path):
    rng = np.random.default_rng(3)
    lows, fits = [], {}
    for i, (kind, m) in enumerate(TYPES.items()):
        w, x = _layer(rng)
        fits[kind] = fit_layer(w, x, m)
        lows += _lowered(fits[kind], f"t{i}")
    program = write_program(tmp_path, lows, config={}, source={})
    golden = HostDriver(program, get_backend("golden"))
    sim = HostDriver(program, get_backend("sim", core=GemvCoreParams(chains=4, max_positions=64)))
    for low in lows:
        x_q = golden.quantize(low.name, rng.standard_normal((2, low.in_features)))
        np.testing.assert_array_equal(sim.run_int(low.name, x_q).acc, golden.run_int(low.name, x_q).acc)


def test_search_meets_budget_and_matches_brute_force():
    sizes = {"a": (4, 8), "b": (8, 8), "c": (2, 16)}
    rng = np.random.default_rng(0)
    bits = {l: {"lo": 2.0, "mid": 4.0, "hi": 8.0} for l in sizes}
    errors = {l: dict(zip(("lo", "mid", "hi"), sorted(rng.random(3), reverse=True))) for l in sizes}
    total = sum(n * k for n, k in sizes.values())
    choice = search_budget(errors, bits, sizes, 4.5)
    mean = sum(bits[l][c] * sizes[l][0] * sizes[l][1] for l, c in choice.items()) / total
    assert mean <= 4.5
    feasible = [dict(zip(sizes, combo)) for combo in itertools.product(("lo", "mid", "hi"), repeat=3)
                if sum(bits[l][c] * sizes[l][0] * sizes[l][1] for l, c in zip(sizes, combo)) / total <= 4.5]
    brute = min(sum(errors[l][c] for l, c in ch.items()) for ch in feasible)
    got = sum(errors[l][c] for l, c in choice.items())
    # Lagrangian plus greedy fill: optimal up to one layer's step; never worse than a uniform choice.
    worst_step = max(max(e.values()) - min(e.values()) for e in errors.values())
    assert brute <= got <= brute + worst_step
    assert got <= min(sum(errors[l][c] for l in sizes) for c in ("lo", "mid"))
    with pytest.raises(ValueError, match="below the cheapest"):
        search_budget(errors, bits, sizes, 1.0)


def test_configuration_errors_name_the_key():
    with pytest.raises(ValueError, match=r"lut_methods.default.c_a = 512 is not allowed"):
        parse_method_config({"lut_methods": {"default": {"c_a": 512}}})
    with pytest.raises(ValueError, match=r"Unknown option lut_methods.layers.x.bogus"):
        parse_method_config({"lut_methods": {"layers": {"x": {"bogus": 1}}}})
    assert parse_method("mxint4").kind == "mxint4"
    with pytest.raises(ValueError, match="has no LUT core mapping"):
        to_lut_layers(fit_layer(*_layer(np.random.default_rng(1)), LayerMethod(c_a=4, c_w=4, scales="artifact")))


@pytest.mark.slow
def test_run_cli_reports_perplexity_and_bits(tmp_path):
    from lutforge.cli import main

    v, c_a, c_w, b = 2, 16, 16, 8
    cfg = tmp_path / "m.yaml"
    cfg.write_text("name: m\nmodel: smollm2\nlut_methods:\n  default: mxint4\n"
                   f"  layers:\n    layers.0.mlp.up: {{kind: lut, v: {v}, c_a: {c_a}, c_w: {c_w}, "
                   f"table_bits: {b}}}\n")
    out = tmp_path / "r.json"
    assert main(["run", "--model", "smollm2", "--config", str(cfg), "--windows", "1", "--no-fp32",
                 "--json", str(out)]) == 0
    import json
    r = json.loads(out.read_text())
    assert 1 < r["perplexity"] < 1e3
    # The streamed bits of this configuration, from SmolLM2-135M's published shapes (30 blocks;
    # hidden 576, MLP 1536, 9 query and 3 key/value heads of 64) and the formula of
    # docs/quantization.md: MXINT4 is 4 bits plus an 8-bit scale per 32 weights; the LUT layer
    # (1536 x 576, no row blocks or scale cells configured: one of each) streams its whole table,
    # its 4-bit weight indices and one 48-bit scale cell.
    hidden, mlp, kv = 576, 1536, 3 * 64
    block = [hidden * hidden, kv * hidden, kv * hidden, hidden * hidden] + [mlp * hidden] * 3
    weights = 30 * sum(block)
    positions = hidden // v
    lut_bits = positions * c_a * c_w * b + mlp * positions * np.log2(c_w) + 48
    mxint4 = 4 + 8 / 32
    want = (mxint4 * (weights - mlp * hidden) + lut_bits) / weights
    assert r["bits_per_weight"] == pytest.approx(want, rel=1e-9)


def test_loss_weights_scale_each_layer_by_its_probed_loss_per_error():
    errors = {"a": {"lut": 0.1, "mxint4": 0.01}, "b": {"lut": 0.3, "mxint4": 0.02},
              "c": {"lut": float("inf"), "mxint4": 0.03}, "d": {"lut": 0.4, "mxint4": 0.01}}
    alpha = loss_weights(errors, {"a": ("lut", 1.0), "b": ("lut", 0.03), "d": ("lut", 0.4)})
    assert alpha["a"] == pytest.approx(10.0) and alpha["b"] == pytest.approx(0.1)
    assert alpha["c"] == pytest.approx(1.0)  # unprobed: the median of 10, 0.1 and 1
    # A decrease is the probe's noise: increases within it count as the noise, 0.2 here.
    noisy = loss_weights(errors, {"a": ("lut", -0.2), "b": ("lut", 0.03), "d": ("lut", 0.4)})
    assert noisy["a"] == pytest.approx(0.2 / 0.1) and noisy["b"] == pytest.approx(0.2 / 0.3)
    assert noisy["d"] == pytest.approx(1.0)  # resolved: 0.4 above the noise
    # One layer can go to the cheap LUT method: by output error alone it is a (least error), by
    # the loss each layer was measured to cost it is b.
    bits = {l: {"lut": 2.0, "mxint4": 4.25} for l in errors}
    sizes = {l: (8, 8) for l in errors}
    weighted = {l: {c: alpha[l] * e for c, e in row.items()} for l, row in errors.items()}
    assert [l for l, c in search_budget(errors, bits, sizes, 3.7).items() if c == "lut"] == ["a"]
    assert [l for l, c in search_budget(weighted, bits, sizes, 3.7).items() if c == "lut"] == ["b"]
    with pytest.raises(ValueError, match=r"No layer was probed with a finite, non-zero output error"):
        loss_weights({"a": {"lut": 0.0}}, {"a": ("lut", 1.0)})


def test_changing_the_fitting_code_invalidates_cached_fits(monkeypatch, tmp_path):
    """The fit cache is keyed on the source of the code that fits (not a hand-kept version), so a
    fit made by older code is refitted, not reused."""
    import sys
    import types

    from lutforge.compiler import lut_methods
    from lutforge.compiler.lut_methods import fit_cache_path

    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    w = rng.standard_normal((32, 16)).astype(np.float32)
    x = rng.standard_normal((64, 16)).astype(np.float32)
    lut, mx4 = LayerMethod(v=2, c_a=16, c_w=16, group_rows=16), LayerMethod(kind="mxint4")
    fits = []

    def counting_fit(weight, calibration, m, device):
        fits.append(m)
        return fit_layer(weight, calibration, m, device)

    monkeypatch.setattr(lut_methods, "fit_layer", counting_fit)

    def fit_in_a_new_session(m):
        return lut_methods.cached_fit(w, x, m)

    fit_in_a_new_session(lut)
    fit_in_a_new_session(lut)
    assert fits == [lut]  # the second session read the cache
    old_lut, old_mx4 = (fit_cache_path(tmp_path, w, x, m) for m in (lut, mx4))

    # The same module with one more line: what a code change looks like to the cache.
    name = "lutforge.golden.lut_tables"
    real = sys.modules[name]
    changed = tmp_path / "lut_tables.py"
    changed.write_text(Path(real.__file__).read_text() + "\n# changed\n")
    edited = types.ModuleType(name)
    edited.__dict__.update(real.__dict__)
    edited.__file__ = str(changed)
    monkeypatch.setitem(sys.modules, name, edited)

    assert fit_cache_path(tmp_path, w, x, lut) != old_lut
    assert fit_cache_path(tmp_path, w, x, mx4) == old_mx4  # MXINT4 fits do not run that code
    fit_in_a_new_session(lut)
    assert fits == [lut, lut]


def test_artifact_tables_round_half_steps_away_from_zero():
    # v = 1 and A = 1: the table is the weight codebook. Its range -1 .. 14.9375 makes scale 1/16 and
    # zero point 16 exactly, so entry lo + (k + 1/2) / 16 sits on a half step; the LUT-LLM
    # authors' std::round takes it to code k + 1, i.e. back to lo + (k + 1) / 16.
    from lutforge.compiler.lut_methods import FittedLayer

    lo, step = -1.0, 0.0625
    entries = [lo, lo + 255 * step] + [lo + (k + 0.5) * step for k in range(255)]
    fitted = FittedLayer(LayerMethod(v=1, c_a=1, c_w=len(entries), scales="artifact"), 1, 1,
                         act_codebooks=torch.ones(1, 1, 1),
                         weight_codebooks=[torch.tensor(entries, dtype=torch.float32).reshape(1, 1, -1, 1)])
    want = [lo, lo + 255 * step] + [lo + (k + 1) * step for k in range(255)]
    assert fitted.tables()[0].reshape(-1).tolist() == want


@pytest.mark.parametrize("m", [LayerMethod(kind="mxint4"), LayerMethod(kind="nvfp4", act="mxfp8_e4m3"),
                               LayerMethod(v=2, c_a=16, c_w=16, group_rows=16, table_bits=4, hadamard=8)],
                         ids=["mxint4", "nvfp4-e4m3", "lut"])
def test_the_search_scores_the_compiled_program_on_the_golden_backend(m, tmp_path, monkeypatch):
    # One truth: Session.layer_error is the error of what `compile` writes and `run` executes (the
    # Program read back from disk, run through the registry's golden backend), not of a float model.
    import types

    from lutforge.compiler import session
    from lutforge.compiler.layer_quant import quantize_method
    from lutforge.compiler.lower import lower
    from lutforge.compiler.lut_methods import cached_fit
    from lutforge.program.artifact import read_program

    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(4)
    w, x = _layer(rng, 48, 64)
    held = _layer(rng, 48, 64)[1]
    s = session.Session.__new__(session.Session)
    s.ref = types.SimpleNamespace(weight=lambda name: torch.from_numpy(w))
    s.calib = types.SimpleNamespace(inputs={"layers.0.mlp.up": x})
    s._heldout = {"layers.0.mlp.up": held}
    s.core, s.device = GemvCoreParams(max_positions=64), "cpu"
    score = s.layer_error("layers.0.mlp.up", m, rows=100)

    # Fitted on the calibration rows, scored on the first held-out ones.
    low = lower("layers.0.mlp.up", quantize_method("layers.0.mlp.up", w, x, m), LANES, 64)
    program = read_program(write_program(tmp_path / "p", [low], config={}, source={}).path)
    rows = held[:100]
    y = HostDriver(program, get_backend("golden")).linear("layers.0.mlp.up", rows)
    ref = rows.astype(np.float64) @ w.T.astype(np.float64)
    assert score == float(((y - ref) ** 2).sum() / (ref ** 2).sum())
    float_model = cached_fit(w, x, m).forward(torch.from_numpy(rows)).double().numpy()
    assert score != float(((float_model - ref) ** 2).sum() / (ref ** 2).sum())
