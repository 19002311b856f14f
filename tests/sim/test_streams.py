"""Stream drivers and scoreboard in an Amaranth testbench, with stalls on both sides."""

import pytest
from amaranth.sim import Simulator

from lutforge.sim.scoreboard import Mismatch, Scoreboard
from lutforge.sim.streams import StreamSink, StreamSource

from example_blocks import StreamAdder


def _run(golden, stall, count=300):
    dut = StreamAdder()
    board = Scoreboard(golden)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    payloads = [(i * 37) % 65536 for i in range(count)]

    async def source(ctx):
        ctx.set(dut.k, 5)
        await StreamSource(dut.i, stall=stall, seed=1).send(ctx, payloads, on_send=lambda i, p: board.expect(p))

    async def sink(ctx):
        await StreamSink(dut.o, stall=stall, seed=2).receive(ctx, count, on_receive=board.check)
        board.done()

    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return board


def _adder(payload):
    return ((payload & 0xFF) + (payload >> 8) + 5) % 512


@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_stream_drivers_pass_a_correct_block(stall):
    assert _run(_adder, stall).checked == 300


def test_scoreboard_reports_the_first_mismatch_in_hex_and_decimal():
    def off_by_one_at_7(payload):
        return _adder(payload) + (payload == 7 * 37)

    with pytest.raises(Mismatch, match=r"Mismatch at transaction 7 at cycle \d+: inputs 0x103 \(259\); "
                                       r"expected 0xa \(10\), got 0x9 \(9\)\."):
        _run(off_by_one_at_7, 0.3)


def test_scoreboard_notices_missing_outputs():
    board = Scoreboard(lambda x: x)
    board.expect(3)
    with pytest.raises(Mismatch, match=r"1 expected output\(s\) never arrived; the first was for inputs 3"):
        board.done()
