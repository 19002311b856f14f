"""L-Mul attention-score unit in the block catalogue, with the beat packing of its streams.

A stream block: ``vectors`` returns payloads for streams ``q`` and ``k``, ``golden`` the scores on
stream ``s``; drive them with :meth:`lutforge.sim.batch.BatchSim.run_streams`.
"""

import numpy as np

from ..golden import formats
from ..golden.lmul import LMulPolicy
from ..golden.lmul_dot import lmul_attention_scores
from . import Block, Param, integer, register
from .lmul_dot import FORMATS, MAX_BEATS, MAX_LANES, pack_lanes, unpack_lanes

__all__ = ["attention_beats", "split_attention_beats"]

# The query is held in registers: 1024 elements (a larger head than any model lutforge targets)
# take a few seconds to generate.
MAX_DIM = 1024


def attention_beats(queries, keys, fmt, lanes: int) -> tuple[np.ndarray, np.ndarray]:
    """Payloads of streams ``q`` and ``k`` for ``queries`` (n, D) and ``keys`` (n, n_keys, D)."""
    w = formats.get(fmt).width
    queries, keys = np.asarray(queries, np.uint64), np.asarray(keys, np.uint64)
    n, n_keys, dim = keys.shape
    if queries.shape != (n, dim) or dim % lanes:
        raise ValueError(
            f"Attention beats need queries (n, D) and keys (n, n_keys, D) with D a multiple of "
            f"lanes={lanes}; got {queries.shape} and {keys.shape}."
        )
    q = queries.reshape(-1, lanes)
    k = keys.reshape(-1, lanes)
    last = np.zeros((n, n_keys, dim // lanes), np.uint64)
    last[:, -1, -1] = 1
    return (pack_lanes([(q[:, i], w) for i in range(lanes)]),
            pack_lanes([(k[:, i], w) for i in range(lanes)] + [(last.ravel(), 1)]))


def split_attention_beats(q_payloads, k_payloads, fmt, dim: int, lanes: int):
    """``[(q, keys), …]`` per query back from the stream payloads."""
    w = formats.get(fmt).width
    q = np.stack(unpack_lanes(q_payloads, [w] * lanes), 1).reshape(-1, dim)
    cols = unpack_lanes(k_payloads, [w] * lanes + [1])
    k, last = np.stack(cols[:lanes], 1).reshape(-1, dim), cols[-1].reshape(-1, dim // lanes)[:, -1]
    ends = np.flatnonzero(last) + 1
    if len(ends) != len(q) or ends[-1] != len(k):
        raise ValueError(
            f"The key stream marks {len(ends)} final keys for {len(q)} queries; set 'last' on the final "
            f"beat of each query's final key."
        )
    starts = np.concatenate([[0], ends[:-1]])
    return [(q[j], k[s:e]) for j, (s, e) in enumerate(zip(starts, ends))]


def _policy(params) -> LMulPolicy:
    return LMulPolicy.wrap() if params["policy"] == "wrap" else LMulPolicy()


def _acc(params):
    return None if params["acc_format"] == "same" else params["acc_format"]


def _build(params):
    from ..hdl.lmul_attention import LMulAttention
    return LMulAttention(params["format"], params["dim"], params["lanes"], _acc(params), _policy(params))


def _vectors(params, rng, count):
    width = formats.get(params["format"]).width
    dim, n_keys = params["dim"], params["keys"]
    n = max(1, count // n_keys)
    queries = rng.integers(0, 1 << width, (n, dim), dtype=np.uint64)
    keys = rng.integers(0, 1 << width, (n, n_keys, dim), dtype=np.uint64)
    q, k = attention_beats(queries, keys, params["format"], params["lanes"])
    return {"q": q, "k": k}


def _golden(params, inputs):
    scores = [lmul_attention_scores(q, keys, params["format"], lanes=params["lanes"],
                                    acc_format=_acc(params), policy=_policy(params))
              for q, keys in split_attention_beats(inputs["q"], inputs["k"], params["format"],
                                                   params["dim"], params["lanes"])]
    return {"s": np.concatenate(scores).astype(np.uint64)}


register(Block(
    name="lmul_attention",
    summary="L-Mul attention scores: q held in registers, one q·k per key (streams q, k -> s).",
    build=_build,
    params={
        "format": Param("e4m3", "operand format", choices=FORMATS),
        "dim": integer(16, "head dimension (a multiple of lanes)", 1, MAX_DIM),
        "lanes": integer(4, "products per beat", 1, MAX_LANES),
        "acc_format": Param("fp32", "accumulation format ('same': the operand format)",
                            choices=("same",) + FORMATS),
        "policy": Param("default", "L-Mul special cases: 'default' or the paper's bare adder 'wrap'",
                        choices=("default", "wrap")),
        "keys": integer(8, "keys per query drawn by the vector generator", 1, MAX_BEATS, sim_only=True),
    },
    vectors=_vectors,
    golden=_golden,
    lint_examples=({"format": "e4m3", "dim": "8", "lanes": "4"},),
    streams=True,
))
