"""Performance model of the decoder block's units (:mod:`lutforge.hdl.rmsnorm`, ``softmax``,
``silu``, ``rope``, ``attention``): cycles of each, read off their RTL and pinned against simulated
cycles by ``tests/compiler/test_perf_units.py`` (equal, and so within the 5 % the model promises).

Every unit takes one element per cycle on its streams, with a consumer that is always ready:

* **RMSNorm**, a row of K: ``2K + 1`` (the sum of squares while the row is stored, the rsqrt, a
  second pass over the row buffer); rows follow each other without overlap.
* **Softmax**, a row of n scores: ``3n + 1`` (the first maximum while the row is stored, exp and
  the sum, the reciprocal, the products).
* **Elementwise streams** (SiLU, RoPE: ``hdl.elementwise_stream``), n elements through a datapath
  of ``latency`` register stages (the unit's ``total_latency``): ``n + latency + 1``.
* **Attention**, one query over n cached keys of D elements, ``lanes`` products per beat, the
  cache in memory of ``memory_latency`` cycles: ``D/lanes + n·D/lanes + n + ceil(n/lanes)·D + D +
  2 + memory_latency + max(0, memory_latency - n - 1)`` — the query's beats, the score beats, n
  exponentials, the A·V beats, D outputs, the descriptor and the reciprocal, the first key word's
  round trip; the value reads start with the exponentials, so their round trip is hidden unless it
  is longer than the n + 1 cycles before A·V. A refused descriptor costs one cycle.
* **KV cache writer**, n tokens of D elements back to back: ``n·(D + 2) - 1`` (a token's D value
  words, its key words alongside, and two cycles around each descriptor but the last).

:func:`decoder_units_cycles` adds them up for the units' calls of whole decoder blocks
(:class:`lutforge.program.decoder.DecoderRunner`, one unit of each kind, combinational datapaths),
pinned against the simulated blocks by ``tests/compiler/test_decoder_blocks.py``.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["rmsnorm_cycles", "softmax_cycles", "elementwise_cycles", "attention_cycles", "kv_writer_cycles",
           "decoder_units_cycles", "decoder_units_breakdown"]


def rmsnorm_cycles(rows: int, k: int) -> int:
    return rows * (2 * k + 1)


def softmax_cycles(rows: int, n: int) -> int:
    return rows * (3 * n + 1)


def elementwise_cycles(n: int, latency: int) -> int:
    return n + latency + 1


def attention_cycles(keys: Iterable[int], d: int, memory_latency: int, lanes: int = 1) -> int:
    """Cycles of queries over ``keys`` cached tokens each (one entry per query), back to back."""
    beats = d // lanes
    return sum(beats + n * beats + n + -(-n // lanes) * d + d + 2 + memory_latency
               + max(0, memory_latency - n - 1) for n in keys)


def kv_writer_cycles(tokens: int, d: int) -> int:
    return tokens * (d + 2) - 1 if tokens else 0


def decoder_units_breakdown(model, t: int, start: int, memory_latency: int, lanes: int = 1) -> dict[str, int]:
    """:func:`decoder_units_cycles` by kind of work: ``rmsnorm`` (the two norms of every block and
    the final one, with their gain products), ``qk_norm`` (Qwen3), ``rope``, ``kv_cache`` (the
    writer), ``attention``, ``residual`` (the two adds of every block) and ``silu_mul``."""
    d, hd, n = model.d_model, model.head_dim, model.n_layers
    norm = rmsnorm_cycles(t, d) + elementwise_cycles(t * d, 0)
    # Qwen3's QK-norm: one rmsnorm call and one gain product over the rows of every head of q, then of k.
    qk_norm = sum(rmsnorm_cycles(t * heads, hd) + elementwise_cycles(t * heads * hd, 0)
                  for heads in (model.n_heads, model.n_kv_heads)) if model.qk_norm else 0
    return {
        "rmsnorm": n * 2 * norm + norm,
        "qk_norm": n * qk_norm,
        "rope": n * (elementwise_cycles(t * model.n_heads * hd // 2, 0)
                     + elementwise_cycles(t * model.n_kv_heads * hd // 2, 0)),
        "kv_cache": n * kv_writer_cycles(t * model.n_kv_heads, hd),
        "attention": n * attention_cycles([start + j + 1 for _ in range(model.n_heads) for j in range(t)], hd,
                                          memory_latency, lanes),
        "residual": n * 2 * elementwise_cycles(t * d, 0),
        "silu_mul": n * 2 * elementwise_cycles(t * model.d_ff, 0),
    }


def decoder_units_cycles(model, t: int, start: int, memory_latency: int, lanes: int = 1) -> int:
    """Cycles of the decoder units (not the linears' cores) for ``t`` new tokens after ``start``
    cached ones through every block of ``model`` (a :class:`lutforge.compiler.model.LlamaConfig`)
    and the final norm: per block two norms with their gain products (four with Qwen3's QK-norm),
    RoPE on q and k, the KV cache writer (the new tokens of every key/value head), attention (query
    j of every head sees start + j + 1 keys), two residual adds, SiLU and the gate product."""
    return sum(decoder_units_breakdown(model, t, start, memory_latency, lanes).values())
