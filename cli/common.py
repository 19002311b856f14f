"""What every sub-command shares: the one ``NAME=VALUE`` parser, the one JSON writer, the output
check done before any work starts, and YAML files named in their syntax errors."""

import argparse
import json
import os
from pathlib import Path


from ..support.errors import UsageError

__all__ = ["parse_assignments", "write_json", "check_writable", "check_folder", "number", "no_repeats",
           "add_executor_arguments", "executor_from", "print_timings", "add_device_argument", "device_from"]


def parse_assignments(pairs: "list[str] | None", option: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a malformed or repeated name is a
    :class:`UsageError` naming ``option`` (the flag or argument the pairs came from)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"{option} takes NAME=VALUE, not {pair!r}.")
        if name in out:
            raise UsageError(f"{option} sets {name} twice ({name}={out[name]} and {name}={value}); give it once.")
        out[name] = value
    return out


def check_writable(path: "str | None") -> None:
    """Refuse an output path that cannot be written, before any work starts."""
    if not path:
        return
    if Path(path).is_dir():
        raise UsageError(f"Output {path} is a directory; give a file path.")
    _check_creatable(Path(path).parent, f"Output {path}")


def check_folder(path: "str | None", option: str) -> None:
    """Refuse an output folder (``--build``) that cannot be created or written, before any work."""
    if not path:
        return
    if Path(path).exists() and not Path(path).is_dir():
        raise UsageError(f"{option} {path} is a file, not a folder; choose another path.")
    _check_creatable(Path(path), f"{option} {path}")


def _check_creatable(folder: Path, what: str) -> None:
    """``folder`` exists and is writable, or its nearest existing parent is a writable folder."""
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"{what} cannot be written: {folder} is a file, not a directory; choose another path.")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{what} cannot be written: {folder} is not writable; choose another path.")


def write_json(path: "str | None", data) -> None:
    """Write ``data`` (a dict, or a result with ``to_json()``) as indented JSON, creating folders."""
    if not path:
        return
    if hasattr(data, "to_json"):
        data = data.to_json()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, default=str) + "\n")


def number(kind: type, low, high=None):
    """An argparse ``type`` for a number of ``kind`` (int or float) in [low, high]: the message
    names the value and the range, so ``--vectors 0`` or ``--budget -1`` never starts work.
    ``high`` may be a function returning the limit, for a limit that lives in a module too slow
    to import while the parser is built; it is called only when the option is given."""
    def convert(text: str):
        top = high() if callable(high) else high
        span = f"from {low} to {top}" if top is not None else f"{low} or more"
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'} "
                                             f"{span}") from None
        if value < low or (top is not None and value > top) or value != value:
            raise argparse.ArgumentTypeError(f"{text} is not {span}")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in its own messages
    return convert


def no_repeats(values: "list[str] | None", option: str) -> "list[str] | None":
    """``values`` of a repeatable option, refusing the same value twice (a typo, or a script bug)."""
    seen = set()
    for value in values or []:
        if value in seen:
            raise UsageError(f"{option} {value} is given twice; give each once.")
        seen.add(value)
    return values


def add_executor_arguments(p) -> None:
    """``--executor``, ``--workers`` and ``--address``: where a command's independent tasks run
    (:mod:`lutforge.support.executor`)."""
    from ..support.executor import EXECUTORS
    p.add_argument("--executor", default="local", choices=tuple(EXECUTORS),
                   help="local: a process pool on this machine (default); ray: a Ray cluster")
    p.add_argument("--workers", type=number(int, 1, 4096), default=1, metavar="N",
                   help="tasks at a time (default 1: one after another in this process)")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="a running Ray cluster (ray://HOST:10001, HOST:6379 or auto) for --executor ray")


def executor_from(args):
    from ..support.executor import get_executor
    return get_executor(args.executor, workers=args.workers, address=args.address)


def print_timings(executor) -> None:
    """What each fan-out of a command cost: tasks, wall time and mean task time (the figures from
    which the time on more workers is estimated, docs/scale-out.md)."""
    for line in executor.timing_lines():
        print(line)


def add_device_argument(p, default: "str | None" = "cpu", what: str = "the model's own operations") -> None:
    """``--device auto|cpu|cuda``: where PyTorch runs ``what``. ``default=None`` (the CPU) lets a
    command tell a device given from none, to refuse it where it would be ignored."""
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=default,
                   help=f"where PyTorch runs {what} (default {default or 'cpu'}; auto: CUDA when PyTorch sees one)")


def device_from(args) -> str:
    """The device ``--device`` names, refused at once when it is not there."""
    from ..compiler.finetune import resolve_device
    return resolve_device(args.device)
