"""Weight-only LUT GEMV core (T-MAC style) in the block catalogue.

As for ``gemv_core``, the core needs its external memory, which the per-cycle vector self-check
cannot provide, so the catalogue's self-check covers its control interface: every descriptor drawn
is one the core must refuse (positions 0 or above ``max_positions``, no output rows, no tiles per
block, no blocks or more table rows than ``max_table_rows``, blocks that do not cover the rows),
with random activity on every other input; ``error``/``done`` must name the reason one cycle later
and the core must stay idle without touching memory or streams. The datapath is checked against
the golden model with a simulated memory in ``tests/hdl/test_tmac_core.py``.
"""

import numpy as np

from ..support.errors import UsageError
from . import Block, Param, integer, register
from .centroid_search import MAX_CENTROIDS, pack_fields, random_words, unpack_fields
from .lut_gemv import MAX_LANES, MAX_POSITIONS

# Amaranth writes the table memory's initial contents bit by bit: 2^22 bits (4096 rows of 64
# 16-bit entries) took 17 s to generate, and the time grows with the bits.
MAX_TABLE_BITS = 1 << 22
MAX_TABLE_ROWS = 1 << 16


def _table_bits(params):
    from ..golden.tmac import tmac_table_bits
    return tmac_table_bits(params["v"], params["cb_bits"])


def _check(params):
    rows, positions = params["max_table_rows"], params["max_positions"]
    if rows < positions:
        raise UsageError(
            f"Block 'tmac_core' parameter max_table_rows={rows} is below max_positions={positions}: one row "
            f"block of {positions} positions needs {positions} table rows; raise max_table_rows or lower "
            f"max_positions.")
    bits = rows * params["c_w"] * _table_bits(params)
    if bits > MAX_TABLE_BITS:
        raise UsageError(
            f"Block 'tmac_core' parameters max_table_rows={rows}, c_w={params['c_w']}, v={params['v']} and "
            f"cb_bits={params['cb_bits']} make an on-chip table of {bits} bits, above the limit of "
            f"{MAX_TABLE_BITS} (larger ones take minutes to generate); lower max_table_rows, c_w, v or cb_bits.")


def _build(params):
    from ..hdl.tmac_core import TmacCore
    return TmacCore(params["v"], params["c_w"], cb_bits=params["cb_bits"], lanes=params["lanes"],
                    max_positions=params["max_positions"], max_table_rows=params["max_table_rows"])


def _widths(params):
    wbits = max(1, (params["c_w"] - 1).bit_length())
    return {"mem__cb__resp__payload": params["c_w"] * params["v"] * params["cb_bits"],
            "mem__idx__resp__payload": params["lanes"] * wbits, "x__payload": params["v"] * 8}


def _vectors(params, rng, count):
    limit, rows_limit, lanes = params["max_positions"], params["max_table_rows"], params["lanes"]
    top = 1 << 16
    # One kind per refusal code (positions too many, unless max_positions is the field's limit;
    # positions 0; then codes 2 to 5); every field a later code reads is drawn so that the earlier
    # codes do not apply.
    kind = rng.integers(0 if limit < top - 1 else 1, 6, count)
    positions = np.where(kind == 0, rng.integers(limit + 1, max(limit + 2, top), count),
                         np.where(kind == 1, 0, rng.integers(1, limit + 1, count)))
    rows = np.where(kind == 2, 0, rng.integers(1, top, count))
    tiles = np.where(kind == 3, 0, rng.integers(1, top, count))
    # Blocks that fit the table (>= 1 where positions <= limit <= max_table_rows).
    fit = np.clip(rows_limit // np.maximum(positions, 1), 1, top - 1)
    too_many = np.where(fit < top - 1, rng.integers(0, top, count) % np.maximum(top - 1 - fit, 1) + fit + 1, 0)
    blocks = np.where(kind == 4, np.where(rng.integers(0, 2, count) == 1, 0, too_many),
                      rng.integers(0, top, count))
    # Code 5: blocks that fit the table, row blocks of few tiles, more rows than they cover.
    short_blocks = rng.integers(0, top, count) % np.minimum(fit, 16) + 1
    short_tiles = rng.integers(0, top, count) % np.maximum(1, 511 // (short_blocks * lanes)) + 1
    covered = short_blocks * short_tiles * lanes
    blocks = np.where(kind == 5, short_blocks, blocks)
    tiles = np.where(kind == 5, short_tiles, tiles)
    rows = np.where(kind == 5, covered + 1 + rng.integers(0, top, count) % (top - 1 - covered), rows)
    bases = rng.integers(0, 1 << 32, (count, 2), dtype=np.uint64)
    inputs = {"desc__valid": rng.integers(0, 2, count, dtype=np.uint64),
              "desc__payload": pack_fields([(positions, 16), (rows, 16), (tiles, 16), (blocks, 16), (bases, 32)])}
    for name, width in _widths(params).items():
        inputs[name] = random_words(rng, count, width)
    for name in ("x__valid", "acc__ready", "mem__cb__req__ready", "mem__idx__req__ready",
                 "mem__cb__resp__valid", "mem__idx__resp__valid"):
        inputs[name] = rng.integers(0, 2, count, dtype=np.uint64)
    return inputs


def _golden(params, inputs):
    fields = unpack_fields(inputs["desc__payload"], [(1, 16), (1, 16), (1, 16), (1, 16)])
    positions, rows, tiles, blocks = (f[:, 0] for f in fields)
    code = np.select(
        [(positions == 0) | (positions > params["max_positions"]), rows == 0, tiles == 0,
         (blocks == 0) | (blocks * positions > params["max_table_rows"]),
         blocks * tiles * params["lanes"] < rows],
        [1, 2, 3, 4, 5], 0)
    valid = np.asarray(inputs["desc__valid"]).astype(bool)
    # Outputs one cycle after each descriptor: the latest refused descriptor's code.
    seen = np.maximum.accumulate(np.where(valid, np.arange(len(valid)), -1))
    error = np.where(seen >= 0, code[np.maximum(seen, 0)], 0).astype(np.uint64)
    zeros = np.zeros(len(valid), dtype=np.uint64)
    return {"error": error, "done": (seen >= 0).astype(np.uint64), "busy": zeros,
            "desc__ready": np.ones(len(valid), dtype=np.uint64),
            "mem__cb__req__valid": zeros, "mem__idx__req__valid": zeros, "acc__valid": zeros, "x__ready": zeros,
            "mem__cb__resp__ready": zeros, "mem__idx__resp__ready": zeros}


register(Block(
    name="tmac_core",
    summary="Weight-only LUT GEMV core (T-MAC style): on-chip run-time tables from int8 activations and "
            "codebook codes, LUT GEMV engine, descriptor/status control, 2-channel memory port.",
    build=_build,
    params={
        "v": Param(2, "sub-vector length", choices=(1, 2, 4, 8), parse=int),
        "c_w": integer(16, "weight centroids", 1, MAX_CENTROIDS),
        "cb_bits": integer(8, "signed weight codebook code bits", 2, 16),
        "lanes": integer(16, "output lanes L", 1, MAX_LANES),
        "max_positions": integer(1024, "largest P a descriptor may ask for", 1, MAX_POSITIONS),
        "max_table_rows": integer(1024, "on-chip table rows (blocks * P a run may build), "
                                        "at least max_positions", 1, MAX_TABLE_ROWS),
    },
    vectors=_vectors,
    golden=_golden,
    latency=lambda params: 1,
    check=_check,
    lint_examples=({}, {"v": "4", "c_w": "256", "cb_bits": "5", "lanes": "8", "max_positions": "48",
                        "max_table_rows": "100"}),
))
