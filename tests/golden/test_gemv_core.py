"""Golden GEMV-core model and memory images against plain-Python loops over the stated layout."""

import numpy as np
import pytest

from lutforge.golden.centroid_search import int8_operands
from lutforge.golden.gemv_core import core_images, gemv_core
from lutforge.golden.lut_layer import co_quantize


def _layer(metric="linf", n=21, k=13, v=2, c_a=16, c_w=16, g=8, **kw):
    rng = np.random.default_rng(n * k)
    layer = co_quantize(rng.standard_normal((n, k)).astype(np.float32),
                        rng.standard_normal((64, k)).astype(np.float32),
                        v=v, c_a=c_a, c_w=c_w, group_rows=g, metric=metric, iterations=2, **kw)
    p = layer.num_positions
    x = np.zeros(p * v, dtype=np.float32)
    x[:k] = rng.standard_normal(k)
    x_q, cb_q, _ = int8_operands(x.reshape(p, v), layer.act_codebooks)
    return layer, x_q, cb_q


def _argmin(x, book, metric):
    best, best_d = 0, None
    for i, c in enumerate(book):
        diffs = [int(a) - int(b) for a, b in zip(x, c)]
        d = max(abs(t) for t in diffs) if metric == "linf" else sum(t * t for t in diffs)
        if best_d is None or d < best_d:
            best, best_d = i, d
    return best


@pytest.mark.parametrize("metric,lanes", [("linf", 4), ("l2", 8)])
def test_core_result_equals_a_plain_loop(metric, lanes):
    layer, x_q, cb_q = _layer(metric, granularity="layer")
    got = gemv_core(x_q, cb_q, layer, lanes, metric)
    a = [_argmin(x_q[p], cb_q[p], metric) for p in range(layer.num_positions)]
    tiles = -(-layer.out_features // lanes)
    assert got.shape == (tiles, lanes)
    for n in range(tiles * lanes):
        want = 0
        if n < layer.out_features:
            want = sum(int(layer.table_codes[p, n // layer.group_rows, a[p], layer.widx[n, p]])
                       for p in range(layer.num_positions))
        assert got[n // lanes, n % lanes] == want


def _bits(words, start, count):
    value = sum(int(w) << (32 * i) for i, w in enumerate(words))
    return (value >> start) & ((1 << count) - 1)


def test_memory_images_follow_the_documented_layout():
    lanes = 4
    layer, x_q, cb_q = _layer(granularity="layer", c_w=256, n=10, k=7)
    im = core_images(x_q, cb_q, layer, lanes)
    p_count, c_a, v = layer.num_positions, layer.c_a, layer.v
    blocks = -(-layer.out_features // layer.group_rows)
    assert im.tab.shape[0] == blocks * p_count * c_a and im.cb.shape[0] == p_count
    for p in range(p_count):
        for i in range(c_a):
            for j in range(v):
                assert _bits(im.cb[p], 8 * (i * v + j), 8) == int(cb_q[p, i, j]) & 0xFF
        assert all(_bits([im.x[p] & 0xFFFFFFFF, im.x[p] >> 32], 8 * j, 8) == int(x_q[p, j]) & 0xFF
                   for j in range(v))
        for g in range(blocks):
            for a in (0, c_a - 1):
                word = im.tab[(g * p_count + p) * c_a + a]
                assert [_bits(word, 8 * w, 8) for w in range(layer.c_w)] == list(layer.table_codes[p, g, a])
        for t in range(-(-layer.out_features // lanes)):
            for i in range(lanes):
                n = t * lanes + i
                want = int(layer.widx[n, p]) if n < layer.out_features else 0
                assert _bits(im.idx[t * p_count + p], 8 * i, 8) == want
    d = im.descriptor
    word = im.descriptor_word()
    assert [(word >> s) & 0xFFFF for s in (0, 16, 32)] == [p_count, layer.out_features, layer.group_rows // lanes]
    assert d["cb_base"] == d["tab_base"] == d["idx_base"] == 0 and word >> 48 == 0


def test_layers_the_core_cannot_run_in_one_pass_are_refused():
    layer, x_q, cb_q = _layer(granularity="block")
    with pytest.raises(ValueError, match=r"sums one position group per run; this layer has 7, so run it once per group"):
        gemv_core(x_q, cb_q, layer, 4)
    layer, x_q, cb_q = _layer(granularity="layer")
    with pytest.raises(ValueError, match=r"Row blocks of G=8 rows are not a whole number of 16-lane tiles"):
        core_images(x_q, cb_q, layer, 16)
