"""The host driver: runs a Program's layers on one backend, quantizing activations on the way in and
dequantizing accumulators on the way out. Non-linear operations (norms, RoPE, attention, SiLU) stay
on the host.

Host arithmetic per layer kind (the rest is the core's):

* LUT layer: rotate by the layer's block Hadamard (float64) when it has one, quantize to int8 with
  the layer's ``act_scale`` (float64, round half to even); out: ``sum_r scale[r, g] * (acc[r, n] -
  zp[r, g] * P_r)`` in float64.
* Block layer: quantize each activation vector to the layer's activation block format
  (``golden.mx.quantize``); out: the fp32 accumulator, times NVFP4's tensor scale in float32.
"""

from __future__ import annotations

import numpy as np

import hashlib
from contextlib import contextmanager

from ..compiler.torch_reference import numpy_linear
from ..golden.block_gemv import host_output
from ..golden.mx import hadamard
from ..program.artifact import Program, quantize_activations, quantize_block_activations
from ..program.backend import Backend, LayerResult

__all__ = ["HostDriver", "replace_all", "routed"]


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

    def quantize(self, name: str, x: np.ndarray):
        layer = self.program.layers[name]
        if layer.kind == "block":
            return quantize_block_activations(x, layer)
        if layer.hadamard:
            x = hadamard(x, layer.hadamard)
        return quantize_activations(x, layer.act_scale, layer.v)

    def run_int(self, name: str, x_q) -> LayerResult:
        result = self.backend.run_layer(self.program.layers[name], x_q)
        self.results[name] = result
        self.accumulators.update(np.ascontiguousarray(result.acc, dtype="<i8").tobytes())
        self.cycles += result.cycles or 0
        if self._kept is not None:
            self._kept.setdefault(name, []).append(result.acc)
        return result

    def kept(self) -> dict[str, np.ndarray]:
        """Per layer, the accumulators of every call, tokens of all calls in order (T, runs, rows)."""
        if self._kept is None:
            raise ValueError("This driver keeps no accumulators; create it with keep=True.")
        return {name: np.concatenate(accs) for name, accs in self._kept.items()}

    @staticmethod
    def dequantize(layer, acc: np.ndarray) -> np.ndarray:
        """The layer's float64 output (T, N) from its accumulators (module docstring)."""
        n = layer.out_features
        if layer.kind == "block":
            return host_output(acc[:, 0, :n].astype(np.uint32), layer.tensor_scale).astype(np.float64)
        g = np.arange(n) // layer.group_rows
        y = np.zeros((acc.shape[0], n))
        for r, run in enumerate(layer.runs):
            s = layer.scales[r, g].astype(np.float64)
            y += s * (acc[:, r, :n] - layer.zero_points[r, g] * run.positions).astype(np.float64)
        return y

    def linear(self, name: str, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        flat = x.reshape(-1, x.shape[-1])
        result = self.run_int(name, self.quantize(name, flat))
        y = self.dequantize(self.program.layers[name], result.acc)
        return y.reshape(*x.shape[:-1], -1)


def replace_all(model, driver: HostDriver, names=None) -> None:
    """Route the named linear layers of a ReferenceModel (default: all in the Program) through ``driver``."""
    for name in names or driver.program.layers:
        model.replace_linear(name, numpy_linear(lambda x, n=name: driver.linear(n, x)))



@contextmanager
def routed(model, driver: HostDriver, names=None):
    """The named linear layers of ``model`` (default: all in the Program) run through ``driver``
    while the context is open, and in fp32 again after it, whatever happened inside."""
    names = list(names or driver.program.layers)
    replace_all(model, driver, names)
    try:
        yield driver
    finally:
        for name in names:
            model.replace_linear(name, None)
