"""One block through every harness: Amaranth, cocotb on Verilator, and the batch harness agree."""

import dataclasses

import numpy as np
import pytest

from lutforge.blocks import get_block
from lutforge.blocks.selfcheck import self_check
from lutforge.support.errors import UsageError


@pytest.mark.parametrize("harness,count", [("amaranth", 3000), ("cocotb-verilator", 3000), ("batch", None)])
def test_lmul_self_check_passes_on_every_harness(harness, count):
    block = get_block("lmul")
    params = block.resolve({"format": "e5m2", "latency": "2"})
    result = self_check(block, params, harness, count=count)
    assert result.passed, result.first_mismatch
    assert result.vectors == (count or 65536)
    assert result.exhaustive == (count is None)


def test_self_check_catches_a_wrong_block():
    block = get_block("lmul")
    params = block.resolve({"format": "e4m3"})

    def off_by_one(params, inputs):
        out = block.golden(params, inputs)
        out["r"] = np.where(inputs["a"] == 0x38, out["r"] ^ 1, out["r"])
        return out

    wrong = type(block)(**{**block.__dict__, "golden": off_by_one})
    result = self_check(wrong, params, "batch")
    assert result.mismatches == 256
    assert result.first_mismatch.startswith("output r: Mismatch at transaction 56 at cycle 56: inputs a=0x38 (56), b=0x0 (0);")


@pytest.mark.parametrize("harness", ["amaranth", "cocotb-verilator", "batch"])
def test_stream_block_self_check_passes_with_stalls_on_every_harness(harness):
    block = get_block("lmul_dot")
    params = block.resolve({"format": "e5m2", "lanes": "2", "beats": "3"})
    result = self_check(block, params, harness, count=150)
    assert result.passed, result.first_mismatch
    assert result.vectors == 150 and not result.exhaustive


def test_stream_self_check_reports_a_wrong_payload():
    block = get_block("lmul_dot")
    params = block.resolve({"format": "e4m3"})

    def off_by_one(params, inputs):
        out = block.golden(params, inputs)
        out["o"] = out["o"].copy()
        out["o"][5] ^= 1
        return out

    wrong = type(block)(**{**block.__dict__, "golden": off_by_one})
    result = self_check(wrong, params, "batch", count=40)
    assert result.mismatches == 1
    assert result.first_mismatch.startswith("output o: Mismatch at transaction 5: expected 0x")


def test_self_check_result_is_frozen_and_keeps_its_json_keys():
    block = get_block("lmul")
    result = self_check(block, block.resolve({"format": "e5m2"}), "amaranth", count=50)
    assert set(result.to_json()) == {
        "block", "params", "harness", "vectors", "exhaustive", "mismatches", "first_mismatch", "build_seconds",
        "build_cached", "run_seconds", "waves_path", "passed", "vectors_per_second"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.mismatches = 0


def test_waves_on_the_batch_harness_are_refused_before_any_build():
    block = get_block("lmul")
    with pytest.raises(UsageError, match=r"The batch harness cannot honour waves='vcd'; use the amaranth, "
                                         r"cocotb-verilator or cocotb-icarus harnesses for it\."):
        self_check(block, block.resolve({}), "batch", waves="vcd")
