"""GEMV core in the block catalogue.

The core needs its external memory, which the per-cycle vector self-check cannot provide, so the
catalogue's self-check covers its control interface: every descriptor drawn is one the core must
refuse (positions 0 or above ``max_positions``, no output rows, no tiles per block), with random
activity on every other input; ``error``/``done`` must name the reason one cycle later and the
core must stay idle without touching memory. The datapath is checked against the golden model
with a simulated memory in ``tests/hdl/test_gemv_core.py`` and ``bench/lut_gemv.py``.
"""

import numpy as np

from . import Block, Param, integer, register
from .centroid_search import MAX_CENTROIDS, check_codebook, pack_fields, random_words, unpack_fields
from .lut_gemv import MAX_LANES, MAX_POSITIONS


def _build(params):
    from ..hdl.gemv_core import GemvCore
    return GemvCore(params["v"], params["c_a"], params["c_w"], table_bits=params["table_bits"],
                    lanes=params["lanes"], metric=params["metric"], chains=params["chains"],
                    max_positions=params["max_positions"])


def _widths(params):
    wbits = max(1, (params["c_w"] - 1).bit_length())
    return {"mem__cb__resp__payload": params["c_a"] * params["v"] * 8,
            "mem__tab__resp__payload": params["c_w"] * params["table_bits"],
            "mem__idx__resp__payload": params["lanes"] * wbits, "x__payload": params["v"] * 8}


def _vectors(params, rng, count):
    limit = params["max_positions"]
    kind = rng.integers(0, 4, count)
    positions = np.where(kind == 0, rng.integers(limit + 1, 1 << 16, count),
                         np.where(kind == 1, 0, rng.integers(1, limit + 1, count)))
    rows = np.where(kind == 2, 0, rng.integers(1, 1 << 16, count))
    tiles = np.where(kind == 3, 0, rng.integers(1, 1 << 16, count))
    tiles = np.where((kind == 2) | (kind == 3), tiles, rng.integers(0, 1 << 16, count))
    bases = rng.integers(0, 1 << 32, (count, 3), dtype=np.uint64)
    inputs = {"desc__valid": rng.integers(0, 2, count, dtype=np.uint64),
              "desc__payload": pack_fields([(positions, 16), (rows, 16), (tiles, 16), (bases, 32)])}
    for name, width in _widths(params).items():
        inputs[name] = random_words(rng, count, width)
    for name in ("x__valid", "acc__ready", "mem__cb__req__ready", "mem__tab__req__ready", "mem__idx__req__ready",
                 "mem__cb__resp__valid", "mem__tab__resp__valid", "mem__idx__resp__valid"):
        inputs[name] = rng.integers(0, 2, count, dtype=np.uint64)
    return inputs


def _golden(params, inputs):
    positions, rows, tiles = unpack_fields(inputs["desc__payload"], [(1, 16), (1, 16), (1, 16)])
    positions, rows, tiles = positions[:, 0], rows[:, 0], tiles[:, 0]
    code = np.where((positions == 0) | (positions > params["max_positions"]), 1,
                    np.where(rows == 0, 2, np.where(tiles == 0, 3, 0)))
    valid = np.asarray(inputs["desc__valid"]).astype(bool)
    # Outputs one cycle after each descriptor: the latest refused descriptor's code.
    seen = np.maximum.accumulate(np.where(valid, np.arange(len(valid)), -1))
    error = np.where(seen >= 0, code[np.maximum(seen, 0)], 0).astype(np.uint64)
    zeros = np.zeros(len(valid), dtype=np.uint64)
    return {"error": error, "done": (seen >= 0).astype(np.uint64), "busy": zeros,
            "mem__cb__req__valid": zeros, "mem__tab__req__valid": zeros, "mem__idx__req__valid": zeros,
            "acc__valid": zeros, "x__ready": zeros, "mem__cb__resp__ready": zeros,
            "mem__tab__resp__ready": zeros, "mem__idx__resp__ready": zeros}


register(Block(
    name="gemv_core",
    summary="LUT-LLM GEMV core: centroid search + LUT GEMV engine, descriptor/status control, 3-channel memory port.",
    build=_build,
    params={
        "v": Param(2, "sub-vector length", choices=(1, 2, 4, 8), parse=int),
        "c_a": integer(64, "activation centroids (c_a * v at most 256)", 1, MAX_CENTROIDS),
        "c_w": integer(16, "weight centroids", 1, MAX_CENTROIDS),
        "table_bits": Param(8, "table entry bits", choices=(4, 8), parse=int),
        "lanes": integer(16, "output lanes L", 1, MAX_LANES),
        "metric": Param("linf", "centroid distance", choices=("linf", "l2")),
        "chains": integer(4, "centroid-search PE chains, at most c_a", 1, MAX_CENTROIDS),
        "max_positions": integer(1024, "largest P a descriptor may ask for", 1, MAX_POSITIONS),
    },
    vectors=_vectors,
    golden=_golden,
    latency=lambda params: 1,
    check=check_codebook("gemv_core"),
    lint_examples=({}, {"v": "4", "c_a": "48", "c_w": "256", "metric": "l2", "lanes": "8", "chains": "3",
                        "max_positions": "64"}),
))
