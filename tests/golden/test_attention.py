"""golden.attention: the exact-multiply unit against causal attention in float64 within its derived
bound and against PyTorch's scaled_dot_product_attention; the L-Mul scores equal the L-Mul
attention unit's golden (whose RTL is verified) bit for bit; refusals."""

import numpy as np
import pytest
import torch

from lutforge.golden.attention import attention, attention_bound, attention_scores
from lutforge.golden.convert import decode, encode
from lutforge.golden.lmul_dot import lmul_attention_scores


def heads(fmt, t, s, d, seed):
    rng = np.random.default_rng(seed)
    q, k, v = (encode(rng.normal(size=shape) * 2, fmt) for shape in ((t, d), (s, d), (s, d)))
    return q, k, v, *(decode(a, fmt) for a in (q, k, v))


def causal(qd, kd, vd):
    t, s = len(qd), len(kd)
    scores = qd @ kd.T / np.sqrt(qd.shape[1])
    out = []
    for i in range(t):
        row = scores[i, :s - t + i + 1]
        p = np.exp(row - row.max())
        out.append(p / p.sum() @ vd[:len(row)])
    return np.array(out)


@pytest.mark.parametrize("fmt,acc", [("fp32", None), ("bf16", "fp32"), ("fp16", "fp32")])
@pytest.mark.parametrize("lanes", [1, 4, 64])
@pytest.mark.parametrize("t,s", [(1, 37), (16, 16)])
def test_exact_multiply_is_within_the_derived_bound(fmt, acc, lanes, t, s):
    q, k, v, qd, kd, vd = heads(fmt, t, s, 64, seed=t * 100 + lanes)
    got = decode(attention(q, k, v, fmt, acc=acc, lanes=lanes), fmt)
    assert np.all(np.abs(got - causal(qd, kd, vd)) <= attention_bound(qd, kd, vd, fmt, acc=acc, lanes=lanes))


def test_agrees_with_pytorch_sdpa_within_both_errors():
    """bf16 data, fp32 unit, against PyTorch's fp32 SDPA on the same values: ours within our bound
    of exact; theirs within the bound of an fp32 unit summing one product per beat (the longest
    addition chains, which bound any summation order, and an exp of at most one ulp, below ours)."""
    t, s, d = 8, 40, 64
    q, k, v, qd, kd, vd = heads("bf16", t, s, d, seed=9)
    ours = decode(attention(q, k, v, "bf16", acc="fp32", lanes=8), "bf16")
    mask = torch.from_numpy(np.arange(s)[None, :] <= (s - t + np.arange(t))[:, None])
    theirs = torch.nn.functional.scaled_dot_product_attention(
        *(torch.from_numpy(a.astype(np.float32))[None, None] for a in (qd, kd, vd)), attn_mask=mask)[0, 0].double().numpy()
    tol = attention_bound(qd, kd, vd, "bf16", acc="fp32", lanes=8) + attention_bound(qd, kd, vd, "fp32", lanes=1)
    assert np.all(np.abs(ours - theirs) <= tol)


@pytest.mark.parametrize("fmt,acc,lanes", [("bf16", "fp32", 4), ("e4m3", "fp32", 8), ("fp32", None, 2)])
def test_lmul_scores_equal_the_lmul_attention_unit(fmt, acc, lanes):
    rng = np.random.default_rng(lanes)
    q = encode(rng.normal(size=(3, 16)), fmt)
    k = encode(rng.normal(size=(5, 16)), fmt)
    got = attention_scores(q, k, fmt, acc=acc, mul="lmul", lanes=lanes)
    for i in range(3):
        np.testing.assert_array_equal(got[i], lmul_attention_scores(q[i], k, fmt, lanes=lanes, acc_format=acc))


def test_lmul_attention_differs_from_exact_and_stays_near_it():
    q, k, v, qd, kd, vd = heads("bf16", 4, 12, 64, seed=2)
    exact = decode(attention(q, k, v, "bf16", acc="fp32", lanes=4), "bf16")
    approx = decode(attention(q, k, v, "bf16", acc="fp32", mul="lmul", lanes=4), "bf16")
    assert not np.array_equal(exact, approx)
    # L-Mul's products are within 1/8 of exact (m = 7, the paper's offset), so the outputs, convex
    # mixtures of values of magnitude < 8, move by far less than 1.
    assert np.max(np.abs(exact - approx)) < 0.5


def test_bad_shapes_and_multipliers_are_refused_with_sentences():
    q, k, v, *_ = heads("fp32", 4, 3, 8, seed=0)
    with pytest.raises(ValueError, match=r"Attention needs q \(\.\.\., T, D\), k and v \(\.\.\., S, D\) with T <= S; "
                                         r"got q \(4, 8\)"):
        attention(q, k, v, "fp32")
    with pytest.raises(ValueError, match=r"got q \(2, 3, 8\), k \(3, 3, 8\)"):
        attention(np.stack([q[:3]] * 2), np.stack([k] * 3), np.stack([v] * 3), "fp32")
    with pytest.raises(ValueError, match=r"Attention multiplier 'fma' is not one of exact, lmul"):
        attention(q[:2], k, v, "fp32", mul="fma")


def test_descriptor_fields_are_packed_lsb_first_and_checked():
    from lutforge.golden.attention import descriptor_word
    assert descriptor_word(5, 7, 9, addr_width=8) == 5 | 7 << 16 | 9 << 24
    with pytest.raises(ValueError, match=r"Attention descriptor field keys=65536 does not fit its 16 bits; "
                                         r"give 0 to 65535\."):
        descriptor_word(1 << 16, 0, 0)


def test_cache_words_lay_keys_in_beat_order_and_values_in_blocks_of_tokens():
    from lutforge.golden.attention import cache_words
    k = (np.arange(5 * 4).reshape(5, 4) + 1).astype(object)
    v = (np.arange(5 * 4).reshape(5, 4) + 100).astype(object)
    keys, values = cache_words(k, v, "bf16", lanes=2)
    # Key word j·2 + b holds k[j, 2b] (low 16 bits) and k[j, 2b + 1].
    assert keys[3] == k[1, 2] | k[1, 3] << 16 and len(keys) == 10
    # Value word c·4 + d holds v[2c, d] and v[2c + 1, d]; token 5 (past the cache) is 0.
    assert values[1 * 4 + 3] == v[2, 3] | v[3, 3] << 16
    assert values[2 * 4 + 1] == v[4, 1] and len(values) == 12
    assert cache_words(k, v, "bf16") == ([int(x) for x in k.ravel()], [int(x) for x in v.ravel()])
    with pytest.raises(ValueError, match=r"The head dimension 4 is not a multiple of lanes=3; choose lanes dividing 4\."):
        cache_words(k, v, "bf16", lanes=3)


@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_appending_tokens_by_their_writes_builds_the_cache_words(lanes):
    """Two descriptions of one layout: every token's masked writes applied to an empty memory
    give cache_words."""
    from lutforge.golden.attention import cache_words, cache_writes
    rng = np.random.default_rng(lanes)
    k, v = (rng.integers(0, 1 << 16, (7, 8)) for _ in range(2))
    memory = {"k": {}, "v": {}}
    for j in range(7):
        for name, writes in zip("kv", cache_writes(k[j], v[j], j + 1, "bf16", lanes)):
            for addr, data, mask in writes:
                old = memory[name].get(addr, 0)
                keep = sum(0xFFFF << (16 * n) for n in range(lanes) if not mask >> n & 1)
                memory[name][addr] = (old & keep) | data
    keys, values = cache_words(k, v, "bf16", lanes)
    assert [memory["k"][a] for a in range(len(keys))] == keys
    assert [memory["v"].get(a, 0) for a in range(len(values))] == values


def _one_query_at_a_time(q, k, v, fmt, acc, mul, lanes):
    """The module's definition read literally: each query a decode step over the keys it sees,
    scores, softmax over those keys only, and A·V over them padded with +0 to whole beats."""
    from lutforge.golden.convert import convert
    from lutforge.golden.formats import get
    from lutforge.golden.fp import mul as fp_mul
    from lutforge.golden.lmul import lmul
    from lutforge.golden.lmul_dot import accumulate
    from lutforge.golden.softmax import softmax

    fmt, acc = get(fmt), get(acc)
    t_count, d = q.shape
    out = []
    for t in range(t_count):
        n = k.shape[0] - t_count + t + 1
        scores = attention_scores(q[t:t + 1], k[:n], fmt, acc=acc, mul=mul, lanes=lanes)
        p = softmax(fp_mul(scores, encode(np.array(1 / np.sqrt(d)), acc), acc), acc)[0]
        if mul == "lmul":
            prods = convert(lmul(convert(p, acc, fmt)[None, :], v[:n].T, fmt).astype(fmt.dtype), fmt, acc)
        else:
            prods = fp_mul(p[None, :], convert(v[:n], fmt, acc).T, acc)
        pad = np.zeros((d, -n % lanes), acc.dtype)
        out.append(accumulate(np.concatenate([prods, pad], 1), acc, lanes))
    return convert(np.stack(out), acc, fmt)


@pytest.mark.parametrize("fmt,acc,mul,lanes", [("bf16", "fp32", "exact", 1), ("bf16", "bf16", "exact", 4),
                                               ("e5m2", "bf16", "lmul", 1), ("bf16", "bf16", "lmul", 3)])
def test_all_queries_at_once_equal_one_query_at_a_time(fmt, acc, mul, lanes):
    """The masked form (every query over all keys) against the literal one, bit for bit, with
    values of -0 and +0 (where a masked +0 instead of -0 would turn a -0 sum into +0), values that
    cancel, a NaN and an infinite score in some rows."""
    rng = np.random.default_rng(7)
    t, s, d = 6, 11, 6
    q, k, v = (encode(rng.normal(size=shape) * 2, fmt) for shape in ((t, d), (s, d), (s, d)))
    v[:, 0] = encode(np.array(-0.0), fmt)   # a column of -0: every A·V sum of it is -0
    v[:, 1] = encode(np.array(0.0), fmt)
    v[:3, 2] = v[3:6, 2] ^ np.asarray(1 << (encode(np.array(1.0), fmt).dtype.itemsize * 8 - 1), v.dtype)
    q[1, 0] = encode(np.array(np.nan), fmt)
    k[2, :] = encode(np.array(1e30 if fmt != "e5m2" else 5e4), fmt)
    got = attention(q, k, v, fmt, acc=acc, mul=mul, lanes=lanes)
    want = _one_query_at_a_time(q, k, v, fmt, acc, mul, lanes)
    assert np.array_equal(got.astype(np.uint64), want.astype(np.uint64))


def test_leading_axes_are_independent_heads():
    rng = np.random.default_rng(3)
    q, k, v = (encode(rng.normal(size=shape), "bf16") for shape in ((3, 4, 8), (3, 6, 8), (3, 6, 8)))
    together = attention(q, k, v, "bf16", acc="fp32", lanes=2)
    for h in range(3):
        assert np.array_equal(together[h], attention(q[h], k[h], v[h], "bf16", acc="fp32", lanes=2))
