"""K-means codebooks and weight index assignment."""

import numpy as np
import pytest

from lutforge.golden.codebooks import (
    assign_weight_indices,
    kmeans,
    train_activation_codebooks,
    train_weight_codebooks,
)


def test_kmeans_is_deterministic_under_a_seed():
    data = np.random.default_rng(0).standard_normal((300, 4))
    a = kmeans(data, 48, seed=7, iterations=10)
    b = kmeans(data, 48, seed=7, iterations=10)
    c = kmeans(data, 48, seed=8, iterations=10)
    assert a.dtype == np.float32 and a.shape == (48, 4)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(1)
    centres = np.array([[-10.0, 0.0], [0.0, 10.0], [10.0, 0.0]])
    data = np.concatenate([c + 0.1 * rng.standard_normal((50, 2)) for c in centres])
    got = kmeans(data, 3, seed=0, iterations=10)
    for c in centres:
        assert np.min(np.max(np.abs(got - c), axis=1)) < 0.1
    # Lloyd fixed point: each centroid is the float64 mean of the points nearest to it.
    labels = [int(np.argmin([np.sum((p - g.astype(np.float64)) ** 2) for g in got])) for p in data]
    for i in range(3):
        mean = data[[j for j, lab in enumerate(labels) if lab == i]].mean(axis=0)
        assert np.allclose(got[i], mean, atol=1e-6)


def test_kmeans_with_fewer_points_than_centroids_repeats_points():
    data = np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]])
    got = kmeans(data, 16, seed=0, iterations=5)
    assert {tuple(r) for r in got.tolist()} == {(1.0, 2.0), (3.0, 4.0)}


def test_activation_codebooks_pad_k_with_zeros():
    calib = np.random.default_rng(2).standard_normal((100, 7)).astype(np.float32)
    acts = train_activation_codebooks(calib, 4, 16, seed=0, iterations=5)
    assert acts.shape == (2, 16, 4)
    assert np.all(acts[1, :, 3] == 0.0)
    assert acts.tobytes() == train_activation_codebooks(calib, 4, 16, seed=0, iterations=5).tobytes()


def test_weight_indices_are_nearest_centroids_and_last_block_is_partial():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((11, 5)).astype(np.float32)
    cb, widx = train_weight_codebooks(w, 2, 4, 4, seed=0, iterations=5)
    assert cb.shape == (3, 3, 4, 2) and widx.shape == (11, 3) and widx.dtype == np.uint8
    wp = np.concatenate([w, np.zeros((11, 1), np.float32)], axis=1)
    for n in range(11):
        for p in range(3):
            sub = [float(t) for t in wp[n, 2 * p:2 * p + 2]]
            dist = [sum((a - float(b)) ** 2 for a, b in zip(sub, c)) for c in cb[p, n // 4]]
            assert widx[n, p] == dist.index(min(dist))
    # The last block (rows 8..10) is trained on its three rows only: every row is a centroid.
    for n in range(8, 11):
        for p in range(3):
            assert np.array_equal(cb[p, 2, widx[n, p]], wp[n, 2 * p:2 * p + 2])
    assert np.array_equal(assign_weight_indices(w, cb, 4), widx)


def test_codebook_errors():
    calib = np.zeros((10, 4), np.float32)
    with pytest.raises(ValueError, match=r"Sub-vector length v=3 is not supported; use one of 1, 2, 4 or 8\."):
        train_activation_codebooks(calib, 3, 16)
    with pytest.raises(ValueError, match=r"^C_a=300 is not an integer from 1 to 256; more centroids do not fit an 8-bit index\.$"):
        train_activation_codebooks(calib, 2, 300)
    with pytest.raises(ValueError, match=r"^C_w=0 is not an integer from 1 to 256; more centroids do not fit an 8-bit index\.$"):
        train_weight_codebooks(calib, 2, 0, 4)
    with pytest.raises(ValueError, match=r"^Row-block size G=0 is not an integer 1 or more; a row block holds 1 or more output rows\.$"):
        train_weight_codebooks(calib, 2, 4, 0)
    with pytest.raises(ValueError, match=r"The calibration activations contain NaN or Inf; k-means needs finite"):
        train_activation_codebooks(np.full((3, 2), np.nan, np.float32), 2, 2)
    with pytest.raises(ValueError, match=r"Calibration activations must be a non-empty \(n_samples, K\) array"):
        train_activation_codebooks(np.zeros((0, 4), np.float32), 2, 2)
    with pytest.raises(ValueError, match=r"^k=0 is not an integer 1 or more; k-means needs 1 or more centroids\.$"):
        kmeans(calib, 0)
    with pytest.raises(ValueError, match=r"do not match a 10x4 weight with v=2, G=4; expected \(2, 3, C_w, 2\)\."):
        assign_weight_indices(calib, np.zeros((2, 2, 4, 2), np.float32), 4)
