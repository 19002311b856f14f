"""The host driver: loads a Program, quantizes activations, runs each layer on a backend and
dequantizes the results. Non-linear operations (norms, RoPE, attention, SiLU) stay on the host.

A backend only has to turn int8 activations into the core's integer accumulators::

    run_layer(layer: LoweredLayer, x_q: int8 (T, P, v)) -> LayerResult

with ``acc`` (T, runs, tiles * lanes) int64, exactly the ``acc`` stream of the core for every
run of every token (padding lanes read 0). Two backends implement it:

* ``golden``: :mod:`lutforge.golden` (the int8 centroid search and the LUT GEMV the golden core
  model :func:`lutforge.golden.gemv_core.gemv_core` is made of) on arrays decoded back from the
  Program's memory images, so it checks the images too;
* ``sim``: :class:`lutforge.sim.gemv_backend.SimBackend`, the GEMV core RTL in Verilator with the
  images in simulated external memories; imported only when asked for, so the compiler never
  imports amaranth.

The interface is deliberately this one call so that a board backend (a transport that writes the
images to device memory, sends descriptors and reads the ``acc`` words) can implement it later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..golden.centroid_search import search
from ..golden.lut_gemv import lut_gemv
from ..golden.lut_layer import LutLayer
from .program import LoweredLayer, Program, quantize_activations

__all__ = ["LayerResult", "Backend", "GoldenBackend", "get_backend", "HostDriver", "unpack_fields",
           "decode_layer", "replace_all"]


@dataclass
class LayerResult:
    acc: np.ndarray           # (T, runs, tiles * lanes) int64
    cycles: int | None = None  # simulated cycles for all T tokens (None: not a cycle model)
    requests: dict | None = None  # memory words read per channel (cb, tab, idx), when observed


class Backend(Protocol):
    name: str

    def run_layer(self, layer: LoweredLayer, x_q: np.ndarray) -> LayerResult: ...


def unpack_fields(words: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Inverse of the images' packing: rows of uint32 words -> (rows, count) unsigned fields."""
    words = np.ascontiguousarray(words, dtype="<u4")
    stream = np.unpackbits(words.view(np.uint8).reshape(words.shape[0], -1), axis=-1, bitorder="little")
    fields = stream[:, : count * bits].reshape(words.shape[0], count, bits).astype(np.int64)
    return (fields << np.arange(bits, dtype=np.int64)).sum(axis=-1)


def decode_layer(layer: LoweredLayer) -> list[tuple[int, np.ndarray, LutLayer]]:
    """Per run: (first position, int8 codebooks (Pr, C_a, v), LutLayer holding the run's codes,
    indices and scales), decoded from the memory images alone."""
    v, c_a, c_w, n = layer.v, layer.c_a, layer.c_w, layer.out_features
    wbits = max(1, (c_w - 1).bit_length())
    blocks, tiles, lanes = layer.num_blocks, layer.tiles, layer.lanes
    out = []
    for q, run in enumerate(layer.runs):
        d, pr = run.descriptor, run.positions
        cb = unpack_fields(layer.cb[d["cb_base"]:d["cb_base"] + pr], 8, c_a * v)
        cb = cb.astype(np.uint8).view(np.int8).reshape(pr, c_a, v)
        tab = unpack_fields(layer.tab[d["tab_base"]:d["tab_base"] + blocks * pr * c_a], layer.table_bits, c_w)
        codes = tab.reshape(blocks, pr, c_a, c_w).transpose(1, 0, 2, 3)
        idx = unpack_fields(layer.idx[d["idx_base"]:d["idx_base"] + tiles * pr], wbits, lanes)
        widx = idx.reshape(tiles, pr, lanes).transpose(0, 2, 1).reshape(tiles * lanes, pr)[:n]
        k = min(layer.in_features, (run.first_position + pr) * v) - run.first_position * v
        sub = LutLayer(
            in_features=k, out_features=n, v=v, c_a=c_a, c_w=c_w, group_rows=layer.group_rows,
            table_bits=layer.table_bits, scheme="asymmetric", granularity="block", rounding="rne",
            head_rows=None, positions_per_group=pr, metric=layer.metric,
            act_codebooks=cb.astype(np.float32), weight_codebooks=np.zeros((pr, blocks, c_w, v), np.float32),
            widx=widx.astype(np.uint8 if wbits <= 8 else np.uint16), tables=np.zeros(0, np.float32),
            table_codes=codes.astype(np.uint8 if layer.table_bits <= 8 else np.uint16),
            scales=layer.scales[q:q + 1], zero_points=layer.zero_points[q:q + 1])
        out.append((run.first_position, cb, sub))
    return out


class GoldenBackend:
    name = "golden"

    def __init__(self):
        self._decoded: dict[int, list] = {}

    def run_layer(self, layer: LoweredLayer, x_q: np.ndarray) -> LayerResult:
        key = id(layer)
        if key not in self._decoded:
            self._decoded[key] = (layer, decode_layer(layer))
        runs = self._decoded[key][1]
        t = x_q.shape[0]
        acc = np.zeros((t, len(runs), layer.tiles * layer.lanes), dtype=np.int64)
        for r, (p0, cb, sub) in enumerate(runs):
            a = search(x_q[:, p0:p0 + sub.num_positions], cb, layer.metric)
            acc[:, r, : layer.out_features] = lut_gemv(a, sub)[..., 0]
        return LayerResult(acc)


def get_backend(name: str, **options) -> Backend:
    """``golden`` or ``sim`` (options: ``chains``, ``max_positions``, ``memory_latency``)."""
    if name == "golden":
        return GoldenBackend()
    if name == "sim":
        from ..sim.gemv_backend import SimBackend
        return SimBackend(**options)
    raise ValueError(f"Backend {name!r} does not exist; use 'golden' or 'sim'.")


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
    from .torch_reference import numpy_linear

    for name in names or driver.program.layers:
        model.replace_linear(name, numpy_linear(lambda x, n=name: driver.linear(n, x)))

