"""One attention head on encodings, as the attention unit computes it.

Inputs are encodings of the data format ``fmt``: the queries ``q`` (T, D) of T new tokens, the keys
``k`` and values ``v`` (S, D) of the S cached positions (the last T of them the new tokens'). The
unit works in the accumulation format ``acc`` (default ``fmt``; it must hold every value of
``fmt`` exactly, e.g. fp32 for bf16 data: :func:`lutforge.golden.lmul_dot.check_acc_format`):

1. **scores** ``s[t, j] = q_t · k_j``: each product is ``mul="exact"`` (the operands converted into
   ``acc``, exactly, and multiplied there with one rounding: exact for bf16 data in fp32) or
   ``mul="lmul"`` (:func:`lutforge.golden.lmul.lmul` in ``fmt`` at ``offset``, converted into
   ``acc`` exactly); the D products (padded with zeros to whole beats) are summed ``lanes`` per beat by the
   adder tree, the beats left to right (:func:`lutforge.golden.lmul_dot.accumulate`);
2. ``s = RN(s · RN(1/sqrt(D)))``; causal: query t (position S - T + t) sees the n_t = S - T + t + 1
   keys j < n_t, and every later step runs over those keys only (so T queries are T decode steps,
   each on the cache as it stood at its position: what a decode unit computes);
3. **softmax** over the visible keys in ``acc`` (:func:`lutforge.golden.softmax.softmax`);
4. **A·V** ``o[t, d] = sum_j p[t, j] · v[j, d]``: ``mul="exact"`` multiplies in ``acc``;
   ``mul="lmul"`` first rounds ``p`` into ``fmt`` (L-Mul takes both operands in one format) and
   converts the L-Mul products into ``acc``; the n_t products are summed as in 1;
5. the outputs are rounded into ``fmt`` once.

:func:`attention_bound` bounds the absolute error of each output of the exact-multiply unit
against attention in exact arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

from ..support.checks import check_int
from .convert import convert, decode, encode
from .formats import get
from .fp import mul as fp_mul
from .fp_funcs import check_function_format
from .lmul import lmul
from .lmul_dot import accumulate, check_acc_format
from .softmax import softmax, softmax_bound

__all__ = ["MULS", "attention_scores", "attention", "attention_bound", "descriptor_fields", "descriptor_word",
           "cache_words", "cache_writes"]

MULS = ("exact", "lmul")


def descriptor_fields(addr_width: int = 32) -> tuple[tuple[str, int], ...]:
    """The attention unit's descriptor (one per query): (name, width) pairs, LSB first. ``keys``:
    the cached tokens the query sees; ``k_base``, ``v_base``: word addresses of the cached keys and
    values, laid out by :func:`cache_words`."""
    return (("keys", 16), ("k_base", addr_width), ("v_base", addr_width))


def cache_words(k, v, fmt, lanes: int = 1) -> tuple[list[int], list[int]]:
    """The KV cache's memory words for the attention unit with ``lanes`` products per beat: keys
    and values (S, D) as encodings of ``fmt``, each word ``lanes`` elements, element l at bits
    ``l·w`` (w: the format's width).

    * key word ``j·(D/lanes) + b`` holds ``k[j, b·lanes + l]``: a key's elements in beat order;
    * value word ``c·D + d`` holds ``v[c·lanes + l, d]``: element d of a block of ``lanes``
      consecutive tokens (tokens past S: 0), what one A·V beat multiplies.

    With one lane both are ``j·D + i``. A token appended to the cache writes D/lanes key words and
    one element of D value words."""
    fmt = get(fmt)
    k, v = (np.asarray(a).astype(np.uint64) for a in (k, v))
    s_count, d = k.shape
    lanes = check_int("lanes", lanes, 1, d, fix="a beat takes 1 to D products")
    if d % lanes:
        raise ValueError(f"The head dimension {d} is not a multiple of lanes={lanes}; choose lanes dividing {d}.")

    def pack(rows):
        return [sum(int(e) << (fmt.width * lane) for lane, e in enumerate(row)) for row in rows]

    blocks = -(-s_count // lanes)
    v_padded = np.zeros((blocks * lanes, d), np.uint64)
    v_padded[:s_count] = v
    return (pack(k.reshape(-1, lanes)),
            pack(v_padded.reshape(blocks, lanes, d).transpose(0, 2, 1).reshape(-1, lanes)))


def cache_writes(k, v, keys: int, fmt, lanes: int = 1, k_base: int = 0, v_base: int = 0):
    """The memory writes that append one token to the cache of :func:`cache_words`: ``k`` and
    ``v`` (D,) encodings of ``fmt`` of the token at position ``keys - 1`` (the descriptor's
    ``keys`` after the append, the one its query sees). Returns the key writes and the value
    writes, each a list of ``(address, data, lane mask)``: D/lanes whole key words, then one
    element of each of D value words (its lane ``(keys - 1) mod lanes``, the others masked)."""
    fmt = get(fmt)
    k, v = (np.asarray(a).astype(np.uint64) for a in (k, v))
    d = k.shape[0]
    lanes = check_int("lanes", lanes, 1, d, fix="a beat takes 1 to D products")
    j = check_int("keys", keys, 1, (1 << 16) - 1, fix="the cache holds 1 to 65535 tokens") - 1
    beats, full = d // lanes, (1 << lanes) - 1
    key_writes = [(k_base + j * beats + b, sum(int(e) << (fmt.width * n) for n, e in enumerate(k[b * lanes:(b + 1) * lanes])),
                   full) for b in range(beats)]
    lane = j % lanes
    value_writes = [(v_base + (j // lanes) * d + e, int(v[e]) << (fmt.width * lane), 1 << lane) for e in range(d)]
    return key_writes, value_writes


def descriptor_word(keys: int, k_base: int, v_base: int, addr_width: int = 32) -> int:
    """The descriptor of :func:`descriptor_fields` as one integer."""
    word, shift = 0, 0
    for (name, width), value in zip(descriptor_fields(addr_width), (keys, k_base, v_base)):
        if not 0 <= value < (1 << width):
            raise ValueError(f"Attention descriptor field {name}={value} does not fit its {width} bits; "
                             f"give 0 to {(1 << width) - 1}.")
        word |= int(value) << shift
        shift += width
    return word


def _products(a, b, fmt, acc, mul: str, offset):
    """Elementwise products of encodings of ``fmt`` as encodings of ``acc`` (module docstring)."""
    if mul == "lmul":
        p = lmul(a, b, fmt, offset=offset)
        return p if acc == fmt else convert(p.astype(fmt.dtype), fmt, acc)
    if acc != fmt:
        a, b = convert(a, fmt, acc), convert(b, fmt, acc)
    return fp_mul(a, b, acc)


def _pad(products, lanes: int) -> np.ndarray:
    """Products padded with +0 to whole beats (adding zeros never rounds)."""
    extra = -products.shape[-1] % lanes
    return np.concatenate([products, np.zeros(products.shape[:-1] + (extra,), products.dtype)], -1) if extra else products


def _check(q, k, v):
    if (q.ndim < 2 or k.ndim != q.ndim or v.shape != k.shape or q.shape[:-2] != k.shape[:-2]
            or q.shape[-1] != k.shape[-1] or q.shape[-2] > k.shape[-2]):
        raise ValueError(f"Attention needs q (..., T, D), k and v (..., S, D) with T <= S; got q {q.shape}, "
                         f"k {k.shape}, v {v.shape}. Pass the cached keys and values with the new tokens' last.")


def _setup(fmt, acc, mul, lanes, offset):
    fmt = get(fmt)
    acc = fmt if acc is None else get(acc)
    check_function_format(acc)
    check_acc_format(fmt, acc)
    if mul not in MULS:
        raise ValueError(f"Attention multiplier {mul!r} is not one of {', '.join(MULS)}; choose one of them.")
    if mul == "exact" and offset is not None:
        raise ValueError(f"An L-Mul offset ({offset}) was given for exact products; give mul='lmul' or leave "
                         f"the offset out.")
    lanes = check_int("lanes", lanes, fix="the dot-product unit takes 1 or more products per beat")
    return fmt, acc, lanes


def attention_scores(q, k, fmt, *, acc=None, mul: str = "exact", lanes: int = 1, offset: int | None = None):
    """Step 1: the (..., T, S) dot products ``q_t · k_j`` as encodings of ``acc`` (unscaled, unmasked)."""
    fmt, acc, lanes = _setup(fmt, acc, mul, lanes, offset)
    q, k = (np.asarray(a).astype(fmt.dtype) for a in (q, k))
    return accumulate(_pad(_products(q[..., :, None, :], k[..., None, :, :], fmt, acc, mul, offset), lanes), acc,
                      lanes)


def attention(q, k, v, fmt, *, acc=None, mul: str = "exact", lanes: int = 1, offset: int | None = None,
              seed_bits: int = 7) -> np.ndarray:
    """Causal attention of one head (module docstring); returns (T, D) encodings of ``fmt``. Leading
    axes of q, k and v (..., T, D) are independent heads, computed together.

    Every query is computed at once over all S keys, with the keys it does not see masked so that
    nothing changes (tested against the query-at-a-time form): their scores are -Inf, which the
    softmax turns into exact zeros after the visible keys' sum; their A·V products are +0 where
    the unit pads the query's last beat with +0, and -0 in the beats after it, whose tree sum is
    -0 and whose addition to any sum is exact."""
    fmt, acc, lanes = _setup(fmt, acc, mul, lanes, offset)
    q, k, v = (np.asarray(a).astype(fmt.dtype) for a in (q, k, v))
    _check(q, k, v)
    t_count, d = q.shape[-2:]
    s_count = k.shape[-2]
    keys = s_count - t_count + np.arange(t_count) + 1  # the keys query t sees
    j = np.arange(-(-s_count // lanes) * lanes)  # key positions padded to whole beats
    visible = j[None, :] < keys[:, None]
    scores = attention_scores(q, k, fmt, acc=acc, mul=mul, lanes=lanes, offset=offset)
    scaled = fp_mul(scores, encode(np.array(1 / math.sqrt(d)), acc), acc)
    p = softmax(np.where(visible[:, :s_count], scaled, encode(np.array(-np.inf), acc)), acc, seed_bits=seed_bits)
    v_t = np.swapaxes(v, -1, -2)[..., None, :, :]  # (..., 1, D, S)
    if mul == "lmul":
        p_fmt = p if acc == fmt else convert(p, acc, fmt)
        prods = _products(p_fmt[..., :, None, :], v_t, fmt, acc, "lmul", offset)  # (..., T, D, S)
    else:
        v_acc = v_t if acc == fmt else convert(v_t, fmt, acc)
        prods = _products(p[..., :, None, :], v_acc, acc, acc, "exact", offset)
    prods = _pad(prods, lanes)
    in_last_beat = j[None, :] < -(-keys[:, None] // lanes) * lanes
    hidden = np.where(in_last_beat, encode(np.array(0.0), acc), encode(np.array(-0.0), acc))
    out = accumulate(np.where(visible[:, None, :], prods, hidden[:, None, :]), acc, lanes)
    return out if acc == fmt else convert(out, acc, fmt)


def attention_bound(q, k, v, fmt, *, acc=None, lanes: int = 1, seed_bits: int = 7) -> np.ndarray:
    """Largest absolute error of each output (T, D) of the exact-multiply :func:`attention` at the
    float64 inputs ``q``, ``k``, ``v`` (the decoded encodings), against causal attention in exact
    arithmetic. Each score's error comes from its products and the adder tree and beats (Higham's
    ``gamma`` of the longest addition chain on the sum of |products|) and the scaling; an error of
    at most ``delta`` in every visible score moves each probability by a factor within
    ``e^(±2 delta)``; softmax's own bound follows; then A·V's products and sums and the final
    rounding into ``fmt``."""
    fmt = get(fmt)
    acc = fmt if acc is None else get(acc)
    u = 2.0 ** -(acc.man_bits + 1)
    t_count, d = q.shape
    s_count = k.shape[0]
    product_u = 0.0 if acc.man_bits >= 2 * fmt.man_bits + 1 else u  # exact products of narrower data

    def gamma(n):
        return n * u / (1 - n * u)

    def chain(n):  # additions on the longest path: the tree of a beat, then one per further beat
        return math.ceil(math.log2(lanes)) + -(-n // lanes) - 1

    scale = 1 / math.sqrt(d)
    exact_scores = (q @ k.T) * scale
    # Products of q and k: exact when acc holds the product of two fmt significands.
    qk_u = 0.0 if acc.man_bits >= 2 * fmt.man_bits + 1 else u
    score_err = (((1 + qk_u) * (1 + gamma(chain(d))) * (1 + u) ** 2 - 1) * (np.abs(q) @ np.abs(k).T) * scale
                 + u * np.abs(exact_scores))
    out_err = np.zeros((t_count, d))
    for t in range(t_count):
        n = s_count - t_count + t + 1
        row = exact_scores[t, :n]
        p = np.exp(row - row.max())
        p /= p.sum()
        # Scores off by delta move each probability by e^(+-2 delta); softmax's bound is evaluated at
        # the exact scores (the computed ones differ by delta: a second-order change of the bound).
        eps_p = np.exp(2 * score_err[t, :n].max()) * (1 + softmax_bound(row, acc, seed_bits=seed_bits)) - 1
        out_err[t] = (p * ((1 + eps_p) * (1 + u) * (1 + gamma(chain(n))) - 1)) @ np.abs(v[:n])
    u_fmt = 2.0 ** -(fmt.man_bits + 1) if fmt != acc else 0.0
    exact_out = np.stack([_exact_row(exact_scores[t, :s_count - t_count + t + 1], v) for t in range(t_count)])
    return out_err * (1 + u_fmt) + u_fmt * np.abs(exact_out)


def _exact_row(row, v):
    p = np.exp(row - row.max())
    return (p / p.sum()) @ v[:len(row)]
