"""Calibration capture: the inputs each linear layer sees on WikiText-2 valid, subsampled and
cached on disk.

The cache lives under `$LUTFORGE_CACHE/calib/` (default `~/.cache/lutforge/calib/`), one `.npz`
file entry per key (:func:`lutforge.support.cache.write_cached`); the key hashes the model file, the
calibration text, the parameters, the source of the code that computes the inputs and the library
versions, so a stale entry is never reused, and a damaged one is reported and captured again.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..support.cache import cache_root, content_key, read_cached, source_hash, write_cached
from ..support.errors import CacheError
from ..support.toolchain import tool_versions
from .data import Tokenizer, wikitext2_tokens
from .torch_reference import ReferenceModel, device_key, on_device

# The code that turns a model file and text into layer inputs: the tokenizer, the weights' decoding,
# the reference model and this module (which samples rows and writes the entry).
CALIBRATION_SOURCES = ("lutforge.compiler.calibration", "lutforge.compiler.data", "lutforge.compiler.gguf_frontend",
                       "lutforge.compiler.model", "lutforge.compiler.torch_reference")
CALIBRATION_LIBRARIES = ("torch", "numpy", "gguf")


def calibration_version() -> dict:
    """What a capture depends on besides its inputs: the source hash of :data:`CALIBRATION_SOURCES`
    and the versions of :data:`CALIBRATION_LIBRARIES`."""
    return {"code": source_hash(*CALIBRATION_SOURCES), **tool_versions(*CALIBRATION_LIBRARIES)}


@dataclass(frozen=True)
class CalibrationSet:
    """`inputs[name]` is an fp32 (rows, in_features) array of layer `name`'s input activations.
    Layers fed by the same tensor (q/k/v, gate/up) share one read-only array; `shared[name]`
    names the layer whose array it is."""
    inputs: dict[str, np.ndarray]
    shared: dict[str, str]
    key: str
    path: Path | None
    from_cache: bool
    params: dict


def _sample_positions(total: int, rows: int, seed: int) -> np.ndarray:
    if not 1 <= rows <= total:
        raise ValueError(f"rows = {rows} is outside 1..{total}: the calibration windows hold {total} "
                         f"token positions; lower rows or add windows.")
    return np.sort(np.random.default_rng(seed).choice(total, size=rows, replace=False))


def capture_calibration(model: ReferenceModel, tokenizer: Tokenizer, *, n_windows: int = 8,
                        window: int = 512, rows: int = 512, seed: int = 0,
                        layers: list[str] | None = None, cache: bool = True,
                        progress: bool = True, device: str = "cpu") -> CalibrationSet:
    """Run the fp32 `model` over the first `n_windows` non-overlapping windows of `window` tokens
    of WikiText-2 valid and return `rows` input rows per linear layer (default: all layers),
    the same seeded token positions for every layer. The model runs on `device`; the rows are
    returned on the CPU, and a capture on a GPU is cached apart from the CPU's."""
    from ..support.progress import progress as progress_bar

    if model.overrides:
        raise ValueError(
            f"The model has replaced linear layers {sorted(model.overrides)[:4]}; calibration data "
            f"is keyed on the fp32 model, so restore them with replace_linear(name, None) first.")
    unknown = sorted(set(layers or ()) - set(model.linear_names))
    if unknown:
        raise KeyError(f"{unknown[:4]} are not linear layers of this model.")
    names = [n for n in model.linear_names if layers is None or n in layers]
    tokens, data = wikitext2_tokens("valid", tokenizer)
    if n_windows * window > tokens.size:
        raise ValueError(f"n_windows * window = {n_windows * window} exceeds the {tokens.size} tokens "
                         f"of {data.path}; ask for fewer or shorter windows.")
    positions = _sample_positions(n_windows * window, rows, seed)
    params = {"n_windows": n_windows, "window": window, "rows": rows, "seed": seed,
              "layers": names, "model": model.ir.source_hash, "data": data.sha256,
              **calibration_version(), **{"device": kind for kind in device_key(device)}}
    key = content_key(params)
    path = cache_root() / "calib" / f"{key}.npz"
    stored = read_cached(path) if cache else None
    if stored is not None:
        return _load(stored, path, key, params)

    wanted = set(names)
    chunks: dict[str, list[np.ndarray]] = {}
    shared: dict[str, str] = {}
    state = {"x": None, "owner": None, "local": None}

    def record(name: str, x: torch.Tensor) -> None:
        if x is not state["x"]:
            state["x"], state["owner"] = x, None
        if name not in wanted:
            return
        if state["owner"] is not None:
            shared[name] = state["owner"]
            return
        state["owner"] = name
        chunks.setdefault(name, []).append(x[0, state["local"]].detach().cpu().numpy().copy())

    with torch.inference_mode(), model.observe_linear_inputs(record), on_device(model, device):
        for w in progress_bar(range(n_windows), desc="calibration capture", disable=None if progress else True, leave=False):
            in_window = positions[(positions >= w * window) & (positions < (w + 1) * window)]
            state["local"] = torch.from_numpy(in_window - w * window).to(device)
            state["x"] = None
            model(torch.tensor(tokens[w * window:(w + 1) * window], device=device)[None])

    owned = {name: np.concatenate(c) for name, c in chunks.items()}
    if cache:
        buffer = io.BytesIO()
        np.savez(buffer, __meta__=np.array(json.dumps({"params": params, "shared": shared})), **owned)
        write_cached(path, buffer.getvalue())
    return _assemble(owned, shared, key, path if cache else None, False, params, names)


def _assemble(owned, shared, key, path, from_cache, params, names) -> CalibrationSet:
    for a in owned.values():
        a.flags.writeable = False
    inputs = {n: owned[shared.get(n, n)] for n in names}
    return CalibrationSet(inputs, dict(shared), key, path, from_cache, params)


def _load(stored: bytes, path: Path, key: str, params: dict) -> CalibrationSet:
    # The bytes match their record, so they are what was written; only a key collision is left.
    with np.load(io.BytesIO(stored)) as f:
        meta = json.loads(str(f["__meta__"]))
        owned = {n: f[n] for n in f.files if n != "__meta__"}
    if meta["params"] != params:
        raise CacheError(f"The calibration cache entry {path} was captured with other parameters than its "
                         f"key stands for (a key collision); remove it with `lutforge cache clear calib` "
                         f"and run again.")
    return _assemble(owned, meta["shared"], key, path, True, params, params["layers"])
