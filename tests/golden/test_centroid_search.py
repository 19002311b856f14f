"""Centroid search against a plain-Python reference (np.float32 scalars, explicit loops)."""

import ml_dtypes
import numpy as np
import pytest

from lutforge.golden.centroid_search import distances, int8_operands, search, search_positions


def ref_distance(x, c, metric):
    if isinstance(x[0], (np.int8, np.int64, int)) and not isinstance(x[0], np.floating):
        diffs = [abs(int(a) - int(b)) for a, b in zip(x, c)]
        return max(diffs) if metric == "linf" else sum(d * d for d in diffs)
    with np.errstate(invalid="ignore", over="ignore"):
        diffs = [abs(np.float32(a) - np.float32(b)) for a, b in zip(x, c)]
        if metric == "linf":
            best = np.float32(0)
            for d in diffs:
                if np.isnan(d):
                    return np.float32("nan")
                best = d if d > best else best
            return best
        total = np.float32(0)
        for d in diffs:
            total = np.float32(total + np.float32(d * d))
        return total


def ref_search(x, codebook, metric):
    best, best_d = 0, None
    for i, c in enumerate(codebook):
        d = ref_distance(list(x), list(c), metric)
        if best_d is None:
            best, best_d = i, d
        elif np.isnan(best_d) and not np.isnan(d):
            best, best_d = i, d
        elif not np.isnan(d) and d < best_d:
            best, best_d = i, d
    return best


@pytest.mark.parametrize("metric", ["linf", "l2"])
@pytest.mark.parametrize("v,count", [(1, 16), (2, 48), (4, 64), (8, 256)])
def test_float_search_matches_reference(v, count, metric):
    rng = np.random.default_rng(v * 1000 + count)
    codebook = rng.standard_normal((count, v)).astype(np.float32)
    # Coarse values make ties common; a few exact codebook copies test tie-to-lowest.
    x = np.round(rng.standard_normal((40, v)) * 2).astype(np.float32) / 2
    codebook[: count // 2] = np.round(codebook[: count // 2] * 2) / 2
    x[:4] = codebook[[1, 3, 5, 7][:4]] if count > 7 else x[:4]
    got = search(x, codebook, metric)
    want = [ref_search(row, codebook, metric) for row in x]
    assert got.tolist() == want
    d = distances(x, codebook, metric)
    for i, row in enumerate(x):
        for j in range(count):
            assert d[i, j].tobytes() == np.float32(ref_distance(list(row), list(codebook[j]), metric)).tobytes()


@pytest.mark.parametrize("metric", ["linf", "l2"])
@pytest.mark.parametrize("v", [1, 2, 4, 8])
def test_int8_search_matches_reference(v, metric):
    rng = np.random.default_rng(v)
    codebook = rng.integers(-128, 128, (64, v)).astype(np.int8)
    x = rng.integers(-128, 128, (60, v)).astype(np.int8)
    x[0] = -128
    codebook[5] = 127
    got = search(x, codebook, metric)
    want = [ref_search([int(a) for a in row], [[int(b) for b in c] for c in codebook], metric) for row in x]
    assert got.tolist() == want
    d = distances(x, codebook, metric)
    assert d.dtype == np.int32
    assert int(distances(np.full((1, v), -128, np.int8), np.full((1, v), 127, np.int8), metric).max()) == (
        255 if metric == "linf" else v * 255 * 255
    )


def test_ties_go_to_lowest_index():
    codebook = np.array([[2.0, 0.0], [0.0, 0.0], [0.0, 0.0], [-2.0, 0.0]], np.float32)
    x = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-0.0, -0.0]], np.float32)
    assert search(x, codebook, "linf").tolist() == [1, 0, 1, 1]
    assert search(x, codebook, "l2").tolist() == [1, 0, 1, 1]


@pytest.mark.parametrize("metric", ["linf", "l2"])
def test_nan_never_wins_and_all_nan_returns_zero(metric):
    nan, inf = np.float32("nan"), np.float32("inf")
    codebook = np.array([[nan, 0.0], [inf, 0.0], [5.0, 0.0], [0.0, nan]], np.float32)
    x = np.array(
        [[0.0, 0.0], [inf, 0.0], [nan, 0.0], [1e30, 0.0], [-inf, 0.0]], np.float32
    )
    got = search(x, codebook, metric).tolist()
    want = [ref_search(row, codebook, metric) for row in x]
    assert got == want
    # x = inf: index 1 gives inf - inf = NaN, index 2 gives inf, which beats NaN.
    assert got[:3] == [2, 2, 0]
    # x = 1e30 with l2 overflows to inf at index 2; index 1 is inf too: lowest non-NaN wins.
    assert got[3] == (2 if metric == "linf" else 1)


def test_bfloat16_encodings_equal_float32_values():
    rng = np.random.default_rng(3)
    codebook = rng.standard_normal((48, 4)).astype(ml_dtypes.bfloat16)
    x = rng.standard_normal((50, 4)).astype(ml_dtypes.bfloat16)
    for metric in ("linf", "l2"):
        got = search(x, codebook, metric)
        assert got.tolist() == search(x.astype(np.float32), codebook.astype(np.float32), metric).tolist()
        assert got.tolist() == [ref_search(r, codebook.astype(np.float32), metric) for r in x.astype(np.float32)]


def test_search_positions_pads_k():
    rng = np.random.default_rng(4)
    acts = rng.standard_normal((3, 16, 4)).astype(np.float32)
    acts[2, :, 2:] = 0.0  # K = 10: the last position has two padded coordinates
    x = rng.standard_normal((5, 10)).astype(np.float32)
    got = search_positions(x, acts, "l2")
    for b in range(5):
        padded = list(x[b]) + [np.float32(0), np.float32(0)]
        for p in range(3):
            assert got[b, p] == ref_search(padded[p * 4:(p + 1) * 4], acts[p], "l2")


def test_int8_operands_reference():
    x = np.array([[0.5, -1.0]], np.float32)
    cb = np.array([[2.54, 0.0], [-0.01, 1.0]], np.float32)
    xq, cq, scale = int8_operands(x, cb)
    assert scale == pytest.approx(2.54 / 127, rel=1e-6)
    assert xq.tolist() == [[round(0.5 / scale), round(-1.0 / scale)]]
    assert cq.tolist() == [[127, 0], [round(np.float32(-0.01) / scale), round(1.0 / scale)]]
    xq, _, _ = int8_operands(np.array([[10.0, -10.0]], np.float32), cb, scale=0.01)
    assert xq.tolist() == [[127, -127]]


def test_search_errors():
    cb = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match=r"Distance metric 'l1' is not supported; use 'linf' or 'l2'\."):
        search(np.zeros(2, np.float32), cb, "l1")
    with pytest.raises(TypeError, match=r"has dtype float64; the centroid search takes float32, bfloat16"):
        search(np.zeros(2), cb)
    with pytest.raises(TypeError, match=r"the integer search needs both int8"):
        search(np.zeros(2, np.int8), cb)
    with pytest.raises(ValueError, match=r"Sub-vector length v=3 is not supported; use one of 1, 2, 4 or 8\."):
        search(np.zeros(3, np.float32), np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"do not match a codebook of shape \(4, 2\)"):
        search(np.zeros(4, np.float32), cb)
    with pytest.raises(ValueError, match=r"Activations with 7 features do not match 3 positions of length v=2"):
        search_positions(np.zeros(7, np.float32), np.zeros((3, 4, 2), np.float32))
    with pytest.raises(ValueError, match=r"needs finite activations and codebooks"):
        int8_operands(np.array([np.nan, 0], np.float32), cb)


@pytest.mark.parametrize("metric", ["linf", "l2"])
def test_int8_search_exhaustive_for_v1(metric):
    # Every int8 activation against a 256-entry codebook with repeats (ties everywhere).
    codebook = np.random.default_rng(11).integers(-128, 128, (256, 1)).astype(np.int8)
    x = np.arange(-128, 128).astype(np.int8)[:, None]
    got = search(x, codebook, metric).tolist()
    book = [int(c[0]) for c in codebook]
    assert got == [ref_search([int(a[0])], [[b] for b in book], metric) for a in x]
