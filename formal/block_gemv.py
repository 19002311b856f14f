"""Plain reference RTL of the block GEMV core's chunk datapath, for proofs (never in a design).

:class:`ChunkProductSpec` computes ``p_c = fp32(S_c · 2^(ea - 127 - fa) · wscale · 2^-fw)`` as
:mod:`lutforge.golden.block_gemv` states it, written differently from
:class:`lutforge.hdl.block_gemv.ChunkProduct`: element and E4M3 scale values come from constant
tables built with :func:`lutforge.golden.convert.decode` (not from bit fields), the chunk sum is a
linear chain, and the rounding is :func:`.reference_fp.reference_round_pack` (bit length and one
shift, not leading zeros and normalisation).
"""

from amaranth import Module, Signal, Const, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.block_gemv import BlockGemvFormat
from ..golden.convert import decode
from ..golden.formats import get
from ..hdl.block_gemv import chunk_sig_width, x_layout
from ..hdl.round_pack import rejecting
from .reference_fp import reference_round_pack

__all__ = ["ChunkProductSpec"]


def _element_table(element: str) -> list[int]:
    """Integer ``value · 2^f`` of every code (NaN codes: 0), from the format's own decoding."""
    if element in ("int8", "int4"):
        bits = int(element[3:])
        return [c - (1 << bits) if c >= 1 << (bits - 1) else c for c in range(1 << bits)]
    frac = {"e2m1": 1, "e4m3": 9}[element]
    values = decode(list(range(1 << get(element).width)), element) * 2.0 ** frac
    return [0 if v != v else int(v) for v in values]


def _lookup(m, code, table, *, name: str):
    # A sum of one-hot terms rather than a case statement, which yosys would turn into a ROM cell
    # the SAT engine cannot model.
    value = Signal(signed(max(abs(v) for v in table).bit_length() + 1), name=name)
    m.d.comb += value.eq(sum(Mux(code == c, Const(v, value.shape()), 0) for c, v in enumerate(table) if v))
    return value


class ChunkProductSpec(wiring.Component):
    """The same ports as :class:`lutforge.hdl.block_gemv.ChunkProduct`.

    ``terms=True`` gives the ports of :class:`lutforge.hdl.block_gemv.ChunkTerms` instead (sign,
    magnitude, exponent, NaN before rounding): proofs of the exact part finish in seconds, fp32
    rounding proofs do not. ``rounding`` and ``exp_error`` give the proof tests references that must fail.
    """

    def __init__(self, weight: str = "mxint4", act: str = "mxint8", *, chunk: "int | None" = None,
                 rounding: str = "rne", terms: bool = False, exp_error: int = 0):
        with rejecting(self):
            self.format = BlockGemvFormat(weight, act)
        self.chunk = self.format.chunk if chunk is None else chunk
        self.rounding, self.terms, self.exp_error = rounding, terms, exp_error
        ports = {"x": In(x_layout(self.chunk)), "w": In(self.chunk * self.format.weight_bits), "scale": In(8)}
        if terms:
            ports.update(sign=Out(1), mag=Out(chunk_sig_width(self.format, self.chunk)), exp=Out(12),
                         nan=Out(1))
        else:
            ports["p"] = Out(32)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        eb = fmt.weight_bits
        a_table, w_table = _element_table(fmt.act_element), _element_table(fmt.weight_element)
        total = Const(0, signed(2))
        nan = self.x.scale == 0xFF
        for j in range(self.chunk):
            code = self.x.elements[j]
            a = _lookup(m, code, a_table, name=f"a{j}")
            w = _lookup(m, self.w[j * eb:(j + 1) * eb], w_table, name=f"w{j}")
            if fmt.act_element == "e4m3":
                nan = nan | (code[:7] == 0x7F)
            total = total + a * w
        s_total = Signal(signed(len(total) + 1))
        m.d.comb += s_total.eq(total)
        scaled = Signal(signed(len(s_total) + 6))
        if fmt.weight_scale == "e8m0":
            m.d.comb += scaled.eq(s_total)
            exp_value = self.x.scale + self.scale - 254 - fmt.act_frac - fmt.weight_frac
            nan = nan | (self.scale == 0xFF)
        else:
            # E4M3 scale = table value · 2^-9, the table from the format's decoding.
            k = _lookup(m, self.scale, _element_table("e4m3"), name="k")
            m.d.comb += scaled.eq(s_total * k)
            exp_value = self.x.scale - 127 - fmt.act_frac - 9 - fmt.weight_frac
            nan = nan | (self.scale[:7] == 0x7F)
        mag = Signal(len(scaled))
        m.d.comb += mag.eq(Mux(scaled < 0, -scaled, scaled))
        sign = Signal()
        m.d.comb += sign.eq((scaled < 0) & (mag != 0))
        exp = Signal(signed(12))
        m.d.comb += exp.eq(exp_value + self.exp_error)
        if self.terms:
            m.d.comb += [self.sign.eq(sign), self.mag.eq(mag), self.exp.eq(exp), self.nan.eq(nan)]
            return m
        m.d.comb += self.p.eq(reference_round_pack(
            m, get("fp32"), sign, mag, exp, Const(0), nan, Const(0),
            rounding=self.rounding, overflow="inf", subnormals="keep"))
        return m
