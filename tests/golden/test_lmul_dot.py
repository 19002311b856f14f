"""golden.lmul_dot against a plain-Python tree and accumulation whose additions come from ml_dtypes.

Each oracle addition is the float64 sum (exact for two values of these formats, or rounded once with
53 >= 2p + 2 bits, so the second rounding is innocuous) cast to the accumulation format by
ml_dtypes/NumPy. The L-Mul products come from golden.lmul, tested on its own in test_lmul.py.
"""

import math

import ml_dtypes
import numpy as np
import pytest

from lutforge.golden.convert import encode
from lutforge.golden.formats import get
from lutforge.golden.lmul import lmul
from lutforge.golden.lmul_dot import lmul_attention_scores, lmul_dot

DTYPES = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2, "bf16": ml_dtypes.bfloat16,
          "fp32": np.float32}


def to_float(enc, name):
    fmt = get(name)
    return float(np.array([enc], fmt.dtype).view(DTYPES[name]).astype(np.float64)[0])


def oracle_add(x: float, y: float, name: str) -> float:
    with np.errstate(all="ignore"):
        return float(np.array([x + y], np.float64).astype(DTYPES[name]).astype(np.float64)[0])


def oracle_dot(a_row, b_row, fmt, lanes, acc):
    products = [to_float(p, fmt) for p in lmul(np.array(a_row), np.array(b_row), fmt).tolist()]
    beats = []
    for start in range(0, len(products), lanes):
        level = products[start:start + lanes]
        while len(level) > 1:
            paired = [oracle_add(level[i], level[i + 1], acc) for i in range(0, len(level) - 1, 2)]
            level = paired + ([level[-1]] if len(level) % 2 else [])
        beats.append(level[0])
    total = beats[0]
    for s in beats[1:]:
        total = oracle_add(total, s, acc)
    return total


def same(x: float, y: float) -> bool:
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == y and math.copysign(1, x) == math.copysign(1, y)


@pytest.mark.parametrize("fmt,lanes,acc", [
    ("e4m3", 4, "e4m3"), ("e4m3", 3, "fp32"), ("e5m2", 2, "e5m2"), ("e5m2", 4, "fp32"),
    ("bf16", 4, "bf16"), ("bf16", 2, "fp32"), ("fp32", 4, "fp32"),
])
def test_dot_equals_plain_python_tree(fmt, lanes, acc):
    rng = np.random.default_rng(3)
    vectors, beats = 150, 3
    a = encode(rng.standard_normal((vectors, lanes * beats)) * 3, fmt)
    b = encode(rng.standard_normal((vectors, lanes * beats)), fmt)
    # Exact cancellations (x·y then -x·y in the same beat) and raw encodings, specials included.
    a[:20, 1] = a[:20, 0]
    b[:20, 1] = b[:20, 0] ^ get(fmt).sign_mask
    raw = rng.integers(0, 1 << get(fmt).width, (20, lanes * beats)).astype(a.dtype)
    a[-20:] = raw
    got = lmul_dot(a, b, fmt, lanes=lanes, acc_format=acc)
    for i in range(vectors):
        want = oracle_dot(a[i].tolist(), b[i].tolist(), fmt, lanes, acc)
        assert same(to_float(int(got[i]), acc), want), f"vector {i}: got {to_float(int(got[i]), acc)}, want {want}"


def test_pairing_order_is_the_documented_one():
    # With offset 0x38 (no 2^-l term) L-Mul by 1.0 is exact, so the products are 8, .5, .5, 1.
    e4m3 = get("e4m3")
    x = encode(np.array([8.0, 0.5, 0.5, 1.0]), e4m3)
    ones = encode(np.ones(4), e4m3)
    # Tree: (8 + .5) + (.5 + 1) = 8 + 1.5 = 9.5, a tie in e4m3 (spacing 1 at 8) that goes to even 10.
    assert to_float(int(lmul_dot(x, ones, e4m3, lanes=4, offset=0x38)), "e4m3") == 10.0
    # One lane is the sequential sum: ((8 + .5) + .5) + 1 = (8 + .5) + 1 = 8 + 1 = 9, each tie to even.
    assert to_float(int(lmul_dot(x, ones, e4m3, lanes=1, offset=0x38)), "e4m3") == 9.0
    # In fp32 nothing rounds: 10.
    assert to_float(int(lmul_dot(x, ones, e4m3, lanes=1, acc_format="fp32", offset=0x38)), "fp32") == 10.0


def test_attention_scores_are_dot_products_per_key():
    rng = np.random.default_rng(4)
    q = encode(rng.standard_normal(8), "e4m3")
    keys = encode(rng.standard_normal((5, 8)), "e4m3")
    scores = lmul_attention_scores(q, keys, "e4m3", lanes=4, acc_format="fp32")
    assert scores.tolist() == [int(lmul_dot(q, k, "e4m3", lanes=4, acc_format="fp32")) for k in keys]


@pytest.mark.parametrize("call,message", [
    (lambda: lmul_dot(np.zeros(6, np.uint8), np.zeros(6, np.uint8), "e4m3", lanes=4),
     r"Vector length 6 is not a multiple of lanes=4; pad the vectors with zeros to 8 elements"),
    (lambda: lmul_dot(np.zeros(4, np.uint16), np.zeros(4, np.uint16), "bf16", lanes=4, acc_format="fp16"),
     r"Accumulation format 'fp16' cannot hold every bf16 product exactly"),
    (lambda: lmul_dot(np.zeros(4, np.uint8), np.zeros(4, np.uint8), "e4m3", lanes=0),
     r"^lanes=0 is not an integer 1 or more; a dot product takes 1 or more products per beat\.$"),
    (lambda: lmul_attention_scores(np.zeros(4, np.uint8), np.zeros((2, 5), np.uint8), "e4m3", lanes=4),
     r"Attention scores need q of shape \(D,\) and keys of shape \(n_keys, D\); got \(4,\) and \(2, 5\)\."),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
