"""Centroid search unit in the block catalogue, driven one sub-vector per cycle.

The self-check holds ``o__ready`` high, so the pipeline never stalls and the index of the vector
given at cycle t is on ``o__payload`` at cycle t + latency (the pipeline computes bubbles too, so
every cycle is checked; ``o__valid`` follows ``i__valid``).
"""

import numpy as np

from ..golden.centroid_search import search
from ..support.errors import UsageError
from . import Block, Param, integer, register


# Generation time grows with the codebook the unit compares against, C_a * v elements: 256 (64
# centroids of 4) take 3 s, 512 up to 30 s, 2048 two minutes and 30 MB of Verilog.
MAX_CODEBOOK = 256
# Centroid indices are 8 bits wide, and no chain holds fewer than one centroid.
MAX_CENTROIDS = 256


def check_codebook(block: str):
    """A :class:`Block` ``check`` refusing codebooks past :data:`MAX_CODEBOOK` elements."""
    def check(params):
        size = params["c_a"] * params["v"]
        if size > MAX_CODEBOOK:
            raise UsageError(
                f"Block {block!r} parameters c_a={params['c_a']} and v={params['v']} make a codebook of {size} "
                f"elements, above the limit of {MAX_CODEBOOK} (larger ones take minutes to generate); lower c_a or v.")
    return check


_CHUNK = 1 << 14  # rows per step, so a million wide vectors stay within a few hundred MB


def pack_fields(fields: "list[tuple[np.ndarray, int]]") -> np.ndarray:
    """Rows of unsigned fields (array (n, count) or (n,), bits each), LSB first, as Python ints."""
    n = len(fields[0][0])
    out = np.empty(n, dtype=object)
    for start in range(0, n, _CHUNK):
        columns = []
        for values, bits in fields:
            chunk = np.asarray(values[start:start + _CHUNK]).astype(np.uint64).reshape(-1, np.prod(np.shape(values)[1:], dtype=int))
            bitsets = (chunk[..., None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)
            columns.append(bitsets.astype(np.uint8).reshape(len(chunk), -1))
        packed = np.packbits(np.concatenate(columns, axis=1), axis=1, bitorder="little")
        out[start:start + len(packed)] = [int.from_bytes(row.tobytes(), "little") for row in packed]
    return out


def unpack_fields(words, layout: "list[tuple[int, int]]") -> list[np.ndarray]:
    """Inverse of :func:`pack_fields` for ``layout`` = [(count, bits), ...] (a prefix of the fields
    is enough): (n, count) int64 arrays."""
    total = sum(count * bits for count, bits in layout)
    nbytes = -(-total // 8)
    words = list(words)
    out = [np.empty((len(words), count), dtype=np.int64) for count, _ in layout]
    for start in range(0, len(words), _CHUNK):
        part = words[start:start + _CHUNK]
        mask = (1 << total) - 1
        raw = np.frombuffer(b"".join((int(w) & mask).to_bytes(nbytes, "little") for w in part), dtype=np.uint8)
        bitsets = np.unpackbits(raw.reshape(-1, nbytes), axis=1, bitorder="little")[:, :total].astype(np.int64)
        pos = 0
        for field, (count, bits) in zip(out, layout):
            chunk = bitsets[:, pos:pos + count * bits].reshape(-1, count, bits)
            field[start:start + len(part)] = np.sum(chunk << np.arange(bits, dtype=np.int64), axis=-1)
            pos += count * bits
    return out


def random_words(rng: np.random.Generator, count: int, width: int) -> np.ndarray:
    """``count`` uniformly random ``width``-bit values as Python ints."""
    nbytes = -(-width // 8)
    mask = (1 << width) - 1
    raw = rng.bytes(count * nbytes)
    return np.array([int.from_bytes(raw[i * nbytes:(i + 1) * nbytes], "little") & mask for i in range(count)],
                    dtype=object)


def _build(params):
    from ..hdl.centroid_search import CentroidSearch
    return CentroidSearch(params["v"], params["c_a"], metric=params["metric"], chains=params["chains"])


def _latency(params):
    chains, c_a = params["chains"], params["c_a"]
    return -(-c_a // chains) + (chains - 1).bit_length()


def _vectors(params, rng, count):
    v, c_a = params["v"], params["c_a"]
    x = rng.integers(-128, 128, (count, v), dtype=np.int8)
    book = rng.integers(-128, 128, (count, c_a, v), dtype=np.int8)
    # Ties: repeated centroids, and activations sitting exactly on one of them.
    rows = np.arange(count)
    book[rows, rng.integers(0, c_a, count)] = book[rows, rng.integers(0, c_a, count)]
    on = rng.random(count) < 0.25
    x[on] = book[rows, rng.integers(0, c_a, count)][on]
    valid = rng.integers(0, 2, count, dtype=np.uint64)
    # The harness drives every input to 0 after the last vector, o__ready included; a valid result
    # still in the pipeline then would (rightly) stall it, so the last `latency` vectors are bubbles.
    valid[max(0, count - _latency(params)):] = 0
    return {
        "i__valid": valid,
        "i__payload": pack_fields([(x.view(np.uint8), 8), (book.reshape(count, -1).view(np.uint8), 8)]),
        "o__ready": np.ones(count, dtype=np.uint64),
    }


def _golden(params, inputs):
    v, c_a = params["v"], params["c_a"]
    x, book = unpack_fields(inputs["i__payload"], [(v, 8), (c_a * v, 8)])
    x = x.astype(np.uint8).view(np.int8)
    book = book.astype(np.uint8).view(np.int8).reshape(-1, c_a, v)
    return {"o__payload": search(x, book, params["metric"]).astype(np.uint64),
            "o__valid": np.asarray(inputs["i__valid"], dtype=np.uint64)}


register(Block(
    name="centroid_search",
    summary="LUT-LLM centroid search unit: int8 L-inf/L2 distance chains and an argmin tree, one sub-vector per cycle.",
    build=_build,
    params={
        "v": Param(2, "sub-vector length", choices=(1, 2, 4, 8), parse=int),
        "c_a": integer(64, "activation centroids (c_a * v at most 256)", 1, MAX_CENTROIDS),
        "metric": Param("linf", "distance", choices=("linf", "l2")),
        "chains": integer(4, "distance-PE chains, at most c_a (chain length = ceil(c_a / chains))", 1,
                          MAX_CENTROIDS),
    },
    vectors=_vectors,
    golden=_golden,
    latency=_latency,
    check=check_codebook("centroid_search"),
    lint_examples=({}, {"v": "4", "c_a": "48", "metric": "l2", "chains": "3"}, {"v": "2", "c_a": "16", "chains": "1"}),
))
