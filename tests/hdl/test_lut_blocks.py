"""The centroid search unit and the LUT GEMV engines (table rows multiplexed, tables in block RAM) alone, through the block catalogue's self-check
(Verilator, one vector per cycle, against the golden search and a NumPy tile sum), and the GEMV
core's control interface with random activity on every input."""

import pytest

from lutforge.blocks import get_block
from lutforge.blocks.selfcheck import self_check


@pytest.mark.parametrize("name,params,count", [
    # Ties forced by repeated centroids and activations on a centroid; 3 chains of 16 and a tree.
    ("centroid_search", {"v": "4", "c_a": "48", "metric": "l2", "chains": "3"}, 20_000),
    # Tiles closed at max_positions, bubbles, padding lanes masked.
    ("lut_gemv", {"c_w": "256", "lanes": "8", "max_positions": "20"}, 20_000),
    # Tables loaded, then looked up from each lane's bank; tiles closed at positions.
    ("lut_bram_gemv", {"c_a": "16", "c_w": "16", "lanes": "4", "positions": "12"}, 20_000),
])
def test_block_matches_golden(name, params, count):
    block = get_block(name)
    result = self_check(block, block.resolve(params), "batch", count=count, seed=4)
    assert result.passed, result.first_mismatch


@pytest.mark.slow
def test_core_control_refuses_every_bad_descriptor_and_stays_idle():
    block = get_block("gemv_core")
    params = block.resolve({"c_a": "16", "lanes": "4", "chains": "2", "max_positions": "64"})
    result = self_check(block, params, "batch", count=20_000, seed=2)
    assert result.passed, result.first_mismatch
