"""What the cache holds and clearing it: the work behind ``lutforge cache info|clear``.

The cache root (:func:`~lutforge.support.cache.cache_root`) holds one folder per kind (``calib``,
``formal``, ``batch``, ...), and each kind folder holds entries named by their content key: folders
sealed with ``entry.json`` (:func:`~lutforge.support.cache.seal_entry`) or files with a
``<name>.entry.json`` record (:func:`~lutforge.support.cache.write_cached`). Kinds are whatever
folders are there, since each builder names its own.
"""

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .cache import cache_root, entry_problem, file_entry_problem
from .errors import UsageError

__all__ = ["BadEntry", "KindInfo", "CacheInfo", "ClearResult", "cache_kinds", "cache_info", "clear_cache"]

# Every entry's name holds its content key (20 hex digits; older entries have 32): a folder whose
# names do not is not ours, and clearing refuses to touch it (LUTFORGE_CACHE pointed at $HOME, say).
_KEY = re.compile(r"[0-9a-f]{16}")
_RECORD = ".entry.json"


@dataclass(frozen=True)
class BadEntry:
    """An entry whose check failed, and what was wrong with it."""
    path: Path
    problem: str


@dataclass(frozen=True)
class KindInfo:
    kind: str
    folder: Path
    entries: int
    bytes: int               # every file of the kind: entries, their records, locks and leftovers
    bad: tuple               # BadEntry of each entry whose check failed (empty unless verified)


@dataclass(frozen=True)
class CacheInfo:
    root: Path
    kinds: tuple             # KindInfo, by kind name
    verified: bool

    @property
    def entries(self) -> int:
        return sum(k.entries for k in self.kinds)

    @property
    def bytes(self) -> int:
        return sum(k.bytes for k in self.kinds)

    @property
    def bad(self) -> tuple:
        return tuple(b for k in self.kinds for b in k.bad)

    def to_json(self) -> dict:
        return {"root": str(self.root), "verified": self.verified, "entries": self.entries, "bytes": self.bytes,
                "kinds": [{"kind": k.kind, "folder": str(k.folder), "entries": k.entries, "bytes": k.bytes,
                           "bad": [{"path": str(b.path), "problem": b.problem} for b in k.bad]}
                          for k in self.kinds]}


@dataclass(frozen=True)
class ClearResult:
    root: Path
    kinds: tuple             # the kind names removed
    entries: int
    bytes: int

    def to_json(self) -> dict:
        return {"root": str(self.root), "kinds": list(self.kinds), "entries": self.entries, "bytes": self.bytes}


def _root() -> Path:
    root = cache_root()
    if root.exists() and not root.is_dir():
        raise UsageError(f"The cache root {root} (LUTFORGE_CACHE) is not a directory; point LUTFORGE_CACHE at "
                         f"a directory, or unset it to use ~/.cache/lutforge.")
    return root


def cache_kinds() -> list[str]:
    """The kinds the cache holds now, sorted."""
    root = _root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _entries(folder: Path) -> list[Path]:
    # Records, locks and the temporary files of atomic writes (hidden) belong to an entry.
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and not p.name.endswith(_RECORD))


def _size(folder: Path) -> int:
    total = 0
    for parent, _, files in os.walk(folder):
        total += sum(os.lstat(os.path.join(parent, f)).st_size for f in files)
    return total


def _problem(entry: Path) -> "str | None":
    return entry_problem(entry) if entry.is_dir() else file_entry_problem(entry)


def cache_info(verify: bool = False) -> CacheInfo:
    """Entries and bytes of each kind; with ``verify``, every entry checked against its record
    (read-only: a damaged entry is listed here and rebuilt when next used)."""
    root = _root()
    kinds = []
    for kind in cache_kinds():
        folder = root / kind
        entries = _entries(folder)
        bad = tuple(BadEntry(e, p) for e in entries if verify and (p := _problem(e)) is not None)
        kinds.append(KindInfo(kind, folder, len(entries), _size(folder), bad))
    return CacheInfo(root, tuple(kinds), verify)


def clear_cache(kinds=()) -> ClearResult:
    """Remove the named kinds (all of them when none are named); refuse, removing nothing, a kind
    that is not there or a folder holding something that is not a cache entry."""
    root = _root()
    present = cache_kinds()
    for kind in kinds:
        if kind not in present:
            held = f"it holds {', '.join(present)}" if present else "it is empty"
            raise UsageError(f"The cache {root} has no kind {kind!r}; {held}. Name kinds from `lutforge cache "
                             f"info`, or none to clear the whole cache.")
    chosen = tuple(kinds) or tuple(present)
    for kind in chosen:
        for entry in _entries(root / kind):
            if not _KEY.search(entry.name):
                raise UsageError(f"{entry} is not a lutforge cache entry (its name holds no content key), so "
                                 f"nothing was cleared; check LUTFORGE_CACHE ({root}) or remove {root / kind} "
                                 f"by hand.")
    entries = sum(len(_entries(root / kind)) for kind in chosen)
    size = sum(_size(root / kind) for kind in chosen)
    for kind in chosen:
        shutil.rmtree(root / kind)
    return ClearResult(root, chosen, entries, size)
