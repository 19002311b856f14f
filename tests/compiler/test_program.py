"""Lowering and the Program directory: round trip, manifest hashes, images equal to the golden core
model's, restartable steps."""

import dataclasses

import numpy as np
import pytest
import yaml

from lutforge.program.host import HostDriver
from lutforge.program.golden import GoldenBackend
from lutforge.compiler.lower import lower_layer, split_runs
from lutforge.program.artifact import ProgramError, decode_layer, quantize_activations, read_program, write_program
from lutforge.golden.gemv_core import core_images, gemv_core
from lutforge.golden.lut_gemv import dequantize, lut_gemv
from lutforge.golden.lut_layer import co_quantize


def small_layer(rng, n=37, k=61, v=2, ppg=None, c_a=16, granularity="block"):
    w = rng.standard_normal((n, k)).astype(np.float32)
    cal = rng.standard_normal((96, k)).astype(np.float32)
    p = -(-k // v)
    kwargs = {"positions_per_group": ppg or p} if granularity == "block" else {}
    return w, co_quantize(w, cal, v=v, c_a=c_a, c_w=16, group_rows=16, granularity=granularity,
                          iterations=2, **kwargs)


def test_round_trip_keeps_every_array_and_hash(tmp_path):
    rng = np.random.default_rng(0)
    _, layer = small_layer(rng, ppg=8)
    low = lower_layer("blk.q", layer, lanes=8, max_positions=64)
    assert [(r.first_position, r.positions) for r in low.runs] == [(0, 8), (8, 8), (16, 8), (24, 7)]
    write_program(tmp_path / "p", [low], config={"name": "t"}, source={"model": "random"})
    manifest = yaml.safe_load((tmp_path / "p" / "manifest.yaml").read_text())
    assert manifest["tools"]["numpy"] == np.__version__ and len(manifest["content_sha256"]) == 64
    assert set(manifest["layers"][0]["files"]) == {"cb", "tab", "idx", "scales", "zero_points"}
    back = read_program(tmp_path / "p").layers["blk.q"]
    for f in dataclasses.fields(low):
        a, b = getattr(low, f.name), getattr(back, f.name)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b), f.name
        else:
            assert a == b, f.name


def test_tampered_image_is_refused(tmp_path):
    rng = np.random.default_rng(1)
    _, layer = small_layer(rng)
    write_program(tmp_path, [lower_layer("l", layer, 8, 64)], config={}, source={})
    tab = tmp_path / "layers" / "l" / "tab.bin"
    data = bytearray(tab.read_bytes())
    data[5] ^= 1
    tab.write_bytes(bytes(data))
    with pytest.raises(ProgramError, match=r"layers/l/tab\.bin has SHA-256 .* but the manifest records"):
        read_program(tmp_path)


def test_images_are_the_golden_core_images_and_decode_back():
    rng = np.random.default_rng(2)
    _, layer = small_layer(rng, ppg=10)
    low = lower_layer("l", layer, 8, 64)
    for (p0, sub), run, (q0, cb, dec) in zip(split_runs(layer), low.runs, decode_layer(low)):
        d = run.descriptor
        img = core_images(np.zeros((sub.num_positions, 2), np.int8), cb, sub, 8)
        assert np.array_equal(low.tab[d["tab_base"]:d["tab_base"] + len(img.tab)], img.tab)
        assert np.array_equal(low.idx[d["idx_base"]:d["idx_base"] + len(img.idx)], img.idx)
        assert np.array_equal(dec.widx, sub.widx) and np.array_equal(dec.table_codes, sub.table_codes)
        assert q0 == p0


def test_golden_backend_is_the_golden_model_per_run_and_dequantizes_like_it():
    rng = np.random.default_rng(3)
    w, layer = small_layer(rng, ppg=12)
    low = lower_layer("l", layer, 8, 64)
    x = rng.standard_normal((3, w.shape[1])).astype(np.float32)
    x_q = quantize_activations(x, low.act_scale, 2)
    acc = GoldenBackend().run_layer(low, x_q).acc
    cbs = decode_layer(low)
    for t in range(3):
        for r, (p0, cb, sub) in enumerate(cbs):
            want = gemv_core(x_q[t, p0:p0 + sub.num_positions], cb, sub, 8).reshape(-1)
            assert np.array_equal(acc[t, r], want)
    # Host dequantization == the golden dequantize of the whole layer on the same indices.
    from lutforge.golden.centroid_search import search
    cb_all = np.concatenate([cb for _, cb, _ in cbs])
    ref = dequantize(lut_gemv(search(x_q, cb_all, "linf"), layer), layer)
    assert np.array_equal(HostDriver.dequantize(low, acc), ref)


def test_activation_scale_covers_every_centroid():
    rng = np.random.default_rng(4)
    _, layer = small_layer(rng)
    low = lower_layer("l", layer, 8, 64)
    cb = decode_layer(low)[0][1]
    assert np.abs(cb).max() == 127
    assert np.allclose(cb * low.act_scale, layer.act_codebooks, atol=low.act_scale / 2 + 1e-7)


def test_lowering_errors_say_what_to_change():
    rng = np.random.default_rng(5)
    _, layer = small_layer(rng, k=200)
    with pytest.raises(ProgramError, match=r"needs 100 positions in one core run but the core holds at "
                                           r"most 64; cut it into runs of at most 64 positions \(quantization"
                                           r"\.positions_per_run, or the LUT method's scale_positions\) or "
                                           r"build the core with core\.max_positions >= 100\.$"):
        lower_layer("l", layer, 8, 64)
    _, art = small_layer(rng, granularity="layer")
    art = dataclasses.replace(art, scheme="artifact")
    with pytest.raises(ProgramError, match="float zero point"):
        lower_layer("l", art, 8, 64)


def test_the_compiler_imports_amaranth_only_for_the_sim_backend():
    import subprocess
    import sys

    code = ("import sys, lutforge.jobs.demo, lutforge.jobs.run, lutforge.program.host, lutforge.program.golden; "
            "print('amaranth' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
