"""The content-addressed cache: same inputs, code and tool versions, same directory; locks and hashes.

Entries verify themselves. A folder entry is complete when its ``entry.json`` exists, written last,
recording the SHA-256 and size of the files that make up the result (:func:`seal_entry`); a file
entry is written atomically next to a ``<name>.entry.json`` of its own (:func:`write_cached`). A
reader checks the record before trusting the entry (:func:`entry_ok`, :func:`read_cached`); an entry
whose files are missing, truncated or changed is reported on stderr (its path and what was wrong),
discarded, and the caller builds it again. Interrupted work never leaves an entry that passes.
"""

import fcntl
import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = ["cache_root", "content_key", "build_dir", "file_lock", "sha256_hex", "file_sha256", "source_hash",
           "ENTRY", "seal_entry", "entry_problem", "entry_ok", "write_cached", "read_cached", "atomic_write",
           "file_entry_problem"]


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


ENTRY = "entry.json"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename, so a
    reader sees the old content or the new, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _record(folder: Path, files) -> dict:
    return {name: {"sha256": file_sha256(folder / name), "bytes": (folder / name).stat().st_size}
            for name in sorted(files)}


def seal_entry(folder: Path, files) -> None:
    """Mark the folder entry complete: record ``files`` (names relative to ``folder``, each must
    exist and be non-empty) in ``entry.json``, written last and atomically."""
    folder = Path(folder)
    for name in files:
        if not (folder / name).is_file() or (folder / name).stat().st_size == 0:
            raise RuntimeError(f"Cache entry {folder} cannot be sealed: its file {name} is missing or empty.")
    atomic_write(folder / ENTRY, json.dumps({"files": _record(folder, files)}, indent=1).encode())


def entry_problem(folder: Path) -> "str | None":
    """What is wrong with the folder entry, or None when every recorded file is as recorded.
    An entry without ``entry.json`` is incomplete (work was interrupted, or never started)."""
    folder = Path(folder)
    try:
        record = json.loads((folder / ENTRY).read_text())["files"]
    except FileNotFoundError:
        return "it is incomplete (no entry.json)"
    except (ValueError, KeyError, TypeError):
        return f"its {ENTRY} is not a valid record"
    for name, want in record.items():
        path = folder / name
        if not path.is_file():
            return f"its file {name} is missing"
        size = path.stat().st_size
        if size != want["bytes"]:
            return f"its file {name} has {size} bytes, {want['bytes']} were recorded"
        if file_sha256(path) != want["sha256"]:
            return f"its file {name} does not match the SHA-256 recorded when it was built"
    return None


def _discard(path: Path, problem: str) -> None:
    print(f"lutforge: discarding cache entry {path}: {problem}; it will be rebuilt.", file=sys.stderr)
    if Path(path).is_dir():
        for child in Path(path).iterdir():
            if child.name != ".lock":  # another process may hold it while waiting for us
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    else:
        Path(path).unlink(missing_ok=True)


def entry_ok(folder: Path) -> bool:
    """True when the folder entry is complete and intact. A damaged entry (sealed, then changed) is
    reported and emptied, so the caller rebuilds it; an unsealed one is simply not there yet."""
    folder = Path(folder)
    problem = entry_problem(folder)
    if problem is None:
        return True
    if (folder / ENTRY).exists():
        _discard(folder, problem)
    return False


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".entry.json")


def write_cached(path: Path, data: bytes) -> None:
    """Store ``data`` at ``path`` as a file entry: the file atomically, then its record."""
    path = Path(path)
    atomic_write(path, data)
    atomic_write(_sidecar(path), json.dumps({"sha256": sha256_hex(data), "bytes": len(data)}).encode())


def read_cached(path: Path) -> "bytes | None":
    """The bytes of the file entry at ``path``, or None when absent or damaged (then reported and
    removed, so the caller computes it again)."""
    path = Path(path)
    if not path.exists():
        _sidecar(path).unlink(missing_ok=True)
        return None
    problem = file_entry_problem(path)
    if problem is None:
        return path.read_bytes()
    _discard(path, problem)
    _sidecar(path).unlink(missing_ok=True)
    return None


def file_entry_problem(path: Path) -> "str | None":
    """What is wrong with the file entry at ``path`` (see :func:`write_cached`), or None when its
    bytes are as recorded; the same check as :func:`read_cached`, without discarding anything."""
    path = Path(path)
    if not path.is_file():
        return "it is missing"
    try:
        want = json.loads(_sidecar(path).read_text())
    except FileNotFoundError:
        return "it has no record (written by an older lutforge or interrupted)"
    except ValueError:
        return "its record is not valid JSON"
    data = path.read_bytes()
    if not isinstance(want, dict) or len(data) != want.get("bytes") or sha256_hex(data) != want.get("sha256"):
        return f"its content ({len(data)} bytes) does not match the SHA-256 recorded when it was written"
    return None
