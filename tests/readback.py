"""Load byte spans into a simulated SoC's memory and read them back against a plain array."""

import numpy as np

__all__ = ["check_readback"]


def check_readback(acc, spans, size: int, rng) -> None:
    """Write random bytes to each (start, length) of ``spans`` through ``acc`` (a host driver), later
    spans overwriting earlier ones, then compare every span read back with what a plain array of
    ``size`` bytes holds after the same writes."""
    expected = np.zeros(size, np.uint8)
    for start, length in spans:
        data = rng.integers(0, 256, length, dtype=np.uint8)
        acc.load_memory(start, data)
        expected[start:start + length] = data
    for start, length in spans:
        got = np.frombuffer(acc.read_results(start, length), np.uint8)
        np.testing.assert_array_equal(got, expected[start:start + length], err_msg=f"bytes {start}..")
