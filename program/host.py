"""The host driver: runs a Program's layers on one backend, quantizing activations on the way in and
dequantizing accumulators on the way out. Non-linear operations (norms, RoPE, attention, SiLU) stay
on the host. Together with :class:`lutforge.program.golden.GoldenBackend` it is the definition of
what a Program computes, so it lives with the Program: the compiler scores quantization choices
with it (:class:`lutforge.compiler.session.Session`), the jobs run models through it.

Host arithmetic per layer kind (the rest is the core's):

* LUT layer: rotate by the layer's block Hadamard (float64) when it has one, quantize to int8 with
  the layer's ``act_scale`` (float64, round half to even); out: ``sum_r scale[r, g] * (acc[r, n] -
  zp[r, g] * P_r)`` in float64.
* Block layer: quantize each activation vector to the layer's activation block format
  (``golden.mx.quantize``); out: the fp32 accumulator, times NVFP4's tensor scale in float32.
* Weight-only LUT layer: rotate by its Hadamard when it has one, quantize each row's slice of each
  run (a run's positions) to int8 with its own scale (``golden.tmac.tmac_activations``), so an
  outlier feature costs resolution only within its run; out: ``sum_r float64(acc[r, n] - bias *
  P_r) * s_w[g] * s_x[t, r]`` in float64, in increasing r.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..golden.block_gemv import host_output
from ..golden.mx import hadamard
from ..golden.tmac import tmac_activations, tmac_bias
from .artifact import Program, TmacActivations, quantize_activations, quantize_block_activations
from .backend import Backend, LayerResult

__all__ = ["HostDriver"]


class HostDriver:
    """Runs a Program's layers on one backend; ``linear`` is a drop-in replacement for ``x @ W.T``."""

    def __init__(self, program: Program, backend: Backend, *, keep: bool = False):
        """``keep``: also keep every call's accumulators per layer (:meth:`kept`), to find where two
        backends first differ."""
        self.program, self.backend = program, backend
        self.results: dict[str, LayerResult] = {}
        self._kept: dict[str, list[np.ndarray]] | None = {} if keep else None
        # Every accumulator the backend returned, in call order: two backends that ran the same
        # layers on the same activations agree on this one value exactly when they agree bit for bit.
        self.accumulators = hashlib.sha256()
        self.cycles = 0  # simulated cycles of every call (0 from a backend without a cycle model)
        self.unit_cycles = 0  # the part of them the decoder units took (blocks: hardware)

    def quantize(self, name: str, x: np.ndarray):
        layer = self.program.layers[name]
        if layer.kind == "block":
            return quantize_block_activations(x, layer)
        if layer.hadamard:
            x = hadamard(x, layer.hadamard)
        if layer.kind == "tmac":
            v, k = layer.v, layer.in_features
            parts = [tmac_activations(x[:, r.first_position * v:min(k, (r.first_position + r.positions) * v)], v)
                     for r in layer.runs]
            return TmacActivations(np.concatenate([q for q, _ in parts], axis=1),
                                   np.stack([s for _, s in parts], axis=1))
        return quantize_activations(x, layer.act_scale, layer.v)

    def run_int(self, name: str, x_q) -> LayerResult:
        result = self.backend.run_layer(self.program.layers[name], x_q)
        self.results[name] = result
        self.accumulators.update(np.ascontiguousarray(result.acc, dtype="<i8").tobytes())
        self.cycles += result.cycles or 0
        if self._kept is not None:
            self._kept.setdefault(name, []).append(result.acc)
        return result

    def record_unit(self, result) -> None:
        """Count a decoder unit's call (:class:`~lutforge.program.backend.UnitResult`) in the hash
        and the cycles, as :meth:`run_int` counts a core's."""
        self.accumulators.update(np.ascontiguousarray(result.out, dtype="<u8").tobytes())
        self.cycles += result.cycles or 0
        self.unit_cycles += result.cycles or 0

    def kept(self) -> dict[str, np.ndarray]:
        """Per layer, the accumulators of every call, tokens of all calls in order (T, runs, rows)."""
        if self._kept is None:
            raise ValueError("This driver keeps no accumulators; create it with keep=True.")
        return {name: np.concatenate(accs) for name, accs in self._kept.items()}

    @staticmethod
    def dequantize(layer, acc: np.ndarray, x_q=None) -> np.ndarray:
        """The layer's float64 output (T, N) from its accumulators (module docstring); a weight-only
        LUT layer also needs its activations' scales (``x_q``, :class:`TmacActivations`)."""
        n = layer.out_features
        if layer.kind == "block":
            return host_output(acc[:, 0, :n].astype(np.uint32), layer.tensor_scale).astype(np.float64)
        if layer.kind == "tmac":
            g = np.arange(n) // layer.group_rows
            bias = tmac_bias(layer.v, layer.cb_bits)
            s_w = layer.scales[g].astype(np.float64)
            y = np.zeros((acc.shape[0], n))
            for r, run in enumerate(layer.runs):
                y += (acc[:, r, :n] - bias * run.positions).astype(np.float64) * s_w * x_q.scale[:, r, None]
            return y
        g = np.arange(n) // layer.group_rows
        y = np.zeros((acc.shape[0], n))
        for r, run in enumerate(layer.runs):
            s = layer.scales[r, g].astype(np.float64)
            y += s * (acc[:, r, :n] - layer.zero_points[r, g] * run.positions).astype(np.float64)
        return y

    def linear(self, name: str, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        flat = x.reshape(-1, x.shape[-1])
        x_q = self.quantize(name, flat)
        result = self.run_int(name, x_q)
        y = self.dequantize(self.program.layers[name], result.acc, x_q)
        return y.reshape(*x.shape[:-1], -1)
