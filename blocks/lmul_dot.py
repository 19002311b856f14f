"""L-Mul dot-product unit in the block catalogue, with the beat packing its stream ``i`` expects.

The unit is a stream block: ``vectors`` returns the payloads of stream ``i`` (one beat per ``lanes``
element pairs, ``last`` set on each vector's final beat) and ``golden`` the payloads of stream ``o``;
drive them with :meth:`lutforge.sim.batch.BatchSim.run_streams`.
"""

import numpy as np

from ..golden import formats
from ..golden.lmul import LMulPolicy
from ..golden.lmul_dot import lmul_dot
from . import Block, Param, integer, register

__all__ = ["pack_lanes", "unpack_lanes", "dot_beats", "split_dot_beats"]

FORMATS = tuple(n for n, f in formats.PRESETS.items() if f.signed and f.man_bits <= 23)

# Products per beat: 64 fp32 lanes take 8 s to generate, 256 e4m3 lanes 17 s and 4 MB of Verilog.
MAX_LANES = 64
# Beats (or keys) per vector the generator draws: longer vectors only mean fewer of them.
MAX_BEATS = 1024


def pack_lanes(fields: "list[tuple[np.ndarray, int]]") -> np.ndarray:
    """Pack integer columns LSB-first (``[(values, width), …]``) into one payload per row.

    Returns uint64 when the payload fits 64 bits, else an object array of Python ints, as
    :meth:`BatchSim.run_streams` takes them.
    """
    total = sum(width for _, width in fields)
    rows = len(fields[0][0])
    if total <= 64:
        out = np.zeros(rows, np.uint64)
        shift = 0
        for values, width in fields:
            out |= np.asarray(values, np.uint64) << np.uint64(shift)
            shift += width
        return out
    out, shift = [0] * rows, 0
    for values, width in fields:
        out = [o | (int(v) << shift) for o, v in zip(out, np.asarray(values).tolist())]
        shift += width
    result = np.empty(rows, object)
    result[:] = out
    return result


def unpack_lanes(payloads, widths: "list[int]") -> list[np.ndarray]:
    """Inverse of :func:`pack_lanes`: one uint64 column per width (each ≤ 64 bits)."""
    columns, shift = [], 0
    values = [int(p) for p in np.asarray(payloads).tolist()]
    for width in widths:
        mask = (1 << width) - 1
        columns.append(np.array([(v >> shift) & mask for v in values], np.uint64))
        shift += width
    return columns


def dot_beats(a, b, fmt, lanes: int) -> np.ndarray:
    """Stream ``i`` payloads for the vectors in the rows of ``a`` and ``b`` (encodings, shape (n, K))."""
    fmt = formats.get(fmt)
    a, b = np.atleast_2d(np.asarray(a, np.uint64)), np.atleast_2d(np.asarray(b, np.uint64))
    n, k = a.shape
    if b.shape != a.shape or k % lanes:
        raise ValueError(
            f"Dot-product vectors must be equal-shape rows whose length is a multiple of lanes={lanes}; "
            f"got shapes {a.shape} and {b.shape}."
        )
    a, b = a.reshape(-1, lanes), b.reshape(-1, lanes)
    last = np.zeros((n, k // lanes), np.uint64)
    last[:, -1] = 1
    w = fmt.width
    return pack_lanes([(a[:, i], w) for i in range(lanes)] + [(b[:, i], w) for i in range(lanes)]
                      + [(last.ravel(), 1)])


def split_dot_beats(payloads, fmt, lanes: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Vectors ``(a_rows, b_rows)`` back from stream ``i`` payloads, split at the ``last`` beats."""
    w = formats.get(fmt).width
    cols = unpack_lanes(payloads, [w] * (2 * lanes) + [1])
    a, b, last = np.stack(cols[:lanes], 1), np.stack(cols[lanes:2 * lanes], 1), cols[-1]
    ends = np.flatnonzero(last) + 1
    if len(ends) == 0 or ends[-1] != len(last):
        raise ValueError("The last beat of the stream does not have 'last' set; every vector must end with it.")
    starts = np.concatenate([[0], ends[:-1]])
    return ([a[s:e].ravel() for s, e in zip(starts, ends)], [b[s:e].ravel() for s, e in zip(starts, ends)])


def _policy(params) -> LMulPolicy:
    return LMulPolicy.wrap() if params["policy"] == "wrap" else LMulPolicy()


def _acc(params):
    return None if params["acc_format"] == "same" else params["acc_format"]


def _build(params):
    from ..hdl.lmul_dot import LMulDot
    return LMulDot(params["format"], params["lanes"], _acc(params), _policy(params))


def _vectors(params, rng, count):
    width = formats.get(params["format"]).width
    lanes, beats = params["lanes"], params["beats"]
    n = max(1, count // beats)
    a = rng.integers(0, 1 << width, (n, lanes * beats), dtype=np.uint64)
    b = rng.integers(0, 1 << width, (n, lanes * beats), dtype=np.uint64)
    return {"i": dot_beats(a, b, params["format"], lanes)}


def _golden(params, inputs):
    a_rows, b_rows = split_dot_beats(inputs["i"], params["format"], params["lanes"])
    out = [lmul_dot(a, b, params["format"], lanes=params["lanes"], acc_format=_acc(params),
                    policy=_policy(params)) for a, b in zip(a_rows, b_rows)]
    return {"o": np.array(out, np.uint64)}


register(Block(
    name="lmul_dot",
    summary="L-Mul dot product: N lanes of L-Mul products, FP adder tree, FP accumulator (streams i -> o).",
    build=_build,
    params={
        "format": Param("e4m3", "operand format", choices=FORMATS),
        "lanes": integer(4, "products per beat", 1, MAX_LANES),
        "acc_format": Param("same", "accumulation format ('same': the operand format)",
                            choices=("same",) + FORMATS),
        "policy": Param("default", "L-Mul special cases: 'default' or the paper's bare adder 'wrap'",
                        choices=("default", "wrap")),
        "beats": integer(4, "beats per vector drawn by the vector generator", 1, MAX_BEATS, sim_only=True),
    },
    vectors=_vectors,
    golden=_golden,
    lint_examples=({"format": "e4m3", "lanes": "4"}, {"format": "bf16", "lanes": "2", "acc_format": "fp32"}),
    streams=True,
))
