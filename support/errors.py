"""The exceptions of expected failures: whatever a user can cause or fix (a bad argument or config,
a missing file or tool, a corrupted cache entry). Each message is one sentence naming the thing,
the value and the fix; the command line prints it on one line and exits with status 2. Anything
else that escapes is a bug and keeps its traceback."""

__all__ = ["LutforgeError", "UsageError", "ToolError", "CacheError", "MissingFileError"]


class LutforgeError(Exception):
    """An expected failure; its message says what was wrong and how to fix it."""


class UsageError(LutforgeError, ValueError):
    """A bad argument, option or configuration value."""


class ToolError(LutforgeError, RuntimeError):
    """An external tool is missing, too old, or failed."""


class CacheError(LutforgeError):
    """A cache entry is incomplete or does not match its recorded content hash."""


class MissingFileError(LutforgeError, FileNotFoundError):
    """A file the work reads (bundled data, a model) is not where it should be."""
