"""Where the repository's own files are: the root holds ``configs/`` and the bundled data."""

from pathlib import Path

__all__ = ["REPO_ROOT"]

# The repository root is the package ``lutforge`` itself (``support/`` is one of its folders).
REPO_ROOT = Path(__file__).resolve().parents[1]
