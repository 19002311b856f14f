"""``lib.data`` layouts for floating-point encodings, so RTL reads fields by name."""

from amaranth.lib import data

from ..golden.formats import Format, get

__all__ = ["FloatLayout"]


class FloatLayout(data.StructLayout):
    """The bit layout of one encoding of ``fmt``: mantissa, exponent, then sign at the top."""

    def __init__(self, fmt: "str | Format"):
        self.float_format = get(fmt)
        fields = {"mantissa": self.float_format.man_bits, "exponent": self.float_format.exp_bits}
        if self.float_format.signed:
            fields["sign"] = 1
        super().__init__(fields)

    def __repr__(self):
        return f"FloatLayout({self.float_format.name})"
