"""What the compile flow's ``quantize`` step makes of one decoder linear, whatever its kind: the
one intermediate the ``emit`` step lowers (:func:`lutforge.compiler.lower.lower`).

* :class:`LutStages` — a layer for the LUT core: one co-quantized :class:`~lutforge.golden.lut_layer.LutLayer`
  per stage (two with a residual codebook; their runs are summed by the host) and the Hadamard
  size the host rotates activations by. Made by the ``quantization`` section's co-quantizer or by
  a ``kind: lut`` method.
* :class:`BlockWeights` — a layer for the block-format core: weight element and scale codes of an
  MXINT8, MXINT4, MXFP4 or NVFP4 method (nearest rounding or GPTQ), NVFP4's tensor scale, and the
  activation format the core takes.

* :class:`TmacWeights` — a layer for the weight-only LUT core: the integer codebooks, scales and
  weight indices of a ``kind: tmac`` method (:class:`lutforge.golden.tmac.TmacLayer`) and its
  Hadamard size.

``bf16`` and ``fp32`` methods have no core: :func:`check_lowerable` refuses them (and LUT methods
whose tables the core cannot hold) before any work, naming the layer, the kind and the fix.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass

import numpy as np

from ..golden.lut_layer import LutLayer
from ..golden.tmac import TmacLayer
from .config import check_lowerable, model_linears

__all__ = ["LutStages", "BlockWeights", "TmacWeights", "quantize_method", "config_streamed_bits", "to_bytes", "from_bytes", "layer_bytes",
           "layer_from_bytes", "npz_bytes"]


@dataclass(frozen=True)
class LutStages:
    stages: tuple[LutLayer, ...]
    hadamard: int = 0

    kind = "lut"


@dataclass(frozen=True)
class BlockWeights:
    weight: str                 # block format of the weights (golden.block_gemv.WEIGHT_FORMATS)
    act: str                    # block format of the activations (golden.block_gemv.ACT_FORMATS)
    in_features: int            # K before padding to whole blocks
    elements: np.ndarray        # (N, K padded) uint8 element codes
    scales: np.ndarray          # (N, K padded / block) uint8 scale codes
    tensor_scale: float | None  # NVFP4's fp32 tensor scale

    kind = "block"

    @property
    def out_features(self) -> int:
        return self.elements.shape[0]


@dataclass(frozen=True)
class TmacWeights:
    layer: TmacLayer
    hadamard: int = 0

    kind = "tmac"


_TMAC_ARRAYS = ("codes", "scales", "widx")


def default_method(cfg):
    """The method of a layer the configuration does not name: ``lut_methods.default``, or for a
    ``quantization`` section the same co-quantized LUT layer it gives every linear."""
    from .lut_methods import LayerMethod

    if cfg.lut_methods is not None:
        return cfg.lut_methods.default
    q = cfg.quantization
    return LayerMethod(v=q.v, c_a=q.c_a, c_w=q.c_w, group_rows=q.group_rows, table_bits=q.table_bits,
                       scales="block" if q.granularity == "block" else "layer", scale_positions=q.positions_per_run)


def config_streamed_bits(cfg, model=None) -> float:
    """Streamed bits per weight of a configuration over the decoder linears of ``model`` (as for
    :func:`~lutforge.compiler.config.model_linears`; default: the configuration's), weighted by
    weight count: each layer's method (:func:`default_method` where it names none)."""
    from .lut_methods import streamed_bits

    method = cfg.lut_methods.method if cfg.lut_methods is not None else (lambda name: default_method(cfg))
    sizes = model_linears(cfg.model if model is None else model)
    total = sum(n * k for n, k in sizes.values())
    return sum(streamed_bits(method(name), n, k) * n * k for name, (n, k) in sizes.items()) / total


def quantize_method(name: str, weight: np.ndarray, calibration: np.ndarray, m, *,
                    codebooks: tuple | None = None, device: str = "cpu") -> LutStages | BlockWeights | TmacWeights:
    """Quantize layer ``name`` (weight (N, K), calibration inputs (n, K)) with the method ``m``;
    fits come from the content-addressed fit cache, made on ``device`` where missing. ``codebooks`` (activation codebooks, [weight
    codebooks per stage]) replace a LUT fit's own: trained ones (:mod:`lutforge.compiler.finetune`),
    with the fit's weight indices."""
    from .lut_methods import cached_fit, to_lut_layers

    check_lowerable(name, m)
    if m.kind == "lut":
        fitted = cached_fit(weight, calibration, m, device)
        if codebooks is not None:
            import torch

            act, stages = codebooks
            if act.shape != tuple(fitted.act_codebooks.shape) or len(stages) != len(fitted.weight_codebooks):
                raise ValueError(f"The trained codebooks of layer {name} do not fit its method "
                                 f"{m.to_dict()}; fine-tune again for this configuration.")
            fitted = dataclasses.replace(fitted, act_codebooks=torch.from_numpy(act),
                                         weight_codebooks=[torch.from_numpy(w) for w in stages], tables_q=None)
        return LutStages(tuple(to_lut_layers(fitted)), m.hadamard)
    if m.kind == "tmac":
        from .lut_methods import to_tmac_layer

        fitted = cached_fit(weight, calibration, m, device)
        if codebooks is not None:
            import torch

            _, stages = codebooks
            if len(stages) != 1 or stages[0].shape != tuple(fitted.weight_codebooks[0].shape):
                raise ValueError(f"The trained codebooks of layer {name} do not fit its method "
                                 f"{m.to_dict()}; fine-tune again for this configuration.")
            fitted = dataclasses.replace(fitted, weight_codebooks=[torch.from_numpy(stages[0])])
        return TmacWeights(to_tmac_layer(fitted), m.hadamard)
    if codebooks is not None:
        raise ValueError(f"Layer {name} is of kind {m.kind}, which has no codebooks to replace.")
    from ..golden import mx

    fmt = m.kind  # the block kinds are named as golden.mx's formats
    block = mx.get_block_format(fmt).block
    n, k = weight.shape
    padded = np.zeros((n, -(-k // 32) * 32), dtype=np.float32)  # whole 32-element activation blocks
    padded[:, :k] = weight
    if m.fit == "gptq":
        cal = np.zeros((calibration.shape[0], padded.shape[1]), dtype=np.float32)
        cal[:, :k] = calibration
        blocks = _cached_gptq(padded, cal, fmt, device)
    else:
        blocks = mx.quantize(padded, fmt)
    elements = np.asarray(blocks.elements, dtype=np.uint8).reshape(n, -1)
    scales = np.asarray(blocks.scales, dtype=np.uint8).reshape(n, padded.shape[1] // block)
    ts = None if blocks.tensor_scale is None else float(np.float32(blocks.tensor_scale))
    return BlockWeights(fmt, m.act, k, elements, scales, ts)


def _cached_gptq(weight: np.ndarray, calibration: np.ndarray, fmt: str, device: str):
    """GPTQ block rounding through the content-addressed cache (a Hessian solve per layer, on ``device``)."""
    from ..golden import mx
    from ..support.cache import cache_root, content_key, read_cached, source_hash, write_cached
    from ..support.toolchain import tool_versions
    from .gptq_blocks import gptq_blocks
    from .torch_reference import device_key

    key = content_key(weight, calibration, fmt, source_hash("lutforge.compiler.gptq_blocks", "lutforge.golden.mx"),
                      tool_versions("numpy", "torch"), *device_key(device))
    path = cache_root() / "gptq_blocks" / f"{key}.npz"
    stored = read_cached(path)
    if stored is not None:
        with np.load(io.BytesIO(stored)) as f:
            ts = f["tensor_scale"]
            return mx.Blocks(f["elements"], f["scales"], None if ts.size == 0 else np.float32(ts[0]))
    blocks = gptq_blocks(weight, calibration, fmt, device=device)
    write_cached(path, npz_bytes(elements=blocks.elements, scales=blocks.scales, tensor_scale=np.array(
        [] if blocks.tensor_scale is None else [blocks.tensor_scale], np.float32)))
    return blocks


_LUT_ARRAYS = ("act_codebooks", "weight_codebooks", "widx", "tables", "table_codes", "scales", "zero_points")


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _lut_parts(layer: LutLayer) -> tuple[dict, dict]:
    """(metadata, arrays) of ``layer`` without its float tables (a reference only, and the largest array)."""
    meta = {f.name: getattr(layer, f.name) for f in dataclasses.fields(layer) if f.name not in _LUT_ARRAYS}
    return meta, {k: getattr(layer, k) for k in _LUT_ARRAYS if k != "tables"}


def _lut_layer(meta: dict, arrays: dict) -> LutLayer:
    return LutLayer(**meta, tables=np.zeros(0, np.float32), **arrays)


def layer_bytes(layer: LutLayer) -> bytes:
    """One co-quantized layer as ``.npz`` bytes (the codebook cache's entries)."""
    meta, arrays = _lut_parts(layer)
    return npz_bytes(__meta__=np.array(json.dumps(meta)), **arrays)


def layer_from_bytes(data: bytes) -> LutLayer:
    with np.load(io.BytesIO(data)) as f:
        meta = json.loads(str(f["__meta__"]))
        return _lut_layer(meta, {k: f[k] for k in _LUT_ARRAYS if k != "tables"})


def to_bytes(q: LutStages | BlockWeights | TmacWeights) -> bytes:
    """What the ``quantize`` step made of a layer, as ``.npz`` bytes."""
    arrays = {}
    if isinstance(q, LutStages):
        metas = []
        for i, layer in enumerate(q.stages):
            meta, parts = _lut_parts(layer)
            metas.append(meta)
            arrays.update({f"{i}.{k}": a for k, a in parts.items()})
        meta = {"kind": "lut", "hadamard": q.hadamard, "stages": metas}
    elif isinstance(q, TmacWeights):
        layer = q.layer
        meta = {"kind": "tmac", "hadamard": q.hadamard,
                **{f.name: getattr(layer, f.name) for f in dataclasses.fields(layer) if f.name not in _TMAC_ARRAYS}}
        arrays = {k: getattr(layer, k) for k in _TMAC_ARRAYS}
    else:
        meta = {"kind": "block", "weight": q.weight, "act": q.act, "in_features": q.in_features,
                "tensor_scale": None if q.tensor_scale is None else float(q.tensor_scale).hex()}
        arrays = {"elements": q.elements, "scales": q.scales}
    return npz_bytes(__meta__=np.array(json.dumps(meta)), **arrays)


def from_bytes(data: bytes) -> LutStages | BlockWeights | TmacWeights:
    with np.load(io.BytesIO(data)) as f:
        meta = json.loads(str(f["__meta__"]))
        arrays = {k: f[k] for k in f.files if k != "__meta__"}
    if meta["kind"] == "block":
        ts = meta["tensor_scale"]
        return BlockWeights(meta["weight"], meta["act"], meta["in_features"], arrays["elements"], arrays["scales"],
                            None if ts is None else float.fromhex(ts))
    if meta["kind"] == "tmac":
        hadamard = meta.pop("hadamard")
        meta.pop("kind")
        return TmacWeights(TmacLayer(**meta, **arrays), hadamard)
    return LutStages(tuple(_lut_layer(stage, {k: arrays[f"{i}.{k}"] for k in _LUT_ARRAYS if k != "tables"})
                           for i, stage in enumerate(meta["stages"])), meta["hadamard"])
