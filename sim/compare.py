"""Array-at-once comparison of RTL outputs with golden outputs, with a readable first mismatch."""

import numpy as np

from .scoreboard import Mismatch, describe_mismatch

__all__ = ["assert_outputs_equal"]


def assert_outputs_equal(label: str, inputs: dict, expected, actual, *, latency: int = 0,
                         mask=None):
    """Raise :class:`Mismatch` naming the count and the first differing vector (hex and decimal).

    ``mask`` (bool array) restricts the comparison to the vectors it marks; the cycle reported is
    the vector index plus ``latency`` (one vector per cycle).
    """
    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.shape != actual.shape:
        raise Mismatch(f"{label}: expected {expected.shape[0]} outputs but the RTL gave {actual.shape[0]}.")
    bad = expected.astype(np.uint64) != actual.astype(np.uint64)
    if mask is not None:
        bad &= mask
    where = np.flatnonzero(bad)
    if len(where):
        i = int(where[0])
        first = describe_mismatch(i, {k: int(v[i]) for k, v in inputs.items()}, int(expected[i]),
                                  int(actual[i]), cycle=i + latency)
        raise Mismatch(f"{label}: {len(where)} of {len(expected)} vectors differ. {first}")
