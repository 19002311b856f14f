"""The KV cache writer against golden.attention.cache_writes (write for write, with stalls), and a
refused descriptor that must write nothing."""

import pytest

from lutforge.blocks import get_block
from lutforge.blocks.selfcheck import self_check


@pytest.mark.parametrize("params", [{"format": "bf16", "d": "8", "lanes": "2", "tokens": "9"},
                                    pytest.param({"format": "bf16", "d": "16"}, marks=pytest.mark.slow),
                                    pytest.param({"format": "fp32", "d": "8", "lanes": "4"}, marks=pytest.mark.slow)])
def test_writes_equal_golden_with_stalls(params):
    """Tokens at consecutive positions (every lane of the value words in turn) with a refused
    descriptor after the first, random stalls on the streams and the write channels."""
    block = get_block("kv_cache_writer")
    result = self_check(block, block.resolve(params), "batch", count=1)
    assert result.passed, result.first_mismatch


def test_a_descriptor_without_keys_is_refused_and_writes_nothing():
    from control_trace import control_trace
    from lutforge.hdl.kv_cache_writer import KVCacheWriter
    unit = KVCacheWriter("bf16", 4)
    seen = control_trace(unit, [{"keys": 0, "k_base": 0, "v_base": 0}], unit.mem.k.w, unit.k)
    assert seen == [(0, 1, 1, 0, 0)]


def test_lanes_must_divide_the_head():
    from lutforge.hdl.kv_cache_writer import KVCacheWriter
    with pytest.raises(ValueError, match=r"The head dimension 6 is not a multiple of lanes=4; choose lanes dividing 6\."):
        KVCacheWriter("bf16", 6, lanes=4)
