"""MX/NV block dot-product unit in the block catalogue, with the payload packing of its stream ``i``.

A stream block: ``vectors`` returns the payloads of stream ``i`` (one block pair per beat, ``last``
on each vector's final block) and ``golden`` the fp32 payloads of stream ``o``.
"""

import numpy as np

from ..golden import mx
from . import Block, Param, integer, register

FP_BLOCK_FORMATS = tuple(n for n, f in mx.BLOCK_FORMATS.items() if not f.int_bits)


def pack_block_pairs(fmt, vectors) -> np.ndarray:
    """Payload integers of stream ``i`` for ``[(a_blocks, b_blocks), ...]`` (1-D element arrays)."""
    bf = mx.get_block_format(fmt)
    w, block = bf.elem_fmt.width, bf.block
    base = 2 * w * block
    payloads = []
    for a, b in vectors:
        n = len(a.scales)
        for k in range(n):
            pa = sum(int(e) << (i * w) for i, e in enumerate(a.elements[k * block:(k + 1) * block]))
            pb = sum(int(e) << (i * w) for i, e in enumerate(b.elements[k * block:(k + 1) * block]))
            payloads.append(pa | (pb << (w * block)) | (int(a.scales[k]) << base)
                            | (int(b.scales[k]) << (base + 8)) | (int(k == n - 1) << (base + 16)))
    return np.array(payloads, dtype=object)


def unpack_block_pairs(fmt, payloads) -> list:
    """Inverse of :func:`pack_block_pairs`: the vectors, split at the ``last`` beats."""
    bf = mx.get_block_format(fmt)
    w, block = bf.elem_fmt.width, bf.block
    base = 2 * w * block
    vectors, current = [], []
    for p in payloads:
        p = int(p)
        current.append(p)
        if (p >> (base + 16)) & 1:
            def side(shift, scale_shift):
                els = [(q >> (shift + i * w)) & ((1 << w) - 1) for q in current for i in range(block)]
                return mx.Blocks(np.array(els, np.uint8),
                                 np.array([(q >> scale_shift) & 0xFF for q in current], np.uint8), None)
            vectors.append((side(0, base), side(w * block, base + 8)))
            current = []
    if current:
        raise ValueError("The last beat of the stream does not have 'last' set; every vector must end with it.")
    return vectors


def random_vectors(fmt, rng, count, max_blocks: int = 11):
    """Block pairs: quantized Gaussian data (any scale) for even vectors, raw random element and
    scale encodings (overflow, underflow, NaN scales, Inf/NaN elements) for odd ones."""
    bf = mx.get_block_format(fmt)
    out = []
    for v in range(count):
        n_blocks = int(rng.integers(1, max_blocks + 1))
        if v % 2 == 0:
            x = rng.standard_normal((2, n_blocks * bf.block)) * np.exp2(rng.integers(-20, 20))
            kwargs = {"tensor_scale": None} if bf.scale == "e4m3" else {}
            q = mx.quantize(x.astype(np.float32), bf, **kwargs)
            pair = tuple(mx.Blocks(q.elements[k], q.scales[k], None) for k in range(2))
        else:
            w = bf.elem_fmt.width
            pair = tuple(mx.Blocks(rng.integers(0, 1 << w, n_blocks * bf.block).astype(np.uint8),
                                   rng.integers(0, 256, n_blocks).astype(np.uint8), None) for _ in range(2))
        out.append(pair)
    return out


def golden_dots(fmt, vectors) -> np.ndarray:
    return np.array([np.asarray(mx.dot(a, b, fmt)).view(np.uint32) for a, b in vectors], np.uint64)


def _build(params):
    from ..hdl.mx_dot import MXDotProduct
    return MXDotProduct(params["format"], max_levels=params["max_levels"])


register(Block(
    name="mx_dot",
    summary="MX/NV block dot product (streams i -> o): fp32 products, tree sums, block scales, fp32 tree over blocks.",
    build=_build,
    params={
        "format": Param("mxfp8_e4m3", "block format", choices=FP_BLOCK_FORMATS),
        # The RTL (hdl/mx_dot.py) refuses more than 30 levels.
        "max_levels": integer(16, "vectors of up to 2**max_levels - 1 blocks", 1, 30),
    },
    vectors=lambda params, rng, count: {"i": pack_block_pairs(params["format"], random_vectors(
        params["format"], rng, max(1, count // 8)))},
    golden=lambda params, inputs: {"o": golden_dots(params["format"], unpack_block_pairs(params["format"], inputs["i"]))},
    lint_examples=({"format": "mxfp8_e4m3"}, {"format": "nvfp4", "max_levels": "8"}, {"format": "mxfp6_e2m3"}),
    streams=True,
))
