"""Task functions for the executor tests: top-level, so that spawned workers and Ray import them."""

import os
import time
from pathlib import Path


def square(item):
    return item * item


def fails_once(item):
    """Raises on its first call for ``item = (marker_dir, n)``, then returns n squared."""
    folder, n = item
    marker = Path(folder) / f"attempted-{n}"
    if not marker.exists():
        marker.write_text("1")
        raise RuntimeError(f"first attempt at {n}")
    return n * n


def dies_once(item):
    """Ends its worker process on its first call for ``item = (marker_dir, n)``."""
    folder, n = item
    marker = Path(folder) / f"died-{n}"
    if not marker.exists():
        marker.write_text("1")
        os._exit(3)
    return n * n


def always_fails(item):
    raise RuntimeError(f"broken input {item}")


def slow_square(item):
    """``item = (seconds, n)``: n squared after a nap, with the node that ran it."""
    seconds, n = item
    time.sleep(seconds)
    return n * n, os.environ.get("LUTFORGE_TEST_NODE", "head")
