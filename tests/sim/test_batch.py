"""The batch harness against hand-computable blocks (not our golden models): adders and streams."""

import numpy as np
import pytest

from example_blocks import StreamAdder, WideAdder
from lutforge.sim.batch import BatchSim
from lutforge.sim.interface import SimulationTimeout


@pytest.mark.parametrize("latency", [0, 3])
def test_wide_ports_round_trip_through_verilator(latency):
    rng = np.random.default_rng(7)
    a = np.array([int(x) for x in rng.integers(0, 1 << 62, 500)], dtype=object) << 38
    b = np.array([(1 << 100) - 1, 0, *[int(x) for x in rng.integers(0, 1 << 62, 498)]], dtype=object)
    out = BatchSim(WideAdder(latency)).run_vectors({"a": a, "b": b}, latency=latency).outputs
    assert [int(x) for x in out["r"]] == [int(x) + int(y) for x, y in zip(a, b)]


@pytest.mark.parametrize("width", [20, 40, 64])
def test_one_and_two_word_ports_round_trip(width):
    rng = np.random.default_rng(width)
    top = (1 << width) - 1
    a = np.concatenate([np.array([top, 0, top], dtype=np.uint64), rng.integers(0, 1 << 62, 997, dtype=np.uint64) & np.uint64(top)])
    b = np.concatenate([np.array([top, 0, 1], dtype=np.uint64), rng.integers(0, 1 << 62, 997, dtype=np.uint64) & np.uint64(top)])
    out = BatchSim(WideAdder(0, width)).run_vectors({"a": a, "b": b}).outputs
    assert [int(x) for x in out["r"]] == [int(x) + int(y) for x, y in zip(a, b)]


def test_out_of_range_input_is_refused_with_the_limit():
    sim = BatchSim(WideAdder(0))
    with pytest.raises(ValueError, match=r"Port 'a' is 100 bits wide but got 1267650600228229401496703205376; "
                                         r"values must be in 0\.\.1267650600228229401496703205375\."):
        sim.run_vectors({"a": np.array([1 << 100], dtype=object), "b": np.array([0], dtype=object)})


def test_missing_input_is_named():
    sim = BatchSim(WideAdder(0))
    with pytest.raises(ValueError, match="missing b, unknown none"):
        sim.run_vectors({"a": np.array([1], dtype=object)})


@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_streams_with_stalls_deliver_every_payload_in_order(stall):
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 256, 5000), rng.integers(0, 256, 5000)
    result = BatchSim(StreamAdder()).run_streams(
        {"i": a | (b << 8)}, {"o": 5000}, constants={"k": 9}, seed=11, input_stall=stall, output_stall=stall)
    assert np.array_equal(result.outputs["o"], (a + b + 9) % 512)
    assert result.consumed == {"i": 5000}
    if stall == 0.0:
        # One transfer per cycle, plus the register stage.
        assert result.cycles == 5001
    else:
        assert result.cycles > 5001 * 1.5


def test_stuck_stream_reports_how_far_it_got():
    sim = BatchSim(StreamAdder())
    with pytest.raises(SimulationTimeout, match=r"output streams at o: 10 of 11"):
        sim.run_streams({"i": np.arange(10)}, {"o": 11}, max_cycles=1000)
