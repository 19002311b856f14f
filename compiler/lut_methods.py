"""Per-layer quantization methods for LUT-LLM fidelity work: what each decoder linear
becomes, how many bits it streams, and a fast PyTorch evaluation that computes what the golden
LUT GEMV computes.

A *method* (:class:`LayerMethod`) is a LUT layer (``kind="lut"``), a weight-only LUT layer
(``kind="tmac"``: the weights vector-quantized as for ``lut``, activations int8 per row, the tables
built at run time from the activations, T-MAC style; options ``v``, ``c_w``, ``group_rows``,
``fit``, ``hadamard``, ``iterations``, ``seed`` and ``cb_bits``, the signed bits of its codebook
entries) or a layer left in a numerics format (``kind`` in ``mxint8``, ``mxint4``, ``mxfp4``, ``nvfp4``, ``bf16``, ``fp32``; weights
quantized with :mod:`lutforge.golden.mx`, activations unchanged). Block formats take
``fit: gptq``: the same format, codes chosen by GPTQ for the layer output
(:mod:`lutforge.compiler.gptq_blocks`) instead of nearest rounding.

LUT options, each measured side by side in ``docs/quantization.md``:

* ``v``, ``c_a``, ``c_w``: sub-vector length and codebook sizes (up to 256);
* ``group_rows``: G, rows per weight codebook (0 = the whole layer, one codebook per position);
* ``table_bits``: 8 or 4 (0 = float tables, a reference that the core cannot run);
* ``scales``: table-scale cells: ``"block"`` (one scale and integer zero point per row block and
  run of ``scale_positions`` positions; 0 = all positions, 1 = per (position, row block)), ``"layer"`` (one per layer, integer zero point) or ``"artifact"`` (one per layer,
  float32 scale and zero point and codes rounded half away from zero, as LUT-LLM's public code;
  golden reference only);
* ``fit``: weight codebooks fitted by ``"kmeans"`` (plain input distance), ``"act"`` (k-means
  under the calibration activations' per-column second moment) or ``"gptq"`` (fitted to the
  layer *output*: the weights are first moved to the least-squares solution for the quantized
  activations, ``W* = argmin ||X W^T - Xq W*^T||``, then vector-quantized position by position
  under the metric of the inverse Hessian of ``Xq`` with GPTQ error compensation of the later
  columns, in the spirit of GPTQ/GPTVQ);
* ``residual``: a second weight codebook on the residual (two lookups summed, see
  :mod:`lutforge.golden.lut_residual`);
* ``hadamard``: block-Hadamard rotation of size ``hadamard`` (0 = none) of activations and
  weights before vector quantization (``y = (x H)(W H)^T``; H orthonormal), applied on the host.

Streamed bits per weight (one GEMV, i.e. one pass over the layer, N x K weights, P = ceil(K/v)
positions, NG = ceil(N/G) row blocks, b = table bits, R = 2 with a residual stage else 1)::

    LUT:      R * (P * NG * C_a * C_w * b  +  N * P * log2(C_w)  +  48 * cells) / (N * K)
              (tables, amortized over G rows; index bits per v weights; fp32 scale + 16-bit zero
               point per table-scale cell)
    tmac:     (P * NG * C_w * v * cb_bits  +  N * P * ceil(log2 C_w)  +  32 * NG) / (N * K)
              (integer weight codebooks, index fields as the index memory holds them, one fp32
               codebook scale per row block)
    numerics: element bits + scale bits per block (mxint8: 8 + 8/32, mxint4 and mxfp4: 4 + 8/32,
              nvfp4: 4 + 8/16 + 32/(N K), bf16: 16, fp32: 32)

The activation codebooks (P * C_a * v int8 values) are not in this count; they are reported as
``codebook_bits`` next to it.

The hardware contract this module reproduces for LUT layers (see :mod:`lutforge.program.artifact`):
activations and codebooks are int8 with one scale ``max|A| / 127`` per layer, the centroid search
runs on the int8 values (metric ``l2``, ties to the lowest index), and each output adds one table
entry per position. With quantized tables the float output is ``sum_p scale * (code - zp)``
(exactly the golden dequantization), computed here with ``embedding_bag`` instead of a loop. Scales
``"artifact"`` use the same per-entry sum; the authors' hardware (and the golden model) instead
dequantizes the integer sum once in float32, ``acc * scale - zp * scale * P``, which equals it up to
float32 rounding.
"""

from __future__ import annotations

import dataclasses
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..support.cache import cache_root, content_key, read_cached, source_hash, write_cached
from ..support.toolchain import tool_versions
from .hadamard import hadamard_t
from .torch_reference import device_key

__all__ = ["LayerMethod", "parse_method", "streamed_bits", "codebook_bits", "FittedLayer",
           "fit_layer", "cached_fit", "fit_cache_dir", "NUMERIC_KINDS", "BLOCK_KINDS", "method_label",
           "hadamard_t", "to_tmac_layer", "TMAC_OPTIONS", "TUNE_OPTIONS", "MAX_TUNE_STEPS"]

NUMERIC_KINDS = ("mxint8", "mxint4", "mxfp4", "nvfp4", "bf16", "fp32")
BLOCK_KINDS = ("mxint8", "mxint4", "mxfp4", "nvfp4")
_KINDS = ("lut", "tmac") + NUMERIC_KINDS
# The options a weight-only LUT method reads.
TMAC_OPTIONS = ("kind", "v", "c_w", "group_rows", "fit", "hadamard", "iterations", "seed", "cb_bits",
                "tune_steps", "tune_lr")
# Options of the fit's own codebook tuning (compiler.layer_tune): LUT kinds only.
TUNE_OPTIONS = ("tune_steps", "tune_lr")
# The most tuning steps a fit may take (each runs the layer on every calibration row).
MAX_TUNE_STEPS = 10_000
_SCALES = ("block", "layer", "artifact")
_FITS = ("kmeans", "act", "gptq")


@dataclass(frozen=True)
class LayerMethod:
    kind: str = "lut"
    v: int = 2
    c_a: int = 64
    c_w: int = 16
    group_rows: int = 0
    table_bits: int = 8
    scales: str = "block"
    scale_positions: int = 0
    fit: str = "kmeans"
    residual: bool = False
    hadamard: int = 0
    iterations: int = 8
    seed: int = 0
    # Block kinds: the activation format the block GEMV core takes (golden.block_gemv.ACT_FORMATS).
    act: str = "mxint8"
    # tmac: signed bits of a weight-codebook entry (golden.tmac.check_codebook_bits).
    cb_bits: int = 8
    # LUT kinds: Adam steps of the fit's codebook tuning on the layer's output (compiler.layer_tune),
    # and the step size as a fraction of each codebook's mean magnitude. 0 steps: the fit as it is.
    tune_steps: int = 0
    tune_lr: float = 0.01

    def validate(self, key: str = "method") -> "LayerMethod":
        def bad(field, value, allowed):
            raise ValueError(f"{key}.{field} = {value!r} is not allowed; use {allowed}.")
        if self.kind not in _KINDS:
            bad("kind", self.kind, " | ".join(_KINDS))
        if self.act != "mxint8" and self.kind not in BLOCK_KINDS:
            bad("act", self.act, "it only on a block kind (mxint8, mxint4, mxfp4, nvfp4); the LUT core searches "
                "int8 activations")
        if self.kind in BLOCK_KINDS:
            from ..golden.block_gemv import ACT_FORMATS
            if self.act not in ACT_FORMATS:
                bad("act", self.act, " | ".join(ACT_FORMATS))
        if self.kind == "tmac":
            if self.v not in (1, 2, 4, 8):
                bad("v", self.v, "1, 2, 4 or 8")
            if not isinstance(self.c_w, int) or not 2 <= self.c_w <= 256:
                bad("c_w", self.c_w, "an integer from 2 to 256")
            if not isinstance(self.group_rows, int) or self.group_rows < 0:
                bad("group_rows", self.group_rows, "0 (whole layer) or a positive row count")
            if self.fit not in _FITS:
                bad("fit", self.fit, " | ".join(_FITS))
            if self.hadamard and (self.hadamard & (self.hadamard - 1) or self.hadamard < 2):
                bad("hadamard", self.hadamard, "0 or a power of two that divides K")
            if isinstance(self.cb_bits, bool) or not isinstance(self.cb_bits, int) or not 2 <= self.cb_bits <= 16:
                bad("cb_bits", self.cb_bits, "an integer from 2 to 16")
            return self._validate_tune(bad)
        if self.kind != "lut":
            if self.tune_steps:
                bad("tune_steps", self.tune_steps, "0: only LUT fits have codebooks to tune")
            if self.fit not in (("kmeans", "gptq") if self.kind in BLOCK_KINDS else ("kmeans",)):
                bad("fit", self.fit, "gptq (error-compensated rounding) or leave it out (nearest rounding)"
                    if self.kind in BLOCK_KINDS else f"nothing: {self.kind} weights are not rounded to a grid")
            return self
        if self.v not in range(1, 9):
            bad("v", self.v, "an integer from 1 to 8")
        for f in ("c_a", "c_w"):
            c = getattr(self, f)
            if not isinstance(c, int) or not 2 <= c <= 256:
                bad(f, c, "an integer from 2 to 256")
        if not isinstance(self.group_rows, int) or self.group_rows < 0:
            bad("group_rows", self.group_rows, "0 (whole layer) or a positive row count")
        if self.table_bits not in (0, 4, 8):
            bad("table_bits", self.table_bits, "8, 4 or 0 (float tables, reference only)")
        if self.scales not in _SCALES:
            bad("scales", self.scales, " | ".join(_SCALES))
        if not isinstance(self.scale_positions, int) or self.scale_positions < 0:
            bad("scale_positions", self.scale_positions, "0 (all positions share a cell) or a positive count")
        if self.fit not in _FITS:
            bad("fit", self.fit, " | ".join(_FITS))
        if self.hadamard and (self.hadamard & (self.hadamard - 1) or self.hadamard < 2):
            bad("hadamard", self.hadamard, "0 or a power of two that divides K")
        return self._validate_tune(bad)

    def _validate_tune(self, bad) -> "LayerMethod":
        if isinstance(self.tune_steps, bool) or not isinstance(self.tune_steps, int) \
                or not 0 <= self.tune_steps <= MAX_TUNE_STEPS:
            bad("tune_steps", self.tune_steps, f"an integer from 0 (no tuning) to {MAX_TUNE_STEPS}")
        if isinstance(self.tune_lr, bool) or not isinstance(self.tune_lr, (int, float)) or not 0 < self.tune_lr <= 1:
            bad("tune_lr", self.tune_lr, "a fraction of the codebooks' mean magnitude above 0 and at most 1")
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if not self.tune_steps:
            # Untuned fits keep the keys (and cache entries) they had before tuning existed.
            for option in TUNE_OPTIONS:
                d.pop(option)
        if self.kind == "tmac":
            return {k: d[k] for k in TMAC_OPTIONS if k in d}
        if self.kind != "lut":
            out = {"kind": self.kind}
            if self.fit == "gptq":
                out["fit"] = "gptq"
            if self.act != "mxint8":
                out["act"] = self.act
            return out
        d.pop("act")
        d.pop("cb_bits")
        return d

    def key(self) -> str:
        return content_key(self.to_dict())


def parse_method(data: dict | str, key: str = "method") -> LayerMethod:
    """A method from a YAML mapping (or a numerics kind name such as ``"mxint4"``)."""
    if isinstance(data, str):
        data = {"kind": data}
    if not isinstance(data, dict):
        raise ValueError(f"{key} must be a mapping of method options or a kind name; got {data!r}.")
    allowed = {f.name for f in dataclasses.fields(LayerMethod)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"Unknown option {key}.{unknown[0]}; allowed: {', '.join(sorted(allowed))}.")
    if data.get("kind") == "tmac":
        ignored = sorted(set(data) - set(TMAC_OPTIONS))
        if ignored:
            raise ValueError(f"{key}.{ignored[0]} has no effect on kind 'tmac' (a weight-only LUT layer has no "
                             f"activation codebooks or table quantization); remove it, or use kind: lut.")
    elif data.get("kind", "lut") != "lut" and set(TUNE_OPTIONS) & set(data):
        option = sorted(set(TUNE_OPTIONS) & set(data))[0]
        raise ValueError(f"{key}.{option} has no effect on kind {data['kind']!r} (only LUT fits have codebooks to "
                         f"tune); remove it, or use kind: lut or tmac.")
    if "tune_lr" in data and not data.get("tune_steps"):
        raise ValueError(f"{key}.tune_lr has no effect without tune_steps (the fit is not tuned); set "
                         f"{key}.tune_steps or remove tune_lr.")
    if data.get("kind") != "tmac" and "cb_bits" in data:
        raise ValueError(f"{key}.cb_bits has no effect on kind {data.get('kind', 'lut')!r} (only weight-only "
                         f"LUT methods read it); remove it or use kind: tmac.")
    return LayerMethod(**data).validate(key)


def method_label(m: LayerMethod) -> str:
    if m.kind == "tmac":
        return " ".join([f"tmac v{m.v} Cw{m.c_w}", f"G{m.group_rows or 'N'}", f"cb{m.cb_bits}", m.fit]
                        + ([f"H{m.hadamard}"] if m.hadamard else []) + _tune_label(m))
    if m.kind != "lut":
        return " ".join([m.kind] + (["gptq"] if m.fit == "gptq" else []) + ([f"x{m.act}"] if m.act != "mxint8" else []))
    parts = [f"v{m.v} Ca{m.c_a} Cw{m.c_w}", f"G{m.group_rows or 'N'}",
             f"{'fp' if m.table_bits == 0 else m.table_bits}b/{m.scales}"
             + (f"{m.scale_positions}" if m.scales == "block" and m.scale_positions else ""), m.fit]
    if m.residual:
        parts.append("res")
    if m.hadamard:
        parts.append(f"H{m.hadamard}")
    return " ".join(parts + _tune_label(m))


def _tune_label(m: LayerMethod) -> list[str]:
    return [f"tuned {m.tune_steps}" + (f" lr {m.tune_lr:g}" if m.tune_lr != LayerMethod.tune_lr else "")] \
        if m.tune_steps else []


def _blocks(n: int, g: int) -> int:
    return -(-n // (g or n))


def streamed_bits(m: LayerMethod, n: int, k: int) -> float:
    """Streamed bits per weight of an N x K layer under ``m`` (formula in the module docstring)."""
    if m.kind == "mxint8":
        return 8 + 8 / 32
    if m.kind in ("mxint4", "mxfp4"):
        return 4 + 8 / 32
    if m.kind == "nvfp4":
        return 4 + 8 / 16 + 32 / (n * k)
    if m.kind == "bf16":
        return 16.0
    if m.kind == "fp32":
        return 32.0
    p = -(-k // m.v)
    if m.kind == "tmac":
        ng = _blocks(n, m.group_rows)
        wbits = max(1, (m.c_w - 1).bit_length())  # the index memory's field width
        return (p * ng * m.c_w * m.v * m.cb_bits + n * p * wbits + 32 * ng) / (n * k)
    ng = _blocks(n, m.group_rows)
    b = m.table_bits or 32
    cells = -(-p // (m.scale_positions or p)) * ng if m.scales == "block" else 1
    stage = p * ng * m.c_a * m.c_w * b + n * p * math.log2(m.c_w) + 48 * cells
    return (2 if m.residual else 1) * stage / (n * k)


def codebook_bits(m: LayerMethod, n: int, k: int) -> float:
    """Activation-codebook bits per weight (int8 centroids), not part of :func:`streamed_bits`."""
    if m.kind != "lut":
        return 0.0
    return -(-k // m.v) * m.c_a * m.v * 8 / (n * k)


# -- helpers -----------------------------------------------------------------------------------

def _pad(x: torch.Tensor, v: int) -> torch.Tensor:
    k = x.shape[-1]
    extra = -k % v
    return F.pad(x, (0, extra)) if extra else x


def _kmeans(data: torch.Tensor, k: int, iterations: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched Lloyd k-means: data (B, n, v) -> centroids (B, k, v), assignment (B, n).

    Init: k distinct seeded rows per batch (k <= n), or all rows plus copies when n < k."""
    bsz, n, v = data.shape
    # The seeded draw is the CPU generator's on every device, so each device starts from the same rows.
    gen = torch.Generator().manual_seed(seed)
    if n >= k:
        idx = torch.stack([torch.randperm(n, generator=gen)[:k] for _ in range(bsz)])
    else:
        idx = torch.arange(k)[None].expand(bsz, k) % n
    idx = idx.to(data.device)
    cent = torch.gather(data, 1, idx[..., None].expand(bsz, k, v)).clone()
    assign = None
    for it in range(iterations + 1):
        d = torch.cdist(data, cent)  # (B, n, k)
        assign = d.argmin(-1)
        if it == iterations:
            break
        sums = torch.zeros_like(cent).scatter_add_(1, assign[..., None].expand(bsz, n, v), data)
        cnt = torch.zeros(bsz, k, dtype=data.dtype, device=data.device).scatter_add_(
            1, assign, torch.ones_like(assign, dtype=data.dtype))
        cent = torch.where(cnt[..., None] > 0, sums / cnt.clamp(min=1)[..., None], cent)
    return cent, assign


# -- fitted layers -------------------------------------------------------------------------------

@dataclass
class FittedLayer:
    """A fitted method for one layer: ``forward(x)`` is its output; ``bits`` its streamed bits."""
    method: LayerMethod
    out_features: int
    in_features: int
    weight_q: torch.Tensor | None = None         # numerics: dequantized weight (N, K)
    act_codebooks: torch.Tensor | None = None    # LUT: (P, C_a, v) float32 (rotated space)
    weight_codebooks: list | None = None         # LUT: per stage (P, NG, C_w, v)
    widx: list | None = None                     # LUT: per stage (N, P) int64
    tables_q: list | None = None                 # LUT: per stage dequantized tables, built on first use

    def tables(self) -> list:
        """Per stage, the dequantized tables ``scale * (code - zp)`` (P, NG, C_a, C_w) float32."""
        if self.tables_q is None:
            from ..golden.lut_tables import build_tables
            acts = self.act_codebooks.numpy().astype(np.float32)
            # float32 entries: scale * (code - zp) rounded once (relative 2^-24), to halve memory.
            self.tables_q = [torch.from_numpy(_quantize_tables(
                build_tables(acts, cb.numpy().astype(np.float32)), self.method).astype(np.float32))
                for cb in self.weight_codebooks]
        return self.tables_q

    @property
    def bits(self) -> float:
        return streamed_bits(self.method, self.out_features, self.in_features)

    def act_scale(self) -> float:
        peak = float(self.act_codebooks.abs().max())
        return peak / 127.0 if peak > 0 else 1.0

    def act_indices(self, x: torch.Tensor) -> torch.Tensor:
        """int8 centroid search (l2, lowest index on ties), as the core runs it: (T, P)."""
        m = self.method
        if m.hadamard:
            x = hadamard_t(x, m.hadamard)
        s = self.act_scale()
        xq = torch.clamp(torch.round(_pad(x, m.v) / s), -127, 127)
        cq = torch.clamp(torch.round(self.act_codebooks / s), -127, 127)
        t = xq.shape[0]
        xq = xq.reshape(t, -1, m.v).transpose(0, 1)  # (P, T, v)
        out = torch.empty(xq.shape[1], xq.shape[0], dtype=torch.int64)
        step = 128
        for i in range(0, t, step):
            d = ((xq[:, i:i + step, None, :] - cq[:, None]) ** 2).sum(-1)  # (P, t, C_a) exact in fp32
            out[i:i + step] = d.argmin(-1).T
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The fitted layer's float output (the fit's model, not the core's integer arithmetic)."""
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).float()
        if self.method.kind == "lut":
            y = self._lut(x2)
        elif self.method.kind == "tmac":
            y = self._tmac(x2)
        else:
            y = x2 @ self.weight_q.T
        return y.reshape(*shape[:-1], self.out_features)

    def _tmac(self, x: torch.Tensor) -> torch.Tensor:
        """Weight-only LUT: the inputs (rotated as the weights were) times the codebook weights."""
        m = self.method
        cb, idx = self.weight_codebooks[0], self.widx[0]
        blocks = torch.arange(self.out_features) // (m.group_rows or self.out_features)
        w = cb[torch.arange(cb.shape[0])[None], blocks[:, None], idx].reshape(self.out_features, -1)
        x = _pad(hadamard_t(x, m.hadamard) if m.hadamard else x, m.v)
        return (x.double() @ w.double().T).float()

    def _lut(self, x: torch.Tensor) -> torch.Tensor:
        return self.lut_output(self.act_indices(x))

    def lut_output(self, a: torch.Tensor) -> torch.Tensor:
        """The co-quantized layer's output (T, N) float32 for activation indices ``a`` (T, P): its
        tables (quantized as the layer compiles) looked up and summed in float64."""
        m = self.method
        t_count, p_count = a.shape
        g = m.group_rows or self.out_features
        y = torch.zeros(t_count, self.out_features, dtype=torch.float64)
        if m.table_bits == 0:
            xh = self.act_codebooks[torch.arange(p_count)[None], a].reshape(t_count, -1).double()
            for wcb, widx in zip(self.weight_codebooks, self.widx):
                blocks = torch.arange(self.out_features) // g
                wh = wcb[torch.arange(p_count)[None], blocks[:, None], widx].reshape(self.out_features, -1)
                y += xh @ wh.double().T
            return y.float()
        for tab, widx in zip(self.tables(), self.widx):
            c_w = tab.shape[-1]
            offs = (torch.arange(p_count) * c_w)[None]
            for blk in range(tab.shape[1]):
                rows = slice(blk * g, min(self.out_features, (blk + 1) * g))
                z = tab[torch.arange(p_count)[None], blk, a]  # (T, P, C_w)
                bag = F.embedding_bag(widx[rows] + offs, z.reshape(t_count, -1).T.contiguous(),
                                      mode="sum")  # (N_g, T)
                y[:, rows] += bag.T.double()
        return y.float()


def _quantize_tables(tables: np.ndarray, m: LayerMethod) -> np.ndarray:
    from ..golden.lut_tables import dequantize_tables, quantize_tables, quantize_tables_artifact
    if m.scales == "artifact":
        qt = quantize_tables_artifact(tables, m.table_bits)
    else:
        qt = quantize_tables(tables, m.table_bits, m.scales, "rne",
                             positions_per_group=(m.scale_positions or tables.shape[0]) if m.scales == "block" else 1)
    return dequantize_tables(qt)


def _numeric_weight(w: np.ndarray, calibration: np.ndarray, m: LayerMethod, device: str) -> np.ndarray:
    if m.kind == "fp32":
        return w
    if m.kind == "bf16":
        return torch.from_numpy(w).bfloat16().float().numpy()
    from ..golden import mx
    if m.fit == "gptq":
        from .gptq_blocks import gptq_blocks
        blocks = gptq_blocks(w, np.asarray(calibration, np.float32), m.kind, device=device)
    else:
        blocks = mx.quantize(w, m.kind)
    return mx.dequantize(blocks, m.kind).astype(np.float32).reshape(w.shape)


def fit_layer(weight: np.ndarray, calibration: np.ndarray, m: LayerMethod, device: str = "cpu") -> FittedLayer:
    """Fit ``m`` to ``weight`` (N, K) with calibration activations (n, K). The tensor work (k-means,
    Hessians, GPTQ) runs on ``device``; the fitted layer is returned on the CPU. A GPU's float
    arithmetic differs from the CPU's in the last bits, so a fit made there can choose other
    centroids: it is cached apart (:func:`fit_cache_path`)."""
    n_out, k = weight.shape
    if m.tune_steps:
        from .layer_tune import tune_fitted
        fitted = fit_layer(weight, calibration, dataclasses.replace(m, tune_steps=0), device)
        fitted.method = m
        return tune_fitted(fitted, weight, calibration, device)
    if m.kind == "tmac":
        return _fit_tmac(weight, calibration, m, device)
    if m.kind != "lut":
        return FittedLayer(m, n_out, k, weight_q=torch.from_numpy(
            np.array(_numeric_weight(np.asarray(weight, np.float32), calibration, m, device), dtype=np.float32)))
    w = torch.from_numpy(np.array(weight, dtype=np.float32)).to(device)
    x = torch.from_numpy(np.array(calibration, dtype=np.float32)).to(device)
    if m.hadamard:
        w, x = hadamard_t(w, m.hadamard), hadamard_t(x, m.hadamard)
    v = m.v
    w, x = _pad(w, v), _pad(x, v)
    p_count = w.shape[1] // v
    g = m.group_rows or n_out
    ng = _blocks(n_out, g)
    # Activation codebooks: k-means per position on the calibration rows.
    # At most 1024 seeded calibration rows train the activation codebooks (4 rows per centroid at
    # C_a = 256); the GPTQ Hessian below uses every row.
    rows = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(m.seed))[:1024].to(device)
    xs = x[rows].reshape(len(rows), p_count, v).transpose(0, 1).contiguous()  # (P, n, v)
    acts, _ = _kmeans(xs, m.c_a, m.iterations, m.seed)
    fitted = FittedLayer(m, n_out, k, act_codebooks=acts.float().cpu())
    # The centroid search is the core's int8 arithmetic (FittedLayer.act_indices), on the CPU.
    a = fitted.act_indices(torch.from_numpy(np.array(calibration, dtype=np.float32))) if m.fit == "gptq" else None
    stages_cb, stages_idx = [], []
    target = w
    if m.fit == "gptq":
        xq = acts[torch.arange(p_count, device=device)[None], a.to(device)].reshape(x.shape[0], -1).double()
        h = xq.T @ xq
        damp = 0.01 * float(torch.diag(h).mean()) + 1e-8
        h += damp * torch.eye(h.shape[0], dtype=torch.float64, device=device)
        # Least-squares weights for the quantized activations: Xq W*^T ~ X W^T.
        target = torch.linalg.solve(h, xq.T @ (x.double() @ w.double().T)).T.float()
    residual = target
    for stage in range(2 if m.residual else 1):
        if m.fit == "gptq":
            cb, idx, q = _gptq_vq(residual, h, m, g, ng, seed=m.seed + stage)
        else:
            cb, idx, q = _fit_kmeans(residual, x if m.fit == "act" else None, m, g, ng, seed=m.seed + stage)
        stages_cb.append(cb.cpu())
        stages_idx.append(idx.cpu())
        residual = residual - q
    fitted.weight_codebooks, fitted.widx = stages_cb, stages_idx
    return fitted


def _fit_tmac(weight: np.ndarray, calibration: np.ndarray, m: LayerMethod, device: str) -> FittedLayer:
    """Weight-only vector quantization: the LUT fits without activation codebooks (GPTQ's Hessian
    from the float calibration activations, which the core sees as int8 with one scale per row)."""
    n_out, k = weight.shape
    w = torch.from_numpy(np.array(weight, dtype=np.float32)).to(device)
    x = torch.from_numpy(np.array(calibration, dtype=np.float32)).to(device)
    if m.hadamard:
        w, x = hadamard_t(w, m.hadamard), hadamard_t(x, m.hadamard)
    w, x = _pad(w, m.v), _pad(x, m.v)
    g = m.group_rows or n_out
    ng = _blocks(n_out, g)
    if m.fit == "gptq":
        h = x.double().T @ x.double()
        h += (0.01 * float(torch.diag(h).mean()) + 1e-8) * torch.eye(h.shape[0], dtype=torch.float64, device=device)
        cb, idx, _ = _gptq_vq(w, h, m, g, ng, seed=m.seed)
    else:
        cb, idx, _ = _fit_kmeans(w, x if m.fit == "act" else None, m, g, ng, seed=m.seed)
    return FittedLayer(m, n_out, k, weight_codebooks=[cb.cpu()], widx=[idx.cpu()])


def to_tmac_layer(fitted: FittedLayer):
    """The :class:`~lutforge.golden.tmac.TmacLayer` (integer codebooks) of a fitted weight-only LUT
    layer: what the compiler lowers onto the weight-only core."""
    from ..golden.tmac import VqLayer, tmac_integer_layer

    m = fitted.method
    cb = fitted.weight_codebooks[0].numpy().astype(np.float32)
    vq = VqLayer(cb.shape[0] * m.v, fitted.out_features, m.v, m.c_w, m.group_rows or fitted.out_features, cb,
                 fitted.widx[0].numpy().astype(np.uint8 if m.c_w <= 256 else np.uint16))
    return tmac_integer_layer(vq, m.cb_bits)


def _split_blocks(wp: torch.Tensor, g: int, ng: int) -> torch.Tensor:
    """(N, ..., v) rows -> (NG, G, ..., v), zero rows padding the last block (masked later)."""
    n = wp.shape[0]
    pad = ng * g - n
    if pad:
        wp = torch.cat([wp, wp[-1:].expand(pad, *wp.shape[1:])])
    return wp.reshape(ng, g, *wp.shape[1:])


def _fit_kmeans(w: torch.Tensor, x: torch.Tensor | None, m: LayerMethod, g: int, ng: int, seed: int):
    n = w.shape[0]
    v = m.v
    p_count = w.shape[1] // v
    scale = torch.ones(p_count, v, device=w.device)
    if x is not None:  # activation second moment per column: minimise E[(x . dw)^2] over the diagonal
        scale = torch.sqrt((x.double() ** 2).mean(0) + 1e-12).float().reshape(p_count, v)
    ws = w.reshape(n, p_count, v) * scale  # (N, P, v)
    blocks = _split_blocks(ws, g, ng)  # (NG, G, P, v)
    data = blocks.permute(2, 0, 1, 3).reshape(p_count * ng, g, v)
    cent, assign = _kmeans(data, m.c_w, m.iterations, seed)
    cb = (cent.reshape(p_count, ng, m.c_w, v) / scale[:, None, None, :])
    idx = assign.reshape(p_count, ng * g).T[:n]  # (N, P)
    blk = torch.arange(n, device=w.device) // g
    q = cb[torch.arange(p_count, device=w.device)[None], blk[:, None], idx].reshape(n, -1)
    return cb, idx, q


def _gptq_vq(w: torch.Tensor, h: torch.Tensor, m: LayerMethod, g: int, ng: int, seed: int,
             block_positions: int = 32):
    """Vector GPTQ over blocks of ``block_positions`` positions: each position's v columns are
    k-means coded in the metric of its inverse-Hessian diagonal block (``||e U_pp^-1||^2`` is the
    output-error increase of error e), then the block's error is compensated on all later
    columns (the OBS update for a block of columns, ``W_rest -= E U_BB^-1 U_B,rest``)."""
    n, kp = w.shape
    v = m.v
    p_count = kp // v
    hinv = torch.cholesky_inverse(torch.linalg.cholesky(h))
    u = torch.linalg.cholesky(hinv, upper=True)  # hinv = u^T u
    w = w.double().clone()
    cb = torch.zeros(p_count, ng, m.c_w, v, dtype=torch.float64, device=w.device)
    idx = torch.zeros(n, p_count, dtype=torch.int64, device=w.device)
    q_all = torch.zeros_like(w)
    blk = torch.arange(n, device=w.device) // g
    for p0 in range(0, p_count, block_positions):
        p1 = min(p_count, p0 + block_positions)
        nb = p1 - p0
        c0, c1 = p0 * v, p1 * v
        upp = torch.stack([u[c0 + i * v:c0 + (i + 1) * v, c0 + i * v:c0 + (i + 1) * v] for i in range(nb)])
        uinv = torch.linalg.inv(upp)  # (nb, v, v)
        wp = w[:, c0:c1].reshape(n, nb, v).transpose(0, 1) @ uinv  # (nb, N, v)
        data = _split_blocks(wp.transpose(0, 1), g, ng)  # (NG, G, nb, v)
        data = data.permute(2, 0, 1, 3).reshape(nb * ng, g, v)
        cent, assign = _kmeans(data, m.c_w, m.iterations, seed + p0)
        cent_w = cent.reshape(nb, ng, m.c_w, v) @ upp[:, None]  # back to weight space
        cb[p0:p1] = cent_w
        a = assign.reshape(nb, ng * g)[:, :n].T  # (N, nb)
        idx[:, p0:p1] = a
        q = cent_w[torch.arange(nb, device=w.device)[None], blk[:, None], a].reshape(n, nb * v)
        q_all[:, c0:c1] = q
        if c1 < kp:
            err = torch.linalg.solve_triangular(u[c0:c1, c0:c1], w[:, c0:c1] - q, upper=True,
                                                left=False)  # E U_BB^-1
            w[:, c1:] -= err @ u[c0:c1, c1:]
    return cb.float(), idx, q_all.float()


# The modules whose code computes a fit, by method kind; their source is part of the fit's cache
# key, so a fit made by older code is never reused (a hand-kept version number let stale fits
# survive code changes, and a published perplexity could not be reproduced from an empty cache).
_LUT_FIT_SOURCES = ("lutforge.compiler.lut_methods", "lutforge.compiler.hadamard", "lutforge.golden.lut_tables",
                    "lutforge.golden.codebooks")
_NUMERIC_FIT_SOURCES = ("lutforge.compiler.lut_methods", "lutforge.golden.mx", "lutforge.golden.fp",
                        "lutforge.golden.convert", "lutforge.golden.formats")
# The libraries whose arithmetic the fit runs on.
FIT_LIBRARIES = ("torch", "numpy")


def fit_sources(m: LayerMethod) -> tuple[str, ...]:
    """The modules (dotted names) whose code computes a fit of ``m``."""
    if m.kind in ("lut", "tmac"):
        from .layer_tune import TUNE_SOURCES
        return _LUT_FIT_SOURCES + (TUNE_SOURCES if m.tune_steps else ())
    if m.kind in BLOCK_KINDS and m.fit == "gptq":
        return _NUMERIC_FIT_SOURCES + ("lutforge.compiler.gptq_blocks",)
    return _NUMERIC_FIT_SOURCES


def fit_version(m: LayerMethod) -> str:
    """What a fit of ``m`` depends on besides its inputs and the method: the source of the code
    that computes it (:func:`fit_sources`) and the versions of :data:`FIT_LIBRARIES`."""
    return content_key(source_hash(*fit_sources(m)), tool_versions(*FIT_LIBRARIES))


def fit_cache_path(root: Path, weight: np.ndarray, calibration: np.ndarray, m: LayerMethod,
                   device: str = "cpu") -> Path:
    # Every element of both inputs: a key over a sample of rows would hand one layer's fit to another.
    # A fit made on a GPU is its own entry (fit_layer); the CPU's keys name no device.
    key = content_key(np.asarray(weight, dtype=np.float32), np.asarray(calibration, dtype=np.float32),
                      m.key(), fit_version(m), *device_key(device))
    return root / f"{key}.pt"


def fit_cache_dir() -> Path:
    return cache_root() / "lut_methods"


def cached_fit(weight: np.ndarray, calibration: np.ndarray, m: LayerMethod, device: str = "cpu") -> FittedLayer:
    """:func:`fit_layer` on ``device``, through the content-addressed fit cache (an entry that fails
    its check is refitted)."""
    path = fit_cache_path(fit_cache_dir(), weight, calibration, m, device)
    stored = read_cached(path)
    if stored is not None:
        return torch.load(io.BytesIO(stored), weights_only=False)
    fitted = fit_layer(weight, calibration, m, device)
    buffer = io.BytesIO()
    torch.save(dataclasses.replace(fitted, tables_q=None), buffer)
    write_cached(path, buffer.getvalue())
    return fitted


def to_lut_layers(fitted: FittedLayer) -> list:
    """The golden :class:`~lutforge.golden.lut_layer.LutLayer` of each stage (one, or two with a
    residual codebook): what the compiler lowers onto the core. Activations must be rotated by
    ``hadamard_t`` first when the method has a Hadamard size. Scheme ``artifact`` has no core
    mapping (float zero point) and is refused."""
    from ..golden.lut_layer import LutLayer
    from ..golden.lut_tables import build_tables, quantize_tables

    m = fitted.method
    if m.kind != "lut" or m.table_bits == 0 or m.scales == "artifact":
        raise ValueError(f"Method {method_label(m)!r} has no LUT core mapping; only LUT methods with "
                         f"4- or 8-bit tables and 'block' or 'layer' scales run on the core.")
    acts = fitted.act_codebooks.numpy().astype(np.float32)
    p_count = acts.shape[0]
    g = m.group_rows or fitted.out_features
    ppg = (m.scale_positions or p_count) if m.scales == "block" else 1
    out = []
    for cb, widx in zip(fitted.weight_codebooks, fitted.widx):
        wcb = cb.numpy().astype(np.float32)
        tables = build_tables(acts, wcb)
        qt = quantize_tables(tables, m.table_bits, m.scales, "rne", positions_per_group=ppg)
        out.append(LutLayer(
            in_features=p_count * m.v, out_features=fitted.out_features, v=m.v, c_a=m.c_a, c_w=m.c_w,
            group_rows=g, table_bits=m.table_bits, scheme="asymmetric", granularity=m.scales,
            rounding="rne", head_rows=None, positions_per_group=qt.positions_per_group, metric="l2",
            act_codebooks=acts, weight_codebooks=wcb, widx=widx.numpy().astype(np.uint8),
            tables=tables, table_codes=qt.codes, scales=qt.scales, zero_points=qt.zero_points))
    return out
