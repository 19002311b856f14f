"""Golden model of the GEMV core (``lutforge.hdl.gemv_core``): its result and its memory images.

``gemv_core`` is the integer function of one core run: the int8 centroid search of
:mod:`.centroid_search` then :func:`.lut_gemv.lut_gemv`, laid out in tiles of ``lanes`` rows with
padding rows reading 0. ``core_images`` packs a :class:`.lut_layer.LutLayer` (one position group)
into the three memory images and the descriptor fields the core's docstring specifies; the
compiler and the tests share it so there is one statement of the layout.
"""

from dataclasses import dataclass

import numpy as np

from .centroid_search import search
from .lut_gemv import lut_gemv
from .lut_layer import LutLayer

__all__ = ["TABLE_ENGINES", "CoreImages", "core_images", "index_words", "activation_payloads", "gemv_core", "tile_count",
           "descriptor_fields", "pack_words", "pack_descriptor"]

# The descriptor of one core run, fields LSB first: (name, width in bits; None = the address width).
# The RTL's descriptor layout (lutforge.hdl.gemv_core.descriptor_layout) is built from this table.
DESCRIPTOR = (("positions", 16), ("out_features", 16), ("tiles_per_block", 16),
              ("cb_base", None), ("tab_base", None), ("idx_base", None))


# The GEMV core's table engines (:mod:`lutforge.hdl.gemv_core`): both read these images and compute
# these sums; they differ in how often they read a table row and where its entries are selected.
TABLE_ENGINES = ("rows", "resident")


def descriptor_fields(addr_width: int = 32) -> tuple[tuple[str, int], ...]:
    """The descriptor's (name, width) pairs, LSB first, for memory addresses of ``addr_width`` bits."""
    return tuple((name, addr_width if width is None else width) for name, width in DESCRIPTOR)


def tile_count(out_features: int, lanes: int) -> int:
    return -(-int(out_features) // int(lanes))


def _check(layer: LutLayer, act_codebooks_q: np.ndarray, lanes: int) -> None:
    if layer.quantized_tables().num_position_groups != 1:
        raise ValueError(
            f"The GEMV core sums one position group per run; this layer has "
            f"{layer.quantized_tables().num_position_groups}, so run it once per group."
        )
    if layer.group_rows % lanes:
        raise ValueError(
            f"Row blocks of G={layer.group_rows} rows are not a whole number of {lanes}-lane tiles; "
            f"use G a multiple of the lane count."
        )
    cb = np.asarray(act_codebooks_q)
    if cb.dtype != np.int8 or cb.shape != (layer.num_positions, layer.c_a, layer.v):
        raise ValueError(
            f"The core's activation codebooks must be int8 of shape "
            f"{(layer.num_positions, layer.c_a, layer.v)}; got {cb.dtype} {cb.shape}."
        )


def gemv_core(x_q, act_codebooks_q, layer: LutLayer, lanes: int, metric: str = "linf") -> np.ndarray:
    """Accumulators (tiles, lanes) int64 for int8 sub-vectors ``x_q`` (P, v) and codebooks (P, C_a, v)."""
    _check(layer, act_codebooks_q, lanes)
    a = search(np.asarray(x_q), np.asarray(act_codebooks_q), metric)
    acc = lut_gemv(a, layer)[:, 0]
    out = np.zeros(tile_count(layer.out_features, lanes) * lanes, dtype=np.int64)
    out[: layer.out_features] = acc
    return out.reshape(-1, lanes)


def pack_words(values: np.ndarray, bits: int) -> np.ndarray:
    """Rows of unsigned ``bits``-bit fields (..., M), field j at bits j*bits.., as uint32 words."""
    values = np.asarray(values, dtype=np.uint64)
    m = values.shape[-1]
    words = -(-m * bits // 32)
    stream = ((values[..., None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    stream = stream.reshape(*values.shape[:-1], m * bits)
    pad = np.zeros((*values.shape[:-1], words * 32 - m * bits), dtype=np.uint8)
    packed = np.packbits(np.concatenate([stream, pad], axis=-1), axis=-1, bitorder="little")
    return packed.view("<u4").reshape(*values.shape[:-1], words)


def pack_descriptor(values: dict, fields) -> int:
    """Descriptor ``values`` as one integer, the (name, width) ``fields`` LSB first."""
    word, shift = 0, 0
    for name, width in fields:
        if not 0 <= values[name] < 1 << width:
            raise ValueError(f"Descriptor field {name}={values[name]} does not fit {width} bits.")
        word |= int(values[name]) << shift
        shift += width
    return word


@dataclass(frozen=True)
class CoreImages:
    """Memory images (uint32 words, one row per memory word) and the descriptor fields of one run."""

    cb: np.ndarray
    tab: np.ndarray
    idx: np.ndarray
    x: np.ndarray  # (P,) uint64 payloads of the activation stream, v int8 each
    descriptor: dict

    def descriptor_word(self, addr_width: int = 32) -> int:
        """The descriptor as one integer, fields LSB first as the core's ``desc`` payload."""
        return pack_descriptor(self.descriptor, descriptor_fields(addr_width))


def index_words(widx: np.ndarray, c_w: int, lanes: int) -> np.ndarray:
    """The index memory image of weight indices (N, P): word ``t * P + p`` holds rows ``t L ..
    t L + L - 1`` at position p, ceil(log2 C_w) bits each, padding rows 0 (both LUT cores' layout)."""
    n, p_count = widx.shape
    tiles = tile_count(n, lanes)
    padded = np.zeros((tiles * lanes, p_count), dtype=np.int64)
    padded[:n] = widx
    per_word = padded.reshape(tiles, lanes, p_count).transpose(0, 2, 1).reshape(-1, lanes)
    return pack_words(per_word, max(1, (c_w - 1).bit_length()))


def activation_payloads(x_q) -> np.ndarray:
    """(P,) uint64 payloads of the ``x`` stream for int8 sub-vectors (P, v), element j at bits 8j."""
    x_q = np.asarray(x_q)
    x_words = pack_words(x_q.view(np.uint8).reshape(x_q.shape[0], -1), 8).astype(np.uint64)
    return x_words[:, 0] | (x_words[:, 1] << np.uint64(32) if x_words.shape[1] > 1 else np.uint64(0))


def core_images(x_q, act_codebooks_q, layer: LutLayer, lanes: int) -> CoreImages:
    """The core's memory images for ``layer``, all bases 0 (see the core's docstring for the layout)."""
    _check(layer, act_codebooks_q, lanes)
    p_count, v, c_a, c_w = layer.num_positions, layer.v, layer.c_a, layer.c_w
    cb = pack_words(np.asarray(act_codebooks_q).view(np.uint8).reshape(p_count, c_a * v), 8)
    # (g * P + p) * C_a + a  ->  codes transposed to (NG, P, C_a, C_w).
    codes = np.transpose(layer.table_codes, (1, 0, 2, 3)).reshape(-1, c_w)
    tab = pack_words(codes, layer.table_bits)
    idx = index_words(layer.widx, c_w, lanes)
    x = activation_payloads(x_q)
    descriptor = {
        "positions": p_count,
        "out_features": layer.out_features,
        "tiles_per_block": layer.group_rows // lanes,
        "cb_base": 0,
        "tab_base": 0,
        "idx_base": 0,
    }
    return CoreImages(cb, tab, idx, x, descriptor)
