"""Progress display for long work: a spinner line for builds, tqdm bars for loops."""

import sys
import threading
import time
from contextlib import contextmanager

from tqdm import tqdm

__all__ = ["status", "progress"]


@contextmanager
def status(message: str):
    """Show ``message`` with elapsed seconds on stderr while the block runs (only on a terminal)."""
    if not sys.stderr.isatty():
        yield
        return
    done = threading.Event()
    started = time.monotonic()

    def spin():
        while not done.wait(0.5):
            sys.stderr.write(f"\r{message} … {time.monotonic() - started:5.1f} s")
            sys.stderr.flush()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        sys.stderr.write(f"\r{message} … done in {time.monotonic() - started:.1f} s\n")


def progress(iterable=None, **kwargs):
    """tqdm with lutforge's defaults: on stderr, hidden when not on a terminal."""
    kwargs.setdefault("disable", None)
    kwargs.setdefault("file", sys.stderr)
    return tqdm(iterable, **kwargs)
