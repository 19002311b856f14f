"""LUT GEMV engine in the block catalogue, driven one row transfer per cycle.

The self-check holds ``acc__ready`` high; a tile that ends at cycle t (``last`` on an accepted
row) is on ``acc__payload`` from cycle t + 1 until the next tile ends, with ``acc__valid`` for
that one cycle. Tiles never exceed ``max_positions`` rows, the engine's stated limit.
"""

import numpy as np

from . import Block, Param, integer, register
from .centroid_search import MAX_CENTROIDS, pack_fields, unpack_fields

# Output lanes: 128 lanes of 256 centroids take 2 s to generate, while 100,000 hang.
MAX_LANES = 128
# A descriptor's positions field is 16 bits wide (:mod:`lutforge.hdl.gemv_core`).
MAX_POSITIONS = (1 << 16) - 1


def _build(params):
    from ..hdl.lut_gemv import LutGemvEngine
    return LutGemvEngine(params["c_w"], params["table_bits"], params["lanes"],
                         max_positions=params["max_positions"])


def _widx_bits(params):
    return max(1, (params["c_w"] - 1).bit_length())


def _layout(params):
    return [(params["c_w"], params["table_bits"]), (params["lanes"], _widx_bits(params)), (params["lanes"], 1), (1, 1)]


def tile_ends(rng, valid, limit: int) -> np.ndarray:
    """``last`` flags for a stream of accepted rows (``valid``): at random, about one row in 8, and
    on the row that would take a tile past ``limit`` rows (the engines' stated limit)."""
    last = (rng.random(len(valid)) < 1 / 8).astype(np.int64)
    run = 0
    for t in range(len(valid)):
        if valid[t]:
            run += 1
            if run == limit:
                last[t] = 1
            if last[t]:
                run = 0
    return last


def held_tile_sums(entry, valid, last, width: int) -> dict:
    """The outputs of an engine that sums ``entry`` (cycles x lanes, 0 where not taken) per tile:
    ``acc__valid`` on each cycle a tile ends, and ``acc__payload`` after cycle t holding the latest
    tile that ended at or before t (0 before any); the block's latency shifts them."""
    ends = valid & (last == 1)
    sums = np.cumsum(entry, axis=0)
    end_at = np.flatnonzero(ends)
    tile = sums[end_at] - np.vstack([np.zeros((1, entry.shape[1]), dtype=np.int64), sums[end_at[:-1]]])
    latest = np.searchsorted(end_at, np.arange(len(valid)), side="right") - 1
    held = np.where(latest[:, None] >= 0, tile[np.maximum(latest, 0)] if len(tile) else 0, 0)
    return {"acc__payload": pack_fields([(held, width)]), "acc__valid": ends.astype(np.uint64)}


def _vectors(params, rng, count):
    c_w, lanes, bits = params["c_w"], params["lanes"], params["table_bits"]
    valid = (rng.random(count) < 0.8).astype(np.uint64)
    last = tile_ends(rng, valid, params["max_positions"])
    mask = np.where(rng.random(count)[:, None] < 0.1, rng.integers(0, 2, (count, lanes)), 1)
    payload = pack_fields([(rng.integers(0, 1 << bits, (count, c_w)), bits),
                           (rng.integers(0, c_w, (count, lanes)), _widx_bits(params)), (mask, 1), (last, 1)])
    return {"rows__valid": valid, "rows__payload": payload, "acc__ready": np.ones(count, dtype=np.uint64)}


def _golden(params, inputs):
    row, widx, mask, last = unpack_fields(inputs["rows__payload"], _layout(params))
    valid = np.asarray(inputs["rows__valid"]).astype(bool)
    entry = np.take_along_axis(row, widx, axis=1) * mask * valid[:, None]
    return held_tile_sums(entry, valid, last[:, 0], _acc_width(params))


def _acc_width(params):
    from ..golden.lut_gemv import accumulator_width
    return accumulator_width(params["max_positions"], params["table_bits"])


register(Block(
    name="lut_gemv",
    summary="LUT-LLM table-lookup GEMV engine: one C_w-entry row per cycle fanned out to L selecting, accumulating lanes.",
    build=_build,
    params={
        "c_w": integer(16, "weight centroids per codebook", 1, MAX_CENTROIDS),
        "table_bits": Param(8, "table entry bits", choices=(4, 8), parse=int),
        "lanes": integer(16, "output lanes L", 1, MAX_LANES),
        "max_positions": integer(4096, "most positions per tile (sizes the accumulators)", 1, MAX_POSITIONS),
    },
    vectors=_vectors,
    golden=_golden,
    latency=lambda params: 1,
    lint_examples=({}, {"c_w": "256", "lanes": "8", "max_positions": "288"}, {"table_bits": "4", "lanes": "3"}),
))
