"""The one error path of the command line: which failures are expected, and their one-line message.

An expected failure is one the user caused and can fix (a bad option, configuration or file, a
missing tool); ``main`` prints it as ``lutforge: <message>`` and exits with status 2. Anything
else is a bug and keeps its traceback.
"""

from ..support.errors import LutforgeError

__all__ = ["EXPECTED", "message"]

# ValueError: the layers below report bad values with it (ProgramError, ConfigError, unknown
# blocks and boards), as documented in CONTRIBUTING.md.
EXPECTED = (LutforgeError, ValueError, FileNotFoundError, PermissionError, IsADirectoryError,
            NotADirectoryError)


def _oserror_message(error: OSError) -> str:
    # An OSError's own text ("[Errno 2] No such file or directory: 'x'") names no fix.
    path = error.filename if error.filename is not None else "A path"
    if isinstance(error, FileNotFoundError):
        return f"{path} does not exist; check the path."
    if isinstance(error, PermissionError):
        return f"{path} cannot be accessed (permission denied); change its permissions or choose another path."
    if isinstance(error, IsADirectoryError):
        return f"{path} is a directory; give a file path."
    return f"{path}: a part of the path is not a directory; check the path."


def message(error: BaseException) -> str:
    """The one-line message of an expected failure (see :data:`EXPECTED`)."""
    if isinstance(error, OSError) and not isinstance(error, LutforgeError):
        text = _oserror_message(error)
    else:
        text = str(error)
    # Messages that quote a tool's log span lines; the command prints one.
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
