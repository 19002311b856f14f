"""Content-addressed build directories: same inputs and tool versions, same directory."""

import hashlib
import json
import os
from pathlib import Path

__all__ = ["cache_root", "content_key", "build_dir"]


def cache_root() -> Path:
    """``$LUTFORGE_CACHE``, else ``~/.cache/lutforge``."""
    root = os.environ.get("LUTFORGE_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "lutforge"


def content_key(*parts: "str | bytes | dict") -> str:
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, dict):
            part = json.dumps(part, sort_keys=True)
        if isinstance(part, str):
            part = part.encode()
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()[:20]


def build_dir(kind: str, key: str) -> Path:
    path = cache_root() / kind / key
    path.mkdir(parents=True, exist_ok=True)
    return path
