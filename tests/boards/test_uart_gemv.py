"""A compiled layer on the SoC's GEMV core, through the compiler's host driver and the simulated
UART, bit-exact against the golden backend — with and without corrupted frames."""

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


@pytest.mark.parametrize("faults", [None, dict(tx_faults=[20, 1000, 3000], rx_faults=[3, 200])],
                         ids=["clean", "corrupted-frames"])
def test_compiled_layer_bit_exact_over_simulated_uart(faults):
    program, x = _program(0)
    golden = HostDriver(program, GoldenBackend())
    expected = golden.run_int("layer0", golden.quantize("layer0", x)).acc
    wrap = (lambda link: FaultyLink(link, **faults)) if faults else None
    with open_sim(CONFIG, wrap=wrap) as transport:
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
