"""Task functions for the executor tests: top-level, so that spawned workers and Ray import them."""

import os
import time
from pathlib import Path


def square(item):
    return item * item


def _first_call(folder: str, tag: str) -> bool:
    """True the first time it is asked about ``tag`` (a marker file in ``folder``), across processes."""
    marker = Path(folder) / tag
    if marker.exists():
        return False
    marker.write_text("1")
    return True


def fails_once(item):
    """Raises on its first call for ``item = (marker_dir, n)``, then returns n squared."""
    folder, n = item
    if _first_call(folder, f"attempted-{n}"):
        raise RuntimeError(f"first attempt at {n}")
    return n * n


def dies_once(item):
    """Ends its worker process on its first call for ``item = (marker_dir, n)``."""
    folder, n = item
    if _first_call(folder, f"died-{n}"):
        os._exit(3)
    return n * n


def always_fails(item):
    raise RuntimeError(f"broken input {item}")


def slow_square(item):
    """``item = (seconds, n)``: n squared after a nap, with the node that ran it. Where
    ``LUTFORGE_TEST_MARKERS`` names a folder, a file ``NODE-n`` there says the nap has begun."""
    seconds, n = item
    node = os.environ.get("LUTFORGE_TEST_NODE", "head")
    markers = os.environ.get("LUTFORGE_TEST_MARKERS")
    if markers:
        open(os.path.join(markers, f"{node}-{n}"), "w").close()
    time.sleep(seconds)
    return n * n, node
