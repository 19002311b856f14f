"""Lowering a quantized layer onto its core: runs, memory images and the activation scale.

:func:`lower` takes what the ``quantize`` step made of a layer (:mod:`lutforge.compiler.layer_quant`)
and lowers it onto the LUT core (:func:`lower_layer`), the block-format core
(:func:`lower_block_layer`) or the weight-only LUT core (:func:`lower_tmac_layer`).

A :class:`~lutforge.golden.lut_layer.LutLayer` (positions P = ceil(K / v), row blocks
of G rows) becomes one or more *core runs*. The core sums one position group per run (see
:mod:`lutforge.hdl.gemv_core`), so a layer quantized with ``positions_per_group`` = S < P is cut
along K into ceil(P / S) runs (K tiles), each with its own memory images at its own bases and its
own table scale per row block; the host adds the dequantized runs. A layer with a residual
codebook has the runs of its second stage after those of the first (same activations, same
activation codebooks), and the host adds them too. Output rows are tiled in ``lanes``-row tiles (G
must be a multiple of ``lanes``).
"""

import dataclasses

import numpy as np

from ..golden import block_gemv
from ..golden.gemv_core import core_images
from ..golden.lut_layer import LutLayer
from ..golden.tmac import tmac_core_images
from ..program.artifact import (BlockLoweredLayer, CoreRun, LoweredLayer, ProgramError, TmacLoweredLayer,
                                quantize_activations)
from .layer_quant import BlockWeights, LutStages, TmacWeights

__all__ = ["activation_scale", "split_runs", "lower_layer", "lower_block_layer", "lower_tmac_layer", "lower"]


def activation_scale(act_codebooks: np.ndarray) -> float:
    peak = float(np.max(np.abs(np.asarray(act_codebooks, dtype=np.float64)), initial=0.0))
    return peak / 127.0 if peak > 0.0 else 1.0


def split_runs(layer: LutLayer) -> list[tuple[int, LutLayer]]:
    """The layer cut into its position groups, each a LutLayer with one group: [(first position, sub)]."""
    s, p_count, v = layer.positions_per_group, layer.num_positions, layer.v
    out = []
    for q, p0 in enumerate(range(0, p_count, s)):
        p1 = min(p_count, p0 + s)
        k = min(layer.in_features, p1 * v) - p0 * v
        out.append((p0, dataclasses.replace(
            layer, in_features=k, positions_per_group=p1 - p0,
            act_codebooks=layer.act_codebooks[p0:p1], weight_codebooks=layer.weight_codebooks[p0:p1],
            widx=layer.widx[:, p0:p1], tables=layer.tables[p0:p1], table_codes=layer.table_codes[p0:p1],
            scales=layer.scales[q:q + 1], zero_points=layer.zero_points[q:q + 1])))
    return out


def lower_layer(name: str, layer: LutLayer | LutStages, lanes: int, max_positions: int) -> LoweredLayer:
    """Map ``layer`` (one co-quantized layer, or the stages of a LUT method) onto a core with
    ``lanes`` lanes and ``max_positions`` positions per run."""
    stages = layer if isinstance(layer, LutStages) else LutStages((layer,))
    first = stages.stages[0]
    for stage in stages.stages:
        if stage.scheme != "asymmetric":
            raise ProgramError(
                f"Layer {name} uses table scheme {stage.scheme!r}, whose float zero point the core's "
                f"integer accumulators cannot carry; quantize with scheme 'asymmetric'.")
        if not np.array_equal(stage.act_codebooks, first.act_codebooks):
            raise ProgramError(f"The stages of layer {name} have different activation codebooks; a residual "
                               f"stage must search the same centroids as the first.")
    act_scale = activation_scale(first.act_codebooks)
    cb_q = quantize_activations(first.act_codebooks.reshape(first.num_positions, -1), act_scale, 1)
    cb_q = cb_q.reshape(first.act_codebooks.shape)
    runs, cbs, tabs, idxs = [], [], [], []
    bases = [0, 0, 0]
    for p0, sub in (run for stage in stages.stages for run in split_runs(stage)):
        if sub.num_positions > max_positions:
            raise ProgramError(
                f"Layer {name} needs {sub.num_positions} positions in one core run but the core "
                f"holds at most {max_positions}; cut it into runs of at most {max_positions} positions "
                f"(quantization.positions_per_run, or the LUT method's scale_positions) or build the core "
                f"with core.max_positions >= {sub.num_positions}.")
        x0 = np.zeros((sub.num_positions, sub.v), dtype=np.int8)
        img = core_images(x0, cb_q[p0:p0 + sub.num_positions], sub, lanes)
        d = dict(img.descriptor, cb_base=bases[0], tab_base=bases[1], idx_base=bases[2])
        runs.append(CoreRun(p0, sub.num_positions, d))
        for i, words in enumerate((img.cb, img.tab, img.idx)):
            bases[i] += len(words)
        cbs.append(img.cb)
        tabs.append(img.tab)
        idxs.append(img.idx)
    return LoweredLayer(
        name, first.in_features, first.out_features, first.v, first.c_a, first.c_w, first.group_rows,
        first.table_bits, lanes, first.metric, act_scale, tuple(runs),
        np.concatenate(cbs), np.concatenate(tabs), np.concatenate(idxs),
        np.concatenate([np.asarray(s.scales, dtype=np.float32) for s in stages.stages]),
        np.concatenate([np.asarray(s.zero_points, dtype=np.int64) for s in stages.stages]), stages.hadamard)


def lower_block_layer(name: str, layer: BlockWeights, lanes: int, max_chunks: int) -> BlockLoweredLayer:
    """Map block-format weights onto a block core with ``lanes`` lanes that buffers ``max_chunks``
    activation chunks (one run per token)."""
    fmt = block_gemv.BlockGemvFormat(layer.weight, layer.act)
    chunks = layer.elements.shape[1] // fmt.chunk
    if chunks > max_chunks:
        raise ProgramError(
            f"Layer {name} needs {chunks} activation chunks of {fmt.chunk} in one run but the block core "
            f"buffers at most {max_chunks}; build the cores with core.max_positions >= {chunks}.")
    img = block_gemv.core_images(layer.elements, layer.scales, fmt, lanes)
    return BlockLoweredLayer(name, layer.in_features, layer.out_features, layer.weight, layer.act, lanes,
                             dict(img.descriptor), layer.tensor_scale, img.w, img.s)


def lower_tmac_layer(name: str, weights: TmacWeights, lanes: int, max_positions: int) -> TmacLoweredLayer:
    """Map a weight-only LUT layer onto a weight-only core with ``lanes`` lanes whose table memory
    holds ``max_positions`` rows: a layer of NG row blocks runs ``max_positions // NG`` positions per
    run (each run builds NG tables per position), the host adds the runs' integer sums."""
    layer = weights.layer
    if layer.group_rows % lanes:
        raise ProgramError(f"Layer {name} has row blocks of G={layer.group_rows} rows, not a whole number of "
                           f"{lanes}-lane tiles; quantize it with group_rows a multiple of {lanes} (or 0).")
    per_run = max_positions // layer.num_blocks
    if per_run < 1:
        raise ProgramError(
            f"Layer {name} has {layer.num_blocks} row blocks, but the weight-only core's table memory holds "
            f"{max_positions} rows, fewer than one position's tables; use a larger group_rows or build the "
            f"cores with core.max_positions >= {layer.num_blocks}.")
    p_count, v = layer.num_positions, layer.v
    runs, cbs, idxs, bases = [], [], [], [0, 0]
    for p0 in range(0, p_count, per_run):
        p1 = min(p_count, p0 + per_run)
        sub = dataclasses.replace(layer, in_features=min(layer.in_features, p1 * v) - p0 * v,
                                  codes=layer.codes[p0:p1], widx=layer.widx[:, p0:p1])
        img = tmac_core_images(np.zeros((p1 - p0, v), np.int8), sub, lanes)
        runs.append(CoreRun(p0, p1 - p0, dict(img.descriptor, cb_base=bases[0], idx_base=bases[1])))
        bases[0] += len(img.cb)
        bases[1] += len(img.idx)
        cbs.append(img.cb)
        idxs.append(img.idx)
    return TmacLoweredLayer(name, layer.in_features, layer.out_features, v, layer.c_w, layer.group_rows,
                            layer.cb_bits, lanes, tuple(runs), np.concatenate(cbs), np.concatenate(idxs),
                            np.asarray(layer.scales, np.float32), weights.hadamard)


def lower(name: str, layer: LutStages | BlockWeights | TmacWeights, lanes: int, max_positions: int):
    """The lowered layer of what the ``quantize`` step made of layer ``name``."""
    if isinstance(layer, BlockWeights):
        return lower_block_layer(name, layer, lanes, max_positions)
    if isinstance(layer, TmacWeights):
        return lower_tmac_layer(name, layer, lanes, max_positions)
    return lower_layer(name, layer, lanes, max_positions)
