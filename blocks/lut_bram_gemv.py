"""Block-RAM LUT GEMV engine in the block catalogue: tables loaded, then looked up.

The vectors load table entries for the first half of the cycles (random addresses and codes,
random gaps), idle one cycle, then send lookups (random gaps; ``last`` at random and at the latest
when a tile reaches ``positions`` lookups); ``acc__ready`` is held high. A tile that ends at cycle
t (``last`` on an accepted lookup) is on ``acc__payload`` from cycle t + 2 (the read, then the sum)
until the next tile ends, with ``acc__valid`` for that one cycle.
"""

import numpy as np

from . import Block, Param, integer, register
from .centroid_search import MAX_CENTROIDS, pack_fields, unpack_fields
from .lut_gemv import MAX_LANES, held_tile_sums, tile_ends


def _build(params):
    from ..hdl.lut_bram_gemv import LutBramGemvEngine
    return LutBramGemvEngine(params["c_a"], params["c_w"], params["table_bits"], params["lanes"],
                             positions=params["positions"])


def _bits(count):
    return max(1, (count - 1).bit_length())


def _depth(params):
    return params["positions"] * params["c_a"] * params["c_w"]


def _lookup_layout(params):
    return [(1, _bits(params["c_a"])), (params["lanes"], _bits(params["c_w"])), (params["lanes"], 1), (1, 1)]


def _vectors(params, rng, count):
    depth, bits, lanes = _depth(params), params["table_bits"], params["lanes"]
    loads = count // 2
    load_valid = np.zeros(count, dtype=np.uint64)
    load_valid[:loads] = rng.random(loads) < 0.8
    load_payload = pack_fields([(rng.integers(0, depth, count), _bits(depth)), (rng.integers(0, 1 << bits, count), bits)])
    valid = np.zeros(count, dtype=np.uint64)
    valid[loads + 1:] = rng.random(count - loads - 1) < 0.8
    last = tile_ends(rng, valid, params["positions"])
    mask = np.where(rng.random(count)[:, None] < 0.1, rng.integers(0, 2, (count, lanes)), 1)
    payload = pack_fields([(rng.integers(0, params["c_a"], count), _bits(params["c_a"])),
                           (rng.integers(0, params["c_w"], (count, lanes)), _bits(params["c_w"])), (mask, 1), (last, 1)])
    return {"load__valid": load_valid, "load__payload": load_payload, "lookups__valid": valid,
            "lookups__payload": payload, "acc__ready": np.ones(count, dtype=np.uint64)}


def _golden(params, inputs):
    from ..golden.lut_gemv import accumulator_width

    c_a, c_w, depth = params["c_a"], params["c_w"], _depth(params)
    # Every load comes before the first lookup, so the lookups read the tables as the loads left them.
    memory = np.zeros(depth, dtype=np.int64)
    addr, code = unpack_fields(inputs["load__payload"], [(1, _bits(depth)), (1, params["table_bits"])])
    for t in np.flatnonzero(np.asarray(inputs["load__valid"]).astype(bool)):
        memory[addr[t, 0]] = code[t, 0]
    a, widx, mask, last = unpack_fields(inputs["lookups__payload"], _lookup_layout(params))
    valid = np.asarray(inputs["lookups__valid"]).astype(bool)
    position = np.zeros(len(valid), dtype=np.int64)
    p = 0
    for t in np.flatnonzero(valid):
        position[t] = p
        p = 0 if last[t, 0] else p + 1
    entry = memory[(position[:, None] * c_a + a) * c_w + widx] * mask * valid[:, None]
    return held_tile_sums(entry, valid, last[:, 0], accumulator_width(params["positions"], params["table_bits"]))


def _check(params):
    from ..hdl.lut_bram_gemv import MAX_TABLE_ENTRIES
    from ..support.errors import UsageError

    if _depth(params) > MAX_TABLE_ENTRIES:
        raise UsageError(f"Block 'lut_bram_gemv' holds positions x c_a x c_w = {_depth(params)} table entries per bank, "
                         f"above the {MAX_TABLE_ENTRIES} a bank may hold; lower positions, c_a or c_w.")


register(Block(
    name="lut_bram_gemv",
    summary="LUT-LLM memory-based GEMV engine: tables in block RAM, one read per lane per cycle from its own bank.",
    build=_build,
    params={
        "c_a": integer(16, "activation centroids per codebook", 1, MAX_CENTROIDS),
        "c_w": integer(16, "weight centroids per codebook", 1, MAX_CENTROIDS),
        "table_bits": Param(8, "table entry bits", choices=(4, 8), parse=int),
        "lanes": integer(4, "output lanes L (one table bank each)", 1, MAX_LANES),
        # 2^22 entries per bank (MAX_TABLE_ENTRIES) over the smallest table of one position.
        "positions": integer(16, "positions whose tables the banks hold (the most a tile sums)", 1, 1 << 14),
    },
    vectors=_vectors,
    golden=_golden,
    latency=lambda params: 2,
    lint_examples=({}, {"c_a": "64", "c_w": "16", "lanes": "2", "positions": "8"}, {"table_bits": "4", "lanes": "3"}),
    check=_check,
))

