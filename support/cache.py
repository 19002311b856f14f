"""The content-addressed cache: same inputs, code and tool versions, same directory; locks and hashes."""

import fcntl
import hashlib
import importlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = ["cache_root", "content_key", "build_dir", "file_lock", "sha256_hex", "file_sha256", "source_hash"]


def cache_root() -> Path:
    """``$LUTFORGE_CACHE``, else ``~/.cache/lutforge``."""
    root = os.environ.get("LUTFORGE_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "lutforge"


def content_key(*parts) -> str:
    """20 hex digits of SHA-256 over ``parts``, each framed by its length: text, bytes, NumPy arrays
    (dtype, shape and every element) or any JSON value (dicts with sorted keys)."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            part = f"{part.dtype.str}{part.shape}".encode() + np.ascontiguousarray(part).tobytes()
        elif not isinstance(part, (str, bytes)):
            part = json.dumps(part, sort_keys=True, default=str)
        if isinstance(part, str):
            part = part.encode()
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()[:20]


def build_dir(kind: str, key: str) -> Path:
    path = cache_root() / kind / key
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def file_lock(folder: Path, name: str = ".lock"):
    """Hold an exclusive lock on ``folder/name`` (another process building the same entry waits)."""
    with open(Path(folder) / name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes, read in chunks (model files are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_hash(*modules: str) -> str:
    """Content hash of the source files of ``modules`` (dotted names): a cache key over the code that
    computes a result, so editing that code invalidates what it computed."""
    digest = hashlib.sha256()
    for name in sorted(modules):
        path = Path(importlib.import_module(name).__file__)
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:20]
