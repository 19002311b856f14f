"""The SDR SDRAM controller against the chip model: every byte read back equals a plain array that
saw the same writes, under random traffic that crosses rows and banks and meets refreshes, with
no data-sheet rule broken; and a controller built for the wrong data sheet (each a rule it then
breaks) is caught by the model."""

import random
from dataclasses import replace

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from readback import check_readback

from lutforge.boards.sdram import IS42S16160, Command, SdramChip, SdramController
from lutforge.boards.sdram_model import POISON, SdramModel, Violation

CLK = 100e6
# A small chip with the real one's timings: 2 banks of 8 rows of 8 columns (256 bytes), so random
# addresses miss their row often; refresh every 40 cycles and a 25-cycle power-up, so a short
# simulation meets many refreshes.
TEST_CHIP = replace(IS42S16160, name="test chip", banks=2, row_bits=3, col_bits=3, refresh_ms=320 / CLK * 1e3,
                    init_us=0.25, init_refreshes=2)


def simulate(controller_chip: SdramChip, requests, model_chip: SdramChip = TEST_CHIP, idle_after: int = 0,
             width: int = 1):
    """Run ``requests`` ([(write?, addr, word, byte mask, gap)]) through a controller with a port of
    ``width``-byte words built for ``controller_chip`` onto the model of ``model_chip``; returns
    (words read, violation, commands)."""
    m = Module()
    m.submodules.ctrl = ctrl = SdramController(controller_chip, CLK, model_chip.size, width)
    m.submodules.model = model = SdramModel(model_chip, CLK, model_chip.size)
    wiring.connect(m, ctrl.pins, model.pins)
    port = ctrl.port
    got, commands, result = [], [], {}

    async def bench(ctx):
        for write, addr, word, mask, gap in requests:
            for _ in range(gap):
                ctx.set(port.re, 0), ctx.set(port.we, 0)
                await ctx.tick()
            ctx.set(port.addr, addr)
            ctx.set(port.wdata, word)
            ctx.set(port.wmask, mask)
            ctx.set(port.we, write)
            ctx.set(port.re, not write)
            while True:
                ready = ctx.get(port.ready)
                await ctx.tick()
                if ready:
                    break
        ctx.set(port.re, 0), ctx.set(port.we, 0)
        for _ in range(20 + idle_after):
            await ctx.tick()
        result["violation"] = ctx.get(model.violation)

    async def watch(ctx):
        async for clk_edge, rst, rvalid, rdata, cs, ras, cas, we in ctx.tick().sample(
                port.rvalid, port.rdata, ctrl.pins.cs, ctrl.pins.ras, ctrl.pins.cas, ctrl.pins.we):
            if rvalid:
                got.append(rdata)
            if cs and (ras, cas, we) != Command.NOP:
                commands.append((ras, cas, we))

    sim = Simulator(m)
    sim.add_clock(1 / CLK)
    sim.add_testbench(bench)
    sim.add_testbench(watch, background=True)
    sim.run()
    return got, Violation(result["violation"]), commands


def random_requests(n: int, size: int, seed: int, width: int = 1):
    """Reads and writes of random ``width``-byte words, writes with a random byte mask."""
    rng = random.Random(seed)
    return [(rng.random() < 0.4, rng.randrange(size) & -width, rng.randrange(256 ** width),
             rng.randrange(1, 1 << width), rng.choice((0, 0, 0, 1, 3))) for _ in range(n)]


@pytest.mark.parametrize("seed, width", [(0, 1), (1, 1), (0, 2)])
def test_random_traffic_reads_back_what_was_written_and_keeps_every_rule(seed, width):
    """On a byte port and on one of the chip's 16-bit words, whose writes mask bytes (DQM)."""
    full = (1 << width) - 1
    requests = [(True, a, (a * 7 + seed) * 0x0101 & (256 ** width - 1), full, 0)  # every byte once
                for a in range(0, TEST_CHIP.size, width)]
    requests += random_requests(1500, TEST_CHIP.size, seed, width)
    got, violation, commands = simulate(TEST_CHIP, requests, width=width)
    memory, expected = bytearray(TEST_CHIP.size), []
    for write, addr, word, mask, _ in requests:
        if write:
            for i in range(width):
                if mask >> i & 1:
                    memory[addr + i] = word >> 8 * i & 0xFF
        else:
            expected.append(int.from_bytes(memory[addr:addr + width], "little"))
    assert violation == Violation.NONE
    assert got == expected
    # The traffic met rows that were closed and refreshes in flight.
    assert commands.count(Command.ACTIVE) > 200 and commands.count(Command.REFRESH) > 20


def test_a_long_idle_still_refreshes_at_the_chips_rate():
    """Long enough that a refresh period one cycle too long falls 8 refreshes behind (40 x 41 x 8
    cycles): the model flags it, and the count of refreshes falls short."""
    got, violation, commands = simulate(TEST_CHIP, [(True, 5, 0x5A, 1, 0), (False, 5, 0, 1, 0)], idle_after=14000)
    assert violation == Violation.NONE and got == [0x5A]
    assert commands.count(Command.REFRESH) >= 14000 // 40


@pytest.mark.parametrize("wrong, violation", [
    (dict(t_rcd=5), Violation.T_RCD),  # 1 cycle where the chip needs 2
    (dict(t_rp=5), Violation.T_RP),
    (dict(t_rfc=20), Violation.T_RFC),
    (dict(refresh_ms=10 * TEST_CHIP.refresh_ms), Violation.REFRESH_LATE),
    (dict(cas_latency=3), Violation.MODE),
    (dict(init_us=0.1), Violation.POWER_UP),
])
def test_a_controller_built_for_the_wrong_data_sheet_is_caught(wrong, violation):
    requests = random_requests(600, TEST_CHIP.size, 3)
    got, found, _ = simulate(replace(TEST_CHIP, **wrong), requests, idle_after=600)
    assert found == violation


def test_reads_after_a_violation_are_poisoned():
    got, found, _ = simulate(replace(TEST_CHIP, t_rcd=5), [(True, 0, 1, 1, 0), (False, 0, 0, 1, 0),
                                                                  (False, 1, 0, 1, 0)])
    assert found == Violation.T_RCD and got == [POISON & 0xFF, POISON >> 8]


def test_sizes_and_clocks_beyond_the_chip_are_refused():
    with pytest.raises(ValueError, match=r"^An SDRAM memory of 67108864 bytes is not a power of two within the "
                                         r"IS42S16160's 33554432 bytes; use 33554432 or a smaller power of two\.$"):
        SdramController(IS42S16160, 25e6, 64 << 20)
    with pytest.raises(ValueError, match=r"^The IS42S16160 allows CAS latency 2 up to 100 MHz; the SoC clock is "
                                         r"133 MHz: run the SoC at 100 MHz or less\.$"):
        SdramController(IS42S16160, 133e6, 1 << 20)


def drive_model(script, chip: SdramChip = TEST_CHIP) -> Violation:
    """Drive the model's pins with ``script``, one (command, bank, address) a cycle, after a
    correct initialisation; returns what the model latched."""
    t = chip.timing(CLK)
    nop = (Command.NOP, 0, 0)
    init = ([nop] * t.init + [(Command.PRECHARGE, 0, 1 << 10)] + [nop] * (t.rp - 1)
            + [(Command.REFRESH, 0, 0)] + [nop] * (t.rfc - 1) + [(Command.REFRESH, 0, 0)] + [nop] * (t.rfc - 1)
            + [(Command.MODE, 0, chip.cas_latency << 4)] + [nop] * (t.mrd - 1))
    model = SdramModel(chip, CLK, chip.size)
    result = {}

    async def bench(ctx):
        for command, bank, addr in init + script + [nop] * 4:
            ctx.set(model.pins.cs, 1), ctx.set(model.pins.clk_en, 1)
            ctx.set(model.pins.ras, command[0]), ctx.set(model.pins.cas, command[1]), ctx.set(model.pins.we, command[2])
            ctx.set(model.pins.ba, bank), ctx.set(model.pins.a, addr)
            await ctx.tick()
        result["violation"] = ctx.get(model.violation)

    sim = Simulator(model)
    sim.add_clock(1 / CLK)
    sim.add_testbench(bench)
    sim.run()
    return Violation(result["violation"])


NOP, ACT, RD, WR, PRE, REF = ((c, 0, 0) for c in (Command.NOP, Command.ACTIVE, Command.READ, Command.WRITE,
                                                   Command.PRECHARGE, Command.REFRESH))
T = TEST_CHIP.timing(CLK)  # tRCD 2, tRAS 4, tRC 6, tRP 2, tRRD 2, tWR 2 at 100 MHz


@pytest.mark.parametrize("script, violation, chip", [(*case, TEST_CHIP)[:3] for case in [
    ([ACT] + [NOP] * 5 + [RD, NOP, NOP, NOP, PRE], Violation.NONE),  # the rules kept: the base of the others
    ([ACT, NOP, ACT], Violation.ACTIVE_OPEN),
    ([RD], Violation.CLOSED_BANK),
    ([ACT, NOP, NOP, PRE], Violation.T_RAS),
    ([ACT] + [NOP] * 3 + [WR, PRE], Violation.T_WR),
    ([ACT, NOP, (Command.ACTIVE, 1, 0)] + [NOP] * 3 + [PRE, NOP, ACT], Violation.NONE),
    ([ACT, (Command.ACTIVE, 1, 0)], Violation.T_RRD),
    ([ACT] + [NOP] * 3 + [PRE, NOP, ACT], Violation.T_RC, replace(TEST_CHIP, t_rc=80)),  # tRC 8 > tRAS + tRP
    ([ACT, NOP, REF], Violation.REFRESH_OPEN),
    ([ACT, NOP, RD, WR], Violation.BUS),
    ([ACT, NOP, (Command.READ, 0, 1 << 10)], Violation.AUTO_PRECHARGE),
    ([ACT, NOP, NOP, NOP, NOP, NOP, PRE, ACT], Violation.T_RP),
]])
def test_the_model_flags_each_rule_it_checks(script, violation, chip):
    assert drive_model(script, chip) == violation


@pytest.mark.parametrize("port_bytes", [1, 2])
def test_the_whole_soc_reads_back_through_the_sdram_and_runs_its_core(port_bytes):
    """The SoC with ``memory: sdram`` in Verilator, the chip's model on its pins: loads across row
    and bank edges (1 KiB rows, a bank every 1 KiB, 4 KiB per row of all banks) read back against a
    plain array, and the L-Mul core's run over the SDRAM is bit-exact against golden; on a byte
    port and on the chip's 16-bit words, which the host link and the L-Mul core reach byte by byte."""
    import numpy as np

    from lutforge.boards.host import Accelerator
    from lutforge.boards.sim_transport import open_sim
    from lutforge.boards.soc import SocConfig
    from lutforge.golden.lmul import LMulPolicy, lmul

    size = 1 << 16
    rng = np.random.default_rng(0)
    spans = [(0, 300), (1024 - 150, 300), (4096 - 7, 20), (3 * 4096 + 1000, 600), (size - 257, 257)]
    with open_sim(SocConfig.for_sim(memory="sdram", mem_size=size, port_bytes=port_bytes)) as transport:
        acc = Accelerator(transport)
        assert acc.mem_size == size
        check_readback(acc, spans, size, rng)
        n, a_at, b_at, r_at = 256, 5000, 9000 + 1, 20000  # three regions in different rows
        a, b = (rng.integers(0, 256, n, dtype=np.uint8) for _ in range(2))
        acc.load_memory(a_at, a)
        acc.load_memory(b_at, b)
        acc.run([a_at, b_at, r_at, n])
        result = np.frombuffer(acc.read_results(r_at, n), np.uint8)
    np.testing.assert_array_equal(result, lmul(a, b, "e4m3", LMulPolicy()))


def test_an_soc_clock_above_the_chips_is_refused():
    from lutforge.boards.soc import SocConfig
    from lutforge.support.errors import UsageError

    with pytest.raises(UsageError, match=r"^The SoC clock 133 MHz is above the IS42S16160's 100 MHz at CAS latency "
                                         r"2; clock the SoC at 100 MHz or less\.$"):
        SocConfig(clk_freq=133e6, baud=115200 * 8, mem_size=1 << 20, idle_cycles=1 << 20, memory="sdram")
