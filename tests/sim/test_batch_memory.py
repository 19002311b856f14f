"""The batch harness's memory responders against a hand-checkable block: addresses in, words out."""

import numpy as np
import pytest
from amaranth import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lutforge.hdl.gemv_core import MemoryReadSignature
from lutforge.sim.batch import BatchSim


class Lookup(wiring.Component):
    """Forwards addresses from ``a`` to memory ``mem`` and its answers to ``o`` (no buffering)."""

    def __init__(self):
        super().__init__({
            "a": In(stream.Signature(unsigned(12))),
            "mem": Out(MemoryReadSignature(12, 80)),
            "o": Out(stream.Signature(unsigned(80))),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.mem.req.valid.eq(self.a.valid), self.mem.req.payload.eq(self.a.payload),
                     self.a.ready.eq(self.mem.req.ready),
                     self.o.valid.eq(self.mem.resp.valid), self.o.payload.eq(self.mem.resp.payload),
                     self.mem.resp.ready.eq(self.o.ready)]
        return m


@pytest.fixture(scope="module")
def sim():
    return BatchSim(Lookup())


@pytest.mark.parametrize("latency,stall", [(1, 0.0), (7, 0.0), (3, 0.4)])
def test_answers_arrive_in_order_after_the_latency(sim, latency, stall):
    rng = np.random.default_rng(latency)
    image = np.array([int(x) << 20 | i for i, x in enumerate(rng.integers(0, 1 << 60, 3000))], dtype=object)
    addresses = rng.integers(0, 3000, 4000)
    result = sim.run_streams({"a": addresses}, {"o": 4000}, memories={"mem": image}, memory_latency=latency,
                             seed=5, input_stall=stall, output_stall=stall)
    assert [int(x) for x in result.outputs["o"]] == [int(image[a]) for a in addresses]
    assert list(result.outputs["mem__req"]) == list(addresses)
    assert result.consumed == {"a": 4000, "mem__resp": 4000}
    if stall == 0.0:
        # Requests can be outstanding while answers stream back: one answer per cycle.
        assert result.last_output_cycle - result.first_input_cycle == 4000 + latency - 1


def test_an_address_outside_the_image_is_reported(sim):
    with pytest.raises(RuntimeError, match=r"memory request 10 at cycle \d+ is outside the image of 10 words"):
        sim.run_streams({"a": np.array([3, 10])}, {"o": 2}, memories={"mem": np.arange(10)})


def test_a_memory_needs_both_streams(sim):
    with pytest.raises(ValueError, match=r"has no memory port 'o': a memory needs an output stream 'o__req'"):
        sim.run_streams({"a": np.array([1])}, {"o": 1, "mem__req": 0}, memories={"o": np.arange(4)})
