"""The host driver: runs a Program's layers on one backend, quantizing activations on the way in and
dequantizing accumulators on the way out. Non-linear operations (norms, RoPE, attention, SiLU) stay
on the host."""

from __future__ import annotations

import numpy as np

from ..compiler.torch_reference import numpy_linear
from ..program.artifact import LoweredLayer, Program, quantize_activations
from ..program.backend import Backend, LayerResult

__all__ = ["HostDriver", "replace_all"]


class HostDriver:
    """Runs a Program's layers on one backend; ``linear`` is a drop-in replacement for ``x @ W.T``."""

    def __init__(self, program: Program, backend: Backend):
        self.program, self.backend = program, backend
        self.results: dict[str, LayerResult] = {}

    def quantize(self, name: str, x: np.ndarray) -> np.ndarray:
        layer = self.program.layers[name]
        return quantize_activations(x, layer.act_scale, layer.v)

    def run_int(self, name: str, x_q: np.ndarray) -> LayerResult:
        result = self.backend.run_layer(self.program.layers[name], x_q)
        self.results[name] = result
        return result

    @staticmethod
    def dequantize(layer: LoweredLayer, acc: np.ndarray) -> np.ndarray:
        """y[n] = sum over runs r of scale[r, g] * (acc[r, n] - zp[r, g] * P_r), float64 (T, N)."""
        n = layer.out_features
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

