"""A compiled layer on the SoC's GEMV core, through the compiler's host driver and the simulated
UART, bit-exact against the golden backend — with and without corrupted frames."""

from dataclasses import replace

import numpy as np
import pytest

from lutforge.backends.board import BoardBackend
from lutforge.boards.sim_transport import open_sim
from lutforge.boards.soc import SocConfig
from lutforge.boards.transport import FaultyLink
from lutforge.program.host import HostDriver
from lutforge.program.golden import GoldenBackend
from lutforge.compiler.lower import lower_layer
from lutforge.program.artifact import Program
from lutforge.golden.lut_layer import co_quantize

CONFIG = SocConfig.for_sim(core="gemv", mem_size=8192)


def _program(seed, n=7, k=13, positions_per_run=None):
    # By default K is not a multiple of v and N not a multiple of the lanes: padding on both sides.
    rng = np.random.default_rng(seed)
    p = CONFIG.gemv
    layer = co_quantize(rng.standard_normal((n, k)).astype(np.float32),
                        rng.standard_normal((4 * p.c_a, k)).astype(np.float32),
                        v=p.v, c_a=p.c_a, c_w=p.c_w, group_rows=p.lanes,
                        granularity="block" if positions_per_run else "layer",
                        positions_per_group=positions_per_run or 1, metric=p.metric, seed=seed, iterations=2)
    lowered = lower_layer("layer0", layer, lanes=p.lanes, max_positions=positions_per_run or p.max_positions)
    return Program(None, {"config": {}}, {"layer0": lowered}), rng.standard_normal((3, k))


@pytest.mark.parametrize("faults, port_bytes", [(None, 1), (dict(tx_faults=[20, 1000, 3000], rx_faults=[3, 200]), 1),
                                               (None, 2)],
                         ids=["clean", "corrupted-frames", "16-bit-port"])
def test_compiled_layer_bit_exact_over_simulated_uart(faults, port_bytes):
    """On the byte port and on a port of 16-bit words (the core's words two bytes a request)."""
    program, x = _program(0)
    golden = HostDriver(program, GoldenBackend())
    expected = golden.run_int("layer0", golden.quantize("layer0", x)).acc
    wrap = (lambda link: FaultyLink(link, **faults)) if faults else None
    with open_sim(replace(CONFIG, port_bytes=port_bytes), wrap=wrap) as transport:
        board = HostDriver(program, BoardBackend(transport, CONFIG.gemv))
        result = board.run_int("layer0", board.quantize("layer0", x))
        y = board.linear("layer0", x)
        stats = transport.stats
    np.testing.assert_array_equal(result.acc, expected)
    np.testing.assert_array_equal(y, golden.linear("layer0", x))
    assert result.cycles > 0
    if faults:
        assert stats.retries == transport.link.injected == 5
    else:
        assert stats.retries == 0


def test_layer_too_large_for_the_device_is_refused():
    program, _ = _program(1, n=7, k=40)  # 20 positions x 2 blocks: a 10 KiB table image
    layer = program.layers["layer0"]
    with open_sim(CONFIG) as transport:
        backend = BoardBackend(transport, CONFIG.gemv)
        with pytest.raises(ValueError, match=r"needs \d+ bytes of device memory .* but the device has 8192"):
            backend.run_layer(layer, np.zeros((1, layer.positions, layer.v), np.int8))


def test_layer_larger_than_the_memory_goes_through_it_run_by_run():
    # 20 positions in runs of 8, 8 and 4, 2 row blocks: a 10 KiB table image in all, 4 KiB per run.
    program, x = _program(2, n=7, k=40, positions_per_run=8)
    layer = program.layers["layer0"]
    assert len(layer.runs) == 3 and layer.tab.nbytes > CONFIG.mem_size
    golden = HostDriver(program, GoldenBackend())
    expected = golden.run_int("layer0", golden.quantize("layer0", x)).acc
    with open_sim(CONFIG) as transport:
        board = HostDriver(program, BoardBackend(transport, CONFIG.gemv))
        result = board.run_int("layer0", board.quantize("layer0", x))
    np.testing.assert_array_equal(result.acc, expected)


def test_gemv_words_that_do_not_start_on_a_port_word_are_refused():
    from lutforge.support.errors import UsageError

    with pytest.raises(UsageError, match=r"^The GEMV core's x words of 1 bytes do not start on the 2-byte words of "
                                         r"the memory port; use port_bytes: 1 or an even v\.$"):
        replace(CONFIG, gemv=replace(CONFIG.gemv, v=1), port_bytes=2)


def test_the_projection_counts_the_table_loads_between_row_blocks():
    """A run of many row blocks (a tile each) on the boards' 16-bit port: between two blocks'
    lookups the core writes the next block's rows into its banks, 16 cycles a row, while the port
    fetches a row in 10; the performance model's board port counts that phase apart and is held to
    the simulated SoC's cycles within 1 %. (On a byte port, where a row takes the port 18 cycles,
    the same run comes out 3.5 % over the projection: each block's start waits for its first row.)"""
    port_bytes = 2
    from lutforge.compiler.perf import BoardPort, Target, program_cost

    program, x = _program(3, n=24, k=64)  # 32 positions, 6 tiles of 4 rows, a row block each
    layer = program.layers["layer0"]
    config = replace(CONFIG, port_bytes=port_bytes, mem_size=65536)  # every block's tables at once
    with open_sim(config) as transport:
        board = HostDriver(program, BoardBackend(transport, config.gemv))
        result = board.run_int("layer0", board.quantize("layer0", x[:1]))
    target = Target("soc", config.clk_freq / 1e6, port_bytes * config.clk_freq / 1e9, config.gemv.lanes, 1, None,
                    "the simulated SoC", BoardPort(width=port_bytes))
    projected = program_cost(program, target, chains=config.gemv.chains, tables="resident")
    assert len(layer.runs) == 1
    assert abs(projected["cycles_per_token"] / result.cycles - 1) <= 0.01, (projected["cycles_per_token"], result.cycles)
